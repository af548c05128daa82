import { expect, it } from 'vitest';
import { cHeapTrimAvailable, releaseFreedCHeap } from './malloc-trim.ts';

/** Node's report names the glibc it runs on; undefined on musl and elsewhere. */
const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header
  .glibcVersionRuntime;

it('binds glibc malloc_trim where Node runs on glibc, and trims again on a second call', () => {
  expect(cHeapTrimAvailable()).toBe(glibc !== undefined);
  const garbage = Array.from({ length: 2000 }, () => Buffer.alloc(4096, 1));
  expect(garbage).toHaveLength(2000);
  expect(typeof releaseFreedCHeap()).toBe('boolean');
  expect(typeof releaseFreedCHeap()).toBe('boolean');
});
