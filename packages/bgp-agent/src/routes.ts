/**
 * What this node advertises and accepts (confd's bird_aggr.cfg / bird_ipam.cfg templates,
 * calico-internals §5.3):
 *
 * - exports: this node's confirmed affine blocks (`calico_aggr`: the block, never the /32s inside
 *   it), /32s of addresses this node borrowed from other nodes' blocks (they match no local
 *   aggregation rule and fall through to "accept inside an enabled pool"), and the service CIDRs
 *   of BGPConfiguration (static routes); communities from `prefixAdvertisements`
 *   (`apply_communities`); nothing inside a pool with `disableBGPExport`;
 * - export policy (`calico_export_to_bgp_peers`): reject disableBGPExport pools, aggregate own
 *   blocks, accept service CIDRs, accept inside pools, reject the rest;
 * - import policy: BGPFilter rules, then accept inside IP pools; nothing else.
 */

import { formatPrefix, type ParsedPrefix, parsePrefix, prefixContains } from '@calico-ts/bgp';
import type { ResourceOf } from '@calico-ts/datastore';
import type { ChainRule } from './filters.ts';
import type { LocalNode } from './peers.ts';
import { type AgentSnapshot, bgpConfigurations, canonicalPrefix } from './snapshot.ts';

export type Encapsulation = 'none' | 'ipip' | 'vxlan';

export interface PoolRouting {
  name: string;
  cidr: string;
  prefix: ParsedPrefix;
  encapsulation: Encapsulation;
  crossSubnet: boolean;
  disabled: boolean;
  disableBGPExport: boolean;
}

export interface ExportedRoute {
  prefix: string;
  /**
   * LOCAL_PREF we send it with: 2³¹−1 minus the route's priority (BGPConfiguration
   * ipv4/ipv6NormalRoutePriority, 1024 by default), as confd's export filter derives it.
   */
  localPref: number;
  communities: string[];
  largeCommunities: string[];
}

export interface RouteCalculation {
  /** Confirmed affine blocks of this node (blackholed in the kernel), except /32 (/128) ones. */
  localBlocks: string[];
  /** Every confirmed affine block, /32s too: the block leaves, nothing beneath it (calico_aggr). */
  aggregatedBlocks: string[];
  /** Static routes this node originates (confd's static protocol): its blocks and service CIDRs. */
  originated: string[];
  /** The service CIDRs among them: every node originates these, none programs them from a peer. */
  staticRoutes: string[];
  exports: ExportedRoute[];
  problems: string[];
}

export function poolsOf(snapshot: AgentSnapshot): PoolRouting[] {
  const out: PoolRouting[] = [];
  for (const p of snapshot.ipPools) {
    const prefix = parsePrefix(p.spec.cidr);
    if (!prefix) continue;
    const vxlan = p.spec.vxlanMode !== 'Never';
    const ipip = !vxlan && p.spec.ipipMode !== 'Never';
    out.push({
      name: p.metadata.name,
      cidr: p.spec.cidr,
      prefix,
      encapsulation: vxlan ? 'vxlan' : ipip ? 'ipip' : 'none',
      crossSubnet: (vxlan ? p.spec.vxlanMode : p.spec.ipipMode) === 'CrossSubnet',
      disabled: p.spec.disabled,
      disableBGPExport: p.spec.disableBGPExport,
    });
  }
  // Most specific first, so lookups find the closest pool.
  return out.sort((a, b) => b.prefix.length - a.prefix.length);
}

export function poolContaining(pools: readonly PoolRouting[], prefix: ParsedPrefix): PoolRouting | undefined {
  return pools.find((p) => prefixContains(p.prefix, prefix));
}

const hostLength = (p: ParsedPrefix) => (p.afi === 1 ? 32 : 128);

