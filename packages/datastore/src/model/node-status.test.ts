import { describe, expect, it } from 'vitest';
import { validateResource } from './index.ts';
import { parseCalicoNodeStatusStatus } from './node-status.ts';

describe('CalicoNodeStatus', () => {
  it('takes Calico spec fields and rejects an unknown class, naming the field', () => {
    const ok = validateResource('CalicoNodeStatus', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'CalicoNodeStatus',
      metadata: { name: 'node-1' },
      spec: { node: 'node-1', classes: ['Agent', 'BGP'], updatePeriodSeconds: 10 },
    });
    expect(ok.ok).toBe(true);
    const bad = validateResource('CalicoNodeStatus', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'CalicoNodeStatus',
      metadata: { name: 'node-1' },
      spec: { classes: ['Sessions'] },
    });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.issues.map((i) => i.path)).toContain('spec.classes[0]');
  });

  it('reads a written status and names what is wrong with a malformed one', () => {
    const status = {
      lastUpdated: '2026-12-04T04:00:00.000Z',
      bgp: {
        numberEstablishedV4: 0,
        numberNotEstablishedV4: 1,
        numberEstablishedV6: 0,
        numberNotEstablishedV6: 0,
        peersV4: [
          {
            peerIP: '192.0.2.9',
            type: 'GlobalPeer',
            state: 'Active',
            since: '2026-12-04T03:59:00.000Z',
            reason: 'x',
          },
        ],
      },
    };
    const r = parseCalicoNodeStatusStatus(status);
    expect(r.ok && r.status.bgp?.peersV4?.[0]?.reason).toBe('x');
    expect(parseCalicoNodeStatusStatus(undefined)).toEqual({
      ok: false,
      problems: ['status: not written yet'],
    });
    const bad = parseCalicoNodeStatusStatus({
      ...status,
      bgp: { ...status.bgp, peersV4: [{ peerIP: 'nope' }] },
    });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.problems.join('\n')).toMatch(/status\.bgp\.peersV4\.0\.peerIP/);
  });
});
