import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type AnyResource, KINDS, type KindInfo, type KindName } from '@calico-ts/datastore';
import { tabwriterTable } from '@calico-ts/text-table';
import { stringify } from 'yaml';
import { CliError } from './cli-error.ts';
import type { CliIo } from './cli-io.ts';
import {
  type CustomColumn,
  customColumnRows,
  parseCustomColumns,
  parseCustomColumnsFile,
} from './custom-columns.ts';
import { type TableContext, tableHeadings, tableRows } from './resource-table.ts';

export const OUTPUT_FORMATS = ['ps', 'wide', 'yaml', 'json', 'name'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** What `-o` asked for: a fixed format, or custom columns. */
export type OutputChoice = { format: OutputFormat } | { format: 'custom-columns'; columns: CustomColumn[] };

export const OUTPUT_HELP = `${OUTPUT_FORMATS.join('|')}|custom-columns=HEADING:PATH,…|custom-columns-file=FILE`;

function isOutputFormat(value: string): value is OutputFormat {
  return (OUTPUT_FORMATS as readonly string[]).includes(value);
}

export async function outputChoice(value: string, io: CliIo): Promise<OutputChoice> {
  if (isOutputFormat(value)) return { format: value };
  if (value.startsWith('custom-columns=')) {
    return { format: 'custom-columns', columns: parseCustomColumns(value.slice('custom-columns='.length)) };
  }
  if (value.startsWith('custom-columns-file=')) {
    const file = value.slice('custom-columns-file='.length);
    let text: string;
    try {
      text = await readFile(resolve(io.cwd, file), 'utf8');
    } catch (err) {
      throw new CliError(`cannot read custom-columns file ${file}: ${(err as Error).message}`);
    }
    return { format: 'custom-columns', columns: parseCustomColumnsFile(text, file) };
  }
  throw new CliError(
    `unrecognized output format '${value}'; use one of ${OUTPUT_FORMATS.join(', ')}, custom-columns=…, custom-columns-file=…`,
  );
}

export interface RenderOptions {
  output: OutputChoice;
  /** A single NAME was asked for: yaml/json print the object itself rather than a List. */
  single: boolean;
  /** -A on a namespaced kind: tables get a NAMESPACE column. */
  allNamespaces: boolean;
  /** The store revision the items were read at (the List's resourceVersion). */
  revision?: string | undefined;
  table: TableContext;
}

/** Renders resources of one kind in the format `get -o` asks for. */
export function renderResources(
  kind: KindName,
  items: readonly AnyResource[],
  options: RenderOptions,
): string {
  const info: KindInfo = KINDS[kind];
  const choice = options.output;
  if (choice.format === 'custom-columns') {
    return tabwriterTable(customColumnRows(kind, choice.columns, items, options.table));
  }
  const format = choice.format;
  switch (format) {
    case 'yaml':
    case 'json': {
      const body =
        options.single && items.length === 1
          ? items[0]
          : {
              apiVersion: info.apiVersion,
              kind: `${info.kind}List`,
              metadata: options.revision === undefined ? {} : { resourceVersion: options.revision },
              items,
            };
      return format === 'json' ? `${JSON.stringify(body, null, 2)}\n` : stringify(body);
    }
    case 'name': {
      const group = info.apiVersion.split('/')[0];
      return items.map((r) => `${info.kind.toLowerCase()}.${group}/${r.metadata.name}\n`).join('');
    }
    case 'ps':
    case 'wide': {
      const headings = tableHeadings(kind, format === 'wide', options.allNamespaces && info.namespaced);
      return tabwriterTable([headings, ...tableRows(kind, headings, items, options.table)]);
    }
  }
}
