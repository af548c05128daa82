/**
 * What the dataplane needs from the kernel, narrowed to one interface so managers are tested
 * against an in-memory kernel in milliseconds and run against @calico-ts/kernel for real. The
 * netlink part is the kernel package's own `Netlink` surface; iptables and IP sets are whole
 * desired states the kernel layer diffs and applies in one batch per table.
 */
import type { InterfaceSysctls, Netlink, NetlinkEvent, Subscription } from '@calico-ts/kernel';
import type { IptablesBackendSetting } from '../config.ts';
import type { TableName } from './chains.ts';

export type NetlinkPort = Pick<
  Netlink,
  | 'listLinks'
  | 'findLink'
  | 'createVxlan'
  | 'createIpip'
  | 'setLink'
  | 'deleteLink'
  | 'listAddresses'
  | 'addAddress'
  | 'deleteAddress'
  | 'listRoutes'
  | 'replaceRoute'
  | 'deleteRoute'
  | 'listNeighbours'
  | 'replaceNeighbour'
  | 'deleteNeighbour'
  | 'listFdb'
  | 'replaceFdb'
  | 'deleteFdb'
>;

/** One table's Calico-owned content: rules are iptables-restore arguments without `-A <chain>`. */
export interface IptablesTableState {
  chains: { name: string; rules: string[] }[];
  hooks: { chain: string; position: 'insert' | 'append'; rule: string }[];
  /** Partial apply only: chains with our prefix to delete. */
  removed?: string[];
}

export interface IptablesApplyOptions {
  /** `chains` are only the changed ones: the others stay as applied; `removed` go. */
  partial?: boolean;
  /** Read the kernel back first (the periodic refresh): whatever drifted is repaired. */
  reread?: boolean;
}

export interface IpsetState {
  name: string;
  type: 'hash:net' | 'hash:ip' | 'hash:ip,port';
  /** 6 for an inet6 set (`cali60…`); IPv4 otherwise. */
  family?: 4 | 6;
  members: string[];
}

export interface DataplaneKernel {
  readonly netlink: NetlinkPort;
  setInterfaceSysctls(iface: string, settings: InterfaceSysctls): void;
  setIpForwarding(settings: { ipv4?: boolean; ipv6?: boolean }): void;
  /**
   * Makes the `cali-` chains of each given table exactly `chains` (others with our prefix are
   * removed; with `partial`, only `chains` change and `removed` go) and our hook rules present
   * in the kernel chains; one restore, minimal diff against the last applied state (the kernel
   * is read back only with `reread`, the first time, or after a failed write).
   * Returns the number of restore lines written (0 when the kernel already matched).
   */
  applyIptables(
    tables: Partial<Record<TableName, IptablesTableState>>,
    options?: IptablesApplyOptions,
  ): Promise<number>;
  /**
   * Brings our (`cali`-prefixed) IP sets to `sets`; with removeStale, owned sets not listed are
   * destroyed (done after iptables stops referencing them); `reread` reads the kernel back first.
   */
  applyIpsets(sets: IpsetState[], options: { removeStale: boolean; reread?: boolean }): Promise<void>;
  /**
   * The same for ip6tables. A kernel without it gets no IPv6 rules.
   */
  applyIp6tables?(
    tables: Partial<Record<TableName, IptablesTableState>>,
    options?: IptablesApplyOptions,
  ): Promise<number>;
  /**
   * Link, address and route changes: a workload interface is configured as soon as it appears,
   * and a route or address we own that someone else changes is restored at once.
   */
  subscribe?(listener: (event: NetlinkEvent) => void): Subscription;
  /**
   * FelixConfiguration iptablesBackend, handed over with every config update: decides the iptables
   * binaries until they are first used (false when a different back end is already in use).
   */
  setIptablesBackend?(backend: IptablesBackendSetting): boolean;
  /** One chain's rules as `iptables -S` prints them (undefined: no such chain); for the drift check. */
  listChain?(table: TableName, chain: string): Promise<string[] | undefined>;
  /** Interfaces among `wanted` whose sysctls differ from what we set (a cheap read, no writes). */
  interfaceSysctlsDrifted?(wanted: ReadonlyMap<string, InterfaceSysctls>): string[];
  /** Whether IP forwarding reads as on for the given families. */
  ipForwardingOn?(settings: { ipv4?: boolean; ipv6?: boolean }): boolean;
  /**
   * A device's offload features by ethtool name (`tx-checksum-ip-generic` → on). Rejects with a
   * KernelError of errno ENOENT when the host has no ethtool.
   */
  deviceFeatures?(dev: string): Promise<Map<string, boolean>>;
  /** Sets offload features of a device; ENOENT as for deviceFeatures. */
  setDeviceFeatures?(dev: string, features: Readonly<Record<string, boolean>>): Promise<void>;
}
