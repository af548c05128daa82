/**
 * The policy part of a per-endpoint chain (felix/rules/endpoints.go, calico-internals §3.3):
 * per tier, clear the pass mark, jump to each policy chain while no policy has passed, return
 * once one accepted, and drop at the end of a tier whose default action is Deny; then the
 * profiles, each returning on accept; then drop. The endpoint chain's earlier rules already
 * cleared the accept and pass marks.
 */

import type { Rule } from '../../dataplane/chains.ts';
import { type DropCause, nflogRule } from '../../dataplane/drop-log.ts';
import { hex, type MarkBits } from '../../dataplane/mark-bits.ts';
import type { TierInfo } from '../dataplane-update.ts';
import type { ResolvedEndpointPolicy, TierList } from './policy-catalog.ts';
import {
  type PolicyDirection,
  policyChainName,
  profileChainName,
  stagedPolicyChainName,
  stagedProfileChainName,
} from './policy-id.ts';

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

const endOfTier = (direction: PolicyDirection, tier: string, staged = false): DropCause => ({
  verdict: 'endOfTier',
  direction,
  staged,
  owner: tier,
  ruleIndex: undefined,
});
const noProfile = (direction: PolicyDirection, staged = false): DropCause => ({
  verdict: 'noProfile',
  direction,
  staged,
  owner: '',
  ruleIndex: undefined,
});

/**
 * Which endpoint chain a policy stage is for (rules/endpoints.go `endpointChainType`): `normal`
 * (workload chains and host endpoint filter chains: end-of-tier drop, profiles, final drop),
 * `forward` (a host endpoint's applyOnForward chains: end-of-tier drop, no profiles, and allow
 * when no forward policy applies at all), `untracked` (raw table: an accepted packet is also
 * NOTRACKed; no drop of its own, so normal policy still runs) and `preDNAT` (mangle: likewise).
 */
export type EndpointChainType = 'normal' | 'forward' | 'untracked' | 'preDNAT';

/**
 * The policy stage of `cali-tw-<iface>` (direction `ingress`: traffic to the endpoint, policy
 * chains `cali-pi-`, profile chains `cali-pri-`) or `cali-fw-<iface>` (`egress`: `cali-po-`,
 * `cali-pro-`), and of the host endpoint chains (`cali-fh-`: ingress, `cali-th-`: egress).
 */
export function policyStageRules(
  direction: PolicyDirection,
  tiers: readonly TierInfo[],
  profileIds: readonly string[],
  marks: MarkBits,
  chainType: EndpointChainType = 'normal',
  dropLogs = false,
): Rule[] {
  const pass = hex(marks.pass);
  const accept = `-m mark --mark ${hex(marks.accept)}/${hex(marks.accept)}`;
  const noPass = `-m mark --mark 0x0/${pass}`;
  const dropsAtEnd = chainType === 'normal' || chainType === 'forward';
  const rules: Rule[] = [];
  for (const tier of tiers) {
    const policies = direction === 'ingress' ? tier.ingressPolicies : tier.egressPolicies;
    // A tier none of whose policies govern this direction is skipped: no end-of-tier drop.
    if (policies.length === 0) continue;
    rules.push({ action: `-j MARK --set-xmark 0x0/${pass}`, comment: `Start of tier ${tier.name}` });
    for (const key of policies) {
      rules.push({ match: noPass, action: `-j ${policyChainName(direction, key)}` });
      // Untracked policy maps allow to "NOTRACK and allow".
      if (chainType === 'untracked') rules.push({ match: accept, action: '-j NOTRACK' });
      rules.push({ match: accept, action: '-j RETURN', comment: 'Return if policy accepted' });
    }
    if (dropsAtEnd && tier.defaultAction !== 'Pass') {
      if (dropLogs) rules.push(nflogRule(noPass, endOfTier(direction, tier.name)));
      rules.push({
        match: noPass,
        action: '-j DROP',
        comment: `End of tier ${tier.name}. Drop if no policies passed packet`,
      });
    }
  }
  if (chainType === 'forward' && tiers.length === 0) {
    rules.push({
      action: `-j MARK --set-xmark ${hex(marks.accept)}/${hex(marks.accept)}`,
      comment: 'Allow forwarded traffic by default',
    });
    rules.push({ action: '-j RETURN', comment: 'Return for accepted forward traffic' });
  }
  if (chainType !== 'normal') return rules;
  for (const profile of profileIds) {
    rules.push({ action: `-j ${profileChainName(direction, profile)}` });
    rules.push({ match: accept, action: '-j RETURN', comment: 'Return if profile accepted' });
  }
  if (dropLogs) rules.push(nflogRule(undefined, noProfile(direction)));
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

/**
 * The staged evaluation of one endpoint direction (`cali-stw-<iface>` / `cali-sfw-<iface>`): the
 * same walk as policyStageRules over the staged view of the tiers, through the staged forms of
 * the policy and profile chains (`cali-spi-`/`cali-spo-`, `cali-spri-`/`cali-spro-`), where a
 * Deny records a staged drop and returns. Every point where enforced policy would drop instead
 * records a staged drop (rate-limited per flow) and returns; nothing here drops or accepts, so
 * the enforced stage that follows alone decides the packet's fate. The accept mark means
 * "decided" here (allowed or would-deny); the endpoint chain clears the marks afterwards.
 */
export function stagedPolicyStageRules(
  direction: PolicyDirection,
  tiers: readonly TierInfo[],
  profileIds: readonly string[],
  marks: MarkBits,
): Rule[] {
  const pass = hex(marks.pass);
  const decided = `-m mark --mark ${hex(marks.accept)}/${hex(marks.accept)}`;
  const noPass = `-m mark --mark 0x0/${pass}`;
  const rules: Rule[] = [
    { action: `-j MARK --set-xmark 0x0/${hex(marks.accept + marks.pass + marks.drop)}` },
  ];
  for (const tier of tiers) {
    const policies = direction === 'ingress' ? tier.ingressPolicies : tier.egressPolicies;
    if (policies.length === 0) continue;
    rules.push({ action: `-j MARK --set-xmark 0x0/${pass}`, comment: `Start of staged tier ${tier.name}` });
    for (const key of policies) {
      rules.push({ match: noPass, action: `-j ${stagedPolicyChainName(direction, key)}` });
      rules.push({ match: decided, action: '-j RETURN', comment: 'Return if policy decided' });
    }
    if (tier.defaultAction !== 'Pass') {
      rules.push(nflogRule(noPass, endOfTier(direction, tier.name, true)));
      rules.push({ match: noPass, action: '-j RETURN', comment: `End of staged tier ${tier.name}` });
    }
  }
  for (const profile of profileIds) {
    rules.push({ action: `-j ${stagedProfileChainName(direction, profile)}` });
    rules.push({ match: decided, action: '-j RETURN', comment: 'Return if profile decided' });
  }
  rules.push(nflogRule(undefined, noProfile(direction, true)));
  return rules;
}
