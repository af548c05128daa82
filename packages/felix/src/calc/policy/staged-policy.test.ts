import { defaultResource, keyFor, type ResourceInput } from '@calico-ts/datastore';
import { describe, expect, it } from 'vitest';
import { defaultFelixConfig } from '../../config.ts';
import { renderRule } from '../../dataplane/chains.ts';
import { decodeDropPrefix } from '../../dataplane/drop-log.ts';
import { workloadEndpointChains } from '../../dataplane/endpoint-chains.ts';
import { allocateMarkBits } from '../../dataplane/mark-bits.ts';
import { CalcGraph } from '../calc-graph.ts';
import type { DataplaneUpdate, WorkloadEndpoint } from '../dataplane-update.ts';
import { PolicyCatalog } from './policy-catalog.ts';
import { stagedPolicyChainName } from './policy-id.ts';
import { stagedPolicyStageRules, tierInfos } from './policy-stage.ts';
import { namespaces, np, pod } from './policy-test-model.ts';
import { policyChains, profileChains } from './rule-render.ts';

const marks = allocateMarkBits(0xffff0000);

const snp = (namespace: string, name: string, spec: ResourceInput<'StagedNetworkPolicy'>['spec']) =>
  defaultResource('StagedNetworkPolicy', { metadata: { name, namespace }, spec });
const sgnp = (name: string, spec: ResourceInput<'StagedGlobalNetworkPolicy'>['spec']) =>
  defaultResource('StagedGlobalNetworkPolicy', { metadata: { name }, spec });
const sknp = (
  namespace: string,
  name: string,
  spec: ResourceInput<'StagedKubernetesNetworkPolicy'>['spec'],
) => defaultResource('StagedKubernetesNetworkPolicy', { metadata: { name, namespace }, spec });

const denyWeb = {
  selector: "app == 'web'",
  ingress: [{ action: 'Deny' as const }],
  types: ['Ingress' as const],
};

function catalogWith(...setup: ((c: PolicyCatalog) => unknown)[]): PolicyCatalog {
  const c = PolicyCatalog.from({ profiles: namespaces({ x: {} }) });
  for (const s of setup) s(c);
  return c;
}

const web = pod('x', 'web', '10.0.0.1', { app: 'web' });
const other = pod('x', 'db', '10.0.0.2', { app: 'db' });
const keysOf = (c: PolicyCatalog, p: typeof web) => {
  const staged = c.resolveStaged(c.resolve(p));
  return staged && tierInfos(staged).map((t) => [t.name, t.ingressPolicies, t.egressPolicies]);
};

