/**
 * An in-memory Linux for dataplane unit tests and the memory-backend benchmark: links,
 * addresses, routes, neighbours and FDB entries with the kernel package's shapes, plus the last
 * iptables and IP set state applied. It enforces what matters to Felix's logic — a route's
 * device must exist, deleting a link drops its routes and neighbours — and nothing more.
 */
import type {
  Address,
  InterfaceSysctls,
  IpipOptions,
  Link,
  LinkRef,
  LinkSettings,
  Neighbour,
  Route,
  RouteFilter,
  RouteInput,
  VxlanOptions,
} from '@calico-ts/kernel';
import { KernelError, NetlinkError } from '@calico-ts/kernel';
import type { TableName } from './chains.ts';
import type {
  DataplaneKernel,
  IpsetState,
  IptablesApplyOptions,
  IptablesTableState,
  NetlinkPort,
} from './kernel-port.ts';

interface MemNeighbour {
  dev: number;
  address: string;
  mac: string;
}

export class MemoryKernel implements DataplaneKernel, NetlinkPort {
  links = new Map<number, Link>();
  addresses: Address[] = [];
  routes: Route[] = [];
  neighbours: MemNeighbour[] = [];
  fdb: MemNeighbour[] = [];
  sysctls = new Map<string, InterfaceSysctls>();
  forwarding: { ipv4?: boolean; ipv6?: boolean } = {};
  iptables = new Map<TableName, IptablesTableState>();
  ipsets = new Map<string, IpsetState>();
  /** Kernel modules this fake lacks, e.g. 'ipip'. */
  missingModules = new Set<string>();
  /** Count of mutating calls, to assert that an idempotent apply writes nothing. */
  writes = 0;
  #nextIndex = 1;

  get netlink(): NetlinkPort {
    return this;
  }

  /** Adds a link as a test fixture (e.g. a workload veth or the underlay NIC). */
  addLink(name: string, extra: Partial<Link> = {}): Link {
    const link: Link = {
      index: this.#nextIndex++,
      name,
      kind: 'veth',
      mtu: 1500,
      mac: undefined,
      up: true,
      operState: 'up',
      flags: 1,
      masterIndex: undefined,
      linkIndex: undefined,
      vxlan: undefined,
      ...extra,
    };
    this.links.set(link.index, link);
    return link;
  }

  removeLink(name: string): void {
    const link = this.#link(name);
    if (!link) return;
    this.links.delete(link.index);
    this.routes = this.routes.filter((r) => r.dev !== link.index);
    this.neighbours = this.neighbours.filter((n) => n.dev !== link.index);
    this.fdb = this.fdb.filter((n) => n.dev !== link.index);
    this.addresses = this.addresses.filter((a) => a.index !== link.index);
  }

  linkByName(name: string): Link | undefined {
    return this.#link(name);
  }

