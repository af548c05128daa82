/**
 * Which learned routes go into the kernel, and how (confd's `calico_kernel_programming` filter
 * and cluster-route ownership, calico-internals §5.3–5.4):
 *
 * - VXLAN pools: never (Felix programs them);
 * - IPIP pools: only when BGPConfiguration.programClusterRoutes is `Enabled` (default
 *   `EnabledNoEncapOnly` leaves them to Felix), via `tunl0` onlink (`krt_tunnel`); CrossSubnet
 *   sends same-subnet next hops directly;
 * - pools without encapsulation: unless programClusterRoutes is `Disabled`;
 * - destinations outside every pool (accepted by a BGPFilter): installed as they are;
 * - never a route equal to or covering one of this node's blocks (that would hijack local
 *   addresses), never a route whose next hop is this node;
 * - a blackhole for each of this node's blocks, so unallocated addresses there are dropped rather
 *   than sent back out of the default route.
 *
 * A route with several equal best paths becomes one multipath route (BIRD `merge paths on`). The
 * rtnetlink protocol they carry is the writer's (the agent: `RouteProtocol.bird`, as BIRD's routes
 * in Calico, so Felix's protocol-80 routes and ours never remove each other). Everything here is
 * pure; `KernelRouteWriter` applies the result.
 */
import { type BestPathChange, type ParsedPrefix, parsePrefix, prefixContains } from '@calico-ts/bgp';
import { IPIP_DEVICE, VXLAN_DEVICE } from '@calico-ts/datastore';
import type { LocalNode } from './peers.ts';
import { type PoolRouting, poolContaining } from './routes.ts';
import { subnetOf } from './snapshot.ts';

export type ProgramClusterRoutes = 'Enabled' | 'Disabled' | 'EnabledNoEncapOnly';

export interface KernelNextHop {
  gateway: string;
  dev?: string;
  onlink?: boolean;
}

export interface KernelRouteIntent {
  dst: string;
  type: 'unicast' | 'blackhole';
  nexthops: KernelNextHop[];
}

export interface LearnedRoute {
  prefix: string;
  /** Next hops of the best path and its equal-cost companions. */
  nextHops: string[];
}

export interface KernelProgrammingContext {
  me: LocalNode;
  pools: readonly PoolRouting[];
  localBlocks: readonly string[];
  programClusterRoutes: ProgramClusterRoutes;
  /** Blackhole this node's own blocks. Off under calico-node, where Felix programs them. */
  blackholes?: boolean;
}

export interface KernelRouteCalculation {
  routes: Map<string, KernelRouteIntent>;
  /** Learned routes left out, with why (for logs and status). */
  skipped: { prefix: string; reason: string }[];
}

export function desiredKernelRoutes(
  ctx: KernelProgrammingContext,
  learned: Iterable<LearnedRoute>,
): KernelRouteCalculation {
  const routes = new Map<string, KernelRouteIntent>();
  const skipped: KernelRouteCalculation['skipped'] = [];
  const blocks = ctx.localBlocks.map((b) => parsePrefix(b)).filter((b): b is ParsedPrefix => b !== undefined);
  if (ctx.blackholes ?? true)
    for (const b of ctx.localBlocks) routes.set(b, { dst: b, type: 'blackhole', nexthops: [] });
  const ownAddresses = new Set([ctx.me.ipv4, ctx.me.ipv6].filter((a) => a !== undefined));
  const subnet = subnetOf(ctx.me.ipv4Cidr);
  for (const r of learned) {
    const p = parsePrefix(r.prefix);
    if (!p) continue;
    if (blocks.some((b) => b.afi === p.afi && p.length <= b.length && prefixContains(p, b))) {
      skipped.push({ prefix: r.prefix, reason: 'covers a block of this node' });
      continue;
    }
    const gateways = [...new Set(r.nextHops)].filter((g) => !ownAddresses.has(g)).sort();
    if (gateways.length === 0) {
      skipped.push({ prefix: r.prefix, reason: 'next hop is this node' });
      continue;
    }
    const pool = poolContaining(ctx.pools, p);
    let nexthops: KernelNextHop[] = gateways.map((gateway) => ({ gateway }));
    if (pool?.encapsulation === 'vxlan') {
      skipped.push({ prefix: r.prefix, reason: `VXLAN pool ${pool.name}: programmed by Felix` });
      continue;
    }
    if (pool?.encapsulation === 'ipip') {
      if (ctx.programClusterRoutes !== 'Enabled') {
        skipped.push({ prefix: r.prefix, reason: `IPIP pool ${pool.name}: programmed by Felix` });
        continue;
      }
      nexthops = gateways.map((gateway) => {
        const direct = pool.crossSubnet && subnet !== undefined && sameSubnet(subnet, gateway);
        return direct ? { gateway } : { gateway, dev: IPIP_DEVICE, onlink: true };
      });
    } else if (pool && ctx.programClusterRoutes === 'Disabled') {
      skipped.push({ prefix: r.prefix, reason: 'programClusterRoutes is Disabled' });
      continue;
    }
    routes.set(r.prefix, { dst: r.prefix, type: 'unicast', nexthops });
  }
  return { routes, skipped };
}

