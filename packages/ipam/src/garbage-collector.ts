/**
 * IPAM garbage collection, after Calico's kube-controllers IPAM controller (design/ipam/ipam-gc.md):
 * an allocation whose handle has no live owner is a leak candidate; it is released only after it
 * has stayed dead for the grace period (a pod may be starting and not yet visible), all of a
 * handle's addresses at once, with the sequence numbers seen when the leak was observed and the
 * liveness checked again right before. Empty blocks are released from their node after a
 * cool-down of two observations with no write in between, and never the node's last block.
 */
import { isDatastoreError } from '@calico-ts/datastore';
import {
  addressOf,
  allocationSequence,
  type BlockSpec,
  countsByHandle,
  isEmpty,
} from './allocation-block.ts';
import { releaseBlockAffinity } from './block-affinity.ts';
import { cidrFromText } from './cidr.ts';
import { IpamError } from './errors.ts';
import type { BlockResource, IpamStore } from './ipam-store.ts';

export interface GcOptions {
  /** Handles that belong to live workloads; everything else is a candidate. */
  liveHandles?: Iterable<string>;
  /** Alternatively (or additionally), decide liveness per handle from its allocation attributes. */
  isLive?: (handleId: string, attrs: Record<string, string>) => boolean | Promise<boolean>;
  /** How long a handle must stay dead before its addresses are released. */
  gracePeriodMs: number;
  /** How long an empty block must stay untouched before it is released (default 5 min; Calico: two syncs). */
  emptyBlockCooldownMs?: number;
  /** Release empty blocks at all (default true). */
  releaseEmptyBlocks?: boolean;
}

export interface GcReport {
  /** Dead handles still within their grace period. */
  candidates: string[];
  releasedHandles: string[];
  releasedAddresses: string[];
  /** Blocks released from their node (or deleted, when affinity-less and empty). */
  releasedBlocks: string[];
}

interface Allocation {
  address: string;
  sequenceNumber: number | undefined;
  attrs: Record<string, string>;
}

export class GarbageCollector {
  readonly #store: IpamStore;
  /** Handle → when it was first seen without a live owner. */
  readonly #deadSince = new Map<string, number>();
  /** Block CIDR → the version seen empty, and when. */
  readonly #emptySince = new Map<string, { resourceVersion: string; since: number }>();

  constructor(store: IpamStore) {
    this.#store = store;
  }

