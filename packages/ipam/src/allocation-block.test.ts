import { describe, expect, it } from 'vitest';
import {
  addressOf,
  allocateFromHead,
  allocateOrdinal,
  allocationSequence,
  countsByHandle,
  inUseCount,
  isEmpty,
  newBlockSpec,
  releaseOrdinals,
  stampWrite,
} from './allocation-block.ts';

describe('allocation block', () => {
  it('hands out ordinals from the head and reuses released ones last (FIFO)', () => {
    const b = newBlockSpec('10.0.0.0/30', 'host:n1', 1_000);
    expect(allocateFromHead(b, 2, 'h1', { pod: 'a' })).toEqual([0, 1]);
    stampWrite(b);
    expect(releaseOrdinals(b, [{ ordinal: 0 }]).released).toEqual([0]);
    expect(b.unallocated).toEqual([2, 3, 0]);
    expect(allocateFromHead(b, 1, 'h2', undefined)).toEqual([2]);
    expect(addressOf(b, 2)).toBe('10.0.0.2');
  });

  it('stamps allocations with the sequence number of their write', () => {
    const b = newBlockSpec('10.0.0.0/30', undefined, 1_000);
    const s0 = b.sequenceNumber;
    expect(s0).toBe(1_000_000);
    allocateFromHead(b, 1, 'h1', undefined);
    stampWrite(b);
    allocateOrdinal(b, 3, 'h2', undefined);
    stampWrite(b);
    expect(allocationSequence(b, 0)).toBe(s0);
    expect(allocationSequence(b, 3)).toBe(s0 + 1);
    const out = releaseOrdinals(b, [
      { ordinal: 3, sequenceNumber: s0 },
      { ordinal: 0, sequenceNumber: s0 },
    ]);
    expect(out.badSequence).toEqual([3]);
    expect(out.released).toEqual([0]);
  });

  it('shares attribute entries and prunes them when unused', () => {
    const b = newBlockSpec('10.0.0.0/30', undefined, 0);
    allocateFromHead(b, 2, 'h1', { pod: 'a' });
    allocateFromHead(b, 1, 'h2', undefined);
    expect(b.attributes).toEqual([{ handle_id: 'h1', secondary: { pod: 'a' } }, { handle_id: 'h2' }]);
    expect(countsByHandle(b)).toEqual(
      new Map([
        ['h1', 2],
        ['h2', 1],
      ]),
    );
    releaseOrdinals(b, [{ ordinal: 0 }, { ordinal: 1 }]);
    expect(b.attributes).toEqual([{ handle_id: 'h2' }]);
    expect(b.allocations).toEqual([null, null, 0, null]);
    expect(inUseCount(b)).toBe(1);
  });

  it('refuses to release another handle’s or a free address', () => {
    const b = newBlockSpec('10.0.0.0/30', undefined, 0);
    allocateFromHead(b, 1, 'h1', undefined);
    const out = releaseOrdinals(b, [{ ordinal: 0, handleId: 'other' }, { ordinal: 1 }]);
    expect(out.otherHandle).toEqual([0]);
    expect(out.notAllocated).toEqual([1]);
    expect(allocateOrdinal(b, 0, 'h2', undefined)).toBe(false);
    expect(isEmpty(b)).toBe(false);
  });
});
