/**
 * The calico-bgpd daemon between BIRD and GoBGP: 100,000 routes received from BIRD (static
 * routes) and passed on to GoBGP, counts checked on both sides; GoBGP's IPv4/IPv6 routes
 * reach BIRD; the control socket (status/routes) and a SIGHUP reload that keeps sessions up.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PeerStatus, RouteEntry } from '@calico-ts/bgp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith } from '../../../test-support/requirements.ts';
import {
  type Bird,
  freePort,
  type Gobgp,
  gobgpRibCount,
  gobgpToml,
  startBird,
  startGobgp,
  staticRoutes,
  tempDir,
  waitFor,
} from '../../bgp/test/lab.ts';

const run = promisify(execFile);
const US = '127.0.2.22';
const BIRD = '127.0.2.21';
const GOBGP = '127.0.2.23';
const N = 100_000;
const BGPD = join(import.meta.dirname, '../src/bgpd.ts');

describeWith(
  [command('bird'), command('birdc'), command('gobgpd'), command('gobgp')],
  'calico-bgpd with BIRD and GoBGP',
  () => {
    const tmp = tempDir('bgpd');
    const configFile = join(tmp.dir, 'bgpd.yaml');
    const control = join(tmp.dir, 'bgpd.sock');
    let bird: Bird;
    let gobgp: Gobgp;
    let daemon: ChildProcess;
    let daemonLog = '';
    let config = '';

    const cli = async (...args: string[]) =>
      (
        await run('node', ['--conditions=@calico-ts/source', BGPD, ...args, '--control', control], {
          maxBuffer: 1 << 28,
        })
      ).stdout;
    const status = async () => JSON.parse(await cli('status', '-o', 'json')) as PeerStatus[];
    const peer = async (a: string) => (await status()).find((p) => p.address === a);

    beforeAll(async () => {
      const [ourPort, birdPort, gobgpPort] = [await freePort(), await freePort(), await freePort()];
      writeFileSync(join(tmp.dir, 'static.conf'), staticRoutes(N));
      bird = await startBird(
        tmp.dir,
        'bird',
        `
router id 192.0.2.21;
protocol device {}
protocol static s100k {
  ipv4;
include "${join(tmp.dir, 'static.conf')}";
}
protocol bgp peer_us {
  local ${BIRD} port ${birdPort} as 65001;
  neighbor ${US} port ${ourPort} as 64512;
  multihop; hold time 90; connect delay time 1; connect retry time 2; error wait time 1,2;
  ipv4 { import all; export all; next hop self; };
  ipv6 { import all; export none; next hop address 2001:db8::21; };
}
`,
      );
      gobgp = await startGobgp(
        tmp.dir,
        'gobgp',
        gobgpToml({
          as: 65002,
          routerId: '192.0.2.23',
          port: gobgpPort,
          localAddress: GOBGP,
          neighbor: US,
          peerAs: 64512,
          families: ['ipv4', 'ipv6'],
        }),
      );
      config = `routerId: 192.0.2.22
asNumber: 64512
listen: {address: "${US}", port: ${ourPort}}
peers:
  - {address: ${BIRD}, asNumber: 65001, port: ${birdPort}, localAddress: ${US}, holdTime: 90, connectRetryTime: 1}
  - {address: ${GOBGP}, asNumber: 65002, port: ${gobgpPort}, localAddress: ${US}, holdTime: 90, connectRetryTime: 1, nextHopV4: 192.0.2.22, nextHopV6: "2001:db8::22"}
originate: [198.18.2.0/24, "2001:db8:2::/64"]
kernel: {export: false, table: 254, protocol: 186}
logLevel: warn
`;
      writeFileSync(configFile, config);
      daemon = spawn(
        'node',
        ['--conditions=@calico-ts/source', BGPD, '--config', configFile, '--control', control],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      daemon.stdout?.on('data', (d) => (daemonLog += d));
      daemon.stderr?.on('data', (d) => (daemonLog += d));
      // On a loaded 2-core CI machine a cold start from TypeScript source can take well over
      // 20 s; a daemon that exits is reported at once with its own output.
      const exited = new Promise<never>((_, reject) =>
        daemon.once('exit', (code, signal) =>
          reject(
            new Error(
              `calico-bgpd exited (${code ?? signal}) before its control socket answered:\n${daemonLog}`,
            ),
          ),
        ),
      );
      exited.catch(() => undefined);
      await Promise.race([
        waitFor(
          'daemon control socket',
          async () => existsSync(control) && (await status()).length === 2,
          90_000,
          500,
        ),
        exited,
      ]).catch((e: unknown) => {
        throw new Error(`${e instanceof Error ? e.message : String(e)}\ncalico-bgpd output:\n${daemonLog}`);
      });
    });

    afterAll(async () => {
      if (daemon && daemon.exitCode === null) {
        const exited = new Promise((r) => daemon.once('exit', r));
        daemon.kill('SIGTERM');
        await exited;
      }
      await gobgp?.stop();
      await bird?.stop();
      tmp.remove();
    });

    it(`receives ${N} routes from BIRD and passes them all to GoBGP`, async () => {
      const started = Date.now();
      await waitFor('BIRD routes at the daemon', async () => (await peer(BIRD))?.accepted === N, 60_000, 250);
      await waitFor('all routes at GoBGP', async () => (await gobgpRibCount(gobgp)) === N + 1, 60_000, 250);
      const gobgpPeer = await peer(GOBGP);
      expect(gobgpPeer).toMatchObject({ state: 'Established', sent: N + 2 });
      // GoBGP rejects loopback next hops, hence nextHopV4 in the config above.
      expect(await gobgp.gobgp('global', 'rib', '-a', 'ipv4', '240.0.0.1/32')).toContain('192.0.2.22');
      expect(await bird.routeCount('master4')).toBe(N + 1); // its own static routes + ours
      // eslint-disable-next-line no-console
      console.warn(
        `${N} routes BIRD → calico-bgpd → GoBGP in ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      expect(daemonLog).not.toMatch(/"level":(50|60)/);
    });

    it('carries GoBGP IPv4 and IPv6 routes to BIRD and lists them over the control socket', async () => {
      await gobgp.gobgp(
        'global',
        'rib',
        'add',
        '-a',
        'ipv4',
        '198.18.3.0/24',
        'nexthop',
        GOBGP,
        'community',
        '65002:3',
      );
      await gobgp.gobgp('global', 'rib', 'add', '-a', 'ipv6', '2001:db8:3::/64', 'nexthop', '2001:db8::23');
      await waitFor('GoBGP routes at BIRD', async () =>
        (await bird.birdc('show', 'route', '198.18.3.0/24')).includes('peer_us'),
      );
      const routes = JSON.parse(await cli('routes', '-o', 'json')) as RouteEntry[];
      expect(routes.length).toBeGreaterThanOrEqual(N + 3);
      const v4 = routes.find((r) => r.prefix === '198.18.3.0/24');
      expect(v4).toMatchObject({
        nextHop: GOBGP,
        asPath: '65002',
        communities: ['65002:3'],
        best: true,
        peer: GOBGP,
      });
      await waitFor('GoBGP IPv6 route at the daemon', async () =>
        (JSON.parse(await cli('routes', '--prefix', '2001:db8:3::/64', '-o', 'json')) as RouteEntry[]).some(
          (r) => r.nextHop === '2001:db8::23',
        ),
      );
      expect(await gobgpRibCount(gobgp, 'ipv6')).toBe(2); // ours + its own
      const plain = await cli('status');
      expect(plain.split('\n')[0]).toMatch(
        /^ADDRESS\s+AS\s+STATE\s+UPTIME\s+RECEIVED\s+ACCEPTED\s+SENT\s+LAST ERROR$/,
      );
      expect(plain).toMatch(new RegExp(`${BIRD.replaceAll('.', '\\.')}\\s+65001\\s+Established`));
    });

    it('applies a SIGHUP reload without dropping unchanged sessions', async () => {
      const before = await status();
      writeFileSync(
        configFile,
        config.replace('originate: [198.18.2.0/24,', 'originate: [198.18.2.0/24, 198.18.4.0/24,'),
      );
      daemon.kill('SIGHUP');
      await waitFor('new prefix at GoBGP', async () =>
        (await gobgp.gobgp('global', 'rib', '-a', 'ipv4', '198.18.4.0/24')).includes('198.18.4.0/24'),
      );
      const after = await status();
      for (const p of after) {
        const b = before.find((x) => x.address === p.address)!;
        expect(p.state).toBe('Established');
        expect(p.uptimeSeconds).toBeGreaterThanOrEqual(b.uptimeSeconds);
      }
      expect((await peer(BIRD))?.received).toBe(N);
    });

    it('refuses an invalid config naming field, value and expectation, with exit code 2', async () => {
      const bad = join(tmp.dir, 'bad.yaml');
      writeFileSync(
        bad,
        'routerId: 192.0.2.1\nasNumber: 70000000000\npeers: [{address: 192.0.2.300, asNumber: 1}]\n',
      );
      const r = await run('node', [
        '--conditions=@calico-ts/source',
        BGPD,
        '--config',
        bad,
        '--control',
        join(tmp.dir, 'x.sock'),
      ]).catch((e: { code: number; stderr: string }) => e);
      expect('code' in r && r.code).toBe(2);
      expect((r as { stderr: string }).stderr).toContain('asNumber: got 70000000000, expected ≤ 4294967295');
      expect((r as { stderr: string }).stderr).toContain(
        'peers[0].address: got "192.0.2.300", expected an IPv4 or IPv6 address',
      );
    });
  },
);
