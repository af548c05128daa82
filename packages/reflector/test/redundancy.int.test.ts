/**
 * Two calico-reflector instances with one cluster ID (configured by flags, peering with each other
 * as non-clients), and two clients peering with both: each client's route reaches the other through
 * both reflectors; a reflector drops what its twin reflects to it (its cluster ID is already in
 * CLUSTER_LIST, RFC 4456 §8); stopping one reflector loses nothing, and a route withdrawn while it
 * is down is withdrawn everywhere.
 */
import { BgpSpeaker } from '@calico-ts/bgp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../../../test-support/requirements.ts';
import { freePort, waitFor } from '../../bgp/test/lab.ts';
import { parseReflectorArgs, Reflector } from '../src/index.ts';

const AS = 64512;
const CLUSTER = '10.255.25.1';
const RR = ['127.0.25.1', '127.0.25.2'] as const;
const CLIENT = ['127.0.25.11', '127.0.25.12'] as const;

describeWith([], 'two reflectors with one cluster ID', () => {
  const reflectors: Reflector[] = [];
  const clients: BgpSpeaker[] = [];
  let rrPorts: number[] = [];

  beforeAll(async () => {
    rrPorts = [await freePort(), await freePort()];
    for (const [i, addr] of RR.entries()) {
      const other = 1 - i;
      const config = parseReflectorArgs([
        '--router-id',
        `192.0.2.25${i + 1}`,
        '--cluster-id',
        CLUSTER,
        '--listen',
        `${addr}:${rrPorts[i]}`,
        '--client',
        CLIENT[0],
        '--client',
        CLIENT[1],
        '--peer',
        `${RR[other]}:${rrPorts[other]}`,
        '--health',
        'off',
        '--control',
        'off',
        '--connect-retry-time',
        '1',
      ]);
      const r = new Reflector({ config });
      reflectors.push(r);
      await r.start();
    }
    for (const [i, addr] of CLIENT.entries()) {
      const s = new BgpSpeaker({ routerId: `192.0.2.2${i + 6}`, asNumber: AS, listen: false });
      for (const [j, rr] of RR.entries())
        s.addPeer({ address: rr, asNumber: AS, port: rrPorts[j]!, localAddress: addr, connectRetryTime: 1 });
      clients.push(s);
      await s.start();
    }
  });

  afterAll(async () => {
    for (const s of clients) await s.stop();
    for (const r of reflectors) await r.stop();
  });

  const paths = (s: BgpSpeaker, prefix: string) => s.locRib.get(prefix)?.paths ?? [];

  it('each client learns the other’s route through both reflectors', async () => {
    await waitFor('every session up', () =>
      reflectors.every((r) => r.status().peers.every((p) => p.state === 'Established')),
    );
    clients[0]!.originate('198.51.125.0/24');
    const at = await waitFor('two paths at client 2', () => {
      const p = paths(clients[1]!, '198.51.125.0/24');
      return p.length === 2 ? p : undefined;
    });
    expect(at.map((r) => r.source.peerAddress).sort()).toEqual([...RR]);
    for (const r of at) {
      expect(r.attrs.originatorId).toBe('192.0.2.26');
      expect(r.attrs.clusterList).toEqual([CLUSTER]);
    }
    // The twin's reflection carries our cluster ID: dropped, so each reflector has the client's path only.
    for (const r of reflectors) {
      const own = r.speaker!.locRib.get('198.51.125.0/24')!.paths;
      expect(own.map((p) => p.source.peerAddress)).toEqual([CLIENT[0]]);
    }
  });

  it('loses nothing when one reflector stops, and withdraws through the other', async () => {
    await reflectors[0]!.stop();
    await waitFor('one path left at client 2', () => paths(clients[1]!, '198.51.125.0/24').length === 1);
    expect(paths(clients[1]!, '198.51.125.0/24')[0]!.source.peerAddress).toBe(RR[1]);
    clients[0]!.withdraw('198.51.125.0/24');
    await waitFor('withdrawn at client 2', () => paths(clients[1]!, '198.51.125.0/24').length === 0);
  });
});
