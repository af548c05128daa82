/**
 * Why a session is not Established, against real BIRD 2, GoBGP and FRR peers on loopback: each
 * fault must give its reason (kind and words) within two hold times. Per peer implementation: an
 * AS mismatch (the peer expects another AS of us and sends its NOTIFICATION), a TCP-MD5 password
 * mismatch (its kernel drops our SYNs: "no answer; check the password"), and an administrative
 * shutdown of an Established session (Cease). Once: nothing listening (ECONNREFUSED), no answer
 * without a password configured, and a source address that is not ours (EADDRNOTAVAIL).
 *
 * Each case is one speaker of ours on its own loopback address; TCP-MD5 needs the kernel's socket
 * options, hence this package.
 */
import net from 'node:net';
import { join } from 'node:path';
import { BgpSpeaker, type PeerStatus } from '@calico-ts/bgp';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import {
  type Bird,
  FRR_BGPD,
  type Frr,
  freePort,
  type Gobgp,
  startBird,
  startFrr,
  startGobgp,
  tempDir,
  waitFor,
} from '../../bgp/test/lab.ts';
import { kernelSocketOptions } from '../src/index.ts';

const HOLD = 6;
/** Two hold times: the budget for every reason. */
const BUDGET_MS = 2 * HOLD * 1000;
const OUR_AS = 64512;
const NET = '127.0.41';
const BIRD_ADDR = `${NET}.201`;
const GOBGP_ADDR = `${NET}.202`;
const FRR_ADDR = `${NET}.203`;
const PEER_AS = { bird: 65001, gobgp: 65002, frr: 65003 } as const;
type Impl = keyof typeof PEER_AS;
const IMPLS: readonly Impl[] = ['bird', 'gobgp', 'frr'];
const PEER_ADDR: Record<Impl, string> = { bird: BIRD_ADDR, gobgp: GOBGP_ADDR, frr: FRR_ADDR };
type Fault = 'shut' | 'as' | 'md5';
/** Our address for (implementation, fault): a distinct neighbour for each on the peer's side. */
const ours = (impl: Impl, fault: Fault) =>
  `${NET}.${10 * (IMPLS.indexOf(impl) + 1) + ['shut', 'as', 'md5'].indexOf(fault)}`;

/** FRR's vty over its unix socket, several commands in one session (configure mode needs that). */
function vtySession(socket: string, cmds: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(socket);
    let buf = Buffer.alloc(0);
    let out = '';
    const queue = [...cmds];
    s.setTimeout(10_000, () => s.destroy(new Error('vty timeout')));
    s.once('error', reject);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const n = buf.length;
      if (n < 4 || buf[n - 4] !== 0 || buf[n - 3] !== 0 || buf[n - 2] !== 0) return;
      if (buf[n - 1] !== 0) {
        s.destroy();
        reject(new Error(`vty: status ${buf[n - 1]}: ${buf.subarray(0, n - 4).toString()}`));
        return;
      }
      out += buf.subarray(0, n - 4).toString();
      buf = Buffer.alloc(0);
      const next = queue.shift();
      if (next === undefined) {
        s.end();
        resolve(out);
      } else s.write(`${next}\0`);
    });
    s.write(`${queue.shift()}\0`);
  });
}

