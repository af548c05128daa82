/**
 * Per-workload chains (rules/endpoints.go and dispatch.go, calico-internals §3.3):
 * `cali-tw-<iface>` for traffic to the workload, `cali-fw-<iface>` for traffic from it, and the
 * dispatch chains that send each `cali*` interface to its chains and drop every unknown one.
 */

import type { WorkloadEndpoint } from '../calc/dataplane-update.ts';
import type { FelixConfig } from '../config.ts';
import type { Chain, Rule } from './chains.ts';
import { hex, type MarkBits } from './mark-bits.ts';

export type Direction = 'ingress' | 'egress';

export const toWorkloadChain = (iface: string) => `cali-tw-${iface}`;
export const fromWorkloadChain = (iface: string) => `cali-fw-${iface}`;

/**
 * The one place an endpoint chain decides on policy. It allows everything, visibly (a commented
 * accept mark). Enforcing policy means rendering Felix's tier/policy/profile stage here instead
 * (per tier: clear pass mark, jump to each `cali-pi-`/`cali-po-` chain, return on accept, drop at
 * end of tier; then profiles `cali-pri-`/`cali-pro-`; final "Drop if no profiles matched"), driven
 * by `endpoint.tiers` and `endpoint.profileIds`.
 */
export function policyStage(_direction: Direction, _endpoint: WorkloadEndpoint, marks: MarkBits): Rule[] {
  return [
    {
      action: `-j MARK --set-xmark ${hex(marks.accept)}/${hex(marks.accept)}`,
      comment: 'Policy is not enforced yet: allow all',
    },
    { match: `-m mark --mark ${hex(marks.accept)}/${hex(marks.accept)}`, action: '-j RETURN' },
  ];
}

export function workloadEndpointChains(
  endpoint: WorkloadEndpoint,
  config: FelixConfig,
  marks: MarkBits,
): Chain[] {
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
    rules.push(...policyStage(direction, endpoint, marks));
    return rules;
  };
  return [
    { name: toWorkloadChain(endpoint.name), rules: build('ingress') },
    { name: fromWorkloadChain(endpoint.name), rules: build('egress') },
  ];
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
