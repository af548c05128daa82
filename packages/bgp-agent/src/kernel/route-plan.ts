/**
 * Kernel routes as data, and the plans a KernelRouteWriter applies: the difference between what is
 * wanted and what we own (the agent), and best-path changes as routes (calico-bgpd's
 * `kernel.export`). Pure, and free of the datastore, so calico-bgpd loads only the speaker.
 */
import type { BestPathChange } from '@calico-ts/bgp';

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

/** A kernel route as the reconciler sees it (device names resolved). */
export interface KernelRouteState {
  dst: string;
  type: string;
  protocol: number;
  nexthops: { gateway: string | undefined; dev: string | undefined; onlink: boolean }[];
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
