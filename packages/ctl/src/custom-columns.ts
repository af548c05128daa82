/**
 * `get -o custom-columns=SPEC` and `-o custom-columns-file=FILE`. A column is `HEADING:PATH`, the
 * path a field reference into the resource (`.metadata.name`, `.spec.ipNetworks[0]`,
 * `.metadata.labels['app.kubernetes.io/name']`, braces optional, as kubectl writes them); a bare
 * `HEADING` is one of the kind's own table columns (`NAME`, `CIDR`, …), as calicoctl's
 * custom-columns takes them. The file form is kubectl's: headings on the first line, paths on the
 * second.
 */
import type { AnyResource, KindName } from '@calico-ts/datastore';
import { CliError } from './cli-error.ts';
import { knownHeadings, type TableContext, tableRows } from './resource-table.ts';

export interface CustomColumn {
  heading: string;
  /** Field path; undefined for one of the kind's predefined columns. */
  path?: (string | number)[];
}

/** Parses a field reference into its steps, naming what is wrong with it. */
export function parseFieldPath(text: string): (string | number)[] {
  let t = text.trim();
  if (t.startsWith('{') && t.endsWith('}')) t = t.slice(1, -1);
  if (t.startsWith('.')) t = t.slice(1);
  const steps: (string | number)[] = [];
  const token = /^(?:([A-Za-z_$][\w$-]*)|\[(\d+)\]|\['([^']*)'\]|\["([^"]*)"\])(\.)?/;
  let rest = t;
  while (rest.length > 0) {
    const m = token.exec(rest);
    if (!m)
      throw new CliError(`invalid field path ${JSON.stringify(text)}: cannot read ${JSON.stringify(rest)}`);
    if (m[1] !== undefined) steps.push(m[1]);
    else if (m[2] !== undefined) steps.push(Number(m[2]));
    else steps.push(m[3] ?? m[4] ?? '');
    rest = rest.slice(m[0].length);
    if (m[5] === undefined && rest.length > 0 && !rest.startsWith('[')) {
      throw new CliError(
        `invalid field path ${JSON.stringify(text)}: expected "." or "[" before ${JSON.stringify(rest)}`,
      );
    }
  }
  if (steps.length === 0) throw new CliError(`invalid field path ${JSON.stringify(text)}: it is empty`);
  return steps;
}

/** `HEADING:PATH,…` or `HEADING,…` (the kind's own columns). */
export function parseCustomColumns(spec: string): CustomColumn[] {
  if (spec.trim() === '')
    throw new CliError('custom-columns needs at least one column: HEADING:PATH or HEADING');
  return spec.split(',').map((part) => {
    const at = part.indexOf(':');
    const heading = (at < 0 ? part : part.slice(0, at)).trim();
    if (heading === '') throw new CliError(`custom-columns: column ${JSON.stringify(part)} has no heading`);
    return at < 0 ? { heading } : { heading, path: parseFieldPath(part.slice(at + 1)) };
  });
}

/** kubectl's file form: headings on the first non-empty line, paths on the second. */
export function parseCustomColumnsFile(text: string, file: string): CustomColumn[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== 2) {
    throw new CliError(`${file}: expected two lines (headings, then field paths), found ${lines.length}`);
  }
  const headings = lines[0]!.trim().split(/\s+/);
  const paths = lines[1]!.trim().split(/\s+/);
  if (headings.length !== paths.length) {
    throw new CliError(`${file}: ${headings.length} headings but ${paths.length} field paths`);
  }
  return headings.map((heading, i) => ({ heading, path: parseFieldPath(paths[i]!) }));
}

function valueAt(resource: AnyResource, path: readonly (string | number)[]): unknown {
  let cur: unknown = resource;
  for (const step of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = new Map(Object.entries(cur)).get(String(step));
  }
  return cur;
}

function cellText(value: unknown): string {
  if (value === undefined || value === null) return '<none>';
  if (Array.isArray(value))
    return value.map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))).join(',');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** The table rows (headings first) for resources of one kind. */
export function customColumnRows(
  kind: KindName,
  columns: readonly CustomColumn[],
  items: readonly AnyResource[],
  ctx: TableContext,
): string[][] {
  const known = knownHeadings(kind);
  for (const c of columns) {
    if (!c.path && !known.includes(c.heading)) {
      throw new CliError(
        `custom-columns: ${c.heading} is not a column of ${kind} (${known.join(', ')}); give HEADING:PATH for any field`,
      );
    }
  }
  const predefined = columns.filter((c) => !c.path).map((c) => c.heading);
  const fromTable = tableRows(kind, predefined, items, ctx);
  return [
    columns.map((c) => c.heading),
    ...items.map((r, i) =>
      columns.map((c) =>
        c.path ? cellText(valueAt(r, c.path)) : fromTable[i]![predefined.indexOf(c.heading)]!,
      ),
    ),
  ];
}
