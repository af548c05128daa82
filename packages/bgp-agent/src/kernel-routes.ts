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
 * - never a route equal to one of this node's blocks (in BIRD the node's own static route for
 *   the block wins over any learned one), never a route whose next hop is this node. A shorter
 *   route covering a block (a top-of-rack default route, a pool aggregate) is installed, as
 *   BIRD's kernel export accepts it: the block's own route is more specific and keeps local
 *   traffic local;
 * - a blackhole for each of this node's blocks, so unallocated addresses there are dropped rather
 *   than sent back out of the default route.
 *
 * A route with several equal best paths becomes one multipath route (BIRD `merge paths on`). The
 * rtnetlink protocol they carry is the writer's (the agent: `RouteProtocol.bird`, as BIRD's routes
 * in Calico, so Felix's protocol-80 routes and ours never remove each other). Everything here is
 * pure; `planKernelRoutes` turns the result into a plan for the `KernelRouteWriter`.
 */
import { type ParsedPrefix, parsePrefix, prefixContains } from '@calico-ts/bgp';
import { IPIP_DEVICE, VXLAN_DEVICE } from '@calico-ts/datastore';
import type { KernelNextHop, KernelRouteIntent, KernelRouteState } from './kernel/route-plan.ts';
import type { LocalNode } from './peers.ts';
import { type PoolRouting, poolContaining } from './routes.ts';
import { subnetOf } from './snapshot.ts';

export type ProgramClusterRoutes = 'Enabled' | 'Disabled' | 'EnabledNoEncapOnly' | 'EnabledIPIPOnly';

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
  /** Static routes every node originates (service CIDRs): never programmed from a peer. */
  staticRoutes?: readonly string[];
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
    if (blocks.some((b) => b.afi === p.afi && p.length === b.length && prefixContains(p, b))) {
      skipped.push({ prefix: r.prefix, reason: 'is a block of this node' });
      continue;
    }
    const inStatic = (ctx.staticRoutes ?? []).some((sr) => {
      const q = parsePrefix(sr);
      return q !== undefined && q.afi === p.afi && prefixContains(q, p);
    });
    if (inStatic) {
      skipped.push({ prefix: r.prefix, reason: 'a static route of every node (service CIDR)' });
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
      if (ctx.programClusterRoutes !== 'Enabled' && ctx.programClusterRoutes !== 'EnabledIPIPOnly') {
        skipped.push({ prefix: r.prefix, reason: `IPIP pool ${pool.name}: programmed by Felix` });
        continue;
      }
      nexthops = gateways.map((gateway) => {
        const direct = pool.crossSubnet && subnet !== undefined && sameSubnet(subnet, gateway);
        return direct ? { gateway } : { gateway, dev: IPIP_DEVICE, onlink: true };
      });
    } else if (
      pool &&
      (ctx.programClusterRoutes === 'Disabled' || ctx.programClusterRoutes === 'EnabledIPIPOnly')
    ) {
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

/** Ours: our protocol, and a blackhole or a gateway route not on Felix's VXLAN device. */
export function ownedKernelRoute(route: KernelRouteState, protocol: number, programIpip: boolean): boolean {
  if (route.protocol !== protocol) return false;
  if (route.type === 'blackhole') return true;
  if (route.type !== 'unicast' || route.nexthops.length === 0) return false;
  return route.nexthops.every(
    (n) => n.gateway !== undefined && n.dev !== VXLAN_DEVICE && (n.dev !== IPIP_DEVICE || programIpip),
  );
}