describe('staged view of an endpoint (resolveStaged)', () => {
  it('adds a new staged policy beside the enforced ones; endpoints it does not select get none', () => {
    const c = catalogWith(
      (c) => c.setNetworkPolicy(np('x', 'allow-all', { selector: 'all()', ingress: [{ action: 'Allow' }] })),
      (c) => c.setStagedNetworkPolicy(snp('x', 'deny-web', denyWeb)),
    );
    expect(keysOf(c, web)).toEqual([['default', ['np/x/allow-all', 'snp/x/deny-web'], []]]);
    expect(keysOf(c, other)).toBeUndefined();
    // The enforced tiers are untouched.
    expect(tierInfos(c.resolve(web))[0]!.ingressPolicies).toEqual(['np/x/allow-all']);
  });

  it('Set replaces the enforced policy of the same kind, namespace and name', () => {
    const c = catalogWith(
      (c) => c.setNetworkPolicy(np('x', 'web', { selector: 'all()', ingress: [{ action: 'Allow' }] })),
      (c) => c.setStagedNetworkPolicy(snp('x', 'web', denyWeb)),
    );
    expect(keysOf(c, web)).toEqual([['default', ['snp/x/web'], []]]);
    // db is selected only by the enforced one, which the staged one replaces: no tier left.
    expect(keysOf(c, other)).toEqual([]);
  });

  it('Delete previews removing the enforced policy; Ignore and Learn preview nothing', () => {
    const c = catalogWith(
      (c) => c.setNetworkPolicy(np('x', 'web', denyWeb)),
      (c) => c.setStagedNetworkPolicy(snp('x', 'web', { ...denyWeb, stagedAction: 'Delete' })),
    );
    expect(keysOf(c, web)).toEqual([]);
    for (const stagedAction of ['Ignore', 'Learn'] as const) {
      c.setStagedNetworkPolicy(snp('x', 'web', { ...denyWeb, stagedAction }));
      expect(keysOf(c, web)).toBeUndefined();
    }
    c.removeStagedPolicy('snp/x/web');
    expect(c.stagedPolicies()).toEqual([]);
  });

  it('a staged GlobalNetworkPolicy stands for the GlobalNetworkPolicy of its name', () => {
    const c = catalogWith((c) => c.setStagedGlobalNetworkPolicy(sgnp('web', denyWeb)));
    expect(c.stagedPolicy('sgnp/web')?.replaces).toBe('gnp/web');
    expect(keysOf(c, web)).toEqual([['default', ['sgnp/web'], []]]);
  });

  it('a StagedKubernetesNetworkPolicy converts as a Kubernetes policy does', () => {
    const c = catalogWith((c) =>
      c.setStagedKubernetesNetworkPolicy(
        sknp('x', 'web', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'] }),
      ),
    );
    const s = c.stagedPolicy('sknp/x/web')!;
    expect(s.replaces).toBe('knp/x/web');
    expect(s.policy.calicoName).toBe('knp.default.web');
    expect(s.policy.order).toBe(1000);
    expect(keysOf(c, web)).toEqual([['default', ['sknp/x/web'], []]]);
    expect(keysOf(c, other)).toBeUndefined();
  });
});

describe('staged evaluation chains', () => {
  const denyRule = { action: 'Deny' as const, protocol: 'TCP' as const, destination: { ports: [80] } };
  const policy = new PolicyCatalog().setNetworkPolicy(
    np('x', 'web', { selector: 'all()', ingress: [{ action: 'Log' }, denyRule] }),
  )!;
  const opts = { marks, family: 4 as const, dropLogs: true };

  it('an enforced policy gets its staged form only when a staged view uses it', () => {
    expect(policyChains(policy, opts).map((c) => c.name)).toEqual(['cali-pi-np/x/web', 'cali-po-np/x/web']);
    expect(policyChains({ ...policy, stagedView: true }, opts).map((c) => c.name)).toEqual([
      'cali-pi-np/x/web',
      'cali-po-np/x/web',
      'cali-spi-np/x/web',
      'cali-spo-np/x/web',
    ]);
  });

  it('a Deny in the staged form records a staged drop and returns; it never drops, and Log is left out', () => {
    const chain = policyChains({ ...policy, stagedView: true }, opts).find(
      (c) => c.name === stagedPolicyChainName('ingress', 'np/x/web'),
    )!;
    const rules = chain.rules.map(renderRule);
    expect(rules.some((r) => /-j (DROP|ACCEPT|LOG)/.test(r))).toBe(false);
    // Drop and accept ("decided") marks set; the RETURN after the record is the chain's end here.
    expect(rules[0]).toMatch(/-j MARK --set-xmark 0x50000\/0x50000$/);
    const nflog = rules.find((r) => r.includes('NFLOG'))!;
    expect(decodeDropPrefix(/--nflog-prefix "([^"]+)"/.exec(nflog)![1]!)).toEqual({
      verdict: 'rule',
      direction: 'ingress',
      staged: true,
      owner: 'np/x/web',
      ruleIndex: 1,
    });
    expect(nflog).toContain('--hashlimit-name cali-staged-in ');
  });

  it('a staged policy has only the staged form; a profile gets one when asked', () => {
    const staged = new PolicyCatalog().setStagedNetworkPolicy(snp('x', 'web', denyWeb))!;
    expect(policyChains(staged.policy, opts).map((c) => c.name)).toEqual([
      'cali-spi-snp/x/web',
      'cali-spo-snp/x/web',
    ]);
    const profile = { name: 'kns.x', rules: { ingress: [], egress: [] }, stagedView: true };
    expect(profileChains(profile, opts).map((c) => c.name)).toEqual([
      'cali-pri-kns.x',
      'cali-pro-kns.x',
      'cali-spri-kns.x',
      'cali-spro-kns.x',
    ]);
  });

  it('the endpoint stage walks the staged tiers, records end of tier and no profile as staged, never drops', () => {
    const tiers = [
      { name: 'default', ingressPolicies: ['snp/x/web'], egressPolicies: [], defaultAction: 'Deny' as const },
    ];
    const rules = stagedPolicyStageRules('ingress', tiers, ['kns.x'], marks).map(renderRule);
    expect(rules.some((r) => /-j (DROP|ACCEPT)/.test(r))).toBe(false);
    expect(rules).toContain('-m mark --mark 0x0/0x20000 -j cali-spi-snp/x/web');
    expect(rules).toContain('-j cali-spri-kns.x');
    const prefixes = rules.flatMap((r) => /--nflog-prefix "([^"]+)"/.exec(r)?.[1] ?? []);
    expect(prefixes).toEqual(['STI|default', 'SPI|']);
  });

  it('the workload chain jumps to the staged chain before the enforced stage, only with staged tiers', () => {
    const ep: WorkloadEndpoint = {
      state: 'active',
      name: 'cali12345678901',
      mac: undefined,
      profileIds: ['kns.x'],
      ipv4Nets: ['10.0.0.1/32'],
      ipv6Nets: [],
      tiers: [],
      labels: {},
    };
    const config = defaultFelixConfig();
    expect(workloadEndpointChains(ep, config, marks).map((c) => c.name)).toEqual([
      'cali-tw-cali12345678901',
      'cali-fw-cali12345678901',
    ]);
    const staged = { ...ep, stagedTiers: [] };
    const chains = workloadEndpointChains(staged, config, marks);
    expect(chains.map((c) => c.name)).toEqual([
      'cali-tw-cali12345678901',
      'cali-fw-cali12345678901',
      'cali-stw-cali12345678901',
      'cali-sfw-cali12345678901',
    ]);
    const tw = chains[0]!.rules.map(renderRule);
    const jump = tw.findIndex((r) => r.includes('-j cali-stw-'));
    expect(jump).toBeGreaterThan(0);
    expect(tw[jump + 1]).toBe('-j MARK --set-xmark 0x0/0x70000');
    expect(tw.findIndex((r) => r.includes('cali-pri-kns.x'))).toBeGreaterThan(jump);
    // Without drop records there is nothing to record: no staged evaluation.
    expect(workloadEndpointChains(staged, { ...config, dropLogs: false }, marks)).toHaveLength(2);
  });
});

