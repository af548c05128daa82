import {
  type AnyResource,
  KINDS,
  type KindInfo,
  type KindName,
  kindNameOf,
  type ValidationIssue,
  validateResource,
} from '@calico-ts/datastore';
import { LineCounter, parseAllDocuments } from 'yaml';
import type { ManifestSource } from './manifest-sources.ts';

/** A resource read from a manifest, validated and ready to write. */
export interface ManifestResource {
  source: string;
  /** 1-based document number within the source. */
  document: number;
  /** Where the object sits inside its document: '' or `items[2].` for a List. */
  pathPrefix: string;
  kind: KindName;
  resource: AnyResource;
}

/** One thing wrong with a manifest, with enough context to find it. */
export interface ManifestProblem {
  source: string;
  document: number;
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
 * Parses every source (multi-document YAML or JSON; `List`/`<Kind>List` documents and top-level
 * JSON arrays are expanded) and validates every object. Problems are collected across all
 * sources, never stopping at the first, so a user sees every mistake at once and the caller can
 * refuse to write anything when there is any.
 */
export function readManifests(
  sources: readonly ManifestSource[],
  options: ManifestOptions = {},
): ManifestReadResult {
  const result: ManifestReadResult = { resources: [], problems: [] };
  for (const source of sources) readSource(source, options, result);
  return result;
}

function readSource(source: ManifestSource, options: ManifestOptions, out: ManifestReadResult): void {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(source.text, { lineCounter, prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [];
  let n = 0;
  for (const doc of list) {
    n++;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const at = lineCounter.linePos(e.pos[0]);
        out.problems.push({
          source: source.name,
          document: n,
          subject: '',
          issue: {
            path: '',
            value: undefined,
            message: `syntax error at line ${at.line}, column ${at.col}: ${e.message.split('\n', 1)[0]}`,
          },
        });
      }
      continue;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) {
      n--; // an empty document (`---` at the end, comments only) is not counted
      continue;
    }
    readObject(source.name, n, '', value, options, out);
  }
}

function readObject(
  source: string,
  document: number,
  pathPrefix: string,
  value: unknown,
  options: ManifestOptions,
  out: ManifestReadResult,
): void {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries())
      readObject(source, document, `${pathPrefix}[${i}].`, item, options, out);
    return;
  }
  const problem = (subject: string, issue: ValidationIssue): void => {
    out.problems.push({ source, document, subject, issue: { ...issue, path: `${pathPrefix}${issue.path}` } });
  };
  if (!isRecord(value)) {
    problem('', { path: '', value, message: 'expected an object with apiVersion, kind, metadata and spec' });
    return;
  }
  const apiVersion = typeof value['apiVersion'] === 'string' ? value['apiVersion'] : undefined;
  const kindField = typeof value['kind'] === 'string' ? value['kind'] : undefined;
  const metadata = isRecord(value['metadata']) ? value['metadata'] : undefined;
  const name = typeof metadata?.['name'] === 'string' ? metadata['name'] : undefined;
  const subject = [kindField, name].filter(Boolean).join(' ');

  if (kindField?.endsWith('List') && 'items' in value) {
    const items = value['items'];
    if (!Array.isArray(items)) {
      problem(subject, { path: 'items', value: items, message: 'expected a list of resources' });
      return;
    }
    for (const [i, item] of items.entries()) {
      readObject(source, document, `${pathPrefix}items[${i}].`, item, options, out);
    }
    return;
  }

  if (kindField === undefined) {
    problem(subject, {
      path: 'kind',
      value: value['kind'],
      message: 'a resource kind is required (e.g. IPPool)',
    });
    return;
  }
  const kind = kindNameOf(apiVersion, kindField);
  if (kind === undefined) {
    const byKind = kindNameOf(undefined, kindField);
    problem(
      subject,
      byKind !== undefined
        ? {
            path: 'apiVersion',
            value: apiVersion,
            message: `expected ${KINDS[byKind].apiVersion} for kind ${kindField}`,
          }
        : { path: 'kind', value: kindField, message: 'not a known kind (`calico get --help` lists them)' },
    );
    return;
  }
  const info: KindInfo = KINDS[kind];
  const issues: ValidationIssue[] = [];
  if (name === undefined || name === '') {
    issues.push({ path: 'metadata.name', value: metadata?.['name'], message: 'a name is required' });
  }
  const candidate = structuredClone(value) as unknown as AnyResource;
  candidate.apiVersion = info.apiVersion;
  candidate.metadata = { ...(metadata ?? {}) } as AnyResource['metadata'];
  const namespace = typeof metadata?.['namespace'] === 'string' ? metadata['namespace'] : undefined;
  if (info.namespaced) {
    if (namespace === undefined) candidate.metadata.namespace = options.namespace ?? 'default';
    else if (options.namespace !== undefined && options.namespace !== namespace) {
      issues.push({
        path: 'metadata.namespace',
        value: namespace,
        message: `does not match the namespace given with -n (${options.namespace})`,
      });
    }
  } else if (metadata?.['namespace'] !== undefined) {
    issues.push({
      path: 'metadata.namespace',
      value: metadata['namespace'],
      message: `${info.kind} is cluster-scoped: no namespace allowed`,
    });
  }
  let resource = candidate;
  if (options.validate !== false) {
    const checked = validateResource(kind, candidate);
    if (checked.ok) resource = checked.value as AnyResource;
    else issues.push(...checked.issues.filter((i) => !issues.some((j) => j.path === i.path)));
  }
  if (issues.length > 0) {
    for (const issue of issues) problem(subject, issue);
    return;
  }
  out.resources.push({ source, document, pathPrefix, kind, resource });
}

/** `<file>: document <n> (<Kind> <name>): <path>: <value> — <expected>` */
export function formatProblem(p: ManifestProblem): string {
  const where = `${p.source}: document ${p.document}${p.subject ? ` (${p.subject})` : ''}`;
  if (p.issue.path === '' && p.issue.value === undefined) return `${where}: ${p.issue.message}`;
  const value = p.issue.value === undefined ? '(missing)' : JSON.stringify(p.issue.value);
  return `${where}: ${p.issue.path || '(root)'}: ${value} — ${p.issue.message}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