  async run(
    options: GcOptions,
    release: (
      requests: { address: string; sequenceNumber?: number; handleId: string }[],
    ) => Promise<{ released: string[] }>,
    forgetBlock: (cidr: string) => void,
  ): Promise<GcReport> {
    if (!options.liveHandles && !options.isLive) {
      throw new IpamError(
        'InvalidArgument',
        'gc needs liveHandles or isLive to tell live handles from leaked ones',
      );
    }
    const now = this.#store.now();
    const live = new Set(options.liveHandles ?? []);
    const report: GcReport = {
      candidates: [],
      releasedHandles: [],
      releasedAddresses: [],
      releasedBlocks: [],
    };
    const blocks = await this.#store.retry('list blocks for gc', () => this.#store.listBlocks());

    const byHandle = new Map<string, Allocation[]>();
    for (const b of blocks) collectAllocations(b.spec, byHandle);
    const isLive = async (h: string, allocs: Allocation[]) =>
      live.has(h) || (options.isLive ? await options.isLive(h, allocs[0]?.attrs ?? {}) : false);

    for (const h of this.#deadSince.keys()) if (!byHandle.has(h)) this.#deadSince.delete(h);
    for (const [h, allocs] of byHandle) {
      if (await isLive(h, allocs)) {
        this.#deadSince.delete(h);
        continue;
      }
      const since = this.#deadSince.get(h) ?? now;
      this.#deadSince.set(h, since);
      if (now - since < options.gracePeriodMs) {
        report.candidates.push(h);
        continue;
      }
      // Liveness again right before releasing: the owner may have appeared since the scan began.
      if (options.isLive && (await options.isLive(h, allocs[0]?.attrs ?? {}))) {
        this.#deadSince.delete(h);
        continue;
      }
      const { released } = await release(
        allocs.map((a) => ({
          address: a.address,
          handleId: h,
          ...(a.sequenceNumber === undefined ? {} : { sequenceNumber: a.sequenceNumber }),
        })),
      );
      this.#deadSince.delete(h);
      report.releasedHandles.push(h);
      report.releasedAddresses.push(...released);
      this.#store.log.info({ handle: h, addresses: released }, 'gc released leaked addresses');
    }

    if (options.releaseEmptyBlocks !== false) {
      const cooldown = options.emptyBlockCooldownMs ?? 5 * 60_000;
      const fresh = await this.#store.retry('list blocks for gc', () => this.#store.listBlocks());
      await this.#releaseEmptyBlocks(fresh, now, cooldown, report, forgetBlock);
    }
    return report;
  }

  async #releaseEmptyBlocks(
    blocks: BlockResource[],
    now: number,
    cooldown: number,
    report: GcReport,
    forgetBlock: (cidr: string) => void,
  ): Promise<void> {
    const seen = new Set<string>();
    // Blocks per node and family: a node's last block is kept so its next pod starts warm.
    const held = new Map<string, number>();
    const familyKey = (b: BlockResource) => `${b.spec.affinity}|${cidrFromText(b.spec.cidr).family}`;
    for (const b of blocks) if (b.spec.affinity) held.set(familyKey(b), (held.get(familyKey(b)) ?? 0) + 1);

    for (const b of blocks) {
      const cidr = b.spec.cidr;
      seen.add(cidr);
      if (!isEmpty(b.spec)) {
        this.#emptySince.delete(cidr);
        continue;
      }
      const rv = b.metadata.resourceVersion ?? '';
      const prior = this.#emptySince.get(cidr);
      if (!prior || prior.resourceVersion !== rv) {
        this.#emptySince.set(cidr, { resourceVersion: rv, since: now });
        if (cooldown > 0) continue;
      } else if (now - prior.since < cooldown) {
        continue;
      }
      const node = /^host:(.+)$/.exec(b.spec.affinity ?? '')?.[1];
      try {
        if (node === undefined) {
          // Affinity-less and empty: nobody will allocate here again, delete it (CAS on the version seen).
          await this.#store.softDeleteBlock(b);
        } else {
          if ((held.get(familyKey(b)) ?? 0) <= 1) continue;
          await releaseBlockAffinity(this.#store, node, cidr, { mustBeEmpty: true });
          held.set(familyKey(b), (held.get(familyKey(b)) ?? 1) - 1);
        }
        forgetBlock(cidr);
        this.#emptySince.delete(cidr);
        report.releasedBlocks.push(cidr);
      } catch (err) {
        // Used again since it was seen empty: keep it; the next run starts its cool-down over.
        if (!(err instanceof IpamError && err.code === 'BlockNotEmpty') && !isDatastoreError(err, 'Conflict'))
          throw err;
        this.#emptySince.delete(cidr);
      }
    }
    for (const cidr of this.#emptySince.keys()) if (!seen.has(cidr)) this.#emptySince.delete(cidr);
  }
}

function collectAllocations(spec: BlockSpec, out: Map<string, Allocation[]>): void {
  if (countsByHandle(spec).size === 0) return;
  spec.allocations.forEach((idx, ord) => {
    if (idx === null) return;
    const attr = spec.attributes[idx];
    // Allocations without a handle cannot be tied to an owner; check() reports them instead.
    if (attr?.handle_id === undefined) return;
    const list = out.get(attr.handle_id) ?? [];
    list.push({
      address: addressOf(spec, ord),
      sequenceNumber: allocationSequence(spec, ord),
      attrs: attr.secondary ?? {},
    });
    out.set(attr.handle_id, list);
  });
}
