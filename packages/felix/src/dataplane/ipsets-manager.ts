/**
 * IP sets from the intent stream (ipsets.go): full updates, deltas and removes are folded into
 * the desired state; the dataplane applies additions before iptables and removals after it,
 * so a rule never references a set that does not exist.
 */
import type { DataplaneUpdate, IpsetType } from '../calc/dataplane-update.ts';
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

  desired(): IpsetState[] {
    return [...this.#sets].map(([id, s]) => ({
      name: ipsetName(id),
      type: s.type,
      members: [...s.members].sort(),
    }));
  }
}
