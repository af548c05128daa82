/**
 * The one writer of BGP routes into the kernel, for calico-bgpd's `kernel.export` and the node
 * agent: routes in one table of one network namespace, marked with one rtnetlink protocol, so
 * what it owns can be listed back (after a restart too). Plans are applied strictly in the order
 * they arrive; a route that fails does not stop the others.
 */
import {
  type Route as KernelRoute,
  Netlink,
  type NetNamespace,
  type RouteInput,
  type Subscription,
} from '@calico-ts/kernel';
import type {
  KernelRouteIntent,
  KernelRoutePlan,
  KernelRouteRemoval,
  KernelRouteState,
} from './route-plan.ts';

export interface KernelRouteWriterOptions {
  /** rtnetlink protocol our routes carry (and by which we find them again). */
  protocol: number;
  /** Routing table (default 254, main). */
  table?: number | undefined;
  /** Network namespace of the routes; ours when omitted. */
  namespace?: NetNamespace | undefined;
}

export interface KernelRouteFailure {
  dst: string;
  action: 'replace' | 'remove';
  error: string;
}

export interface KernelRouteApplyResult {
  replaced: number;
  removed: number;
  failures: KernelRouteFailure[];
}

const MAIN_TABLE = 254;

export class KernelRouteWriter {
  readonly protocol: number;
  readonly table: number;
  readonly #netlink: Netlink;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(options: KernelRouteWriterOptions) {
    this.protocol = options.protocol;
    this.table = options.table ?? MAIN_TABLE;
    this.#netlink = Netlink.open(options.namespace);
  }

  /** Route changes in our table (any protocol), as the kernel reports them; until closed. */
  watch(listener: (action: 'new' | 'del', route: KernelRoute) => void): Subscription {
    return this.#netlink.subscribe(['route'], (event) => {
      if (event.kind === 'route' && event.route.table === this.table && !event.route.cloned)
        listener(event.action, event.route);
    });
  }

  /** The routes with our protocol in our table, IPv4 and IPv6, device names resolved. */
  list(): Promise<KernelRouteState[]> {
    return this.#serial(() => this.#list());
  }

  /** Replace, then remove; every route is tried, the failures are reported. */
  apply(plan: KernelRoutePlan): Promise<KernelRouteApplyResult> {
    return this.#serial(async () => {
      const result: KernelRouteApplyResult = { replaced: 0, removed: 0, failures: [] };
      // Packed many per sendmsg (Netlink batches): in order, each route's own outcome reported.
      const replaced = await this.#netlink.replaceRoutes(plan.replace.map((r) => this.#routeInput(r)));
      replaced.forEach((err, i) => {
        if (!err) result.replaced++;
        else result.failures.push({ dst: plan.replace[i]!.dst, action: 'replace', error: err.message });
      });
      const removed = await this.#netlink.deleteRoutes(
        plan.remove.map((r) => this.#removalInput(r)),
        { ifExists: true },
      );
      removed.forEach((err, i) => {
        if (!err) result.removed++;
        else result.failures.push({ dst: plan.remove[i]!.dst, action: 'remove', error: err.message });
      });
      return result;
    });
  }

  /** Wait for what is queued, then close the netlink socket. Routes stay in the kernel. */
  async close(): Promise<void> {
    await this.#chain.catch(() => undefined);
    this.#netlink.close();
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(work, work);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #list(): Promise<KernelRouteState[]> {
    const nl = this.#netlink;
    const links = new Map((await nl.listLinks()).map((l) => [l.index, l.name]));
    const out: KernelRouteState[] = [];
    for (const family of [4, 6] as const) {
      for (const r of await nl.listRoutes({ family, table: this.table, protocol: this.protocol })) {
        out.push(routeState(r, links));
      }
    }
    return out;
  }

  #routeInput(r: KernelRouteIntent): RouteInput {
    const { protocol, table } = this;
    if (r.type === 'blackhole') return { dst: r.dst, type: 'blackhole', table, protocol };
    if (r.nexthops.length === 1) {
      const n = r.nexthops[0]!;
      return { dst: r.dst, gateway: n.gateway, dev: n.dev, onlink: n.onlink, table, protocol };
    }
    // ECMP: one multipath route (RTA_MULTIPATH), as BIRD's `merge paths on`.
    return {
      dst: r.dst,
      table,
      protocol,
      nexthops: r.nexthops.map((n) => ({ gateway: n.gateway, dev: n.dev, onlink: n.onlink })),
    };
  }

  #removalInput(r: KernelRouteRemoval): RouteInput {
    const input: RouteInput = { dst: r.dst, table: this.table };
    if (r.type !== undefined) input.type = r.type === 'blackhole' ? 'blackhole' : 'unicast';
    const gateway = r.nexthops?.length === 1 ? r.nexthops[0]!.gateway : undefined;
    if (gateway) input.gateway = gateway;
    return input;
  }
}

function routeState(r: KernelRoute, links: Map<number, string>): KernelRouteState {
  const name = (i: number | undefined) => (i === undefined ? undefined : links.get(i));
  const nexthops =
    r.nexthops.length > 0
      ? r.nexthops.map((n) => ({ gateway: n.gateway, dev: name(n.dev), onlink: n.onlink }))
      : r.gateway !== undefined
        ? [{ gateway: r.gateway, dev: name(r.dev), onlink: r.onlink }]
        : [];
  return { dst: r.dst, type: r.type, protocol: r.protocol, nexthops };
}
