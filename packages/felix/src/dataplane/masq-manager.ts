/**
 * NAT outgoing (masq_mgr.go, calico-internals §3.6): traffic from a natOutgoing pool to anywhere
 * outside every pool is masqueraded. Pool membership lives in the `cali40masq-ipam-pools` and
 * `cali40network-ip-pools` sets, which the calc graph maintains; this manager only decides
 * whether the rule exists and what it does.
 */
import {
  type DataplaneUpdate,
  IPSET_ALL_POOLS,
  IPSET_MASQ_POOLS,
  type IpamPool,
} from '../calc/dataplane-update.ts';
import type { FelixConfig } from '../config.ts';
import type { Chain, TableName } from './chains.ts';
import type { Manager } from './manager.ts';
import { ipsetName } from './static-chains.ts';

export const NAT_OUTGOING_CHAIN = 'cali-nat-outgoing';

export class MasqManager implements Manager {
  readonly name = 'masq';
  #pools = new Map<string, IpamPool>();

  onUpdate(msg: DataplaneUpdate): void {
    if (msg.type === 'ipamPoolUpdate') this.#pools.set(msg.id, msg.pool);
    else if (msg.type === 'ipamPoolRemove') this.#pools.delete(msg.id);
  }

  async completeDeferredWork(): Promise<void> {}

  natOutgoingChain(config: FelixConfig): Chain {
    const anyMasq = [...this.#pools.values()].some((p) => p.masquerade && !p.cidr.includes(':'));
    if (!anyMasq) return { name: NAT_OUTGOING_CHAIN, rules: [] };
    const action = config.natOutgoingAddress
      ? `-j SNAT --to-source ${config.natOutgoingAddress} --random-fully`
      : '-j MASQUERADE --random-fully';
    return {
      name: NAT_OUTGOING_CHAIN,
      rules: [
        {
          match: `-m set --match-set ${ipsetName(IPSET_MASQ_POOLS)} src -m set ! --match-set ${ipsetName(IPSET_ALL_POOLS)} dst`,
          action,
        },
      ],
    };
  }

  chains(): Partial<Record<TableName, { chains: Chain[] }>> {
    // Rendered into the nat table by the static chains (it is referenced from cali-POSTROUTING).
    return {};
  }
}
