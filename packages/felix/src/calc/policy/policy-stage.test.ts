import { describe, expect, it } from 'vitest';
import { renderRule } from '../../dataplane/chains.ts';
import { allocateMarkBits } from '../../dataplane/mark-bits.ts';
import { activePolicySet, PolicyCatalog } from './policy-catalog.ts';
import { policyChainName } from './policy-id.ts';
import { policyStageRules, resolvedPolicyStage, tierInfos } from './policy-stage.ts';
import { gnp, namespaces, np, pod, tier } from './policy-test-model.ts';
import { activePolicyChains } from './rule-render.ts';

const marks = allocateMarkBits(0xffff0000);
const allow = [{ action: 'Allow' as const }];

describe('per-endpoint policy stage', () => {
  const catalog = PolicyCatalog.from({
    tiers: [tier('security', { order: 10, defaultAction: 'Pass' })],
    profiles: namespaces({ x: {} }),
    globalNetworkPolicies: [gnp('security.quarantine', { tier: 'security', ingress: [{ action: 'Pass' }] })],
    networkPolicies: [np('x', 'web', { ingress: allow, egress: allow }), np('x', 'out', { egress: allow })],
  });
  const resolved = catalog.resolve(pod('x', 'a', '10.0.0.1'));

  it('lists the tiers that apply in either direction as TierInfo, policies by key', () => {
    expect(tierInfos(resolved)).toEqual([
      {
        name: 'security',
        ingressPolicies: ['gnp/security.quarantine'],
        egressPolicies: [],
        defaultAction: 'Pass',
      },
      {
        name: 'default',
        ingressPolicies: ['np/x/web'],
        egressPolicies: ['np/x/out', 'np/x/web'],
        defaultAction: 'Deny',
      },
    ]);
  });

  it('renders tiers (pass mark cleared, jump while not passed, return on accept, end-of-tier drop unless Pass), profiles, final drop', () => {
    expect(resolvedPolicyStage('ingress', resolved, marks).map(renderRule)).toEqual([
      '-m comment --comment "Start of tier security" -j MARK --set-xmark 0x0/0x20000',
      `-m mark --mark 0x0/0x20000 -j ${policyChainName('ingress', 'gnp/security.quarantine')}`,
      '-m comment --comment "Return if policy accepted" -m mark --mark 0x10000/0x10000 -j RETURN',
      '-m comment --comment "Start of tier default" -j MARK --set-xmark 0x0/0x20000',
      '-m mark --mark 0x0/0x20000 -j cali-pi-np/x/web',
      '-m comment --comment "Return if policy accepted" -m mark --mark 0x10000/0x10000 -j RETURN',
      '-m comment --comment "End of tier default. Drop if no policies passed packet" -m mark --mark 0x0/0x20000 -j DROP',
      '-j cali-pri-kns.x',
      '-m comment --comment "Return if profile accepted" -m mark --mark 0x10000/0x10000 -j RETURN',
      '-m comment --comment "Drop if no profiles matched" -j DROP',
    ]);
  });

  it('pitfall 6: skips a tier with no policy for the direction (no end-of-tier drop)', () => {
    const egress = resolvedPolicyStage('egress', resolved, marks).map(renderRule);
    expect(egress.some((r) => r.includes('security'))).toBe(false);
    expect(egress.filter((r) => r.includes('-j cali-po-'))).toEqual([
      '-m mark --mark 0x0/0x20000 -j cali-po-np/x/out',
      '-m mark --mark 0x0/0x20000 -j cali-po-np/x/web',
    ]);
  });

  it('with no policy at all goes straight to the profiles', () => {
    expect(policyStageRules('ingress', [], ['kns.y'], marks).map(renderRule)).toEqual([
      '-j cali-pri-kns.y',
      '-m comment --comment "Return if profile accepted" -m mark --mark 0x10000/0x10000 -j RETURN',
      '-m comment --comment "Drop if no profiles matched" -j DROP',
    ]);
  });
});

describe('activePolicyChains', () => {
  it('renders chains for the policies and profiles endpoints use, none for the others', () => {
    const catalog = PolicyCatalog.from({
      profiles: namespaces({ x: {}, y: {} }),
      networkPolicies: [np('x', 'web', { ingress: allow }), np('y', 'idle', { ingress: allow })],
    });
    const active = activePolicySet([catalog.resolve(pod('x', 'a', '10.0.0.1'))]);
    expect(activePolicyChains(active, { marks, family: 4 }).map((c) => c.name)).toEqual([
      'cali-pi-np/x/web',
      'cali-po-np/x/web',
      'cali-pri-kns.x',
      'cali-pro-kns.x',
    ]);
  });
});
