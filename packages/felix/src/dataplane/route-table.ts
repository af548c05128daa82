/**
 * The main routing table as Felix owns it (routetable/route_table.go + ownership policy,
 * calico-internals §3.7): managers declare the routes and permanent neighbours they want, per
 * source; apply() diffs them against the kernel and replaces what differs, and removes routes
 * we own that nobody wants any more. We own a route when its protocol is Calico's
 * (RouteProtocol.calico), or it sits on a workload interface, the VXLAN or the IPIP device —
 * never kernel-made routes (RouteProtocol.kernel).
 */
import { IPIP_DEVICE, RouteProtocol, VXLAN_DEVICE, WORKLOAD_INTERFACE_PREFIX } from '@calico-ts/datastore';
import type { Link, Neighbour, Route } from '@calico-ts/kernel';
import type { Logger } from '../logger.ts';
import type { DataplaneKernel } from './kernel-port.ts';

const SCOPE_LINK = 253;
const MAIN_TABLE = 254;

export interface DesiredRoute {
  dst: string;
  type: 'unicast' | 'blackhole';
  dev?: string;
  gateway?: string;
  onlink?: boolean;
  scope?: 'link' | 'universe';
  protocol: number;
}

export interface DesiredNeighbour {
  dev: string;
  ip: string;
  mac: string;
}

/** Which source wins when two want the same destination (workload /32 over everything). */
const SOURCE_PRIORITY: Record<string, number> = { endpoints: 3, vxlan: 2, ipip: 2, blackhole: 1 };

export interface RouteApplyResult {
  replaced: number;
  removed: number;
  /** Routes we want and hold in the kernel after this apply. */
  programmed: number;
}

export class RouteTable {
  #routes = new Map<string, DesiredRoute[]>();
  #neighbours = new Map<string, DesiredNeighbour[]>();
  #dirty = true;
  #interfacePrefixes: string[] = [WORKLOAD_INTERFACE_PREFIX];
  /** What the last apply wanted, by destination, and the links it saw (for kernel events). */
  #lastDesired = new Map<string, DesiredRoute>();
  #lastLinks = new Map<string, Link>();
  #lastNames = new Map<number, string>();
  programmed = 0;

  setInterfacePrefixes(prefixes: string[]): void {
    this.#interfacePrefixes = prefixes;
  }