describeWith(
  [root(), command('bird'), command('birdc'), command('gobgpd'), command('gobgp'), command(FRR_BGPD)],
  'session-down reasons against BIRD, GoBGP and FRR',
  () => {
    const tmp = tempDir('reasons');
    const log = pino({ level: process.env['BGP_TEST_LOG'] ?? 'silent' });
    const socketOptions = kernelSocketOptions();
    const speakers = new Map<string, BgpSpeaker>();
    let bird: Bird;
    let gobgp: Gobgp;
    let frr: Frr;
    let frrDir: string;
    let started = 0;

    /** One speaker of ours at `address` with one peer; returns when it listens. */
    const speaker = async (
      name: string,
      address: string,
      peer: { address: string; port: number; asNumber: number; password?: string; localAddress?: string },
    ) => {
      const s = new BgpSpeaker(
        { routerId: address, asNumber: OUR_AS, listen: { address, port: ourPorts.get(address)! } },
        { socketOptions, logger: log.child({ case: name }) },
      );
      s.addPeer({
        address: peer.address,
        asNumber: peer.asNumber,
        port: peer.port,
        localAddress: peer.localAddress ?? address,
        ...(peer.password ? { password: peer.password } : {}),
        holdTime: HOLD,
        connectRetryTime: 2,
      });
      speakers.set(name, s);
      await s.start();
    };
    const ourPorts = new Map<string, number>();
    const peerPort: Partial<Record<Impl, number>> = {};
    const status = (name: string): PeerStatus => speakers.get(name)!.status().peers[0]!;
    /** Wait for the reason of `kind` and return it with the time it took from `since`. */
    const reason = async (name: string, kind: PeerStatus['lastErrorKind'], since: number) => {
      const p = await waitFor(
        `${name}: reason ${kind}`,
        () => {
          const s = status(name);
          return s.state !== 'Established' && s.lastErrorKind === kind ? s : undefined;
        },
        BUDGET_MS + 10_000,
        50,
      );
      return { message: p.lastError ?? '', ms: Date.now() - since };
    };

    beforeAll(async () => {
      for (const impl of IMPLS) {
        peerPort[impl] = await freePort();
        for (const f of ['shut', 'as', 'md5'] as const) ourPorts.set(ours(impl, f), await freePort());
      }
      for (const a of [`${NET}.1`, `${NET}.2`, `${NET}.3`, `${NET}.4`]) ourPorts.set(a, await freePort());
      const nb = (impl: Impl, f: Fault) => ({ addr: ours(impl, f), port: ourPorts.get(ours(impl, f))! });

      // The peer side of each fault: expecting AS 65099 of us (as), another password (md5).
      const birdProto = (name: string, f: Fault | 'plain', n: { addr: string; port: number }) =>
        `protocol bgp p_${name} from t { neighbor ${n.addr} port ${n.port} as ${f === 'as' ? 65099 : OUR_AS};${f === 'md5' || f === 'plain' ? ' password "right";' : ''} }`;
      bird = await startBird(
        tmp.dir,
        'bird',
        `
router id 192.0.2.201;
protocol device {}
template bgp t { local ${BIRD_ADDR} port ${peerPort.bird} as ${PEER_AS.bird}; multihop; hold time ${HOLD}; connect delay time 1; connect retry time 1; error wait time 1,2; ipv4 { import all; export none; }; }
${birdProto('shut', 'shut', nb('bird', 'shut'))}
${birdProto('as', 'as', nb('bird', 'as'))}
${birdProto('md5', 'md5', nb('bird', 'md5'))}
${birdProto('plain', 'plain', { addr: `${NET}.2`, port: ourPorts.get(`${NET}.2`)! })}
`,
      );

      const gobgpNeighbor = (f: Fault) => {
        const n = nb('gobgp', f);
        return [
          '[[neighbors]]',
          '  [neighbors.config]',
          `    neighbor-address = "${n.addr}"`,
          `    peer-as = ${f === 'as' ? 65099 : OUR_AS}`,
          ...(f === 'md5' ? ['    auth-password = "right"'] : []),
          '  [neighbors.timers.config]',
          `    hold-time = ${HOLD}`,
          '    keepalive-interval = 2',
          '    connect-retry = 1',
          '  [neighbors.transport.config]',
          `    local-address = "${GOBGP_ADDR}"`,
          `    remote-port = ${n.port}`,
          '  [neighbors.ebgp-multihop.config]',
          '    enabled = true',
          '    multihop-ttl = 255',
        ].join('\n');
      };
      gobgp = await startGobgp(
        tmp.dir,
        'gobgp',
        [
          '[global.config]',
          `  as = ${PEER_AS.gobgp}`,
          '  router-id = "192.0.2.202"',
          `  port = ${peerPort.gobgp}`,
          `  local-address-list = ["${GOBGP_ADDR}"]`,
          ...(['shut', 'as', 'md5'] as const).map(gobgpNeighbor),
          '',
        ].join('\n'),
      );

      const frrNeighbor = (f: Fault) => {
        const n = nb('frr', f);
        return [
          ` neighbor ${n.addr} remote-as ${f === 'as' ? 65099 : OUR_AS}`,
          ` neighbor ${n.addr} port ${n.port}`,
          ` neighbor ${n.addr} update-source ${FRR_ADDR}`,
          ` neighbor ${n.addr} ebgp-multihop 255`,
          ` neighbor ${n.addr} timers 2 ${HOLD}`,
          ` neighbor ${n.addr} timers connect 1`,
          ...(f === 'md5' ? [` neighbor ${n.addr} password right`] : []),
        ];
      };
      frr = await startFrr(
        tmp.dir,
        'frr',
        { address: FRR_ADDR, port: peerPort.frr! },
        [
          'frr defaults traditional',
          'hostname frr-reasons',
          `router bgp ${PEER_AS.frr}`,
          ' bgp router-id 192.0.2.203',
          ' no bgp ebgp-requires-policy',
          ...(['shut', 'as', 'md5'] as const).flatMap(frrNeighbor),
          '',
        ].join('\n'),
      );
      frrDir = join(tmp.dir, 'frr');

      started = Date.now();
      for (const impl of IMPLS) {
        const peer = { address: PEER_ADDR[impl], port: peerPort[impl]!, asNumber: PEER_AS[impl] };
        await speaker(`${impl}-shut`, ours(impl, 'shut'), peer);
        await speaker(`${impl}-as`, ours(impl, 'as'), peer);
        await speaker(`${impl}-md5`, ours(impl, 'md5'), { ...peer, password: 'wrong' });
      }
      // Nothing listens on this port.
      await speaker('refused', `${NET}.1`, {
        address: `${NET}.250`,
        port: await freePort(),
        asNumber: 65010,
      });
      // BIRD expects TCP-MD5 from us and its kernel drops our unsigned SYNs; we have no password.
      await speaker('timeout', `${NET}.2`, {
        address: BIRD_ADDR,
        port: peerPort.bird!,
        asNumber: PEER_AS.bird,
      });
      // A source address this host does not have.
      await speaker('source', `${NET}.3`, {
        address: BIRD_ADDR,
        port: peerPort.bird!,
        asNumber: PEER_AS.bird,
        localAddress: '203.0.113.254',
      });
    }, 60_000);

    afterAll(async () => {
      for (const s of speakers.values()) await s.stop();
      await bird?.stop();
      await gobgp?.stop();
      await frr?.stop();
      tmp.remove();
    });

    it('nothing listening: connection refused, naming the address and port', async () => {
      const r = await reason('refused', 'connection-refused', started);
      expect(r.message).toMatch(
        /^connection refused: nothing listens on 127\.0\.41\.250:\d+ \(ECONNREFUSED\)$/,
      );
      expect(r.ms).toBeLessThan(BUDGET_MS);
    });

    it('no SYN-ACK without a password: the connection timed out', async () => {
      const r = await reason('timeout', 'connect-timeout', started);
      expect(r.message).toContain(`connection to ${BIRD_ADDR}:${peerPort.bird} timed out`);
      expect(r.ms).toBeLessThan(BUDGET_MS);
    });

    it('a source address that is not ours: EADDRNOTAVAIL', async () => {
      const r = await reason('source', 'source-address', started);
      expect(r.message).toBe('source address 203.0.113.254 is not an address of this host (EADDRNOTAVAIL)');
      expect(r.ms).toBeLessThan(BUDGET_MS);
    });

    for (const impl of IMPLS) {
      it(`${impl}: AS mismatch, from the NOTIFICATION the peer sends`, async () => {
        const r = await reason(`${impl}-as`, 'as-mismatch', started);
        expect(r.message).toMatch(
          /^AS mismatch: the peer rejected our OPEN with NOTIFICATION OPEN Message Error \/ Bad Peer AS/,
        );
        expect(r.ms).toBeLessThan(BUDGET_MS);
      });

      it(`${impl}: TCP-MD5 password mismatch: no answer, check the password`, async () => {
        const r = await reason(`${impl}-md5`, 'connect-timeout', started);
        expect(r.message).toBe(
          `no answer from ${PEER_ADDR[impl]}:${peerPort[impl]} (SYN unanswered) with a TCP-MD5 password configured: check the password on both sides`,
        );
        expect(r.ms).toBeLessThan(BUDGET_MS);
      });

      it(`${impl}: administrative shutdown of an Established session`, async () => {
        const name = `${impl}-shut`;
        await waitFor(`${name} Established`, () => status(name).state === 'Established', 30_000);
        const t0 = Date.now();
        const neighbour = ours(impl, 'shut');
        if (impl === 'bird') await bird.birdc('disable', 'p_shut');
        else if (impl === 'gobgp') await gobgp.gobgp('neighbor', neighbour, 'disable');
        else
          await vtySession(join(frrDir, 'bgpd.vty'), [
            'enable',
            'configure terminal',
            `router bgp ${PEER_AS.frr}`,
            `neighbor ${neighbour} shutdown`,
          ]);
        const r = await reason(name, 'admin-shutdown', t0);
        expect(r.message).toMatch(
          /^peer administratively shut down the session \(NOTIFICATION Cease \/ Administrative (Shutdown|Reset)/,
        );
        expect(r.ms).toBeLessThan(BUDGET_MS);
        // Still the reason after the next attempts, which the peer refuses or closes.
        const later = await waitFor(
          `${name} retried`,
          () => (status(name).lastError?.includes('; since then: ') ? status(name) : undefined),
          BUDGET_MS,
        );
        expect(later.lastErrorKind).toBe('admin-shutdown');
        expect(later.state).not.toBe('Established');
      });
    }
  },
);
