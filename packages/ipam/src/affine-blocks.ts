import type { BlockResource } from './ipam-store.ts';

/**
 * What one Ipam instance remembers of each node's affine blocks, so that an allocation usually
 * needs no read before its block write. Never trusted: every write of a cached block is a
 * compare-and-swap against the cached version, and a conflict re-reads. Allocation, release,
 * affinity release and gc keep it current with what they write.
 */
export class AffineBlockCache {
  readonly #byNode = new Map<string, Map<string, BlockResource>>();

  /** The node's affine blocks by CIDR; undefined until loaded. */
  of(node: string): Map<string, BlockResource> | undefined {
    return this.#byNode.get(node);
  }

  load(node: string, blocks: Map<string, BlockResource>): void {
    this.#byNode.set(node, blocks);
  }

  /** Records `block` as one of the node's (if the node's blocks are loaded). */
  set(node: string, block: BlockResource): void {
    this.#byNode.get(node)?.set(block.spec.cidr, block);
  }

  delete(node: string, cidr: string): void {
    this.#byNode.get(node)?.delete(cidr);
  }

  /** The cached version of a block, whichever node holds it. */
  find(cidr: string): BlockResource | undefined {
    for (const blocks of this.#byNode.values()) {
      const b = blocks.get(cidr);
      if (b) return b;
    }
    return undefined;
  }

  /** A block was written: every node that caches it now holds the written version. */
  refresh(block: BlockResource): void {
    for (const blocks of this.#byNode.values()) {
      if (blocks.has(block.spec.cidr)) blocks.set(block.spec.cidr, block);
    }
  }

  /** A block is gone (released or deleted): no node caches it any more. */
  forgetBlock(cidr: string): void {
    for (const blocks of this.#byNode.values()) blocks.delete(cidr);
  }

  forgetNode(node: string): void {
    this.#byNode.delete(node);
  }
}
