import { describe, expect, it } from 'vitest';
import type { DataplaneUpdate, WorkloadEndpoint } from '../calc/dataplane-update.ts';
import { conntrackDeleteArgs, PolicyChangeTracker } from './conntrack-flush.ts';

const ep = (name: string, ip: string, policies: string[]): WorkloadEndpoint => ({
  state: 'active',
  name,
  mac: undefined,
  profileIds: ['kns.x'],
  ipv4Nets: [`${ip}/32`],
  ipv6Nets: [],
  tiers: [{ name: 'default', ingressPolicies: policies, egressPolicies: [], defaultAction: 'Deny' }],
  labels: {},
});
const id = { orchestratorId: 'k8s', workloadId: 'x/a', endpointId: 'eth0' };
const update = (key: string, endpoint: WorkloadEndpoint): DataplaneUpdate => ({
  type: 'workloadEndpointUpdate',
  id,
  key,
  endpoint,
});
const policy = (key: string): DataplaneUpdate => ({
  type: 'activePolicyUpdate',
  policy: {
    id: { kind: 'NetworkPolicy', namespace: 'x', name: key },
    key,
    calicoName: key,
    rules: { ingress: [], egress: [] },
  },
});

describe('PolicyChangeTracker', () => {
  it('names the endpoints whose tier list changed or that use a changed policy, once', () => {
    const t = new PolicyChangeTracker();
    t.onIntent([update('a', ep('calia', '10.0.0.1', [])), update('b', ep('calib', '10.0.0.2', ['np/x/p']))]);
    expect(t.take()).toEqual([]);
    t.onIntent([policy('np/x/p')]);
    expect(t.take()).toEqual(['10.0.0.2']);
    expect(t.take()).toEqual([]);
    t.onIntent([update('a', ep('calia', '10.0.0.1', ['np/x/q'])), policy('np/x/q')]);
    expect(t.take()).toEqual(['10.0.0.1']);
    t.onIntent([{ type: 'workloadEndpointRemove', id, key: 'b' }, policy('np/x/p')]);
    expect(t.take()).toEqual([]);
  });

  it('deletes entries by original and reply source in the address family', () => {
    expect(conntrackDeleteArgs('fd00::1')).toEqual([
      ['-D', '-f', 'ipv6', '--orig-src', 'fd00::1'],
      ['-D', '-f', 'ipv6', '--reply-src', 'fd00::1'],
    ]);
  });
});