  #link(ref: LinkRef): Link | undefined {
    if (typeof ref === 'number') return this.links.get(ref);
    for (const l of this.links.values()) if (l.name === ref) return l;
    return undefined;
  }

  #index(ref: LinkRef): number {
    const l = this.#link(ref);
    if (!l) throw new NetlinkError({ operation: `resolving link ${ref}`, errno: 'ENODEV' });
    return l.index;
  }

  async listLinks(): Promise<Link[]> {
    return [...this.links.values()].map((l) => ({ ...l }));
  }

  async findLink(ref: LinkRef): Promise<Link | undefined> {
    const l = this.#link(ref);
    return l ? { ...l } : undefined;
  }

  async createVxlan(opts: VxlanOptions): Promise<Link> {
    this.writes++;
    if (this.#link(opts.name))
      throw new NetlinkError({ operation: `creating ${opts.name}`, errno: 'EEXIST' });
    const parent = opts.dev === undefined ? undefined : this.#index(opts.dev);
    return this.addLink(opts.name, {
      kind: 'vxlan',
      mtu: opts.mtu ?? 1450,
      mac: opts.mac,
      up: false,
      vxlan: {
        vni: opts.vni,
        port: opts.port ?? 4789,
        local: opts.local,
        learning: opts.learning ?? false,
        linkIndex: parent,
      },
    });
  }

  async createIpip(opts: IpipOptions): Promise<Link> {
    this.writes++;
    if (this.missingModules.has('ipip')) {
      throw new KernelError('ModuleMissing', { operation: `creating ipip link ${opts.name}` });
    }
    return this.addLink(opts.name, { kind: 'ipip', mtu: opts.mtu ?? 1480, up: false });
  }

  async setLink(ref: LinkRef, settings: LinkSettings): Promise<void> {
    this.writes++;
    const l = this.#link(ref);
    if (!l) throw new NetlinkError({ operation: `setting link ${ref}`, errno: 'ENODEV' });
    if (settings.up !== undefined) l.up = settings.up;
    if (settings.mtu !== undefined) l.mtu = settings.mtu;
    if (settings.mac !== undefined) l.mac = settings.mac;
  }

  async deleteLink(ref: LinkRef, options: { ifExists?: boolean } = {}): Promise<void> {
    this.writes++;
    const l = this.#link(ref);
    if (!l) {
      if (options.ifExists) return;
      throw new NetlinkError({ operation: `deleting link ${ref}`, errno: 'ENODEV' });
    }
    this.removeLink(l.name);
  }

  async listAddresses(filter: { dev?: LinkRef; family?: 4 | 6 } = {}): Promise<Address[]> {
    const index = filter.dev === undefined ? undefined : this.#index(filter.dev);
    return this.addresses.filter(
      (a) => (index === undefined || a.index === index) && (!filter.family || a.family === filter.family),
    );
  }

  async addAddress(dev: LinkRef, cidr: string): Promise<void> {
    this.writes++;
    const index = this.#index(dev);
    const [address, len] = cidr.split('/') as [string, string];
    if (this.addresses.some((a) => a.index === index && a.cidr === cidr)) {
      throw new NetlinkError({ operation: `adding address ${cidr}`, errno: 'EEXIST' });
    }
    this.addresses.push({
      index,
      family: address.includes(':') ? 6 : 4,
      address,
      prefixLen: Number(len),
      cidr,
      scope: 0,
      label: undefined,
    });
  }

  async deleteAddress(dev: LinkRef, cidr: string): Promise<void> {
    this.writes++;
    const index = this.#index(dev);
    this.addresses = this.addresses.filter((a) => !(a.index === index && a.cidr === cidr));
  }

  async listRoutes(filter: RouteFilter = {}): Promise<Route[]> {
    return this.routes.filter(
      (r) =>
        (filter.table === 'all' || r.table === (filter.table ?? 254)) &&
        (filter.family === undefined || r.family === filter.family) &&
        (filter.protocol === undefined || r.protocol === filter.protocol),
    );
  }

  async replaceRoute(input: RouteInput): Promise<void> {
    this.writes++;
    const dev = input.dev === undefined ? undefined : this.#index(input.dev);
    const route: Route = {
      family: input.dst.includes(':') ? 6 : 4,
      dst: input.dst,
      type: input.type ?? 'unicast',
      table: input.table ?? 254,
      protocol: input.protocol ?? 3,
      scope: input.scope === 'link' ? 253 : input.scope === 'host' ? 254 : 0,
      gateway: input.gateway,
      dev,
      src: input.src,
      metric: input.metric,
      onlink: input.onlink ?? false,
      nexthops: [],
      cloned: false,
    };
    this.routes = this.routes.filter((r) => !(r.dst === route.dst && r.table === route.table));
    this.routes.push(route);
  }

  async deleteRoute(input: RouteInput, options: { ifExists?: boolean } = {}): Promise<void> {
    this.writes++;
    const before = this.routes.length;
    this.routes = this.routes.filter((r) => !(r.dst === input.dst && r.table === (input.table ?? 254)));
    if (before === this.routes.length && !options.ifExists) {
      throw new NetlinkError({ operation: `deleting route ${input.dst}`, errno: 'ESRCH' });
    }
  }

  async listNeighbours(filter: { dev?: LinkRef; family?: 4 | 6 } = {}): Promise<Neighbour[]> {
    const index = filter.dev === undefined ? undefined : this.#index(filter.dev);
    return this.neighbours
      .filter((n) => index === undefined || n.dev === index)
      .map((n) => neighbour(n, n.address.includes(':') ? 10 : 2));
  }

  async replaceNeighbour(dev: LinkRef, address: string, mac: string): Promise<void> {
    this.writes++;
    const index = this.#index(dev);
    this.neighbours = this.neighbours.filter((n) => !(n.dev === index && n.address === address));
    this.neighbours.push({ dev: index, address, mac });
  }

  async deleteNeighbour(dev: LinkRef, address: string): Promise<void> {
    this.writes++;
    const index = this.#index(dev);
    this.neighbours = this.neighbours.filter((n) => !(n.dev === index && n.address === address));
  }

  async listFdb(filter: { dev?: LinkRef } = {}): Promise<Neighbour[]> {
    const index = filter.dev === undefined ? undefined : this.#index(filter.dev);
    return this.fdb.filter((n) => index === undefined || n.dev === index).map((n) => neighbour(n, 7));
  }

  async replaceFdb(dev: LinkRef, mac: string, dst: string): Promise<void> {
    this.writes++;
    const index = this.#index(dev);
    this.fdb = this.fdb.filter((n) => !(n.dev === index && n.mac === mac));
    this.fdb.push({ dev: index, address: dst, mac });
  }

  async deleteFdb(dev: LinkRef, mac: string): Promise<void> {
    this.writes++;
    const index = this.#index(dev);
    this.fdb = this.fdb.filter((n) => !(n.dev === index && n.mac === mac));
  }

  setInterfaceSysctls(iface: string, settings: InterfaceSysctls): void {
    this.writes++;
    this.sysctls.set(iface, { ...this.sysctls.get(iface), ...settings });
  }

  setIpForwarding(settings: { ipv4?: boolean; ipv6?: boolean }): void {
    this.forwarding = { ...this.forwarding, ...settings };
  }

  async applyIptables(
    tables: Partial<Record<TableName, IptablesTableState>>,
    options: IptablesApplyOptions = {},
  ): Promise<number> {
    let changed = 0;
    for (const [table, given] of Object.entries(tables) as [TableName, IptablesTableState][]) {
      let state: IptablesTableState = { chains: given.chains, hooks: given.hooks };
      if (options.partial) {
        // Chains not given keep their place and rules; given ones replace or join; removed go.
        const old = this.iptables.get(table) ?? { chains: [], hooks: [] };
        const byName = new Map(given.chains.map((c) => [c.name, c]));
        const gone = new Set(given.removed ?? []);
        const chains = old.chains.filter((c) => !gone.has(c.name)).map((c) => byName.get(c.name) ?? c);
        const known = new Set(old.chains.map((c) => c.name));
        for (const c of given.chains) if (!known.has(c.name)) chains.push(c);
        state = { chains, hooks: given.hooks };
      }
      if (JSON.stringify(this.iptables.get(table)) === JSON.stringify(state)) continue;
      changed++;
      this.iptables.set(table, structuredClone(state));
    }
    this.writes += changed;
    return changed;
  }

  async applyIpsets(sets: IpsetState[], options: { removeStale: boolean; reread?: boolean }): Promise<void> {
    const next = new Map(options.removeStale ? [] : this.ipsets);
    for (const s of sets) next.set(s.name, { ...s, members: [...s.members].sort() });
    if (JSON.stringify([...next]) !== JSON.stringify([...this.ipsets])) this.writes++;
    this.ipsets = next;
  }

  /** Rules of one chain, as applied. */
  chain(table: TableName, name: string): string[] | undefined {
    return this.iptables.get(table)?.chains.find((c) => c.name === name)?.rules;
  }
}

function neighbour(n: MemNeighbour, family: number): Neighbour {
  return {
    family,
    dev: n.dev,
    address: n.address,
    mac: n.mac,
    state: 0x80,
    flags: family === 7 ? 2 : 0,
    vni: undefined,
    permanent: true,
  };
}
