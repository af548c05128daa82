/**
 * A node's affinities to blocks: loading them, claiming the next free block, releasing one or all.
 * Claims and releases follow Calico's two-phase protocol
 * (libcalico-go ipam `claimAffineBlock` / `releaseBlockAffinity`):
 *
 *   claim:   BlockAffinity pending  →  create IPAMBlock (affinity host:<node>)  →  affinity confirmed
 *   release: affinity pendingDeletion  →  delete the empty block (or drop its affinity)  →  delete affinity
 *
 * Affinity names contain the node, so two nodes can both hold a pending affinity for one CIDR; the
 * block create is the arbiter: exactly one create succeeds. A crash between steps leaves a pending
 * or pendingDeletion affinity, which the next claim/release of that block finishes and check() reports.
 */
import { formatMaskedCidr, isDatastoreError } from '@calico-ts/datastore';
import type { AffineBlockCache } from './affine-blocks.ts';
import { hostAffinity, isEmpty, newBlockSpec } from './allocation-block.ts';
import { blocksInOrder } from './block-order.ts';
import { cidrFromText } from './cidr.ts';
import { IpamError } from './errors.ts';
import type { IpPool } from './ip-pools.ts';
import type { AffinityResource, BlockResource, IpamStore } from './ipam-store.ts';

/**
 * The node's affine blocks by CIDR: its affinities that are not being released, with their blocks.
 * A pending affinity whose block is the node's is a claim that died before confirming: finished here.
 */
export async function loadAffineBlocks(store: IpamStore, node: string): Promise<Map<string, BlockResource>> {
  const affinities = await store.retry(`list affinities of ${node}`, () => store.listAffinities(node));
  const mine = hostAffinity(node);
  const loaded = new Map<string, BlockResource>();
  await Promise.all(
    affinities.map(async (a) => {
      if (a.spec.state === 'pendingDeletion') return;
      const block = await store.retry(`read block ${a.spec.cidr}`, () => store.getBlock(a.spec.cidr));
      if (block?.spec.affinity !== mine) return;
      if (a.spec.state === 'pending') await confirmAffinity(store, a);
      loaded.set(block.spec.cidr, block);
    }),
  );
  return loaded;
}

/** Claims the next block nobody holds in the pools (each pool in the node's own order); undefined when none is left. */
export async function claimNextBlock(
  store: IpamStore,
  node: string,
  pools: readonly IpPool[],
): Promise<BlockResource | undefined> {
  const existing = new Set(
    (await store.retry('list blocks', () => store.listBlocks())).map((b) => b.spec.cidr),
  );
  for (const pool of pools) {
    for (const c of blocksInOrder(pool.cidr, pool.blockSize, node)) {
      const cidr = formatMaskedCidr(c);
      if (existing.has(cidr)) continue;
      const block = await claimBlock(store, node, cidr);
      if (block) return block;
      existing.add(cidr);
    }
  }
  return undefined;
}

/** Claims `cidr` for `node`: the block, now affine to the node; undefined when another node has it. */
export async function claimBlock(
  store: IpamStore,
  node: string,
  cidr: string,
): Promise<BlockResource | undefined> {
  const mine = hostAffinity(node);
  // Phase 1: a pending affinity announces the claim.
  const affinity = await store.retry(`claim ${cidr} for ${node}: pending affinity`, async () => {
    try {
      return await store.createAffinity(node, cidr, 'pending');
    } catch (err) {
      if (!isDatastoreError(err, 'AlreadyExists')) throw err;
      // Ours already (an earlier attempt, or a create whose answer was lost): reuse it unless it
      // is being released right now.
      const existing = await store.getAffinity(node, cidr);
      if (existing === undefined) throw err; // soft-deleted meanwhile: retried as a conflict
      return existing;
    }
  });
  if (affinity.spec.state === 'pendingDeletion') return undefined;

  // Phase 2: the block create decides who owns the CIDR.
  const block = await store.retry(`claim ${cidr} for ${node}: create block`, async () => {
    try {
      return await store.createBlock(newBlockSpec(cidr, mine, store.now()));
    } catch (err) {
      if (!isDatastoreError(err, 'AlreadyExists')) throw err;
      const existing = await store.getBlock(cidr);
      if (existing === undefined) throw err; // was soft-deleted: create again
      return existing;
    }
  });
  if (block.spec.affinity !== mine) {
    store.log.debug({ node, cidr, owner: block.spec.affinity }, 'block claimed by another node first');
    await dropAffinity(store, affinity);
    return undefined;
  }

  // Phase 3: confirm, so readers of affinities (BGP export, check()) see a settled claim.
  await confirmAffinity(store, affinity);
  store.log.info({ node, cidr }, 'claimed block');
  return block;
}

