/**
 * Gives the C heap's free pages back to the kernel (glibc `malloc_trim(0)`). Parsing and compiling
 * calico-node's code at start-up (one 1.4 MB bundle) leaves ~9 MB of freed parser memory that glibc
 * keeps mapped and counts in RSS until trimmed (docs/benchmarks.md, calico-node, 2026-12-04
 * evening). Returns whether memory was released; false where there is no glibc.
 */
import koffi from 'koffi';

let trim: ((pad: number) => number) | undefined | null;

function binding(): ((pad: number) => number) | null {
  if (trim === undefined) {
    try {
      trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number;
    } catch {
      trim = null;
    }
  }
  return trim;
}

/** Whether glibc's malloc_trim could be bound (false on a C library without it). */
export function cHeapTrimAvailable(): boolean {
  return binding() !== null;
}

export function releaseFreedCHeap(): boolean {
  const f = binding();
  return f ? f(0) === 1 : false;
}