/** BlockAffinity of this node that counts as its block: host type, confirmed (or state-less), not deleted. */
function ownAffinities(snapshot: AgentSnapshot, nodeName: string): ResourceOf<'BlockAffinity'>[] {
  return snapshot.blockAffinities.filter(
    (a) =>
      a.spec.node === nodeName &&
      a.spec.type === 'host' &&
      !a.spec.deleted &&
      (a.spec.state === 'confirmed' || (a.spec.state as string | undefined) === undefined),
  );
}

export function computeRoutes(
  snapshot: AgentSnapshot,
  me: LocalNode,
  pools: readonly PoolRouting[],
): RouteCalculation {
  const problems: string[] = [];
  const { global, node: perNode } = bgpConfigurations(snapshot, me.name);
  const blocks: ParsedPrefix[] = [];
  const aggregatedBlocks: string[] = [];
  for (const a of ownAffinities(snapshot, me.name)) {
    const p = parsePrefix(a.spec.cidr);
    if (p) aggregatedBlocks.push(formatPrefix(p.afi, p.bytes, p.length));
    // bird_aggr.cfg skips /32 (and /128) blocks: the address route itself is the route.
    if (p && p.length < hostLength(p)) blocks.push(p);
  }
  const localBlocks = blocks.map((b) => formatPrefix(b.afi, b.bytes, b.length)).sort();

  const exportable = (p: ParsedPrefix): boolean => {
    const pool = poolContaining(pools, p);
    return pool !== undefined && !pool.disableBGPExport;
  };
  const prefixes = new Set<string>();
  // Every block is a static blackhole route in confd and leaves through calico_aggr, in a pool or
  // not; only a pool with disableBGPExport keeps it in.
  for (const b of blocks) {
    const pool = poolContaining(pools, b);
    if (!pool?.disableBGPExport) prefixes.add(formatPrefix(b.afi, b.bytes, b.length));
  }
  // Borrowed addresses: a workload here whose address is in no block of ours.
  for (const wep of snapshot.workloadEndpoints) {
    if (wep.spec.node !== me.name) continue;
    for (const net of wep.spec.ipNetworks ?? []) {
      const p = canonicalPrefix(net);
      if (!p || p.length !== hostLength(p)) continue;
      if (blocks.some((b) => prefixContains(b, p))) continue;
      if (exportable(p)) prefixes.add(formatPrefix(p.afi, p.bytes, p.length));
    }
  }
  // Service addresses are static routes every node advertises (serviceClusterIPs etc.).
  for (const p of serviceCidrs(snapshot, me.name)) prefixes.add(formatPrefix(p.afi, p.bytes, p.length));

  const exports: ExportedRoute[] = [...prefixes].sort().map((prefix) => ({
    prefix,
    localPref: NORMAL_PRIORITY_BASE - normalRoutePriority(snapshot, me.name, prefix.includes(':') ? 6 : 4),
    ...communitiesFor(snapshot, me.name, prefix, problems),
  }));
  const staticRoutes = serviceCidrs(snapshot, me.name).map((p) => formatPrefix(p.afi, p.bytes, p.length));
  const originated = [
    ...localBlocks,
    ...serviceCidrs(snapshot, me.name).map((p) => formatPrefix(p.afi, p.bytes, p.length)),
  ];
  void global;
  void perNode;
  return {
    localBlocks,
    aggregatedBlocks: aggregatedBlocks.sort(),
    originated,
    staticRoutes,
    exports,
    problems,
  };
}

/** BIRD's int max, from which Calico derives LOCAL_PREF = max − priority. */
const NORMAL_PRIORITY_BASE = 2147483647;

/** BGPConfiguration ipv4NormalRoutePriority / ipv6NormalRoutePriority (default 1024). */
export function normalRoutePriority(snapshot: AgentSnapshot, nodeName: string, family: 4 | 6): number {
  const { global } = bgpConfigurations(snapshot, nodeName);
  return (family === 4 ? global?.ipv4NormalRoutePriority : global?.ipv6NormalRoutePriority) ?? 1024;
}