/** Sets a pending affinity to confirmed (idempotent; re-reads on conflict). */
export async function confirmAffinity(store: IpamStore, affinity: AffinityResource): Promise<void> {
  let current: AffinityResource | undefined = affinity;
  await store.retry(`confirm affinity ${affinity.metadata.name}`, async (a) => {
    if (a.n > 0) current = await store.getAffinity(affinity.spec.node, affinity.spec.cidr);
    if (current === undefined || current.spec.state !== 'pending') return;
    current = await store.updateAffinity(current, 'confirmed');
  });
}

async function dropAffinity(store: IpamStore, affinity: AffinityResource): Promise<void> {
  let current: AffinityResource | undefined = affinity;
  await store.retry(`drop affinity ${affinity.metadata.name}`, async (a) => {
    if (a.n > 0) current = await store.getAffinity(affinity.spec.node, affinity.spec.cidr);
    if (current === undefined) return;
    await store.softDeleteAffinity(current);
  });
}

export interface ReleaseAffinityOptions {
  /** Refuse (BlockNotEmpty) when the block still has allocations, instead of keeping them affinity-less. */
  mustBeEmpty?: boolean;
}

/**
 * Releases `node`'s affinity to block `cidr`. An empty block is deleted; a block with allocations
 * keeps them but loses its affinity (its addresses stay valid and are released one by one later),
 * unless mustBeEmpty. Returns 'deleted' | 'unaffined' | 'absent'.
 */
export async function releaseBlockAffinity(
  store: IpamStore,
  node: string,
  cidr: string,
  options: ReleaseAffinityOptions = {},
): Promise<'deleted' | 'unaffined' | 'absent'> {
  const mine = hostAffinity(node);
  return store.retry(`release affinity of ${node} to ${cidr}`, async () => {
    const [block, affinity] = await Promise.all([store.getBlock(cidr), store.getAffinity(node, cidr)]);
    if (block === undefined || block.spec.affinity !== mine) {
      // Nothing of ours in the block: only a stale affinity (if any) to clean up.
      if (affinity) await store.softDeleteAffinity(affinity);
      return 'absent';
    }
    const empty = isEmpty(block.spec);
    if (options.mustBeEmpty && !empty) {
      if (affinity?.spec.state === 'pendingDeletion') await store.updateAffinity(affinity, 'confirmed');
      throw new IpamError(
        'BlockNotEmpty',
        `block ${cidr} of node ${node} still has ${block.spec.allocations.length - block.spec.unallocated.length} allocation(s); release them first (calico ipam release) or release without mustBeEmpty`,
      );
    }
    const marked =
      affinity && affinity.spec.state !== 'pendingDeletion'
        ? await store.updateAffinity(affinity, 'pendingDeletion')
        : affinity;
    // The block write is compare-and-swap on the version read above: if an allocation landed
    // meanwhile, this conflicts and the whole release is recomputed.
    if (empty) {
      await store.softDeleteBlock(block);
    } else {
      const { affinity: _a, affinityClaimTime: _t, ...spec } = block.spec;
      await store.updateBlock(block, spec);
    }
    if (marked) await store.softDeleteAffinity(marked);
    store.log.info({ node, cidr, empty }, 'released block affinity');
    return empty ? 'deleted' : 'unaffined';
  });
}

/** Releases a node's affinity to one block (deleted if empty, else kept without affinity). */
export async function releaseNodeAffinity(
  store: IpamStore,
  cache: AffineBlockCache,
  block: string,
  node: string,
  options: ReleaseAffinityOptions = {},
): Promise<void> {
  const cidr = formatMaskedCidr(cidrFromText(block, { requireMasked: true }));
  try {
    await releaseBlockAffinity(store, node, cidr, options);
  } finally {
    cache.delete(node, cidr);
  }
}

/**
 * Releases every affinity of a node (the node went away). With mustBeEmpty, blocks that still
 * have allocations are kept and listed in `kept`.
 */
export async function releaseHostAffinities(
  store: IpamStore,
  cache: AffineBlockCache,
  node: string,
  options: ReleaseAffinityOptions = {},
): Promise<{ released: string[]; kept: string[] }> {
  const affinities = await store.retry(`list affinities of ${node}`, () => store.listAffinities(node));
  const released: string[] = [];
  const kept: string[] = [];
  for (const a of affinities) {
    try {
      await releaseNodeAffinity(store, cache, a.spec.cidr, node, options);
      released.push(a.spec.cidr);
    } catch (err) {
      if (!(err instanceof IpamError && err.code === 'BlockNotEmpty')) throw err;
      kept.push(a.spec.cidr);
    }
  }
  cache.forgetNode(node);
  return { released, kept };
}
