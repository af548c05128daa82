/**
 * calico-reflector on the lab fabric, configured from a real etcd: its Node resource carries the
 * address and routeReflectorClusterID, mesh is off, and one BGPPeer (`nodeSelector: all()`,
 * `peerSelector: has(route-reflector)`) makes three nodes its clients: calico-bgpd in one node
 * namespace, BIRD in two others. Each client learns the other two's prefixes with ORIGINATOR_ID
 * and the reflector's CLUSTER_LIST; a withdrawal goes through; a fourth Node added to the
 * datastore becomes a client live; health, metrics and the status socket answer; the reflector
 * writes no kernel route.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BgpdControlMethods, callControl } from '@calico-ts/bgp';
import { EtcdDatastore } from '@calico-ts/datastore';
import { execInNamespace, type NamespaceProcess } from '@calico-ts/kernel';
import {
  createLab,
  type EtcdProcess,
  LAB_GATEWAY_V4,
  type Lab,
  labNodeIpv4,
  relayTcp,
  startEtcd,
} from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { waitFor } from '../../bgp/test/lab.ts';
import type { ReflectorControlMethods } from '../src/index.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const AS = 64512;
const CLUSTER = '224.0.0.1';
const BGPD = join(HERE, '../../bgp-agent/src/bgpd.ts');
const MAIN = join(HERE, '../src/main.ts');

describeWith(
  [root(), command('etcd'), command('bird'), command('birdc')],
  'calico-reflector with calico-bgpd and BIRD clients',
  () => {
    const prefix = runPrefix('rr');
    const dir = mkdtempSync(join(tmpdir(), `calico-ts-${prefix}-`));
    let lab: Lab;
    let etcd: EtcdProcess;
    let ds: EtcdDatastore;
    let reflector: NamespaceProcess;
    const reflectorLog: string[] = [];
    const nodeName = (i: number) => `${prefix}-n${i}`;
    const rrCtl = join(dir, 'reflector.ctl');
    const bgpdCtl = join(dir, 'bgpd.ctl');
    const birdCtl = (i: number) => join(dir, `bird-${i}.ctl`);
    const blockOf = (i: number) => `10.66.${i}.0/26`;
    const birdc = async (i: number, ...args: string[]) =>
      (await execInNamespace(undefined, 'birdc', ['-s', birdCtl(i), ...args])).stdout;
    const status = () => callControl<ReflectorControlMethods, 'status'>(rrCtl, 'status');

    const startBirdClient = async (i: number) => {
      const conf = join(dir, `bird-${i}.conf`);
      writeFileSync(
        conf,
        `router id ${labNodeIpv4(i)};
protocol device {}
protocol static st { ipv4; route ${blockOf(i)} blackhole; }
protocol bgp to_rr {
  local ${labNodeIpv4(i)} as ${AS};
  neighbor ${labNodeIpv4(1)} as ${AS};
  connect delay time 1; connect retry time 1; error wait time 1,2;
  ipv4 { import all; export all; next hop self; };
}
`,
      );
      const bird = await lab.spawn(lab.node(i), 'bird', ['-f', '-c', conf, '-s', birdCtl(i)], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      bird.child.stderr?.on('data', (d) => (err += d));
      await waitFor(`BIRD ${i} control socket`, async () => {
        if (!bird.running) throw new Error(`BIRD ${i} exited: ${err}`);
        const r = await execInNamespace(undefined, 'birdc', ['-s', birdCtl(i), 'show', 'status']);
        if (!r.stdout.includes('Daemon is up')) throw new Error(`${r.stdout} ${r.stderr} ${err}`);
        return true;
      });
    };

    beforeAll(async () => {
      lab = await createLab({ prefix, nodes: 5 });
      etcd = await startEtcd({ dir: join(dir, 'etcd'), netns: lab.underlay.name, host: LAB_GATEWAY_V4 });
      ds = new EtcdDatastore({ endpoints: [etcd.localEndpoint] });
      await ds.create('BGPConfiguration', {
        metadata: { name: 'default' },
        spec: { nodeToNodeMeshEnabled: false, asNumber: AS },
      });
      await ds.create('Node', {
        metadata: { name: nodeName(1), labels: { 'route-reflector': 'true' } },
        spec: { bgp: { ipv4Address: `${labNodeIpv4(1)}/24`, routeReflectorClusterID: CLUSTER } },
      });
      for (const i of [2, 3, 4]) {
        await ds.create('Node', {
          metadata: { name: nodeName(i) },
          spec: { bgp: { ipv4Address: `${labNodeIpv4(i)}/24` } },
        });
      }
      await ds.create('BGPPeer', {
        metadata: { name: `${prefix}-to-rr` },
        spec: { nodeSelector: 'all()', peerSelector: 'has(route-reflector)' },
      });
      reflector = await lab.spawn(
        lab.node(1),
        process.execPath,
        [
          '--conditions=@calico-ts/source',
          MAIN,
          '--node',
          nodeName(1),
          '--etcd-endpoints',
          etcd.endpoint,
          '--health',
          `${labNodeIpv4(1)}:9100`,
          '--metrics',
          `${labNodeIpv4(1)}:9100`,
          '--control',
          rrCtl,
          '--connect-retry-time',
          '1',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      reflector.child.stderr?.setEncoding('utf8');
      reflector.child.stderr?.on('data', (d: string) => {
        reflectorLog.push(d);
        if (reflectorLog.length > 200) reflectorLog.shift();
      });
      // Client 2: calico-bgpd (no kernel export); clients 3 and 4: BIRD.
      const bgpdConf = join(dir, 'bgpd.yaml');
      writeFileSync(
        bgpdConf,
        JSON.stringify({
          routerId: labNodeIpv4(2),
          asNumber: AS,
          listen: { address: labNodeIpv4(2), port: 179 },
          peers: [{ address: labNodeIpv4(1), asNumber: AS, connectRetryTime: 1, families: ['ipv4'] }],
          originate: [blockOf(2)],
          logLevel: 'warn',
        }),
      );
      await lab.spawn(
        lab.node(2),
        process.execPath,
        ['--conditions=@calico-ts/source', BGPD, '--config', bgpdConf, '--control', bgpdCtl],
        { stdio: 'ignore' },
      );
      await startBirdClient(3);
      await startBirdClient(4);
    });

    afterAll(async () => {
      // The lab stops what it spawned (the reflector, calico-bgpd, BIRDs) by pid.
      await ds?.close();
      await etcd?.stop();
      await lab?.teardown();
      rmSync(dir, { recursive: true, force: true });
    });

    it('serves the three clients the BGPPeer selects, from its Node resource', async () => {
      const s = await waitFor(
        'three clients Established',
        async () => {
          const st = await status().catch(() => undefined);
          return st && st.peers.length === 3 && st.peers.every((p) => p.state === 'Established')
            ? st
            : undefined;
        },
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nreflector log:\n${reflectorLog.join('')}`);
      });
      expect(s.problems).toEqual([]);
      // The BGPPeer also selects the reflector itself (it matches nodeSelector all()).
      expect(s.warnings.every((w) => w.includes(labNodeIpv4(1)))).toBe(true);
      expect(s).toMatchObject({ routerId: labNodeIpv4(1), asNumber: AS, clusterId: CLUSTER, ready: true });
      expect(s.clients.sort()).toEqual([2, 3, 4].map(labNodeIpv4));
      // BIRD clients and calico-bgpd negotiate differently (ADD-PATH, 4-octet AS all alike here).
      expect(s.updateGroups.reduce((n, g) => n + g.members.length, 0)).toBe(3);
    });

    it('reflects every client’s prefix to the others with ORIGINATOR_ID and CLUSTER_LIST', async () => {
      for (const i of [3, 4]) {
        for (const j of [2, 3, 4].filter((j) => j !== i)) {
          const out = await waitFor(`${blockOf(j)} at BIRD ${i}`, async () => {
            const o = await birdc(i, 'show', 'route', 'all', blockOf(j)).catch(() => '');
            return o.includes(blockOf(j)) ? o : undefined;
          });
          expect(out).toContain(`BGP.originator_id: ${labNodeIpv4(j)}`);
          expect(out).toMatch(new RegExp(`BGP.cluster_list: ${CLUSTER.replaceAll('.', '\\.')}\\s`));
          expect(out).toContain(`BGP.next_hop: ${labNodeIpv4(j)}`);
        }
      }
      const atBgpd = await waitFor('BIRD prefixes at calico-bgpd', async () => {
        const r = await callControl<BgpdControlMethods, 'routes'>(bgpdCtl, 'routes', {}).catch(() => []);
        return r.filter((x) => x.peer === labNodeIpv4(1)).length === 2 ? r : undefined;
      });
      const learned = atBgpd.filter((r) => r.peer === labNodeIpv4(1));
      expect(learned.map((r) => [r.prefix, r.nextHop]).sort()).toEqual([
        [blockOf(3), labNodeIpv4(3)],
        [blockOf(4), labNodeIpv4(4)],
      ]);
    });

    it('propagates a withdrawal', async () => {
      await birdc(3, 'disable', 'st');
      await waitFor(
        'withdrawn at BIRD 4',
        async () => !(await birdc(4, 'show', 'route')).includes(blockOf(3)),
      );
      await waitFor('withdrawn at calico-bgpd', async () => {
        const r = await callControl<BgpdControlMethods, 'routes'>(bgpdCtl, 'routes', {});
        return !r.some((x) => x.prefix === blockOf(3));
      });
      await birdc(3, 'enable', 'st');
    });

    it('takes a new Node as a client live, and answers health and metrics', async () => {
      await ds.create('Node', {
        metadata: { name: nodeName(5) },
        spec: { bgp: { ipv4Address: `${labNodeIpv4(5)}/24` } },
      });
      await waitFor('a fourth configured client', async () => (await status()).clients.length === 4);
      // The health/metrics port is in the reflector's namespace; reach it through a relay.
      const relay = await relayTcp({
        listen: { host: '127.0.0.1', port: 0 },
        target: { host: labNodeIpv4(1), port: 9100, namespace: lab.node(1).namespace },
      });
      const get = async (path: string) => {
        const r = await fetch(`http://127.0.0.1:${relay.port}${path}`);
        return `${await r.text()}\n${r.status}`;
      };
      try {
        expect(await get('/readiness')).toMatch(/"ready":true[\s\S]*\n200$/);
        expect(await get('/liveness')).toMatch(/\n200$/);
        const metrics = await get('/metrics');
        expect(metrics).toMatch(/calico_reflector_bgp_peers\{state="Established"\} 3/);
        expect(metrics).toMatch(/calico_reflector_ready 1/);
        expect(metrics).toMatch(/process_resident_memory_bytes/);
      } finally {
        await relay.close();
      }
      // Out of the data path: no route in the reflector's kernel but the connected subnet.
      const routes = await lab.node(1).netlink.listRoutes({ family: 4 });
      expect(routes.filter((r) => r.dst?.startsWith('10.66.'))).toEqual([]);
    });
  },
);