  setRoutes(source: string, routes: DesiredRoute[]): void {
    if (JSON.stringify(this.#routes.get(source) ?? []) === JSON.stringify(routes)) return;
    this.#routes.set(source, routes);
    this.#dirty = true;
  }

  setNeighbours(source: string, neighbours: DesiredNeighbour[]): void {
    if (JSON.stringify(this.#neighbours.get(source) ?? []) === JSON.stringify(neighbours)) return;
    this.#neighbours.set(source, neighbours);
    this.#dirty = true;
  }

  /** Force a full comparison with the kernel on the next apply (periodic refresh, link changes). */
  markForResync(): void {
    this.#dirty = true;
  }

  get dirty(): boolean {
    return this.#dirty;
  }

  /**
   * Whether a route change the kernel reported undoes what we programmed: a route we want was
   * deleted or replaced by a different one, or a route we own appeared that we do not want.
   * Our own writes match what we want, so they never make us apply again.
   */
  concerns(action: 'new' | 'del', route: Route): boolean {
    if (route.table !== undefined && route.table !== MAIN_TABLE) return false;
    if (route.type !== 'unicast' && route.type !== 'blackhole') return false;
    const want = this.#lastDesired.get(route.dst);
    if (action === 'del') return want !== undefined && this.#matches(route, want, this.#lastLinks);
    if (want) return !this.#matches(route, want, this.#lastLinks);
    return this.#owned(route, route.dev === undefined ? undefined : this.#lastNames.get(route.dev));
  }

  #owned(route: Route, devName: string | undefined): boolean {
    if (route.protocol === RouteProtocol.kernel) return false;
    if (route.protocol === RouteProtocol.calico) return true;
    if (devName === undefined) return false;
    if (devName === VXLAN_DEVICE || devName === IPIP_DEVICE) return true;
    return this.#interfacePrefixes.some((p) => devName.startsWith(p));
  }

  #isOurDevice(name: string): boolean {
    return name === VXLAN_DEVICE || this.#interfacePrefixes.some((p) => name.startsWith(p));
  }

  async apply(kernel: DataplaneKernel, links: Map<string, Link>, log: Logger): Promise<RouteApplyResult> {
    const result: RouteApplyResult = { replaced: 0, removed: 0, programmed: 0 };
    if (!this.#dirty) {
      result.programmed = this.programmed;
      return result;
    }
    const byIndex = new Map([...links.values()].map((l) => [l.index, l]));
    const desired = new Map<string, { route: DesiredRoute; priority: number }>();
    for (const [source, routes] of this.#routes) {
      const priority = SOURCE_PRIORITY[source] ?? 0;
      for (const route of routes) {
        const seen = desired.get(route.dst);
        if (!seen || seen.priority < priority) desired.set(route.dst, { route, priority });
      }
    }
    const kernelRoutes = [
      ...(await kernel.netlink.listRoutes({ family: 4 })),
      ...(await kernel.netlink.listRoutes({ family: 6 })),
    ];
    const current = new Map<string, Route>();
    for (const r of kernelRoutes) if (r.type === 'unicast' || r.type === 'blackhole') current.set(r.dst, r);

    let failures = 0;
    for (const { route } of desired.values()) {
      // A device that does not exist yet (veth not plugged) is retried when it appears.
      if (route.dev !== undefined && !links.has(route.dev)) continue;
      const have = current.get(route.dst);
      if (have && this.#matches(have, route, links)) {
        result.programmed++;
        continue;
      }
      try {
        await kernel.netlink.replaceRoute({
          dst: route.dst,
          type: route.type,
          dev: route.dev,
          gateway: route.gateway,
          onlink: route.onlink,
          scope: route.scope,
          protocol: route.protocol,
        });
        result.replaced++;
        result.programmed++;
      } catch (err) {
        failures++;
        log.warn({ err, route }, 'failed to program route; will retry');
      }
    }
    for (const r of current.values()) {
      if (desired.has(r.dst)) continue;
      const devName = r.dev === undefined ? undefined : byIndex.get(r.dev)?.name;
      if (!this.#owned(r, devName)) continue;
      try {
        await kernel.netlink.deleteRoute(
          { dst: r.dst, type: r.type, dev: r.dev, table: r.table },
          { ifExists: true },
        );
        result.removed++;
      } catch (err) {
        failures++;
        log.warn({ err, dst: r.dst }, 'failed to remove stale route; will retry');
      }
    }
    failures += await this.#applyNeighbours(kernel, links, byIndex, log);
    this.programmed = result.programmed;
    this.#lastDesired = new Map([...desired].map(([dst, d]) => [dst, d.route]));
    this.#lastLinks = links;
    this.#lastNames = new Map([...byIndex].map(([index, l]) => [index, l.name]));
    this.#dirty = failures > 0;
    return result;
  }

  #matches(have: Route, want: DesiredRoute, links: Map<string, Link>): boolean {
    if (have.type !== want.type || have.protocol !== want.protocol) return false;
    if (want.dev !== undefined && have.dev !== links.get(want.dev)?.index) return false;
    if ((have.gateway ?? undefined) !== want.gateway) return false;
    if (want.onlink !== undefined && have.onlink !== want.onlink) return false;
    if (want.scope === 'link' && have.scope !== SCOPE_LINK) return false;
    return true;
  }

  async #applyNeighbours(
    kernel: DataplaneKernel,
    links: Map<string, Link>,
    byIndex: Map<number, Link>,
    log: Logger,
  ): Promise<number> {
    let failures = 0;
    const want = new Map<string, DesiredNeighbour>();
    for (const list of this.#neighbours.values()) for (const n of list) want.set(`${n.dev}|${n.ip}`, n);
    const have = new Map<string, Neighbour>();
    for (const n of await kernel.netlink.listNeighbours()) {
      const dev = byIndex.get(n.dev)?.name;
      if (dev && n.address) have.set(`${dev}|${n.address}`, n);
    }
    for (const [key, n] of want) {
      if (!links.has(n.dev)) continue;
      const h = have.get(key);
      if (h?.permanent && h.mac?.toLowerCase() === n.mac) continue;
      try {
        await kernel.netlink.replaceNeighbour(n.dev, n.ip, n.mac);
      } catch (err) {
        failures++;
        log.warn({ err, neighbour: n }, 'failed to program neighbour; will retry');
      }
    }
    for (const [key, h] of have) {
      const dev = key.split('|')[0]!;
      if (want.has(key) || !h.permanent || !this.#isOurDevice(dev) || !h.address) continue;
      try {
        await kernel.netlink.deleteNeighbour(dev, h.address);
      } catch (err) {
        failures++;
        log.warn({ err, dev, address: h.address }, 'failed to remove stale neighbour');
      }
    }
    return failures;
  }
}
