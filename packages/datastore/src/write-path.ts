import { randomUUID } from 'node:crypto';
import type { AnyResource, ChangeEvent } from './datastore.ts';
import { DatastoreError } from './errors.ts';
import { KINDS, type KindInfo, type KindName, keyFor } from './kinds.ts';
import { ipPoolStoredIssues, type ResourceInput, type ResourceOf, validateResource } from './model/index.ts';
import { formatIssues, type Resource, type ValidationIssue } from './resource.ts';

export class InvalidResourceError extends DatastoreError {
  readonly issues: ValidationIssue[];
  constructor(kind: string, name: string | undefined, issues: ValidationIssue[], namespace?: string) {
    super(
      'Invalid',
      `${kind}${name ? ` ${namespace ? `${namespace}/` : ''}${name}` : ''} is invalid:\n${formatIssues(issues)}`,
      name ? { kind, name, namespace } : undefined,
    );
    this.issues = issues;
  }
}

/**
 * Kinds whose writes are checked against the other stored objects of the same kind (IPPool:
 * immutable cidr/blockSize, no overlap). A backend reads those objects and makes its write
 * conditional on them not changing, so two writers cannot both pass the check.
 */
export function readsPeers(kind: KindName): boolean {
  return kind === 'IPPool';
}

function isIPPool(r: { kind: string }): r is ResourceOf<'IPPool'> {
  return r.kind === 'IPPool';
}

/** The rules of `value` against the stored objects: its stored version and its peers. */
function storedObjectIssues(
  value: { kind: string },
  existing: AnyResource | undefined,
  peers: readonly AnyResource[],
): ValidationIssue[] {
  if (isIPPool(value)) {
    return ipPoolStoredIssues(
      value,
      existing && isIPPool(existing) ? existing : undefined,
      peers.filter(isIPPool),
    );
  }
  return [];
}

/**
 * Validates, defaults and stamps an object before a backend stores it: fills apiVersion/kind,
 * checks scope, keeps the server-owned metadata (uid, creationTimestamp) of the stored version,
 * and, for kinds that `readsPeers`, checks it against its stored version and `peers` (every
 * stored object of the kind). Returns the object to store (without resourceVersion) and its key.
 */
export function prepareWrite<K extends KindName>(
  kind: K,
  input: ResourceInput<K> | AnyResource,
  existing: AnyResource | undefined,
  peers: readonly AnyResource[] = [],
): { key: string; value: ResourceOf<K> } {
  const info: KindInfo = KINDS[kind];
  const candidate = {
    ...input,
    apiVersion: input.apiVersion ?? info.apiVersion,
    kind: input.kind ?? info.kind,
  } as Resource;
  const meta = candidate.metadata ?? ({} as Resource['metadata']);
  const issues: ValidationIssue[] = [];
  if (candidate.apiVersion !== info.apiVersion || candidate.kind !== info.kind) {
    issues.push({
      path: 'kind',
      value: `${candidate.apiVersion}/${candidate.kind}`,
      message: `expected ${info.apiVersion}/${info.kind}`,
    });
  }
  if (info.namespaced && !meta.namespace) {
    issues.push({
      path: 'metadata.namespace',
      value: meta.namespace,
      message: `${kind} is namespaced: a namespace is required`,
    });
  }
  if (!info.namespaced && meta.namespace) {
    issues.push({
      path: 'metadata.namespace',
      value: meta.namespace,
      message: `${kind} is cluster-scoped: no namespace allowed`,
    });
  }
  if (issues.length > 0) throw new InvalidResourceError(kind, meta.name, issues, meta.namespace);
  const result = validateResource(kind, candidate);
  if (!result.ok) throw new InvalidResourceError(kind, meta.name, result.issues, meta.namespace);
  const value = structuredClone(result.value);
  const storedIssues = storedObjectIssues(value, existing, peers);
  if (storedIssues.length > 0) throw new InvalidResourceError(kind, meta.name, storedIssues, meta.namespace);
  const { resourceVersion: _rv, ...rest } = value.metadata;
  value.metadata = {
    ...rest,
    uid: existing?.metadata.uid ?? rest.uid ?? randomUUID(),
    creationTimestamp:
      existing?.metadata.creationTimestamp ?? rest.creationTimestamp ?? new Date().toISOString(),
  };
  return { key: keyFor(kind, value.metadata.name, value.metadata.namespace), value: value as ResourceOf<K> };
}

/**
 * What changed between the state a watcher last saw (`seen`, by key) and the state now: the
 * events a `resync` carries so that a consumer coming back after a gap misses nothing.
 */
export function diffStates(
  seen: ReadonlyMap<string, AnyResource>,
  now: ReadonlyMap<string, { kind: KindName; value: AnyResource }>,
  revision: string,
): ChangeEvent[] {
  const events: ChangeEvent[] = [];
  for (const [key, cur] of now) {
    const before = seen.get(key);
    if (!before) events.push({ type: 'added', kind: cur.kind, revision, new: cur.value });
    else if (before.metadata.resourceVersion !== cur.value.metadata.resourceVersion) {
      events.push({ type: 'modified', kind: cur.kind, revision, old: before, new: cur.value });
    }
  }
  for (const [key, before] of seen) {
    if (!now.has(key)) {
      const kind = kindOfResource(before);
      events.push({ type: 'deleted', kind, revision, old: before });
    }
  }
  return events;
}

function kindOfResource(r: AnyResource): KindName {
  if (r.apiVersion === KINDS.KubernetesNetworkPolicy.apiVersion) return 'KubernetesNetworkPolicy';
  return r.kind as KindName;
}

export { kindOfResource };
