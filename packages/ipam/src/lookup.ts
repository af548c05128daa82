/**
 * Where addresses are recorded: the block an address lies in, the blocks and addresses a handle
 * holds, and who holds one address. Reads only.
 */
import { formatMaskedCidr } from '@calico-ts/datastore';
import {
  addressOf,
  allocationSequence,
  attributeAt,
  ordinalOf,
  ordinalsOfHandle,
} from './allocation-block.ts';
import { blockOf, ipFromText } from './cidr.ts';
import { poolOf } from './ip-pools.ts';
import type { BlockResource, IpamStore } from './ipam-store.ts';

export interface AssignmentAttributes {
  address: string;
  block: string;
  handleId: string | undefined;
  attrs: Record<string, string>;
  sequenceNumber: number | undefined;
  /** The node the block is affine to, if any. */
  blockAffinity: string | undefined;
}

/** Block CIDR of each address that lies in an existing block. */
export async function locateBlocks(
  store: IpamStore,
  addresses: readonly string[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const pools = await store.retry('list pools', () => store.listPools());
  let blocks: BlockResource[] | undefined;
  for (const address of addresses) {
    const ip = ipFromText(address);
    const pool = poolOf(pools, ip);
    if (pool) {
      out.set(address, formatMaskedCidr(blockOf(ip, pool.blockSize)));
      continue;
    }
    // The pool may be gone while its blocks remain: find the block itself.
    blocks ??= await store.retry('list blocks', () => store.listBlocks());
    const b = blocks.find((x) => ordinalOf(x.spec, ip) !== undefined);
    if (b) out.set(address, b.spec.cidr);
  }
  return out;
}

/**
 * Blocks a handle is recorded in; a missing handle means scanning blocks (an allocation whose
 * handle write was lost).
 */
export async function blocksOfHandle(store: IpamStore, handleId: string): Promise<string[]> {
  const handle = await store.retry(`read handle ${handleId}`, () => store.getHandle(handleId));
  if (handle) return Object.keys(handle.spec.block);
  const blocks = await store.retry('list blocks', () => store.listBlocks());
  return blocks.filter((b) => ordinalsOfHandle(b.spec, handleId).length > 0).map((b) => b.spec.cidr);
}

/** Addresses a handle holds. */
export async function ipsByHandle(store: IpamStore, handleId: string): Promise<string[]> {
  const cidrs = await blocksOfHandle(store, handleId);
  const out: string[] = [];
  for (const cidr of cidrs) {
    const block = await store.retry(`read block ${cidr}`, () => store.getBlock(cidr));
    if (block) out.push(...ordinalsOfHandle(block.spec, handleId).map((o) => addressOf(block.spec, o)));
  }
  return out;
}

/** Who holds an address; undefined when it is not allocated. */
export async function assignmentAttributes(
  store: IpamStore,
  address: string,
): Promise<AssignmentAttributes | undefined> {
  const ip = ipFromText(address);
  const cidr = (await locateBlocks(store, [address])).get(address);
  if (!cidr) return undefined;
  const block = await store.retry(`read block ${cidr}`, () => store.getBlock(cidr));
  if (!block) return undefined;
  const ord = ordinalOf(block.spec, ip)!;
  const attr = attributeAt(block.spec, ord);
  if (!attr) return undefined;
  return {
    address: addressOf(block.spec, ord),
    block: cidr,
    handleId: attr.handle_id,
    attrs: { ...(attr.secondary ?? {}) },
    sequenceNumber: allocationSequence(block.spec, ord),
    blockAffinity: block.spec.affinity,
  };
}
