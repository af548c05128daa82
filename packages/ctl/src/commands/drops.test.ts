import type { DropRecord } from '@calico-ts/felix';
import { describe, expect, it } from 'vitest';
import { dropSockets, renderDrops, selectRecords } from './drops.ts';

const record = (over: Partial<DropRecord>): DropRecord => ({
  seq: 1,
  time: '2026-12-04T04:10:00.123Z',
  node: 'calico-n1',
  direction: 'ingress',
  verdict: 'rule',
  staged: false,
  tier: 'default',
  policy: 'np/x/deny-b',
  profile: undefined,
  ruleIndex: 2,
  protocol: 'tcp',
  srcIp: '10.66.0.10',
  dstIp: '10.66.0.11',
  srcPort: 40000,
  dstPort: 80,
  icmpType: undefined,
  icmpCode: undefined,
  src: { namespace: 'x', workload: 'a', node: 'calico-n1' },
  dst: undefined,
  ...over,
});

describe('calico drops output', () => {
  it('names workloads, the verdict, tier, policy and rule; addresses where no workload is known', () => {
    const out = renderDrops([
      record({}),
      record({
        seq: 2,
        verdict: 'endOfTier',
        policy: undefined,
        ruleIndex: undefined,
        staged: true,
        direction: 'egress',
      }),
      record({
        seq: 3,
        verdict: 'rule',
        policy: undefined,
        profile: 'kns.y',
        tier: undefined,
        protocol: 'icmp',
        srcPort: undefined,
        dstPort: undefined,
        icmpType: 8,
        icmpCode: 0,
      }),
    ]).split('\n');
    expect(out[0]).toMatch(
      /^TIME\s+NODE\s+DIRECTION\s+SOURCE\s+DESTINATION\s+PROTO\s+VERDICT\s+TIER\s+POLICY$/,
    );
    expect(out[1]).toMatch(
      /x\/a \(10\.66\.0\.10:40000\)\s+10\.66\.0\.11:80\s+tcp\s+denied by rule\s+default\s+np\/x\/deny-b rule 2$/,
    );
    expect(out[2]).toMatch(/staged: would be end of tier\s+default\s+-$/);
    expect(out[3]).toMatch(
      /x\/a \(10\.66\.0\.10\)\s+10\.66\.0\.11\s+icmp 8\/0\s+denied by rule\s+-\s+profile kns\.y rule 2$/,
    );
  });

  it('--staged keeps only staged would-drops, --enforced only real drops', () => {
    const all = [record({ seq: 1 }), record({ seq: 2, staged: true }), record({ seq: 3 })];
    expect(selectRecords(all, { staged: true }).map((r) => r.seq)).toEqual([2]);
    expect(selectRecords(all, { enforced: true }).map((r) => r.seq)).toEqual([1, 3]);
    expect(selectRecords(all, {}).map((r) => r.seq)).toEqual([1, 2, 3]);
  });

  it('reads this host when no cluster is current, and refuses a node without a cluster', () => {
    expect(
      dropSockets(undefined, {
        CALICO_FELIX_DROPS_SOCKET: '/tmp/x.ctl',
        CALICO_CLUSTERS_DIR: '/nonexistent',
      }),
    ).toEqual([{ node: 'this host', socket: '/tmp/x.ctl' }]);
    expect(() => dropSockets('calico-n1', { CALICO_CLUSTERS_DIR: '/nonexistent' })).toThrow(
      /no local cluster/,
    );
  });
});
