import { describe, expect, it } from 'vitest';
import type { DataplaneUpdate, WorkloadEndpoint } from '../calc/dataplane-update.ts';
import { parseRule } from '../calc/policy/parsed-rule.ts';
import { policyChainName, profileChainName } from '../calc/policy/policy-id.ts';
import { defaultFelixConfig } from '../config.ts';
import { defaultLogger } from '../logger.ts';
import { InternalDataplane } from './internal-dataplane.ts';
import { MemoryKernel } from './memory-kernel.ts';

const allow = parseRule({ action: 'Allow', protocol: 'TCP', destination: { ports: [80] } }, 'x', new Map());

const endpoint: WorkloadEndpoint = {
  state: 'active',
  name: 'cali1',
  mac: undefined,
  profileIds: ['kns.x'],
  ipv4Nets: ['10.0.0.1/32'],
  ipv6Nets: [],
  tiers: [{ name: 'default', ingressPolicies: ['np/x/web'], egressPolicies: [], defaultAction: 'Deny' }],
  labels: {},
};
const id = { orchestratorId: 'k8s', workloadId: 'x/p', endpointId: 'eth0' };
const policyUpdate: DataplaneUpdate = {
  type: 'activePolicyUpdate',
  policy: {
    id: { kind: 'NetworkPolicy', namespace: 'x', name: 'web' },
    key: 'np/x/web',
    calicoName: 'web',
    rules: { ingress: [allow], egress: [] },
  },
};
const profileUpdate: DataplaneUpdate = {
  type: 'activeProfileUpdate',
  profile: {
    name: 'kns.x',
    rules: { ingress: [parseRule({ action: 'Allow' }, undefined, new Map())], egress: [] },
  },
};

async function dataplane() {
  const kernel = new MemoryKernel();
  const dp = new InternalDataplane({ kernel, nodeName: 'node-a', logger: defaultLogger });
  dp.onUpdates([{ type: 'configUpdate', config: defaultFelixConfig() }, { type: 'inSync' }]);
  return { kernel, dp };
}

describe('PolicyManager and the endpoint policy stage', () => {
  it('fails closed while a policy or profile the endpoint jumps to has no chain', async () => {
    const { kernel, dp } = await dataplane();
    dp.onUpdates([{ type: 'workloadEndpointUpdate', id, key: 'x/p', endpoint }, policyUpdate]);
    await dp.apply();
    expect(kernel.chain('filter', 'cali-tw-cali1')?.at(-1)).toContain('Policy not programmed yet');
    expect(kernel.chain('filter', 'cali-tw-cali1')?.join('\n')).not.toContain('cali-pi-');
  });

  it('renders policy and profile chains, the endpoint jumps to them, and removal takes them away', async () => {
    const { kernel, dp } = await dataplane();
    dp.onUpdates([policyUpdate, profileUpdate, { type: 'workloadEndpointUpdate', id, key: 'x/p', endpoint }]);
    await dp.apply();
    const tw = kernel.chain('filter', 'cali-tw-cali1')!.join('\n');
    expect(tw).toContain(`-j ${policyChainName('ingress', 'np/x/web')}`);
    expect(tw).toContain(`-j ${profileChainName('ingress', 'kns.x')}`);
    expect(tw).toMatch(/Drop if no profiles matched/);
    expect(kernel.chain('filter', policyChainName('ingress', 'np/x/web'))?.join('\n')).toContain(
      '-p tcp -m multiport --destination-ports 80',
    );
    expect(kernel.chain('filter', profileChainName('ingress', 'kns.x'))).toBeDefined();

    dp.onUpdates([
      { type: 'workloadEndpointUpdate', id, key: 'x/p', endpoint: { ...endpoint, tiers: [] } },
      { type: 'activePolicyRemove', key: 'np/x/web' },
    ]);
    await dp.apply();
    expect(kernel.chain('filter', policyChainName('ingress', 'np/x/web'))).toBeUndefined();
    expect(kernel.chain('filter', 'cali-tw-cali1')!.join('\n')).not.toContain('cali-pi-');
  });
});
