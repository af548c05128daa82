/**
 * The real kernel behind the DataplaneKernel port: one netlink socket, iptables and ipset
 * drivers, all bound to the node's network namespace (or our own), from @calico-ts/kernel.
 */
import {
  type InterfaceSysctls,
  Ipsets,
  Iptables,
  type IptablesBackend,
  interfaceSysctlsDrifted,
  ipForwardingOn,
  Netlink,
  type NetlinkEvent,
  type NetNamespace,
  readDeviceFeatures,
  type Subscription,
  setDeviceFeatures,
  setInterfaceSysctls,
  setIpForwarding,
} from '@calico-ts/kernel';
import type { IptablesBackendSetting } from '../config.ts';
import type { TableName } from './chains.ts';
import type {
  DataplaneKernel,
  IpsetState,
  IptablesApplyOptions,
  IptablesTableState,
  NetlinkPort,
} from './kernel-port.ts';

export class LinuxKernel implements DataplaneKernel {
  readonly namespace: NetNamespace | undefined;
  readonly #netlink: Netlink;
  readonly #iptables: Iptables;
  readonly #ip6tables: Iptables;
  readonly #ipsets: Ipsets;

  /** `iptablesBackend`: a configured back end from the start (no detection); Auto by default. */
  constructor(namespace?: NetNamespace, options: { iptablesBackend?: IptablesBackendSetting } = {}) {
    this.namespace = namespace;
    this.#netlink = Netlink.open(namespace);
    const backend = iptablesBackend(options.iptablesBackend ?? 'Auto');
    this.#iptables = new Iptables({ namespace, family: 4, backend });
    this.#ip6tables = new Iptables({ namespace, family: 6, backend });
    this.#ipsets = new Ipsets({ namespace });
  }

  get netlink(): NetlinkPort {
    return this.#netlink;
  }

  /** How often iptables-save / ipset save were read back and iptables-restore run so far. */
  get readBacks(): {
    iptablesReads: number;
    iptablesRestores: number;
    ipsetReads: number;
    /** iptables back-end detections (IPv4 and IPv6); 0 with a configured back end. */
    iptablesDetections: number;
    /** iptables-save processes run (IPv4 and IPv6), besides those of a detection. */
    iptablesSaves: number;
  } {
    return {
      iptablesReads: this.#iptables.reads,
      iptablesRestores: this.#iptables.restores,
      ipsetReads: this.#ipsets.reads,
      iptablesDetections: this.#iptables.detections + this.#ip6tables.detections,
      iptablesSaves: this.#iptables.saves + this.#ip6tables.saves,
    };
  }

  setInterfaceSysctls(iface: string, settings: InterfaceSysctls): void {
    setInterfaceSysctls(iface, settings, this.namespace);
  }

  setIpForwarding(settings: { ipv4?: boolean; ipv6?: boolean }): void {
    setIpForwarding(settings, this.namespace);
  }

  interfaceSysctlsDrifted(wanted: ReadonlyMap<string, InterfaceSysctls>): string[] {
    return interfaceSysctlsDrifted(wanted, this.namespace);
  }

  ipForwardingOn(settings: { ipv4?: boolean; ipv6?: boolean }): boolean {
    return ipForwardingOn(settings, this.namespace);
  }

  async deviceFeatures(dev: string): Promise<Map<string, boolean>> {
    const features = await readDeviceFeatures(dev, this.namespace);
    return new Map([...features].map(([name, f]) => [name, f.on]));
  }

  setDeviceFeatures(dev: string, features: Readonly<Record<string, boolean>>): Promise<void> {
    return setDeviceFeatures(dev, features, this.namespace);
  }

  setIptablesBackend(setting: IptablesBackendSetting): boolean {
    const backend = iptablesBackend(setting);
    // Both families or neither: a refused change leaves each on the back end it uses.
    return this.#iptables.setBackend(backend) && this.#ip6tables.setBackend(backend);
  }

  /** The back end each family runs, detecting it if not yet known. */
  async iptablesBackends(): Promise<{ ipv4: IptablesBackend; ipv6: IptablesBackend }> {
    return { ipv4: await this.#iptables.backend(), ipv6: await this.#ip6tables.backend() };
  }

  listChain(table: TableName, chain: string): Promise<string[] | undefined> {
    return this.#iptables.listChain(table, chain);
  }

  async applyIptables(
    tables: Partial<Record<TableName, IptablesTableState>>,
    options: IptablesApplyOptions = {},
  ): Promise<number> {
    return (await this.#iptables.apply(restoreTables(tables), options)).lines;
  }

  async applyIpsets(sets: IpsetState[], options: { removeStale: boolean; reread?: boolean }): Promise<void> {
    await this.#ipsets.apply(
      sets.map((s) => ({
        name: s.name,
        type: s.type,
        family: s.family === 6 ? ('inet6' as const) : ('inet' as const),
        members: s.members,
      })),
      options,
    );
  }

  async applyIp6tables(
    tables: Partial<Record<TableName, IptablesTableState>>,
    options: IptablesApplyOptions = {},
  ): Promise<number> {
    return (await this.#ip6tables.apply(restoreTables(tables), options)).lines;
  }

  subscribe(listener: (event: NetlinkEvent) => void): Subscription {
    return this.#netlink.subscribe(['link', 'address', 'route'], listener);
  }

  close(): void {
    this.#netlink.close();
    this.#iptables.close();
    this.#ip6tables.close();
    this.#ipsets.close();
  }
}

/** Our tables as the kernel layer's iptables-restore input (for either family). */
function restoreTables(tables: Partial<Record<TableName, IptablesTableState>>) {
  return (Object.entries(tables) as [TableName, IptablesTableState][]).map(([table, state]) => ({
    table,
    chains: Object.fromEntries(state.chains.map((c) => [c.name, c.rules])),
    hooks: state.hooks,
    ...(state.removed ? { remove: state.removed } : {}),
  }));
}

function iptablesBackend(setting: IptablesBackendSetting): IptablesBackend | 'auto' {
  return setting === 'Legacy' ? 'legacy' : setting === 'NFT' ? 'nft' : 'auto';
}
