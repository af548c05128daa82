/**
 * Claiming and releasing a node's affinity to a block, Calico's two-phase protocol
 * (libcalico-go ipam `claimAffineBlock` / `releaseBlockAffinity`):
 *
 *   claim:   BlockAffinity pending  →  create IPAMBlock (affinity host:<node>)  →  affinity confirmed
 *   release: affinity pendingDeletion  →  delete the empty block (or drop its affinity)  →  delete affinity
 *
 * Affinity names contain the node, so two nodes can both hold a pending affinity for one CIDR; the
 * block create is the arbiter: exactly one create succeeds. A crash between steps leaves a pending
 * or pendingDeletion affinity, which the next claim/release of that block finishes and check() reports.
 */
import { isDatastoreError } from '@calico-ts/datastore';
import { hostAffinity, isEmpty, newBlockSpec } from './allocation-block.ts';
import { IpamError } from './errors.ts';
import type { AffinityResource, BlockResource, IpamStore } from './ipam-store.ts';

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
    await store.softDelete('BlockAffinity', current);
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
      if (affinity) await store.softDelete('BlockAffinity', affinity);
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
      await store.softDelete('IPAMBlock', block);
    } else {
      const { affinity: _a, affinityClaimTime: _t, ...spec } = block.spec;
      await store.updateBlock(block, spec);
    }
    if (marked) await store.softDelete('BlockAffinity', marked);
    store.log.info({ node, cidr, empty }, 'released block affinity');
    return empty ? 'deleted' : 'unaffined';
  });
}
