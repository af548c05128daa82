/**
 * Reading resources out of a manifest: multi-document YAML or JSON, including Kubernetes-style
 * lists (`kind: List` or `kind: <Kind>List` with `items`). Each resource comes back with its kind
 * resolved and where it sits in the text, so `apply -f` / `validate -f` can say which document
 * is wrong.
 */
import { isMap, isSeq, LineCounter, type Node, parseAllDocuments } from 'yaml';
import { KIND_NAMES, KINDS, type KindInfo, type KindName, kindNameOf } from './kinds.ts';
import { type ResourceOf, validateResource } from './model/index.ts';
import type { ValidationIssue } from './resource.ts';

/** Where a resource sits in the manifest. */
export interface DocumentPosition {
  /** 0-based index of the YAML document (`---`-separated) in the text. */
  document: number;
  /** 0-based index within a list document's `items`; absent for a plain document. */
  item?: number;
  /** 1-based line where the resource starts. */
  line: number;
}

export type ManifestEntry = DocumentPosition &
  ({ ok: true; kind: KindName; object: Record<string, unknown> } | { ok: false; issues: ValidationIssue[] });

export type ValidatedEntry = DocumentPosition &
  (
    | { ok: true; kind: KindName; resource: ResourceOf<KindName> }
    | { ok: false; kind?: KindName; issues: ValidationIssue[] }
  );

/** The text is not well-formed YAML/JSON; carries the first problem's position. */
export class ManifestSyntaxError extends Error {
  override readonly name = 'ManifestSyntaxError';
  readonly code = 'Syntax';
  readonly line: number;
  readonly column: number;
  constructor(message: string, line: number, column: number) {
    super(message);
    this.line = line;
    this.column = column;
  }
}

function validKindsList(): string {
  return KIND_NAMES.map((k) => {
    const info: KindInfo = KINDS[k];
    return `${info.apiVersion} ${info.kind}`;
  }).join(', ');
}

function resolveKind(object: Record<string, unknown>): { kind: KindName } | { issues: ValidationIssue[] } {
  const { apiVersion, kind } = object;
  const issues: ValidationIssue[] = [];
  if (typeof apiVersion !== 'string' || apiVersion === '') {
    issues.push({ path: 'apiVersion', value: apiVersion, message: 'required (e.g. projectcalico.org/v3)' });
  }
  if (typeof kind !== 'string' || kind === '')
    issues.push({ path: 'kind', value: kind, message: 'required' });
  if (issues.length > 0) return { issues };
  const name = kindNameOf(apiVersion as string, kind as string);
  if (name === undefined) {
    return {
      issues: [
        {
          path: 'kind',
          value: `${apiVersion as string} ${kind as string}`,
          message: `unknown apiVersion/kind; valid kinds are: ${validKindsList()}`,
        },
      ],
    };
  }
  return { kind: name };
}

const LIST_SUFFIX = 'List';

/**
 * Splits `text` into resources. Throws ManifestSyntaxError for text that is not YAML/JSON;
 * problems with one document (not an object, unknown kind) come back as entries with issues.
 */
export function parseManifest(text: string): ManifestEntry[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  const docList = Array.isArray(docs) ? docs : [docs];
  for (const doc of docList) {
    const err = doc.errors[0];
    if (err) {
      const { line, col } = lineCounter.linePos(err.pos[0]);
      throw new ManifestSyntaxError(`line ${line}, column ${col}: ${err.message.split('\n')[0]}`, line, col);
    }
  }
  const entries: ManifestEntry[] = [];
  const lineOf = (node: Node | null | undefined, fallback: number): number =>
    node?.range ? lineCounter.linePos(node.range[0]).line : fallback;

  docList.forEach((doc, document) => {
    const contents = doc.contents;
    // Empty documents (a trailing `---`, or only comments) hold nothing to apply.
    if (contents === null) return;
    const line = lineOf(contents, 1);
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return;
    if (typeof value !== 'object' || Array.isArray(value)) {
      entries.push({
        document,
        line,
        ok: false,
        issues: [
          { path: '', value, message: 'expected a resource (an object with apiVersion, kind, metadata)' },
        ],
      });
      return;
    }
    const object = value as Record<string, unknown>;
    const kind = object.kind;
    if (typeof kind === 'string' && kind.endsWith(LIST_SUFFIX) && 'items' in object) {
      const items = object.items;
      if (!Array.isArray(items)) {
        entries.push({
          document,
          line,
          ok: false,
          issues: [{ path: 'items', value: items, message: 'expected a list of resources' }],
        });
        return;
      }
      // `<Kind>List` lets items leave out their own apiVersion/kind.
      const itemKind = kind === LIST_SUFFIX ? undefined : kind.slice(0, -LIST_SUFFIX.length);
      const itemNodes = isMap(contents) ? contents.get('items', true) : undefined;
      items.forEach((item: unknown, i) => {
        const itemNode = isSeq(itemNodes) ? (itemNodes.items[i] as Node | undefined) : undefined;
        const position = { document, item: i, line: lineOf(itemNode, line) };
        if (item === null || typeof item !== 'object' || Array.isArray(item)) {
          entries.push({
            ...position,
            ok: false,
            issues: [{ path: `items[${i}]`, value: item, message: 'expected a resource' }],
          });
          return;
        }
        const withKind: Record<string, unknown> =
          itemKind === undefined ? { ...item } : { apiVersion: object.apiVersion, kind: itemKind, ...item };
        const resolved = resolveKind(withKind);
        if ('issues' in resolved) entries.push({ ...position, ok: false, issues: resolved.issues });
        else entries.push({ ...position, ok: true, kind: resolved.kind, object: withKind });
      });
      return;
    }
    const resolved = resolveKind(object);
    if ('issues' in resolved) entries.push({ document, line, ok: false, issues: resolved.issues });
    else entries.push({ document, line, ok: true, kind: resolved.kind, object });
  });
  return entries;
}

/** parseManifest, then validateResource on each resource: every document's verdict at once. */
export function validateManifest(text: string): ValidatedEntry[] {
  return parseManifest(text).map((entry): ValidatedEntry => {
    const position: DocumentPosition = { document: entry.document, line: entry.line };
    if (entry.item !== undefined) position.item = entry.item;
    if (!entry.ok) return { ...position, ok: false, issues: entry.issues };
    const result = validateResource(entry.kind, entry.object);
    return result.ok
      ? { ...position, ok: true, kind: entry.kind, resource: result.value }
      : { ...position, ok: false, kind: entry.kind, issues: result.issues };
  });
}
