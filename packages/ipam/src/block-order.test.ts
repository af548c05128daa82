import { formatMaskedCidr } from '@calico-ts/datastore';
import { describe, expect, it } from 'vitest';
import { blocksInOrder, fnv1_32, startBlockIndex } from './block-order.ts';
import { cidrFromText } from './cidr.ts';

describe('random block start', () => {
  it('hashes hostnames with FNV-1 32-bit (Go hash/fnv New32)', () => {
    // Reference values of FNV-1 (not FNV-1a) 32-bit.
    expect(fnv1_32('')).toBe(0x811c9dc5);
    expect(fnv1_32('a')).toBe(0x050c5d7e);
    expect(fnv1_32('foobar')).toBe(0x31f0b262);
  });

  it('gives each node a stable start, spread over the pool', () => {
    expect(startBlockIndex('node-1', 1024n)).toBe(startBlockIndex('node-1', 1024n));
    const starts = new Set(Array.from({ length: 50 }, (_, i) => startBlockIndex(`node-${i}`, 1024n)));
    expect(starts.size).toBeGreaterThan(45);
    for (const s of starts) expect(s).toBeLessThan(1024n);
  });

  it('walks every block once, wrapping around from the start', () => {
    const pool = cidrFromText('10.0.0.0/24');
    const order = [...blocksInOrder(pool, 26, 'node-a')].map(formatMaskedCidr);
    expect(new Set(order).size).toBe(4);
    const start = Number(startBlockIndex('node-a', 4n));
    expect(order[0]).toBe(`10.0.0.${start * 64}/26`);
  });
});
