/**
 * The Linux dataplane driver (int_dataplane.go): receives intent batches, hands each message to
 * every manager, and applies in Felix's order — managers' deferred work (devices, sysctls, FDB),
 * IP set additions, then routes and neighbours alongside all iptables tables in one restore per
 * family, then IP set removals. Nothing is written before the first inSync (restart doctrine):
 * the first apply sees the complete intent and sweeps whatever we own that is no longer wanted.
 */
import { VXLAN_DEVICE } from '@calico-ts/datastore';
import type { Address, Link, NetlinkEvent } from '@calico-ts/kernel';
import type { DataplaneUpdate } from '../calc/dataplane-update.ts';
import { defaultFelixConfig, type FelixConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import { BlackholeManager } from './blackhole-manager.ts';
import { type Chain, type Hook, renderRule, TABLES, type TableName } from './chains.ts';
import { EndpointManager } from './endpoint-manager.ts';
import { HostEndpointManager } from './host-endpoint-manager.ts';
import { IpipManager } from './ipip-manager.ts';
import { IpsetsManager } from './ipsets-manager.ts';
import type { DataplaneKernel, IptablesTableState } from './kernel-port.ts';
import type { ApplyContext, Manager } from './manager.ts';
import { allocateMarkBits, type MarkBits } from './mark-bits.ts';
import { MasqManager } from './masq-manager.ts';
import { PolicyManager } from './policy-manager.ts';
import { RouteTable } from './route-table.ts';
import { staticFilter, staticMangle, staticNat, staticRaw } from './static-chains.ts';
import { VxlanManager } from './vxlan-manager.ts';

export interface ApplyStats {
  durationMs: number;
  routesReplaced: number;
  routesRemoved: number;
  iptablesLines: number;
  /** ip6tables-restore lines written (0 without IPv6). */
  ip6tablesLines: number;
  errors: string[];
  /** Where the time went, in apply order (ms). */
  phasesMs: ApplyPhases;
}

/** The steps of an apply, timed: what a slow apply spent its time on. */
export interface ApplyPhases {
  /** Link and address dumps. */
  netlink: number;
  /** Managers' deferred work (interfaces, sysctls, tunnels). */
  managers: number;
  /** IP set additions (`ipset restore`). */
  ipsets: number;
  /** Route and neighbour writes; they run alongside the iptables phases (not after them). */
  routes: number;
  iptables: number;
  ip6tables: number;
  /** IP set removals after the rules stopped using them. */
  ipsetRemovals: number;
}

export interface InternalDataplaneOptions {
  kernel: DataplaneKernel;
  nodeName: string;
  logger: Logger;
}

export class InternalDataplane {
  readonly #kernel: DataplaneKernel;
  readonly #log: Logger;
  #config: FelixConfig = defaultFelixConfig();
  #marks: MarkBits = allocateMarkBits(this.#config.iptablesMarkMask);
  #inSync = false;
  #forwardingSet = false;
  readonly routes = new RouteTable();
  readonly endpoints: EndpointManager;
  readonly hostEndpoints: HostEndpointManager;
  readonly policy: PolicyManager;
  readonly ipsets = new IpsetsManager();
  readonly masq = new MasqManager();
  readonly vxlan: VxlanManager;
  readonly ipip: IpipManager;
  readonly #managers: Manager[];
  #iptablesDirty = true;
  /** Per table, each chain as last applied (with the Chain it was rendered from) and the hooks. */
  #appliedTables = new Map<TableName, { chains: Map<string, AppliedChain>; hooks: string }>();
  /**
   * The next iptables apply hands over every chain: at start (the kernel layer reads the tables
   * once) and on the periodic refresh or after a failure (it reads them back and repairs drift).
   * Otherwise only chains whose rules changed are handed over, against the remembered state.
   */
  #iptablesResync: 'start' | 'reread' | undefined = 'start';
  #ipsetsReread = false;
  /**
   * Whether the owner delivers every netlink link and address event to onKernelEvent; only then
   * is the last link/address dump reused by the next apply instead of dumped again.
   */
  #eventsWatched = false;
  /** The last dump, while no link or address event has arrived since (see #snapshot). */
  #netlinkSnapshot: { links: Link[]; addresses: Address[]; takenAt: number } | undefined;

  constructor(options: InternalDataplaneOptions) {
    this.#kernel = options.kernel;
    this.#log = options.logger.child({ component: 'dataplane' });
    this.policy = new PolicyManager(() => this.#marks);
    const policy = this.policy;
    this.endpoints = new EndpointManager(
      () => this.#marks,
      (ep) =>
        ep.profileIds.every((p) => policy.hasProfile(p)) &&
        ep.tiers.every((t) => [...t.ingressPolicies, ...t.egressPolicies].every((k) => policy.hasPolicy(k))),
    );
    this.hostEndpoints = new HostEndpointManager(
      () => this.#marks,
      (ep) =>
        ep.profileIds.every((p) => policy.hasProfile(p)) &&
        [...ep.tiers, ...ep.untrackedTiers, ...ep.preDnatTiers, ...ep.forwardTiers].every((t) =>
          [...t.ingressPolicies, ...t.egressPolicies].every((k) => policy.hasPolicy(k)),
        ),
    );
    this.vxlan = new VxlanManager(options.nodeName);
    this.ipip = new IpipManager(options.nodeName);
    this.#managers = [
      this.ipsets,
      this.policy,
      this.endpoints,
      this.hostEndpoints,
      this.masq,
      this.vxlan,
      this.ipip,
      new BlackholeManager(),
    ];
  }

  get inSync(): boolean {
    return this.#inSync;
  }

  get config(): FelixConfig {
    return this.#config;
  }

  onUpdates(batch: readonly DataplaneUpdate[]): void {
    for (const msg of batch) {
      if (msg.type === 'configUpdate') {
        if (this.#kernel.setIptablesBackend?.(msg.config.iptablesBackend) === false) {
          this.#log.warn(
            { iptablesBackend: msg.config.iptablesBackend, was: this.#config.iptablesBackend },
            'iptablesBackend changed while Felix runs; it applies when calico-node restarts',
          );
        }
        this.#config = msg.config;
        this.#marks = allocateMarkBits(msg.config.iptablesMarkMask);
        this.routes.setInterfacePrefixes(msg.config.interfacePrefix.split(',').map((p) => p.trim()));
      } else if (msg.type === 'inSync') {
        this.#inSync = true;
      }
      for (const m of this.#managers) m.onUpdate(msg);
      if (msg.type !== 'inSync') this.#iptablesDirty = true;
    }
  }

  /**
   * The owner subscribed to the kernel's link and address events and hands each one to
   * onKernelEvent (false when it stops): applies may then reuse the last dump until an event says
   * it changed, instead of dumping 200 links and their addresses before every policy change.
   */
  watchKernelEvents(on: boolean): void {
    this.#eventsWatched = on;
    this.#netlinkSnapshot = undefined;
  }

  /** Periodic route refresh: compare every route, neighbour, FDB entry and device again. */
  refreshRoutes(): void {
    this.#netlinkSnapshot = undefined;
    this.routes.markForResync();
    this.vxlan.markDeviceForCheck();
    this.ipip.markForResync();
  }

  /** Periodic iptables/ipset refresh: re-read the kernel and correct any drift. */
  refreshIptables(): void {
    this.#iptablesResync = 'reread';
    this.#iptablesResync6 = 'reread';
    this.#ipsetsReread = true;
    this.#iptablesDirty = true;
    this.ipsets.markForResync();
  }

  /** A link appeared, vanished or changed: endpoints may need configuring, routes retrying. */
  onLinkChange(): void {
    this.#netlinkSnapshot = undefined;
    this.routes.markForResync();
    this.vxlan.markForResync();
  }

  #forwarding(): { ipv4: boolean; ipv6?: boolean } {
    return this.#ipv6Enabled() ? { ipv4: true, ipv6: true } : { ipv4: true };
  }

  /**
   * A change the kernel reported (netlink events): true when it undid something we programmed,
   * which is then marked for the next apply (a link change always is). Our own writes do not
   * count: they match what we want.
   */
  onKernelEvent(event: NetlinkEvent): boolean {
    // Any link or address change, ours included, makes the next apply dump them again.
    if (event.kind === 'link' || event.kind === 'address') this.#netlinkSnapshot = undefined;
    switch (event.kind) {
      case 'link':
        if (event.link.name === VXLAN_DEVICE) this.vxlan.markDeviceForCheck();
        this.onLinkChange();
        return true;
      case 'route':
        if (!this.routes.concerns(event.action, event.route)) return false;
        this.routes.markForResync();
        return true;
      case 'address':
        // Removing a device's last IPv4 address also flushes its routes and neighbours, without
        // route events (fib_disable_ip): those are compared again too.
        if (this.vxlan.address.concerns(event.action, event.address)) {
          this.vxlan.markForResync();
          this.routes.markForResync();
          return true;
        }
        if (this.ipip.address.concerns(event.action, event.address)) {
          this.ipip.markForResync();
          this.routes.markForResync();
          return true;
        }
        return false;
      default:
        return false;
    }
  }

  /**
   * The short-period sysctl check: reads (never writes) the per-interface settings of workload
   * interfaces and IP forwarding; what drifted is written again on the next apply. True then.
   */
  checkSysctls(): boolean {
    if (!this.#inSync) return false;
    let drifted = this.endpoints.checkSysctls(this.#kernel);
    if (
      this.#forwardingSet &&
      this.#kernel.ipForwardingOn &&
      !this.#kernel.ipForwardingOn(this.#forwarding())
    ) {
      this.#forwardingSet = false;
      drifted = true;
    }
    return drifted;
  }

  /**
   * The cheap iptables check, every few seconds instead of a read-back of every table: each
   * built-in chain we hook still jumps to our chain, and each chain a hook jumps to still holds
   * as many rules as we applied. Only those chains are listed, nothing is written. Returns what
   * drifted (the caller then asks for refreshIptables), undefined when all is in place. Chains
   * further down (per endpoint, per policy) are checked by the periodic full refresh.
   */
  async checkIptables(): Promise<string | undefined> {
    const kernel = this.#kernel;
    if (!kernel.listChain || !this.#inSync || this.#iptablesResync !== undefined) return undefined;
    for (const [table, applied] of this.#appliedTables) {
      const hooks: { chain: string; rule: string }[] = JSON.parse(applied.hooks);
      const targets = new Map<string, string[]>();
      for (const h of hooks) {
        const target = /(?:^|\s)-[jg] (\S+)/.exec(h.rule)?.[1];
        if (target) targets.set(h.chain, [...(targets.get(h.chain) ?? []), target]);
      }
      for (const [chain, jumps] of targets) {
        const rules = await kernel.listChain(table, chain);
        const missing = jumps.find((t) => !rules?.some((r) => jumpsTo(r, t)));
        if (missing !== undefined) return `${table}/${chain} no longer jumps to ${missing}`;
      }
      for (const target of new Set([...targets.values()].flat())) {
        const want = applied.chains.get(target);
        if (!want) continue;
        const have = await kernel.listChain(table, target);
        if (have === undefined) return `${table}/${target} is gone`;
        if (have.length !== want.rules.length)
          return `${table}/${target} holds ${have.length} rules, ${want.rules.length} applied`;
      }
    }
    return undefined;
  }

  get pending(): boolean {
    return this.#inSync && (this.#iptablesDirty || this.routes.dirty || this.ipsets.dirty);
  }

  async apply(): Promise<ApplyStats | undefined> {
    if (!this.#inSync) return undefined;
    const started = performance.now();
    const phasesMs: ApplyPhases = {
      netlink: 0,
      managers: 0,
      ipsets: 0,
      routes: 0,
      iptables: 0,
      ip6tables: 0,
      ipsetRemovals: 0,
    };
    let mark = started;
    const phase = (name: keyof ApplyPhases) => {
      const now = performance.now();
      phasesMs[name] += now - mark;
      mark = now;
    };
    const errors: string[] = [];
    if (!this.#forwardingSet && this.#config.ipForwarding === 'Enabled') {
      this.#kernel.setIpForwarding(this.#forwarding());
      this.#forwardingSet = true;
    }
    const { links: linkList, addresses } = await this.#snapshot();
    const links = new Map<string, Link>(linkList.map((l) => [l.name, l]));
    phase('netlink');
    const ctx: ApplyContext = {
      kernel: this.#kernel,
      config: this.#config,
      links,
      addresses: [...addresses],
      routes: this.routes,
      log: this.#log,
    };
    for (const m of this.#managers) {
      try {
        await m.completeDeferredWork(ctx);
      } catch (err) {
        // One manager's failure (a missing module, a vanished interface) must not stop the rest.
        errors.push(`${m.name}: ${(err as Error).message}`);
        this.#log.warn({ err, manager: m.name }, 'manager failed to apply; will retry');
      }
    }
    // Every manager is asked (each flag is read once), then any one of them makes iptables dirty.
    if (this.#managers.map((m) => m.takeIptablesDirty?.() ?? false).some(Boolean)) this.#iptablesDirty = true;
    phase('managers');

    const ipsetsChanged = this.ipsets.dirty;
    if (ipsetsChanged) {
      await this.#kernel.applyIpsets(this.ipsets.desired(this.#ipv6Enabled()), {
        removeStale: false,
        reread: this.#ipsetsReread,
      });
      this.#ipsetsReread = false;
    }
    phase('ipsets');
    // Routes are written while the restores run, as Felix updates its route tables in parallel
    // with iptables: a new endpoint's route and its chains (with its dispatch entry) land together
    // instead of one after the other, and neither waits for the other's process or socket.
    const routesStarted = performance.now();
    const routing = this.routes.apply(this.#kernel, links, this.#log).finally(() => {
      phasesMs.routes = performance.now() - routesStarted;
    });
    let iptablesLines = 0;
    let ip6tablesLines = 0;
    try {
      if (this.#iptablesDirty) {
        iptablesLines = await this.#applyIptables();
        phase('iptables');
        if (this.#ipv6Enabled()) {
          try {
            ip6tablesLines = await this.#applyIptables(6);
          } catch (err) {
            // IPv4 policy stays enforced on a host whose ip6tables fails; the next apply retries
            // from the kernel's state.
            this.#iptablesResync6 = 'reread';
            errors.push(`ip6tables: ${(err as Error).message}`);
            this.#log.warn({ err }, 'ip6tables apply failed; will retry');
          }
        }
        phase('ip6tables');
        this.#iptablesDirty = false;
      }
    } finally {
      // Never leave route writes running into the next apply, whatever the restore did.
      await routing.catch(() => undefined);
    }
    const routeResult = await routing;
    mark = performance.now();
    if (ipsetsChanged) {
      await this.#kernel.applyIpsets(this.ipsets.desired(this.#ipv6Enabled()), { removeStale: true });
      this.ipsets.dirty = false;
    }
    phase('ipsetRemovals');
    // A failed step may come from a stale picture of the links: the retry dumps them again.
    if (errors.length > 0) this.#netlinkSnapshot = undefined;
    const stats: ApplyStats = {
      durationMs: performance.now() - started,
      routesReplaced: routeResult.replaced,
      routesRemoved: routeResult.removed,
      iptablesLines,
      ip6tablesLines,
      errors,
      phasesMs,
    };
    this.#log.debug(stats, 'dataplane applied');
    return stats;
  }

  /**
   * The links and IPv4 addresses an apply works from. Dumped, unless the owner watches kernel
   * events and none arrived since the last dump: then that dump is still the kernel's state. A
   * dump older than SNAPSHOT_MAX_AGE_MS is taken again anyway, so an event lost to a full event
   * socket costs at most that long; the periodic route refresh always dumps.
   */
  async #snapshot(): Promise<{ links: Link[]; addresses: Address[] }> {
    const now = performance.now();
    const kept = this.#netlinkSnapshot;
    if (this.#eventsWatched && kept && now - kept.takenAt < SNAPSHOT_MAX_AGE_MS) return kept;
    this.#netlinkSnapshot = undefined;
    // One netlink socket: dumps run one after the other (interleaved multipart replies break).
    const links = await this.#kernel.netlink.listLinks();
    const addresses = await this.#kernel.netlink.listAddresses({ family: 4 });
    // Managers add to the per-apply map (a device they created), never to these arrays.
    if (this.#eventsWatched) this.#netlinkSnapshot = { links, addresses, takenAt: now };
    return { links, addresses };
  }

  /**
   * Hands the kernel layer the chains that changed since the last apply (all of them on a
   * resync). A chain whose Chain object is the one applied last time (policy chains are cached
   * per policy) is neither rendered nor compared; the others are rendered and compared rule by
   * rule with what was applied. `family` 6: the same for ip6tables.
   */
  async #applyIptables(family: 4 | 6 = 4): Promise<number> {
    const contents: Partial<Record<TableName, { chains: Chain[]; hooks: Hook[] }>> =
      family === 4 ? this.#tableContents() : this.#tableContents6();
    const resync = family === 4 ? this.#iptablesResync : this.#iptablesResync6;
    const applied = family === 4 ? this.#appliedTables : this.#appliedTables6;
    const changed: Partial<Record<TableName, IptablesTableState>> = {};
    const next = new Map<TableName, { chains: Map<string, AppliedChain>; hooks: string }>();
    for (const t of TABLES) {
      const content = contents[t];
      if (!content) continue;
      const last = resync ? undefined : applied.get(t);
      const chains = new Map<string, AppliedChain>();
      const dirty: { name: string; rules: string[] }[] = [];
      for (const c of content.chains) {
        const prev = last?.chains.get(c.name);
        if (prev?.source === c) {
          chains.set(c.name, prev);
          continue;
        }
        const rules = c.rules.map(renderRule);
        chains.set(c.name, { source: c, rules });
        if (!prev || !sameRules(prev.rules, rules)) dirty.push({ name: c.name, rules });
      }
      const hooks = content.hooks.flatMap((h) =>
        h.rules.map((r) => ({ chain: h.chain, position: h.position, rule: renderRule(r) })),
      );
      const hooksText = JSON.stringify(hooks);
      next.set(t, { chains, hooks: hooksText });
      if (!last) {
        changed[t] = { chains: [...chains].map(([name, c]) => ({ name, rules: c.rules })), hooks };
        continue;
      }
      const removed = [...last.chains.keys()].filter((n) => !chains.has(n));
      if (dirty.length > 0 || removed.length > 0 || hooksText !== last.hooks)
        changed[t] = { chains: dirty, hooks, removed };
    }
    let lines = 0;
    if (Object.keys(changed).length > 0) {
      const options = resync ? { reread: resync === 'reread' } : { partial: true };
      lines =
        family === 4
          ? await this.#kernel.applyIptables(changed, options)
          : ((await this.#kernel.applyIp6tables?.(changed, options)) ?? 0);
    }
    if (family === 4) {
      this.#appliedTables = next;
      this.#iptablesResync = undefined;
    } else {
      this.#appliedTables6 = next;
      this.#iptablesResync6 = undefined;
    }
    return lines;
  }

  /** IPv6 policy is programmed when FelixConfiguration ipv6Support is on and the kernel has ip6tables. */
  #ipv6Enabled(): boolean {
    return this.#config.ipv6Support && this.#kernel.applyIp6tables !== undefined;
  }

  /** The ip6tables counterparts of #appliedTables and #iptablesResync. */
  #appliedTables6 = new Map<TableName, { chains: Map<string, AppliedChain>; hooks: string }>();
  #iptablesResync6: 'start' | 'reread' | undefined = 'start';

  /**
   * The ip6tables tables: the static raw, mangle and filter chains in their IPv6 form and the
   * chains of the managers that have one (policies, workload and host endpoints); no nat table
   * (IPv6 NAT outgoing is not built).
   */
  #tableContents6(): Partial<Record<TableName, { chains: Chain[]; hooks: Hook[] }>> {
    const config = this.#config;
    const contents: Partial<Record<TableName, { chains: Chain[]; hooks: Hook[] }>> = {
      raw: staticRaw(config, this.#marks, 6),
      mangle: staticMangle(config, this.#marks, 6),
      filter: staticFilter(config, this.#marks, 6),
    };
    for (const m of this.#managers) {
      const extra = m.chains6?.(config) ?? {};
      for (const t of TABLES) {
        const add = extra[t];
        const into = contents[t];
        if (!add || !into) continue;
        into.chains.push(...add.chains);
        into.hooks.push(...(add.hooks ?? []));
      }
    }
    return contents;
  }

  #tableContents(): Record<TableName, { chains: Chain[]; hooks: Hook[] }> {
    const config = this.#config;
    const contents: Record<TableName, { chains: Chain[]; hooks: Hook[] }> = {
      raw: staticRaw(config, this.#marks),
      mangle: staticMangle(config, this.#marks),
      nat: staticNat(config, this.masq.natOutgoingChain(config)),
      filter: staticFilter(config, this.#marks),
    };
    for (const m of this.#managers) {
      const extra = m.chains?.(config) ?? {};
      for (const t of TABLES) {
        const add = extra[t];
        if (!add) continue;
        contents[t].chains.push(...add.chains);
        contents[t].hooks.push(...(add.hooks ?? []));
      }
    }
    return contents;
  }

  counts(): { endpoints: number; routes: number; ipsets: number } {
    return { endpoints: this.endpoints.count, routes: this.routes.programmed, ipsets: this.ipsets.count };
  }
}

/** How long a link/address dump is reused at most while no event says it changed. */
const SNAPSHOT_MAX_AGE_MS = 10_000;

interface AppliedChain {
  source: Chain;
  rules: string[];
}

/** Whether an `iptables -S` rule jumps (-j) or goes (-g) to `target`. */
function jumpsTo(rule: string, target: string): boolean {
  const words = rule.split(/\s+/);
  for (let i = 0; i + 1 < words.length; i++)
    if ((words[i] === '-j' || words[i] === '-g') && words[i + 1] === target) return true;
  return false;
}

function sameRules(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
