/**
 * Per-workload chains (rules/endpoints.go and dispatch.go, calico-internals §3.3):
 * `cali-tw-<iface>` for traffic to the workload, `cali-fw-<iface>` for traffic from it, and the
 * dispatch chains that send each `cali*` interface to its chains and drop every unknown one.
 */

import type { WorkloadEndpoint } from '../calc/dataplane-update.ts';
import { policyStageRules, stagedPolicyStageRules } from '../calc/policy/policy-stage.ts';
import type { FelixConfig } from '../config.ts';
import type { Chain, Rule } from './chains.ts';
import { hex, type MarkBits } from './mark-bits.ts';

export type Direction = 'ingress' | 'egress';

export const toWorkloadChain = (iface: string) => `cali-tw-${iface}`;
export const fromWorkloadChain = (iface: string) => `cali-fw-${iface}`;
/** The staged evaluation of traffic to / from a workload (only while a staged policy changes its tiers). */
export const stagedToWorkloadChain = (iface: string) => `cali-stw-${iface}`;
export const stagedFromWorkloadChain = (iface: string) => `cali-sfw-${iface}`;

/**
 * The one place an endpoint chain decides on policy: per tier, each policy's chain until one
 * accepts or passes, a drop at the end of a Deny tier; then the profiles; then drop
 * (policyStageRules). Fail closed: while a policy or profile the endpoint needs has no chain
 * yet (`programmed` false), the endpoint gets no traffic.
 */
export function policyStage(
  direction: Direction,
  endpoint: WorkloadEndpoint,
  marks: MarkBits,
  programmed = true,
  dropLogs = false,
): Rule[] {
  if (!programmed) return [{ action: '-j DROP', comment: 'Policy not programmed yet' }];
  return policyStageRules(direction, endpoint.tiers, endpoint.profileIds, marks, 'normal', dropLogs);
}

export function workloadEndpointChains(
  endpoint: WorkloadEndpoint,
  config: FelixConfig,
  marks: MarkBits,
  policyProgrammed = true,
): Chain[] {
  // Staged policies are evaluated only where they change the tiers, with drop records on, and
  // never while the enforced policy is not programmed (the endpoint then carries no traffic).
  const staged =
    endpoint.stagedTiers !== undefined && config.dropLogs && policyProgrammed && endpoint.state === 'active'
      ? endpoint.stagedTiers
      : undefined;
  const stagedChain = (direction: Direction) =>
    direction === 'ingress' ? stagedToWorkloadChain(endpoint.name) : stagedFromWorkloadChain(endpoint.name);
  const build = (direction: Direction): Rule[] => {
    if (endpoint.state !== 'active') return [{ action: '-j DROP', comment: 'Endpoint admin disabled' }];
    const rules: Rule[] = [{ match: '-m conntrack --ctstate RELATED,ESTABLISHED', action: '-j ACCEPT' }];
    if (!config.disableConntrackInvalidCheck) {
      rules.push({ match: '-m conntrack --ctstate INVALID', action: '-j DROP' });
    }
    rules.push({ action: `-j MARK --set-xmark 0x0/${hex(marks.accept + marks.pass)}` });
    if (direction === 'egress') {
      // A workload must not inject encapsulated traffic into the host's tunnels.
      if (!config.allowVXLANPacketsFromWorkloads) {
        rules.push({
          match: `-p udp -m multiport --dports ${config.vxlanPort}`,
          action: '-j DROP',
          comment: 'Drop VXLAN encapped packets originating in workloads',
        });
      }
      if (!config.allowIPIPPacketsFromWorkloads) {
        rules.push({
          match: '-p ipencap',
          action: '-j DROP',
          comment: 'Drop IPinIP encapped packets originating in workloads',
        });
      }
    }
    if (staged) {
      rules.push({
        action: `-j ${stagedChain(direction)}`,
        comment: 'Staged policy evaluation (records only)',
      });
      rules.push({ action: `-j MARK --set-xmark 0x0/${hex(marks.accept + marks.pass + marks.drop)}` });
    }
    rules.push(...policyStage(direction, endpoint, marks, policyProgrammed, config.dropLogs));
    return rules;
  };
  const chains: Chain[] = [
    { name: toWorkloadChain(endpoint.name), rules: build('ingress') },
    { name: fromWorkloadChain(endpoint.name), rules: build('egress') },
  ];
  if (staged) {
    for (const direction of ['ingress', 'egress'] as const)
      chains.push({
        name: stagedChain(direction),
        rules: stagedPolicyStageRules(direction, staged, endpoint.profileIds, marks),
      });
  }
  return chains;
}

/**
 * Dispatch chains: one goto per known interface, in name order, then DROP. Fail closed: a `cali*`
 * interface Felix does not know (a veth the CNI plugin just made) carries no traffic.
 */
export function dispatchChains(ifaces: Iterable<string>): Chain[] {
  const sorted = [...ifaces].sort();
  const unknown: Rule = { action: '-j DROP', comment: 'Unknown interface' };
  return [
    {
      name: 'cali-from-wl-dispatch',
      rules: [...sorted.map((i) => ({ match: `-i ${i}`, action: `-g ${fromWorkloadChain(i)}` })), unknown],
    },
    {
      name: 'cali-to-wl-dispatch',
      rules: [...sorted.map((i) => ({ match: `-o ${i}`, action: `-g ${toWorkloadChain(i)}` })), unknown],
    },
  ];
}
