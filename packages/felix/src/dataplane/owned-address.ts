/**
 * The one address a tunnel device of ours carries (vxlan.calico, tunl0), as the last apply left
 * it, so an address event from the kernel can be judged: someone removed ours, or added another.
 */
import type { Address } from '@calico-ts/kernel';

export class OwnedAddress {
  #index: number | undefined;
  #cidr: string | undefined;

  /** After an apply: device `index` holds exactly `cidr` (none when undefined). */
  set(index: number, cidr: string | undefined): void {
    this.#index = index;
    this.#cidr = cidr;
  }

  /** Whether the change undoes what we programmed (our own add or removal never does). */
  concerns(action: 'new' | 'del', address: Address): boolean {
    if (this.#index === undefined || address.index !== this.#index || address.family !== 4) return false;
    return action === 'del' ? address.cidr === this.#cidr : address.cidr !== this.#cidr;
  }
}
