import {
  type AnyResource,
  type DocumentPosition,
  KINDS,
  type KindInfo,
  type KindName,
  ManifestSyntaxError,
  parseManifest,
  type ValidationIssue,
  validateResource,
} from '@calico-ts/datastore';
import type { ManifestSource } from './manifest-sources.ts';

/** Which object a manifest document (or a `delete KIND NAME` argument) names. */
export interface ResourceIdentity {
  name: string;
  namespace?: string;
  resourceVersion?: string;
}

/**
 * A resource read from a manifest. `resource` is there when the document was validated (every
 * verb but `delete`, which needs only the identity and so also removes objects that no longer
 * validate).
 */
export interface ManifestResource {
  source: string;
  position: DocumentPosition | undefined;
  kind: KindName;
  identity: ResourceIdentity;
  resource?: AnyResource;
}

/** One thing wrong with a manifest, with enough context to find it. */
export interface ManifestProblem {
  source: string;
  /** Undefined for a problem with the whole text (a syntax error). */
  position: DocumentPosition | undefined;
  /** `IPPool pool-a` when the document says so, else whatever part of it is known. */
  subject: string;
  issue: ValidationIssue;
}

export interface ManifestReadResult {
  resources: ManifestResource[];
  problems: ManifestProblem[];
}

export interface ManifestOptions {
  /** `-n`: namespace for namespaced objects that name none; a different one is an error. */
  namespace?: string | undefined;
  /**
   * Run the model's validation (`validate`, `apply`, `create`, `replace`). `delete` only needs
   * identity, so an object that is invalid in other ways can still be deleted.
   */
  validate?: boolean;
}

/**
 * Parses every source (the datastore's manifest reader: multi-document YAML or JSON, List kinds
 * expanded) and checks every object: scope and namespace against -n, then the model. Problems are
 * collected across all sources, never stopping at the first, so a user sees every mistake at
 * once and the caller can refuse to write anything when there is any.
 */
export function readManifests(
  sources: readonly ManifestSource[],
  options: ManifestOptions = {},
): ManifestReadResult {
  const result: ManifestReadResult = { resources: [], problems: [] };
  for (const source of sources) {
    let entries: ReturnType<typeof parseManifest>;
    try {
      entries = parseManifest(source.text);
    } catch (err) {
      if (!(err instanceof ManifestSyntaxError)) throw err;
      result.problems.push({
        source: source.name,
        position: undefined,
        subject: '',
        issue: { path: '', value: undefined, message: `syntax error at ${err.message}` },
      });
      continue;
    }
    for (const entry of entries) {
      const position: DocumentPosition = { document: entry.document, line: entry.line };
      if (entry.item !== undefined) position.item = entry.item;
      if (!entry.ok) {
        for (const issue of entry.issues)
          result.problems.push({ source: source.name, position, subject: '', issue });
        continue;
      }
      checkObject(source.name, position, entry.kind, entry.object, options, result);
    }
  }
  return result;
}

function checkObject(
  source: string,
  position: DocumentPosition,
  kind: KindName,
  object: Record<string, unknown>,
  options: ManifestOptions,
  out: ManifestReadResult,
): void {
  const info: KindInfo = KINDS[kind];
  const metadata = isRecord(object['metadata']) ? object['metadata'] : {};
  const name = typeof metadata['name'] === 'string' ? metadata['name'] : undefined;
  const subject = name ? `${info.kind} ${name}` : info.kind;
  const issues: ValidationIssue[] = [];
  if (name === undefined || name === '') {
    issues.push({ path: 'metadata.name', value: metadata['name'], message: 'a name is required' });
  }
  const candidate = { ...object, metadata: { ...metadata } };
  let namespace = typeof metadata['namespace'] === 'string' ? metadata['namespace'] : undefined;
  if (metadata['namespace'] !== undefined && namespace === undefined) {
    issues.push({ path: 'metadata.namespace', value: metadata['namespace'], message: 'must be a string' });
  }
  if (info.namespaced) {
    if (namespace === undefined) {
      namespace = options.namespace ?? 'default';
      candidate.metadata['namespace'] = namespace;
    } else if (options.namespace !== undefined && options.namespace !== namespace) {
      issues.push({
        path: 'metadata.namespace',
        value: namespace,
        message: `does not match the namespace given with -n (${options.namespace})`,
      });
    }
  } else if (metadata['namespace'] !== undefined) {
    issues.push({
      path: 'metadata.namespace',
      value: metadata['namespace'],
      message: `${info.kind} is cluster-scoped: no namespace allowed`,
    });
  }
  let resource: AnyResource | undefined;
  if (options.validate !== false) {
    const checked = validateResource(kind, candidate);
    if (checked.ok) resource = checked.value;
    // One message per field: ours are more specific than the model's for the same path.
    else issues.push(...checked.issues.filter((i) => !issues.some((j) => j.path === i.path)));
  }
  if (issues.length > 0 || name === undefined) {
    for (const issue of issues) out.problems.push({ source, position, subject, issue });
    return;
  }
  const resourceVersion =
    typeof metadata['resourceVersion'] === 'string' ? metadata['resourceVersion'] : undefined;
  const identity: ResourceIdentity = {
    name,
    ...(info.namespaced && namespace !== undefined ? { namespace } : {}),
    ...(resourceVersion !== undefined ? { resourceVersion } : {}),
  };
  out.resources.push({ source, position, kind, identity, ...(resource ? { resource } : {}) });
}

/** `<file>: document <n>[, item <m>] (<Kind> <name>): <path>: <value> — <expected>` */
export function formatProblem(p: ManifestProblem): string {
  let where = p.source;
  if (p.position) {
    where += `: document ${p.position.document + 1}`;
    if (p.position.item !== undefined) where += `, item ${p.position.item + 1}`;
  }
  if (p.subject) where += ` (${p.subject})`;
  if (p.issue.path === '' && p.issue.value === undefined) return `${where}: ${p.issue.message}`;
  const value = p.issue.value === undefined ? '(missing)' : JSON.stringify(p.issue.value);
  return `${where}: ${p.issue.path || '(root)'}: ${value} — ${p.issue.message}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
