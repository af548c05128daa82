/**
 * The order in which a node tries a pool's blocks. Calico starts each node at a pseudo-random
 * block seeded by the FNV-32 hash of its hostname, then walks sequentially with wrap-around
 * (libcalico-go ipam `randomBlockGenerator`): nodes booting together don't all race for the first
 * free block, yet one node always tries the same blocks first.
 *
 * The seed is Calico's (FNV-1 32-bit of the hostname); the generator drawn from it is our own
 * (splitmix64), so start indexes do not equal Calico's Go math/rand values.
 */
import type { ParsedCidr } from '@calico-ts/datastore';
import { blockCount, nthBlock } from './cidr.ts';

/** FNV-1 32-bit (Go's hash/fnv New32): multiply by the prime, then xor each byte. */
export function fnv1_32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash = Math.imul(hash, 0x01000193) >>> 0;
    hash = (hash ^ byte) >>> 0;
  }
  return hash;
}

const MASK64 = (1n << 64n) - 1n;

/** splitmix64: a tiny, well-mixed 64-bit generator; good enough to spread start indexes. */
function splitmix64(seed: bigint): () => bigint {
  let state = seed & MASK64;
  return () => {
    state = (state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    return z ^ (z >> 31n);
  };
}

/** Index of the first block `node` tries in a pool of `count` blocks. */
export function startBlockIndex(node: string, count: bigint): bigint {
  if (count <= 1n) return 0n;
  const next = splitmix64(BigInt(fnv1_32(node)));
  // Two draws give 128 bits, so the modulo bias is negligible even for IPv6 pools.
  const r = (next() << 64n) | next();
  return r % count;
}

/** The pool's blocks in the order `node` tries them: from its start index, wrapping around. */
export function* blocksInOrder(pool: ParsedCidr, blockSize: number, node: string): Generator<ParsedCidr> {
  const count = blockCount(pool, blockSize);
  const start = startBlockIndex(node, count);
  for (let i = 0n; i < count; i++) yield nthBlock(pool, blockSize, (start + i) % count);
}
