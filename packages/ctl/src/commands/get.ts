import { type AnyResource, isDatastoreError, KIND_NAMES, KINDS } from '@calico-ts/datastore';
import { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import type { CommandContext } from '../command-context.ts';
import { kindArgument, kindLabel } from '../kind-argument.ts';
import { OUTPUT_HELP, outputChoice, renderResources } from '../resource-output.ts';

const DEFAULT_AS_NUMBER = '64512';

export function getCommand(ctx: CommandContext): Command {
  return new Command('get')
    .summary('Display one or many resources')
    .description(
      'Prints resources of KIND: all of them, or those with the given NAMEs. Namespaced kinds are read ' +
        'from namespace "default" unless -n or -A is given.\n\n' +
        `Kinds: ${KIND_NAMES.filter((k) => k !== 'KubernetesNetworkPolicy').join(', ')},\n` +
        'and NetworkPolicy.networking.k8s.io (knp). Any calicoctl spelling works: ippool, ippools, ipp, pool…',
    )
    .argument('<KIND>', 'resource kind')
    .argument('[NAME...]', 'names of the resources to print')
    .option('-o, --output <FORMAT>', `output format: ${OUTPUT_HELP}`, 'ps')
    .option('-n, --namespace <NS>', 'namespace of namespaced resources (default "default")')
    .option('-A, --all-namespaces', 'every namespace (adds a NAMESPACE column to tables)')
    .addHelpText(
      'after',
      '\nExamples:\n  calico get ippools\n  calico get ippool pool-a -o yaml\n  calico get networkpolicies -A -o wide\n',
    )
    .action(
      async (
        kindSpelling: string,
        names: string[],
        flags: { output: string; namespace?: string; allNamespaces?: boolean },
      ) => {
        const kind = kindArgument(kindSpelling);
        const output = await outputChoice(flags.output, ctx.io);
        const info = KINDS[kind];
        if (flags.allNamespaces && flags.namespace !== undefined) {
          throw new CliError('give either -n or -A, not both');
        }
        if (flags.allNamespaces && names.length > 0 && info.namespaced) {
          throw new CliError('cannot use --all-namespaces when getting resources by name; use -n');
        }
        const namespace =
          info.namespaced && !flags.allNamespaces ? (flags.namespace ?? 'default') : undefined;
        const datastore = await ctx.datastore();

        let items: AnyResource[] = [];
        let revision: string | undefined;
        const missing: string[] = [];
        if (names.length === 0) {
          const listed = await datastore.list(kind, namespace === undefined ? {} : { namespace });
          items = listed.items;
          revision = listed.revision;
        } else {
          for (const name of names) {
            try {
              items.push(await datastore.get(kind, name, namespace));
            } catch (err) {
              if (!isDatastoreError(err, 'NotFound')) throw err;
              missing.push(err.message);
            }
          }
        }

        let defaultAsNumber = DEFAULT_AS_NUMBER;
        if (kind === 'Node' && (output.format === 'wide' || output.format === 'custom-columns')) {
          try {
            const bgp = await datastore.get('BGPConfiguration', 'default');
            const as = (bgp.spec as Record<string, unknown> | undefined)?.['asNumber'];
            if (as !== undefined) defaultAsNumber = String(as);
          } catch (err) {
            if (!isDatastoreError(err, 'NotFound')) defaultAsNumber = 'unknown';
          }
        }

        if (items.length > 0 || names.length === 0) {
          ctx.io.stdout(
            renderResources(kind, items, {
              output,
              single: names.length === 1,
              allNamespaces: flags.allNamespaces ?? false,
              revision,
              table: { defaultAsNumber: () => defaultAsNumber },
            }),
          );
        }
        if (missing.length > 0) {
          throw new CliError(missing.map((m) => `Failed to get ${kindLabel(kind)}: ${m}`).join('\n'));
        }
      },
    );
}