/**
 * `apply_communities`: the communities a route we export carries, from the node's
 * prefixAdvertisements, else the cluster's (processCommunityRules), every advertisement whose CIDR
 * contains the prefix.
 */
export function communitiesFor(
  snapshot: AgentSnapshot,
  nodeName: string,
  prefix: string,
  problems: string[] = [],
): { communities: string[]; largeCommunities: string[] } {
  const { global, node: perNode } = bgpConfigurations(snapshot, nodeName);
  const advertisements = perNode?.prefixAdvertisements ?? global?.prefixAdvertisements ?? [];
  // Names resolve in the node's own BGPConfiguration first, then the cluster's.
  const named = new Map(
    [...(global?.communities ?? []), ...(perNode?.communities ?? [])].map((c) => [c.name, c.value]),
  );
  const communities: string[] = [];
  const largeCommunities: string[] = [];
  const p = parsePrefix(prefix);
  if (!p) return { communities, largeCommunities };
  for (const adv of advertisements) {
    const within = parsePrefix(adv.cidr);
    if (!within || within.afi !== p.afi || !prefixContains(within, p)) continue;
    for (const c of adv.communities ?? []) {
      const value = named.get(c) ?? c;
      const parts = value.split(':');
      const list = parts.length === 2 ? communities : parts.length === 3 ? largeCommunities : undefined;
      if (!list) problems.push(`prefixAdvertisements ${adv.cidr}: community "${c}" is not defined`);
      else if (!list.includes(value)) list.push(value);
    }
  }
  return { communities, largeCommunities };
}

function serviceCidrs(snapshot: AgentSnapshot, nodeName: string): ParsedPrefix[] {
  const { global } = bgpConfigurations(snapshot, nodeName);
  const out: ParsedPrefix[] = [];
  for (const list of [
    global?.serviceClusterIPs,
    global?.serviceExternalIPs,
    global?.serviceLoadBalancerIPs,
  ]) {
    for (const s of list ?? []) {
      const p = s.cidr ? parsePrefix(s.cidr) : undefined;
      if (p) out.push(p);
    }
  }
  return out;
}

const within = (p: ParsedPrefix) => ({
  prefix: formatPrefix(p.afi, p.bytes, p.length),
  ge: p.length,
  le: hostLength(p),
});

/** `calico_export_to_bgp_peers` for one address family, after the peer's BGPFilter export rules. */
export function exportChain(
  snapshot: AgentSnapshot,
  me: LocalNode,
  pools: readonly PoolRouting[],
  aggregatedBlocks: readonly string[],
  afi: 1 | 2,
): ChainRule[] {
  const rules: ChainRule[] = [];
  for (const p of pools) {
    if (p.prefix.afi === afi && p.disableBGPExport)
      rules.push({ match: { prefixes: [within(p.prefix)] }, action: 'reject' });
  }
  // calico_aggr(): the block itself, never what is inside it.
  for (const b of aggregatedBlocks) {
    const p = parsePrefix(b)!;
    if (p.afi !== afi) continue;
    rules.push({ match: { prefixes: [{ prefix: b }] }, action: 'accept' });
    if (p.length < hostLength(p))
      rules.push({
        match: { prefixes: [{ prefix: b, ge: p.length + 1, le: hostLength(p) }] },
        action: 'reject',
      });
  }
  for (const s of serviceCidrs(snapshot, me.name)) {
    if (s.afi === afi) rules.push({ match: { prefixes: [within(s)] }, action: 'accept' });
  }
  for (const p of pools) {
    if (p.prefix.afi === afi && !p.disableBGPExport)
      rules.push({ match: { prefixes: [within(p.prefix)] }, action: 'accept' });
  }
  return rules;
}

/**
 * What we accept from peers after BGPFilter import rules: everything (confd's import filter ends
 * in `accept`, as `import all` did before BGPFilters). What reaches the kernel is decided there
 * (kernel-routes.ts), as BIRD's `calico_kernel_programming` does.
 */
export function importChain(): ChainRule[] {
  return [];
}
