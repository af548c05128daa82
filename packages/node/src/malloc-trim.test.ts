import { expect, it } from 'vitest';
import { releaseFreedCHeap } from './malloc-trim.ts';

it('trims the C heap through glibc, again on a second call', () => {
  const garbage = Array.from({ length: 2000 }, () => Buffer.alloc(4096, 1));
  expect(garbage).toHaveLength(2000);
  expect(typeof releaseFreedCHeap()).toBe('boolean');
  expect(typeof releaseFreedCHeap()).toBe('boolean');
});
