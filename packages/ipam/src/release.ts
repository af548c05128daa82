/**
 * Giving addresses back (libcalico-go ipam `ReleaseIPs` / `ReleaseByHandle`): each block is
 * written once by compare-and-swap, then the handles it changed are set from the block. Every
 * release is pinned to the allocation's sequence number, so a late or repeated release never
 * frees an address that was handed out again.
 */
import type { AffineBlockCache } from './affine-blocks.ts';
import {
  addressOf,
  allocationSequence,
  type BlockSpec,
  type OrdinalRelease,
  ordinalOf,
  ordinalsOfHandle,
  releaseOrdinals,
  stampWrite,
} from './allocation-block.ts';
import { ipFromText } from './cidr.ts';
import { syncHandle } from './handles.ts';
import type { IpamStore } from './ipam-store.ts';
import { locateBlocks } from './lookup.ts';

export interface ReleaseRequest {
  address: string;
  /** Release only if the allocation still carries this sequence number (from AssignedAddress). */
  sequenceNumber?: number;
  /** Release only if the address belongs to this handle. */
  handleId?: string;
}

export interface ReleaseResult {
  released: string[];
  /** Addresses that were not allocated (already free, or in no block). */
  notAllocated: string[];
  /** Allocated, but not released: reallocated since (BadSequenceNumber) or another handle's. */
  rejected: { address: string; reason: 'BadSequenceNumber' | 'OtherHandle' }[];
}

/** Releases addresses; each block is written once (CAS), then the affected handles. */
export async function releaseIPs(
  store: IpamStore,
  cache: AffineBlockCache,
  ips: readonly (string | ReleaseRequest)[],
): Promise<ReleaseResult> {
  const result: ReleaseResult = { released: [], notAllocated: [], rejected: [] };
  const requests = ips.map((x) => (typeof x === 'string' ? { address: x } : x));
  const byBlock = await locateBlocks(
    store,
    requests.map((r) => r.address),
  );
  const handleBlocks = new Map<string, Map<string, BlockSpec>>();
  for (const r of requests) if (!byBlock.has(r.address)) result.notAllocated.push(r.address);
  const perBlock = new Map<string, ReleaseRequest[]>();
  for (const r of requests) {
    const cidr = byBlock.get(r.address);
    if (cidr) perBlock.set(cidr, [...(perBlock.get(cidr) ?? []), r]);
  }
  await Promise.all(
    [...perBlock].map(async ([cidr, reqs]) => {
      const outcome = await releaseInBlock(store, cache, cidr, reqs);
      result.released.push(...outcome.released);
      result.notAllocated.push(...outcome.notAllocated);
      result.rejected.push(...outcome.rejected);
      for (const h of outcome.handles) {
        if (h === undefined) continue;
        const m = handleBlocks.get(h) ?? new Map<string, BlockSpec>();
        if (outcome.spec) m.set(cidr, outcome.spec);
        handleBlocks.set(h, m);
      }
    }),
  );
  await Promise.all([...handleBlocks].map(([h, blocks]) => syncHandle(store, h, blocks)));
  return result;
}

/** Releases every address of a handle (all-or-none per block) and deletes the handle. */
export async function releaseByHandle(
  store: IpamStore,
  rounds: HandleReleaseRounds,
  handleId: string,
): Promise<string[]> {
  const handle = await store.retry(`read handle ${handleId}`, () => store.getHandle(handleId));
  const cidrs = handle ? Object.keys(handle.spec.block) : await blocksHoldingHandle(store, handleId);
  const released: string[] = [];
  const touched = new Map<string, BlockSpec | undefined>();
  await Promise.all(
    cidrs.map(async (cidr) => {
      const outcome = await rounds.release(cidr, handleId);
      released.push(...outcome.released);
      touched.set(cidr, outcome.spec);
    }),
  );
  await syncHandle(store, handleId, touched, handle ?? null);
  return released;
}

/** What releasing one handle's addresses in one block did. */
export interface HandleReleaseOutcome {
  released: string[];
  /** The block as written (or as read when nothing was to release); undefined when it is gone. */
  spec: BlockSpec | undefined;
}

interface PendingHandleRelease {
  handleId: string;
  resolve: (outcome: HandleReleaseOutcome) => void;
  reject: (err: unknown) => void;
}

/**
 * Releases by handle, block by block. Requests for a block that arrive while a round of that
 * block is being written are served together in its next round: one compare-and-swap write of
 * the block frees the addresses of every handle in the round, so a burst of pod deletions on a
 * node does not turn into a queue of writers conflicting on the node's block.
 */
export class HandleReleaseRounds {
  readonly #store: IpamStore;
  readonly #cache: AffineBlockCache;
  readonly #queues = new Map<string, { waiting: PendingHandleRelease[]; running: boolean }>();

  constructor(store: IpamStore, cache: AffineBlockCache) {
    this.#store = store;
    this.#cache = cache;
  }

  /** Frees every address `handleId` holds in block `cidr`. */
  release(cidr: string, handleId: string): Promise<HandleReleaseOutcome> {
    return new Promise((resolve, reject) => {
      let queue = this.#queues.get(cidr);
      if (!queue) {
        queue = { waiting: [], running: false };
        this.#queues.set(cidr, queue);
      }
      queue.waiting.push({ handleId, resolve, reject });
      if (!queue.running) void this.#drain(cidr, queue);
    });
  }