function sameSubnet(subnet: ParsedPrefix, ip: string): boolean {
  const p = parsePrefix(`${ip}/${ip.includes(':') ? 128 : 32}`);
  return p !== undefined && prefixContains(subnet, p);
}

/** A kernel route as the reconciler sees it (device names resolved). */
export interface KernelRouteState {
  dst: string;
  type: string;
  protocol: number;
  nexthops: { gateway: string | undefined; dev: string | undefined; onlink: boolean }[];
}

/** Ours: our protocol, and a blackhole or a gateway route not on Felix's VXLAN device. */
export function ownedKernelRoute(route: KernelRouteState, protocol: number, programIpip: boolean): boolean {
  if (route.protocol !== protocol) return false;
  if (route.type === 'blackhole') return true;
  if (route.type !== 'unicast' || route.nexthops.length === 0) return false;
  return route.nexthops.every(
    (n) => n.gateway !== undefined && n.dev !== VXLAN_DEVICE && (n.dev !== IPIP_DEVICE || programIpip),
  );
}

export function sameKernelRoute(have: KernelRouteState, want: KernelRouteIntent): boolean {
  if (have.type !== want.type) return false;
  if (want.type === 'blackhole') return true;
  if (have.nexthops.length !== want.nexthops.length) return false;
  const byGateway = new Map(have.nexthops.map((n) => [n.gateway, n]));
  // The kernel reports the device it resolved; compare it only where we asked for one.
  return want.nexthops.every((w) => {
    const h = byGateway.get(w.gateway);
    return h !== undefined && (w.dev === undefined || (h.dev === w.dev && h.onlink === (w.onlink ?? false)));
  });
}

/** A route to remove: its destination, narrowed by type and gateway when known. */
export interface KernelRouteRemoval {
  dst: string;
  type?: string;
  nexthops?: readonly { gateway: string | undefined }[];
}

export interface KernelRoutePlan {
  replace: KernelRouteIntent[];
  remove: KernelRouteRemoval[];
}

/**
 * The difference between what we want and the routes we own in the kernel. `keepUnwanted`: after
 * a restart, routes from before stay until the peers have sent their tables (no flap, RFC 4724
 * forwarding state preserved).
 */
export function planKernelRoutes(
  desired: ReadonlyMap<string, KernelRouteIntent>,
  owned: readonly KernelRouteState[],
  keepUnwanted: boolean,
): KernelRoutePlan {
  const have = new Map(owned.map((r) => [r.dst, r]));
  const replace: KernelRouteIntent[] = [];
  for (const want of desired.values()) {
    const h = have.get(want.dst);
    if (!h || !sameKernelRoute(h, want)) replace.push(want);
  }
  const remove = keepUnwanted ? [] : owned.filter((r) => !desired.has(r.dst));
  return { replace, remove };
}

/**
 * The next hops a best-path change leaves for the kernel: the best path's and its equal-cost
 * companions', sorted; undefined when the prefix has no best path or it is our own.
 */
export function learnedNextHops(change: BestPathChange): string[] | undefined {
  const best = change.best;
  if (!best || best.source.local) return undefined;
  const paths = change.multipath.length > 0 ? change.multipath : [best];
  return [...new Set(paths.map((r) => r.attrs.nextHop))].filter((h) => h !== '').sort();
}

/**
 * calico-bgpd's `kernel.export`: best-path changes as a plan, one route per prefix via its next
 * hops, a removal when no learned best path is left. The last change of a prefix wins.
 */
export function bestPathRoutePlan(changes: readonly BestPathChange[]): KernelRoutePlan {
  const last = new Map<string, KernelRouteIntent | undefined>();
  for (const c of changes) {
    const hops = learnedNextHops(c);
    if (hops === undefined) last.set(c.prefix, undefined);
    else if (hops.length > 0)
      last.set(c.prefix, { dst: c.prefix, type: 'unicast', nexthops: hops.map((gateway) => ({ gateway })) });
  }
  const plan: KernelRoutePlan = { replace: [], remove: [] };
  for (const [dst, route] of last) {
    if (route) plan.replace.push(route);
    else plan.remove.push({ dst });
  }
  return plan;
}
