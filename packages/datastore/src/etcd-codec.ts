/**
 * How a resource sits in etcd: its JSON without `resourceVersion`, which is the key's mod
 * revision and so is known only after the write (libcalico-go's etcdv3 backend does the same).
 */
import { Range } from 'etcd3';
import type { AnyResource } from './datastore.ts';
import { DatastoreError } from './errors.ts';

export function encodeResource(value: AnyResource): Buffer {
  const { resourceVersion: _rv, ...metadata } = value.metadata;
  return Buffer.from(JSON.stringify({ ...value, metadata }));
}

/** Parses a stored value and stamps it with its revision. */
export function decodeResource(key: string, value: Buffer | string, modRevision: string): AnyResource {
  let parsed: AnyResource;
  try {
    parsed = JSON.parse(typeof value === 'string' ? value : value.toString('utf8')) as AnyResource;
  } catch (err) {
    throw new DatastoreError(
      'Invalid',
      `etcd key ${key} does not hold a JSON resource: ${(err as Error).message}`,
      undefined,
      {
        cause: err,
      },
    );
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    typeof parsed.metadata !== 'object' ||
    parsed.metadata === null
  ) {
    throw new DatastoreError('Invalid', `etcd key ${key} does not hold a resource (no metadata)`);
  }
  parsed.metadata.resourceVersion = modRevision;
  return parsed;
}

/** The key range holding every key that starts with `prefix`. */
export function prefixRange(prefix: string): { start: Buffer; end: Buffer } {
  const r = Range.prefix(prefix);
  return { start: r.start, end: r.end };
}

/** Longest common prefix: one etcd range that covers every requested kind. */
export function commonPrefix(prefixes: readonly string[]): string {
  if (prefixes.length === 0) return '';
  let p = prefixes[0]!;
  for (const q of prefixes.slice(1)) {
    let i = 0;
    while (i < p.length && i < q.length && p[i] === q[i]) i++;
    p = p.slice(0, i);
  }
  return p;
}
