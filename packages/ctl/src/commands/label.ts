import { KINDS } from '@calico-ts/datastore';
import { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import type { CommandContext } from '../command-context.ts';
import { kindArgument, kindLabel } from '../kind-argument.ts';
import { updateWithRetry } from '../read-modify-write.ts';

interface LabelFlags {
  overwrite?: boolean;
  remove?: boolean;
  namespace?: string;
}

export function labelCommand(ctx: CommandContext): Command {
  return new Command('label')
    .summary('Add, change or remove a label on a resource')
    .description(
      'Sets label KEY=VALUE on a resource, or removes label KEY with --remove. Changing a key that is ' +
        'already set needs --overwrite. The update is compare-and-swap on the version read.',
    )
    .argument('<KIND>', 'resource kind')
    .argument('<NAME>', 'resource name')
    .argument('<LABEL>', 'KEY=VALUE to set, or KEY with --remove')
    .option('--overwrite', 'replace the value of a label that is already set')
    .option('--remove', 'remove the label KEY')
    .option('-n, --namespace <NS>', 'namespace of a namespaced resource (default "default")')
    .addHelpText(
      'after',
      '\nExamples:\n  calico label nodes node1 rack=r12\n  calico label nodes node1 rack=r13 --overwrite\n' +
        '  calico label nodes node1 rack --remove\n',
    )
    .action(async (kindSpelling: string, name: string, label: string, flags: LabelFlags) => {
      const kind = kindArgument(kindSpelling);
      if (flags.overwrite && flags.remove)
        throw new CliError('--overwrite and --remove cannot be used together');
      let key = label;
      let value: string | undefined;
      if (!flags.remove) {
        const parts = label.split('=');
        if (parts.length !== 2 || parts[0] === '')
          throw new CliError(`invalid label ${label}: expected KEY=VALUE`);
        [key, value] = parts as [string, string];
      } else if (label.includes('=')) {
        throw new CliError(`invalid label ${label}: --remove takes a KEY only`);
      }
      const namespace = KINDS[kind].namespaced ? (flags.namespace ?? 'default') : undefined;
      const what = `${kindLabel(kind)} ${name}`;
      const result: { outcome: 'set' | 'updated' | 'removed' } = { outcome: 'set' };
      const datastore = await ctx.datastore();
      await updateWithRetry(datastore, kind, name, namespace, (current) => {
        const labels = { ...(current.metadata.labels ?? {}) };
        if (flags.remove) {
          if (!(key in labels)) throw new CliError(`cannot remove label ${key} from ${what}: it is not set`);
          delete labels[key];
          result.outcome = 'removed';
        } else if (key in labels) {
          if (!flags.overwrite && labels[key] !== value) {
            throw new CliError(`label ${key} is already set on ${what}; use --overwrite to change it`);
          }
          labels[key] = value!;
          result.outcome = 'updated';
        } else {
          labels[key] = value!;
          result.outcome = 'set';
        }
        current.metadata.labels = labels;
        return current;
      });
      const { outcome } = result;
      ctx.io.stdout(
        `Successfully ${outcome} label ${key} ${outcome === 'removed' ? 'from' : 'on'} ${what}\n`,
      );
    });
}
