/**
 * Host endpoint chains (rules/endpoints.go `HostEndpointTo*Chains`, dispatch.go
 * `hostDispatchChains`; calico-internals §3.2–3.3). Per governed interface:
 * - filter `cali-fh-<iface>` (to the host) / `cali-th-<iface>` (from the host): normal policy
 *   and profiles behind the failsafe chain; `cali-fhfw-` / `cali-thfw-`: applyOnForward policy
 *   for traffic the host forwards (no failsafe, allow when no forward policy applies);
 * - mangle `cali-fh-<iface>`: preDNAT policy (ingress only); `cali-th-<iface>`: normal egress
 *   policy for DNATed traffic leaving the host, ending in RETURN rather than ACCEPT;
 * - raw `cali-fh-` / `cali-th-`: doNotTrack policy, an accepted packet is NOTRACKed.
 * The dispatch chains `cali-from-host-endpoint` / `cali-to-host-endpoint` (and the forward
 * `cali-from-hep-forward` / `cali-to-hep-forward`) go to them by interface; an interface no host
 * endpoint governs falls through (unlike workload dispatch, which drops). An all-interfaces host
 * endpoint (`interfaceName: "*"`) becomes the dispatch chains' default.
 */
import type { HostEndpoint, TierInfo } from '../calc/dataplane-update.ts';
import { lengthLimitedId } from '../calc/policy/policy-id.ts';
import { type EndpointChainType, policyStageRules } from '../calc/policy/policy-stage.ts';
import type { FelixConfig } from '../config.ts';
import type { Chain, Rule } from './chains.ts';
import { hex, type MarkBits } from './mark-bits.ts';

export const ALL_INTERFACES = '*';

export const hostToEndpointChain = (iface: string) => lengthLimitedId('cali-th-', iface);
export const hostFromEndpointChain = (iface: string) => lengthLimitedId('cali-fh-', iface);
export const hostToEndpointForwardChain = (iface: string) => lengthLimitedId('cali-thfw-', iface);
export const hostFromEndpointForwardChain = (iface: string) => lengthLimitedId('cali-fhfw-', iface);

export const DISPATCH_FROM_HOST_ENDPOINT = 'cali-from-host-endpoint';
export const DISPATCH_TO_HOST_ENDPOINT = 'cali-to-host-endpoint';
export const DISPATCH_FROM_HEP_FORWARD = 'cali-from-hep-forward';
export const DISPATCH_TO_HEP_FORWARD = 'cali-to-hep-forward';

/** What the host endpoint chains are rendered from: the intent, minus addressing. */
export type HostEndpointPolicy = Pick<
  HostEndpoint,
  'profileIds' | 'tiers' | 'untrackedTiers' | 'preDnatTiers' | 'forwardTiers'
>;

type Direction = 'ingress' | 'egress';

interface StageOptions {
  direction: Direction;
  chainType: EndpointChainType;
  tiers: readonly TierInfo[];
  profileIds: readonly string[];
  /** `cali-failsafe-in` / `cali-failsafe-out`, or none (forward chains). */
  failsafe: string | undefined;
  /** What an established connection gets: `-j ACCEPT`, or `-j RETURN` with the accept mark. */
  allowAction: '-j ACCEPT' | '-j RETURN';
  /** False while a policy or profile the endpoint jumps to has no chain yet: fail closed. */
  programmed: boolean;
}

function endpointRules(opts: StageOptions, config: FelixConfig, marks: MarkBits): Rule[] {
  const rules: Rule[] = [];
  // Untracked chains run before conntrack: no state to match on.
  if (opts.chainType !== 'untracked') {
    const established = '-m conntrack --ctstate RELATED,ESTABLISHED';
    if (opts.allowAction !== '-j ACCEPT') {
      rules.push({
        match: established,
        action: `-j MARK --set-xmark ${hex(marks.accept)}/${hex(marks.accept)}`,
      });
    }
    rules.push({ match: established, action: opts.allowAction });
    if (!config.disableConntrackInvalidCheck) {
      rules.push({ match: '-m conntrack --ctstate INVALID', action: '-j DROP' });
    }
  }
  if (opts.failsafe) rules.push({ action: `-j ${opts.failsafe}` });
  rules.push({ action: `-j MARK --set-xmark 0x0/${hex(marks.accept + marks.pass)}` });
  if (!opts.programmed) {
    // Only a normal chain drops on its own; the others leave the decision to normal policy.
    if (opts.chainType === 'normal' || opts.chainType === 'forward')
      rules.push({ action: '-j DROP', comment: 'Policy not programmed yet' });
    return rules;
  }
  rules.push(...policyStageRules(opts.direction, opts.tiers, opts.profileIds, marks, opts.chainType));
  return rules;
}

const filterAllow = (config: FelixConfig) =>
  config.iptablesFilterAllowAction === 'Return' ? '-j RETURN' : '-j ACCEPT';

/** filter: `cali-th-`, `cali-fh-`, `cali-thfw-`, `cali-fhfw-` for one interface. */
export function hostEndpointFilterChains(
  iface: string,
  hep: HostEndpointPolicy,
  config: FelixConfig,
  marks: MarkBits,
  programmed = true,
): Chain[] {
  const allowAction = filterAllow(config);
  const normal = (direction: Direction, failsafe: string): Rule[] =>
    endpointRules(
      {
        direction,
        chainType: 'normal',
        tiers: hep.tiers,
        profileIds: hep.profileIds,
        failsafe,
        allowAction,
        programmed,
      },
      config,
      marks,
    );
  const forward = (direction: Direction): Rule[] =>
    endpointRules(
      {
        direction,
        chainType: 'forward',
        tiers: hep.forwardTiers,
        profileIds: [],
        failsafe: undefined,
        allowAction,
        programmed,
      },
      config,
      marks,
    );
  return [
    { name: hostToEndpointChain(iface), rules: normal('egress', 'cali-failsafe-out') },
    { name: hostFromEndpointChain(iface), rules: normal('ingress', 'cali-failsafe-in') },
    { name: hostToEndpointForwardChain(iface), rules: forward('egress') },
    { name: hostFromEndpointForwardChain(iface), rules: forward('ingress') },
  ];
}