describe('staged policies in the calculation graph', () => {
  const wepUpdate = () => {
    const value = defaultResource('WorkloadEndpoint', {
      metadata: { name: 'n1-k8s-web-eth0', namespace: 'x', labels: { app: 'web' } },
      spec: {
        node: 'n1',
        orchestrator: 'k8s',
        pod: 'web',
        endpoint: 'eth0',
        interfaceName: 'cali0000000001',
        ipNetworks: ['10.0.0.1/32'],
        profiles: ['kns.x'],
      },
    });
    return {
      kind: 'WorkloadEndpoint' as const,
      key: keyFor('WorkloadEndpoint', value.metadata.name, 'x'),
      value,
    };
  };
  const staged = snp('x', 'deny-web', denyWeb);
  const stagedKey = keyFor('StagedNetworkPolicy', 'deny-web', 'x');
  const endpointOf = (batch: DataplaneUpdate[]) =>
    batch.flatMap((u) => (u.type === 'workloadEndpointUpdate' ? [u.endpoint] : []));

  it('a staged policy gives the endpoint staged tiers and its staged chain, never an enforced tier', () => {
    const g = new CalcGraph({ nodeName: 'n1' });
    g.onUpdates([
      { kind: 'Profile', key: keyFor('Profile', 'kns.x'), value: namespaces({ x: {} })[0]! },
      wepUpdate(),
    ]);
    g.onStatus('in-sync');
    expect(endpointOf(g.flush())[0]!.stagedTiers).toBeUndefined();

    g.onUpdates([{ kind: 'StagedNetworkPolicy', key: stagedKey, value: staged }]);
    const batch = g.flush();
    const ep = endpointOf(batch)[0]!;
    expect(ep.tiers).toEqual([]);
    expect(ep.stagedTiers).toEqual([
      { name: 'default', ingressPolicies: ['snp/x/deny-web'], egressPolicies: [], defaultAction: 'Deny' },
    ]);
    const policies = batch.flatMap((u) => (u.type === 'activePolicyUpdate' ? [u.policy] : []));
    expect(policies.map((p) => [p.key, p.stagedView])).toEqual([['snp/x/deny-web', true]]);
    const profiles = batch.flatMap((u) => (u.type === 'activeProfileUpdate' ? [u.profile] : []));
    expect(profiles.map((p) => [p.name, p.stagedView])).toEqual([['kns.x', true]]);

    g.onUpdates([{ kind: 'StagedNetworkPolicy', key: stagedKey, value: null }]);
    const after = g.flush();
    expect(endpointOf(after)[0]!.stagedTiers).toBeUndefined();
    expect(after).toContainEqual({ type: 'activePolicyRemove', key: 'snp/x/deny-web' });
    expect(
      after.flatMap((u) =>
        u.type === 'activeProfileUpdate' ? [[u.profile.name, u.profile.stagedView]] : [],
      ),
    ).toEqual([['kns.x', undefined]]);
  });
});
