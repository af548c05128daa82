/**
 * What the dataplane needs from the kernel, narrowed to one interface so managers are tested
 * against an in-memory kernel in milliseconds and run against @calico-ts/kernel for real. The
 * netlink part is the kernel package's own `Netlink` surface; iptables and IP sets are whole
 * desired states the kernel layer diffs and applies in one batch per table.
 */
import type { InterfaceSysctls, Netlink, NetlinkEvent, Subscription } from '@calico-ts/kernel';
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
  hooks: { chain: string; position: 'insert' | 'append'; rules: string[] }[];
}

export interface IpsetState {
  name: string;
  type: 'hash:net' | 'hash:ip' | 'hash:ip,port';
  members: string[];
}

export interface DataplaneKernel {
  readonly netlink: NetlinkPort;
  setInterfaceSysctls(iface: string, settings: InterfaceSysctls): void;
  setIpForwarding(settings: { ipv4?: boolean; ipv6?: boolean }): void;
  /**
   * Makes the `cali-` chains of `table` exactly `state.chains` (others with our prefix are
   * removed) and our hook rules present in the kernel chains; one restore, minimal diff.
   */
  applyIptables(table: TableName, state: IptablesTableState): Promise<void>;
  /** Makes our (`cali`-prefixed) IP sets exactly `sets`; sets not listed are destroyed. */
  applyIpsets(sets: IpsetState[]): Promise<void>;
  /** Link changes, to configure a workload interface as soon as it appears. */
  subscribe?(listener: (event: NetlinkEvent) => void): Subscription;
}
