/**
 * IP sets from the intent stream (ipsets.go): full updates, deltas and removes are folded into
 * the desired state; the dataplane applies additions before iptables and removals after it,
 * so a rule never references a set that does not exist.
 */
import type { DataplaneUpdate, IpsetType } from '../calc/dataplane-update.ts';
import { policyIpsetName } from '../calc/policy/rule-render.ts';
import { memberFamily } from '../calc/policy/selector-index.ts';
import type { IpsetState } from './kernel-port.ts';
import type { Manager } from './manager.ts';
import { ipsetName } from './static-chains.ts';

export class IpsetsManager implements Manager {
  readonly name = 'ipsets';
  #sets = new Map<string, { type: IpsetType; members: Set<string> }>();
  #dirty = true;

  onUpdate(msg: DataplaneUpdate): void {
    switch (msg.type) {
      case 'ipsetUpdate':
        this.#sets.set(msg.id, { type: msg.ipsetType, members: new Set(msg.members) });
        break;
      case 'ipsetDeltaUpdate': {
        const set = this.#sets.get(msg.id);
        if (!set) return;
        for (const m of msg.removedMembers) set.members.delete(m);
        for (const m of msg.addedMembers) set.members.add(m);
        break;
      }
      case 'ipsetRemove':
        this.#sets.delete(msg.id);
        break;
      default:
        return;
    }
    this.#dirty = true;
  }

  async completeDeferredWork(): Promise<void> {}

  markForResync(): void {
    this.#dirty = true;
  }

  get dirty(): boolean {
    return this.#dirty;
  }

  set dirty(value: boolean) {
    this.#dirty = value;
  }

  get count(): number {
    return this.#sets.size;
  }

  /**
   * The kernel sets: `cali40<id>` with the IPv4 members; with `ipv6`, also `cali60<id>` (family
   * inet6) with the IPv6 members of each policy set (selector and named-port ids, `s:`/`n:`).
   */
  desired(ipv6 = false): IpsetState[] {
    const out: IpsetState[] = [];
    for (const [id, s] of this.#sets) {
      const members = [...s.members].sort();
      out.push({ name: ipsetName(id), type: s.type, members: members.filter((m) => memberFamily(m) === 4) });
      if (ipv6 && /^[sn]:/.test(id)) {
        out.push({
          name: policyIpsetName(id, 6),
          type: s.type,
          family: 6,
          members: members.filter((m) => memberFamily(m) === 6),
        });
      }
    }
    return out;
  }
}
