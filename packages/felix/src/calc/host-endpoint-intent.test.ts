import {
  type AnyResource,
  formatIssues,
  type KindName,
  keyFor,
  type ResourceOf,
  validateResource,
} from '@calico-ts/datastore';
import { describe, expect, it } from 'vitest';
import type { SyncerUpdate } from '../syncer.ts';
import { CalcGraph } from './calc-graph.ts';
import type { DataplaneUpdate } from './dataplane-update.ts';

function res<K extends KindName>(
  kind: K,
  name: string,
  spec: unknown,
  labels?: Record<string, string>,
): ResourceOf<K> {
  const result = validateResource(kind, {
    metadata: { name, ...(labels ? { labels } : {}), resourceVersion: '1' },
    spec,
  });
  if (!result.ok) throw new Error(`test fixture ${kind} ${name} is invalid:\n${formatIssues(result.issues)}`);
  return result.value;
}

const upd = (kind: KindName, r: AnyResource, deleted = false): SyncerUpdate => ({
  kind,
  key: keyFor(kind, r.metadata.name, r.metadata.namespace),
  value: deleted ? null : r,
});

const hep = (name: string, node: string) =>
  upd(
    'HostEndpoint',
    res('HostEndpoint', name, { node, interfaceName: 'eth0', expectedIPs: ['192.0.2.10'] }, { role: 'node' }),
  );

const gnp = (name: string, spec: Record<string, unknown>) =>
  upd('GlobalNetworkPolicy', res('GlobalNetworkPolicy', name, { selector: "role == 'node'", ...spec }));

function graph(...updates: SyncerUpdate[]): { g: CalcGraph; out: DataplaneUpdate[] } {
  const g = new CalcGraph({ nodeName: 'node-1' });
  g.onUpdates(updates);
  g.onStatus('in-sync');
  return { g, out: g.flush() };
}

describe('host endpoint intent', () => {
  it('files each policy into the tier list Felix renders it from, and activates all of them', () => {
    const { out } = graph(
      hep('node-1-eth0', 'node-1'),
      gnp('normal', { types: ['Ingress'], ingress: [{ action: 'Allow' }] }),
      gnp('fwd', { applyOnForward: true, types: ['Ingress'], ingress: [{ action: 'Allow' }] }),
      gnp('pre', { preDNAT: true, applyOnForward: true, types: ['Ingress'], ingress: [{ action: 'Deny' }] }),
      gnp('nt', { doNotTrack: true, applyOnForward: true, types: ['Egress'], egress: [{ action: 'Allow' }] }),
    );
    const ep = out.find((m) => m.type === 'hostEndpointUpdate');
    expect(ep).toMatchObject({
      type: 'hostEndpointUpdate',
      id: 'node-1-eth0',
      endpoint: {
        interfaceName: 'eth0',
        expectedIpv4Addrs: ['192.0.2.10'],
        tiers: [
          {
            name: 'default',
            ingressPolicies: ['gnp/fwd', 'gnp/normal'],
            egressPolicies: [],
            defaultAction: 'Deny',
          },
        ],
        forwardTiers: [
          { name: 'default', ingressPolicies: ['gnp/fwd'], egressPolicies: [], defaultAction: 'Deny' },
        ],
        preDnatTiers: [
          { name: 'default', ingressPolicies: ['gnp/pre'], egressPolicies: [], defaultAction: 'Pass' },
        ],
        untrackedTiers: [
          { name: 'default', ingressPolicies: [], egressPolicies: ['gnp/nt'], defaultAction: 'Pass' },
        ],
      },
    });
    const active = out.flatMap((m) => (m.type === 'activePolicyUpdate' ? [m.policy.key] : [])).sort();
    expect(active).toEqual(['gnp/fwd', 'gnp/normal', 'gnp/nt', 'gnp/pre']);
  });

  it("another node's host endpoint is not reported; a deleted one is removed with its policies", () => {
    expect(
      graph(hep('node-2-eth0', 'node-2'), gnp('normal', { ingress: [{ action: 'Allow' }] })).out.some(
        (m) => m.type === 'hostEndpointUpdate' || m.type === 'activePolicyUpdate',
      ),
    ).toBe(false);
    const { g } = graph(hep('node-1-eth0', 'node-1'), gnp('normal', { ingress: [{ action: 'Allow' }] }));
    g.onUpdates([
      upd(
        'HostEndpoint',
        res('HostEndpoint', 'node-1-eth0', { node: 'node-1', interfaceName: 'eth0' }),
        true,
      ),
    ]);
    const out = g.flush();
    expect(out).toContainEqual({ type: 'hostEndpointRemove', id: 'node-1-eth0' });
    expect(out).toContainEqual({ type: 'activePolicyRemove', key: 'gnp/normal' });
  });
});