/**
 * mangle `cali-th-<iface>`: normal egress policy for DNATed traffic from the host. RETURN rather
 * than ACCEPT, since the mangle table may still have work to do on allowed traffic.
 */
export function hostEndpointMangleEgressChain(
  iface: string,
  hep: HostEndpointPolicy,
  config: FelixConfig,
  marks: MarkBits,
  programmed = true,
): Chain {
  return {
    name: hostToEndpointChain(iface),
    rules: endpointRules(
      {
        direction: 'egress',
        chainType: 'normal',
        tiers: hep.tiers,
        profileIds: hep.profileIds,
        failsafe: 'cali-failsafe-out',
        allowAction: '-j RETURN',
        programmed,
      },
      config,
      marks,
    ),
  };
}

/** mangle `cali-fh-<iface>`: preDNAT policy; it never applies to traffic leaving the host. */
export function hostEndpointMangleIngressChain(
  iface: string,
  hep: HostEndpointPolicy,
  config: FelixConfig,
  marks: MarkBits,
  programmed = true,
): Chain {
  return {
    name: hostFromEndpointChain(iface),
    rules: endpointRules(
      {
        direction: 'ingress',
        chainType: 'preDNAT',
        tiers: hep.preDnatTiers,
        profileIds: [],
        failsafe: 'cali-failsafe-in',
        allowAction: '-j ACCEPT',
        programmed,
      },
      config,
      marks,
    ),
  };
}

/** raw `cali-th-` / `cali-fh-`: doNotTrack policy (no profiles in the raw table). */
export function hostEndpointRawChains(
  iface: string,
  hep: HostEndpointPolicy,
  config: FelixConfig,
  marks: MarkBits,
  programmed = true,
): Chain[] {
  const untracked = (direction: Direction, failsafe: string): Rule[] =>
    endpointRules(
      {
        direction,
        chainType: 'untracked',
        tiers: hep.untrackedTiers,
        profileIds: [],
        failsafe,
        allowAction: '-j ACCEPT',
        programmed,
      },
      config,
      marks,
    );
  return [
    { name: hostToEndpointChain(iface), rules: untracked('egress', 'cali-failsafe-out') },
    { name: hostFromEndpointChain(iface), rules: untracked('ingress', 'cali-failsafe-in') },
  ];
}

export interface HostDispatchOptions {
  /** Which dispatch chains: both directions, only from (mangle preDNAT), only to (mangle egress). */
  directions: 'to+from' | 'from' | 'to';
  /** Also the forward dispatch chains (filter). */
  applyOnForward: boolean;
  /** The all-interfaces endpoint's chains catch every interface not listed. */
  defaultIface: string | undefined;
  /** Workload interface prefixes (`cali`): the wildcard endpoint's egress never applies to them. */
  workloadPrefixes: readonly string[];
}

/** Dispatch to host endpoint chains by interface name; no final drop. */
export function hostDispatchChains(ifaces: Iterable<string>, opts: HostDispatchOptions): Chain[] {
  const names = [...ifaces].sort();
  const def = opts.defaultIface;
  const fromEnd: Rule[] = def ? [{ action: `-g ${hostFromEndpointChain(def)}` }] : [];
  const fromFwdEnd: Rule[] = def ? [{ action: `-g ${hostFromEndpointForwardChain(def)}` }] : [];
  const toFwdEnd: Rule[] = def ? [{ action: `-g ${hostToEndpointForwardChain(def)}` }] : [];
  const toEnd: Rule[] = [];
  if (def) {
    if (!opts.applyOnForward) {
      for (const p of opts.workloadPrefixes)
        toEnd.push({
          match: `-o ${p}+`,
          action: '-j RETURN',
          comment: 'Skip egress WHEP policy for traffic to local workload',
        });
    }
    toEnd.push({ action: `-g ${hostToEndpointChain(def)}` });
  }
  const dispatch = (
    name: string,
    flag: '-i' | '-o',
    chainOf: (iface: string) => string,
    end: Rule[],
  ): Chain => ({
    name,
    rules: [...names.map((i) => ({ match: `${flag} ${i}`, action: `-g ${chainOf(i)}` })), ...end],
  });
  const chains: Chain[] = [];
  if (opts.directions !== 'to')
    chains.push(dispatch(DISPATCH_FROM_HOST_ENDPOINT, '-i', hostFromEndpointChain, fromEnd));
  if (opts.directions !== 'from')
    chains.push(dispatch(DISPATCH_TO_HOST_ENDPOINT, '-o', hostToEndpointChain, toEnd));
  if (opts.applyOnForward) {
    chains.push(
      dispatch(DISPATCH_FROM_HEP_FORWARD, '-i', hostFromEndpointForwardChain, fromFwdEnd),
      dispatch(DISPATCH_TO_HEP_FORWARD, '-o', hostToEndpointForwardChain, toFwdEnd),
    );
  }
  return chains;
}
