/**
 * Route reflection (RFC 4456) among our own speakers on loopback: one reflector, three clients
 * (one receiving ADD-PATH) and two non-clients. Client routes reach every client and non-client
 * with ORIGINATOR_ID and CLUSTER_LIST; non-client routes reach clients only; withdrawals follow;
 * two clients announcing the same prefix both reach an ADD-PATH client, so its ECMP set survives
 * the reflector; the clients share one update group.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../../../test-support/requirements.ts';
import { BgpSpeaker } from '../src/index.ts';
import { freePort, waitFor } from './lab.ts';

const AS = 64512;
const RR = { addr: '127.0.21.1', id: '192.0.2.210', cluster: '10.255.0.1' };
const NODES = [
  { name: 'c1', addr: '127.0.21.11', id: '192.0.2.211', client: true, addPath: false },
  { name: 'c2', addr: '127.0.21.12', id: '192.0.2.212', client: true, addPath: false },
  { name: 'c3', addr: '127.0.21.13', id: '192.0.2.213', client: true, addPath: true },
  { name: 'n1', addr: '127.0.21.21', id: '192.0.2.221', client: false, addPath: false },
  { name: 'n2', addr: '127.0.21.22', id: '192.0.2.222', client: false, addPath: false },
] as const;

describeWith([], 'route reflection between our speakers', () => {
  let rr: BgpSpeaker;
  const node: Record<string, BgpSpeaker> = {};

  beforeAll(async () => {
    const rrPort = await freePort();
    rr = new BgpSpeaker({
      routerId: RR.id,
      asNumber: AS,
      clusterId: RR.cluster,
      multipath: true,
      listen: { address: RR.addr, port: rrPort },
    });
    for (const n of NODES) {
      const s = new BgpSpeaker({ routerId: n.id, asNumber: AS, multipath: true, listen: false });
      s.addPeer({
        address: RR.addr,
        asNumber: AS,
        port: rrPort,
        localAddress: n.addr,
        connectRetryTime: 1,
        families: ['ipv4'],
        addPathReceive: n.addPath,
      });
      rr.addPeer({ address: n.addr, asNumber: AS, passive: true, routeReflectorClient: n.client });
      node[n.name] = s;
    }
    await rr.start();
    await Promise.all(Object.values(node).map((s) => s.start()));
  });

  afterAll(async () => {
    for (const s of Object.values(node)) await s.stop();
    await rr?.stop();
  });

  const paths = (s: BgpSpeaker, prefix: string) => s.locRib.get(prefix)?.paths ?? [];

  it('reflects a client route to every client and non-client with ORIGINATOR_ID and CLUSTER_LIST', async () => {
    await waitFor('all sessions up', () => rr.status().peers.every((p) => p.state === 'Established'));
    node['c1']!.originate('198.51.100.0/24');
    for (const n of ['c2', 'c3', 'n1', 'n2']) {
      const [r] = await waitFor(`c1's route at ${n}`, () => {
        const p = paths(node[n]!, '198.51.100.0/24');
        return p.length ? p : undefined;
      });
      expect(r!.attrs.originatorId).toBe('192.0.2.211');
      expect(r!.attrs.clusterList).toEqual([RR.cluster]);
      expect(r!.attrs.nextHop).toBe('127.0.21.11'); // reflection keeps the next hop
    }
    // Never back to the client it came from.
    expect(paths(node['c1']!, '198.51.100.0/24').every((r) => r.source.local)).toBe(true);
  });

  it('puts sessions with the same export settings in one update group', () => {
    const groups = rr
      .updateGroups()
      .map((g) => g.members.sort().join(' '))
      .sort();
    expect(groups).toEqual(['127.0.21.11 127.0.21.12', '127.0.21.13', '127.0.21.21 127.0.21.22']);
    expect(rr.updateGroups().find((g) => g.members.includes('127.0.21.13'))!.addPath).toBe(true);
  });

  it('sends a group’s new member the routes of the member that was alone in it', async () => {
    // c3 is alone in its group, which therefore keeps none of c3's routes.
    node['c3']!.originate('198.51.103.0/24');
    await waitFor('c3’s route at c1', () => paths(node['c1']!, '198.51.103.0/24').length === 1);
    const c4 = new BgpSpeaker({ routerId: '192.0.2.214', asNumber: AS, listen: false });
    c4.addPeer({
      address: RR.addr,
      asNumber: AS,
      port: rr.listenPort!,
      localAddress: '127.0.21.14',
      connectRetryTime: 1,
      families: ['ipv4'],
      addPathReceive: true,
    });
    rr.addPeer({ address: '127.0.21.14', asNumber: AS, passive: true, routeReflectorClient: true });
    try {
      await c4.start();
      await waitFor('c3’s route at c4', () => paths(c4, '198.51.103.0/24').length === 1);
      expect(rr.updateGroups().find((g) => g.members.includes('127.0.21.14'))!.members).toContain(
        '127.0.21.13',
      );
    } finally {
      await c4.stop();
      rr.removePeer('127.0.21.14');
      node['c3']!.withdraw('198.51.103.0/24');
    }
  });

  it('reflects a non-client route to clients only', async () => {
    node['n1']!.originate('198.51.101.0/24');
    for (const n of ['c1', 'c2', 'c3']) {
      await waitFor(`n1's route at ${n}`, () => paths(node[n]!, '198.51.101.0/24').length === 1);
    }
    // n2 has c1's route only: a non-client's routes never go to another non-client.
    expect(rr.status().peers.find((p) => p.address === '127.0.21.22')!.sent).toBe(1);
    expect(paths(node['n2']!, '198.51.101.0/24')).toHaveLength(0);
  });

  it('propagates withdrawals through the reflector', async () => {
    node['c1']!.withdraw('198.51.100.0/24');
    for (const n of ['c2', 'c3', 'n1', 'n2']) {
      await waitFor(`withdrawn at ${n}`, () => paths(node[n]!, '198.51.100.0/24').length === 0);
    }
  });

  it('keeps ECMP through the reflector with ADD-PATH toward a client that receives it', async () => {
    node['c1']!.originate('198.51.102.0/24');
    node['c2']!.originate('198.51.102.0/24');
    await waitFor(
      'two ECMP paths at the reflector',
      () => rr.locRib.get('198.51.102.0/24')?.multipath.length === 2,
    );
    const atC3 = await waitFor('both paths at c3', () => {
      const p = paths(node['c3']!, '198.51.102.0/24');
      return p.length === 2 ? p : undefined;
    });
    expect(atC3.map((r) => r.attrs.originatorId).sort()).toEqual(['192.0.2.211', '192.0.2.212']);
    expect(atC3.map((r) => r.pathId).every((id) => id > 0)).toBe(true);
    expect(node['c3']!.locRib.get('198.51.102.0/24')!.multipath).toHaveLength(2);
    // Without ADD-PATH a non-client learns one path, the best (lowest ORIGINATOR_ID, RFC 4456 §9).
    const atN1 = await waitFor('best path at n1', () => {
      const p = paths(node['n1']!, '198.51.102.0/24');
      return p.length === 1 && p[0]!.attrs.originatorId === '192.0.2.211' ? p : undefined;
    });
    expect(atN1).toHaveLength(1);
    // One path withdrawn: c3 is left with the other.
    node['c1']!.withdraw('198.51.102.0/24');
    await waitFor('one path left at c3', () => {
      const p = paths(node['c3']!, '198.51.102.0/24');
      return p.length === 1 && p[0]!.attrs.originatorId === '192.0.2.212';
    });
    await waitFor(
      'n1 switched to c2’s path',
      () => paths(node['n1']!, '198.51.102.0/24')[0]?.attrs.originatorId === '192.0.2.212',
    );
  });
});
