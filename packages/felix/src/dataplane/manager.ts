import type { Address, Link } from '@calico-ts/kernel';
import type { DataplaneUpdate } from '../calc/dataplane-update.ts';
import type { FelixConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Chain, Hook, TableName } from './chains.ts';
import type { DataplaneKernel } from './kernel-port.ts';
import type { RouteTable } from './route-table.ts';

/** What one apply pass sees: a fresh snapshot of links and addresses, and the shared tables. */
export interface ApplyContext {
  kernel: DataplaneKernel;
  config: FelixConfig;
  links: Map<string, Link>;
  addresses: Address[];
  routes: RouteTable;
  log: Logger;
}

/**
 * Felix's manager contract (dataplane.md): onUpdate() records intent and never touches the
 * kernel; completeDeferredWork() does this manager's kernel work in the apply pass. Managers
 * that own iptables content expose it through chains(); the dataplane renders all tables at once.
 */
export interface Manager {
  readonly name: string;
  onUpdate(msg: DataplaneUpdate): void;
  completeDeferredWork(ctx: ApplyContext): Promise<void>;
  /** Chains (and hooks) this manager contributes, per table. */
  chains?(config: FelixConfig): Partial<Record<TableName, { chains: Chain[]; hooks?: Hook[] }>>;
  /**
   * True when this manager's chains changed in its deferred work without any intent changing
   * (kernel state it renders from moved); read once per apply.
   */
  takeIptablesDirty?(): boolean;
  /** The same for ip6tables, from managers whose content has an IPv6 form. */
  chains6?(config: FelixConfig): Partial<Record<TableName, { chains: Chain[]; hooks?: Hook[] }>>;
}