  async #drain(cidr: string, queue: { waiting: PendingHandleRelease[]; running: boolean }): Promise<void> {
    queue.running = true;
    try {
      while (queue.waiting.length > 0) {
        const batch = queue.waiting.splice(0);
        try {
          const outcomes = await releaseHandlesInBlock(
            this.#store,
            this.#cache,
            cidr,
            batch.map((r) => r.handleId),
          );
          for (const [i, r] of batch.entries()) r.resolve(outcomes[i]!);
        } catch (err) {
          for (const r of batch) r.reject(err);
        }
      }
    } finally {
      queue.running = false;
      if (queue.waiting.length === 0) this.#queues.delete(cidr);
    }
  }
}

/** Blocks holding addresses of a handle whose record is missing (its write was lost): a scan. */
async function blocksHoldingHandle(store: IpamStore, handleId: string): Promise<string[]> {
  const blocks = await store.retry('list blocks', () => store.listBlocks());
  return blocks.filter((b) => ordinalsOfHandle(b.spec, handleId).length > 0).map((b) => b.spec.cidr);
}

/**
 * Frees every address of each handle in one block with one compare-and-swap write. The first try
 * writes against the cached version of the block when the cache holds it and shows every handle
 * in it (the cache is never trusted to say a handle holds nothing there); a conflict re-reads.
 * Once a release is pinned to what the store showed (ordinal and sequence number), retries keep
 * that pin, so a retry after a lost answer cannot free an address handed out again meanwhile.
 */
async function releaseHandlesInBlock(
  store: IpamStore,
  cache: AffineBlockCache,
  cidr: string,
  handleIds: readonly string[],
): Promise<HandleReleaseOutcome[]> {
  let pinned: OrdinalRelease[] | undefined;
  let pinnedFromStore = false;
  let lastOutcome: ReturnType<typeof releaseOrdinals> | undefined;
  let spec: BlockSpec | undefined;
  await store.retry(`release addresses in ${cidr}`, async (a) => {
    const cached = a.n === 0 ? cache.find(cidr) : undefined;
    const fromCache =
      cached !== undefined && handleIds.every((h) => ordinalsOfHandle(cached.spec, h).length > 0);
    const block = fromCache ? cached : await store.getBlock(cidr);
    if (!block) {
      lastOutcome = undefined;
      spec = undefined;
      return;
    }
    if (!pinnedFromStore) {
      pinned = handleIds.flatMap((handleId) =>
        ordinalsOfHandle(block.spec, handleId).map((ordinal) => {
          const seq = allocationSequence(block.spec, ordinal);
          return { ordinal, handleId, ...(seq === undefined ? {} : { sequenceNumber: seq }) };
        }),
      );
      pinnedFromStore = !fromCache;
    }
    const next = structuredClone(block.spec);
    const outcome = releaseOrdinals(next, pinned!);
    if (a.ambiguous && lastOutcome && outcome.released.length === 0) {
      // Our previous write landed: keep its outcome.
      spec = block.spec;
      return;
    }
    lastOutcome = outcome;
    spec = block.spec;
    if (outcome.released.length === 0) return;
    stampWrite(next);
    const written = await store.updateBlock(block, next);
    spec = written.spec;
    cache.refresh(written);
  });
  return handleIds.map((handleId) => ({
    released: (lastOutcome?.released ?? [])
      .filter((o) => lastOutcome!.handles.get(o) === handleId)
      .map((o) => addressOf(spec!, o)),
    spec,
  }));
}

async function releaseInBlock(
  store: IpamStore,
  cache: AffineBlockCache,
  cidr: string,
  requests: readonly ReleaseRequest[],
): Promise<ReleaseResult & { handles: Set<string | undefined>; spec: BlockSpec | undefined }> {
  const ords = new Map<number, ReleaseRequest>();
  let pinned: OrdinalRelease[] | undefined;
  let lastOutcome: ReturnType<typeof releaseOrdinals> | undefined;
  let spec: BlockSpec | undefined;
  await store.retry(`release addresses in ${cidr}`, async (a) => {
    const block = await store.getBlock(cidr);
    if (!block) {
      lastOutcome = undefined;
      return;
    }
    if (!pinned) {
      // Pin each release to the allocation seen now (its sequence number), so a retry after a
      // lost answer cannot free the address if it was released and handed out again meanwhile.
      pinned = requests.map((r) => {
        const ordinal = ordinalOf(block.spec, ipFromText(r.address))!;
        ords.set(ordinal, r);
        const seq = r.sequenceNumber ?? allocationSequence(block.spec, ordinal);
        return {
          ordinal,
          ...(seq === undefined ? {} : { sequenceNumber: seq }),
          ...(r.handleId === undefined ? {} : { handleId: r.handleId }),
        };
      });
    }
    const next = structuredClone(block.spec);
    const outcome = releaseOrdinals(next, pinned);
    if (a.ambiguous && lastOutcome && outcome.released.length === 0) {
      // Our previous write landed: keep its outcome.
      spec = block.spec;
      return;
    }
    lastOutcome = outcome;
    spec = block.spec;
    if (outcome.released.length === 0) return;
    stampWrite(next);
    const written = await store.updateBlock(block, next);
    spec = written.spec;
    // Keep the affine-block cache current so the next allocation's CAS does not fail on it.
    cache.refresh(written);
  });
  const addr = (o: number) => ords.get(o)!.address;
  const o = lastOutcome;
  if (!o) {
    return {
      released: [],
      notAllocated: requests.map((r) => r.address),
      rejected: [],
      handles: new Set(),
      spec,
    };
  }
  return {
    released: o.released.map(addr),
    notAllocated: o.notAllocated.map(addr),
    rejected: [
      ...o.badSequence.map((x) => ({ address: addr(x), reason: 'BadSequenceNumber' as const })),
      ...o.otherHandle.map((x) => ({ address: addr(x), reason: 'OtherHandle' as const })),
    ],
    handles: new Set(o.handles.values()),
    spec,
  };
}
