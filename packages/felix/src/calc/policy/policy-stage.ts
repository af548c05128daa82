/**
 * The policy part of a per-endpoint chain (felix/rules/endpoints.go, calico-internals §3.3):
 * per tier, clear the pass mark, jump to each policy chain while no policy has passed, return
 * once one accepted, and drop at the end of a tier whose default action is Deny; then the
 * profiles, each returning on accept; then drop. The endpoint chain's earlier rules already
 * cleared the accept and pass marks.
 */

import type { Rule } from '../../dataplane/chains.ts';
import { hex, type MarkBits } from '../../dataplane/mark-bits.ts';
import type { TierInfo } from '../dataplane-update.ts';
import type { ResolvedEndpointPolicy, TierList } from './policy-catalog.ts';
import { type PolicyDirection, policyChainName, profileChainName } from './policy-id.ts';

/**
 * The endpoint's resolved tiers in the intent stream's form: one TierInfo per tier that applies
 * in either direction, its policies named by policy key (`np/<ns>/<name>`…).
 */
export function tierInfos(resolved: TierList): TierInfo[] {
  const tiers = new Map<string, TierInfo>();
  for (const direction of ['ingress', 'egress'] as const) {
    for (const t of resolved.tiers[direction]) {
      const info = tiers.get(t.name) ?? {
        name: t.name,
        ingressPolicies: [],
        egressPolicies: [],
        defaultAction: t.defaultAction,
      };
      const keys = t.policies.map((p) => p.key);
      if (direction === 'ingress') info.ingressPolicies = keys;
      else info.egressPolicies = keys;
      tiers.set(t.name, info);
    }
  }
  return resolved.tierOrder.flatMap((name) => tiers.get(name) ?? []);
}

/**
 * The policy stage of `cali-tw-<iface>` (direction `ingress`: traffic to the endpoint, policy
 * chains `cali-pi-`, profile chains `cali-pri-`) or `cali-fw-<iface>` (`egress`: `cali-po-`,
 * `cali-pro-`).
 */
export function policyStageRules(
  direction: PolicyDirection,
  tiers: readonly TierInfo[],
  profileIds: readonly string[],
  marks: MarkBits,
): Rule[] {
  const pass = hex(marks.pass);
  const accept = `-m mark --mark ${hex(marks.accept)}/${hex(marks.accept)}`;
  const noPass = `-m mark --mark 0x0/${pass}`;
  const rules: Rule[] = [];
  for (const tier of tiers) {
    const policies = direction === 'ingress' ? tier.ingressPolicies : tier.egressPolicies;
    // A tier none of whose policies govern this direction is skipped: no end-of-tier drop.
    if (policies.length === 0) continue;
    rules.push({ action: `-j MARK --set-xmark 0x0/${pass}`, comment: `Start of tier ${tier.name}` });
    for (const key of policies) {
      rules.push({ match: noPass, action: `-j ${policyChainName(direction, key)}` });
      rules.push({ match: accept, action: '-j RETURN', comment: 'Return if policy accepted' });
    }
    if (tier.defaultAction !== 'Pass') {
      rules.push({
        match: noPass,
        action: '-j DROP',
        comment: `End of tier ${tier.name}. Drop if no policies passed packet`,
      });
    }
  }
  for (const profile of profileIds) {
    rules.push({ action: `-j ${profileChainName(direction, profile)}` });
    rules.push({ match: accept, action: '-j RETURN', comment: 'Return if profile accepted' });
  }
  rules.push({ action: '-j DROP', comment: 'Drop if no profiles matched' });
  return rules;
}

/** policyStageRules straight from a resolution (profiles: the known ones, in order). */
export function resolvedPolicyStage(
  direction: PolicyDirection,
  resolved: ResolvedEndpointPolicy,
  marks: MarkBits,
): Rule[] {
  return policyStageRules(
    direction,
    tierInfos(resolved),
    resolved.profiles.map((p) => p.name),
    marks,
  );
}
