import { type AnyResource, KINDS, type KindInfo, type KindName } from '@calico-ts/datastore';
import { tabwriterTable } from '@calico-ts/text-table';
import { stringify } from 'yaml';
import { CliError } from './cli-error.ts';
import { type TableContext, tableHeadings, tableRows } from './resource-table.ts';

export const OUTPUT_FORMATS = ['ps', 'wide', 'yaml', 'json', 'name'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function outputFormat(value: string): OutputFormat {
  if ((OUTPUT_FORMATS as readonly string[]).includes(value)) return value as OutputFormat;
  throw new CliError(`unrecognized output format '${value}'; use one of ${OUTPUT_FORMATS.join(', ')}`);
}

export interface RenderOptions {
  format: OutputFormat;
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
  switch (options.format) {
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
      return options.format === 'json' ? `${JSON.stringify(body, null, 2)}\n` : stringify(body);
    }
    case 'name': {
      const group = info.apiVersion.split('/')[0];
      return items.map((r) => `${info.kind.toLowerCase()}.${group}/${r.metadata.name}\n`).join('');
    }
    case 'ps':
    case 'wide': {
      const headings = tableHeadings(
        kind,
        options.format === 'wide',
        options.allNamespaces && info.namespaced,
      );
      return tabwriterTable([headings, ...tableRows(kind, headings, items, options.table)]);
    }
  }
}
