import { type AnyResource, KINDS } from '@calico-ts/datastore';
import { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { CliError } from '../cli-error.ts';
import type { CommandContext } from '../command-context.ts';
import { applyJsonPatch, applyMergePatch, type Json, JsonPatchError, parseJsonPatch } from '../json-patch.ts';
import { kindArgument, kindLabel } from '../kind-argument.ts';
import { updateWithRetry } from '../read-modify-write.ts';

interface PatchFlags {
  patch: string;
  type: string;
  namespace?: string;
}

export function patchCommand(ctx: CommandContext): Command {
  return new Command('patch')
    .summary('Change fields of a resource in place')
    .description(
      'Applies PATCH to the stored resource and writes the result back (compare-and-swap on the version ' +
        'read, retried once on a conflict). The result is validated like any other write.\n\n' +
        'Patch types:\n' +
        '  merge  JSON Merge Patch (RFC 7396, the default): null removes a field\n' +
        '  json   JSON Patch (RFC 6902): add/remove/replace/move/copy/test operations',
    )
    .argument('<KIND>', 'resource kind')
    .argument('<NAME>', 'resource name')
    .requiredOption('-p, --patch <PATCH>', 'the patch, as JSON (or YAML)')
    .option('-t, --type <TYPE>', 'patch type: merge|json', 'merge')
    .option('-n, --namespace <NS>', 'namespace of a namespaced resource (default "default")')
    .addHelpText(
      'after',
      `\nExamples:\n  calico patch ippool pool-a -p '{"spec":{"natOutgoing":true}}'\n` +
        `  calico patch node node1 -t json -p '[{"op":"add","path":"/spec/bgp/routeReflectorClusterID","value":"224.0.0.1"}]'\n`,
    )
    .action(async (kindSpelling: string, name: string, flags: PatchFlags) => {
      const kind = kindArgument(kindSpelling);
      if (flags.type !== 'merge' && flags.type !== 'json') {
        throw new CliError(
          flags.type === 'strategic'
            ? 'strategic merge patches are not supported; use -t merge (RFC 7396) or -t json (RFC 6902)'
            : `unknown patch type '${flags.type}'; use merge or json`,
        );
      }
      let patch: Json;
      try {
        patch = parseYaml(flags.patch) as Json;
      } catch (err) {
        throw new CliError(`cannot parse the patch: ${(err as Error).message.split('\n', 1)[0]}`);
      }
      const operations = flags.type === 'json' ? guard(() => parseJsonPatch(patch)) : undefined;
      const namespace = KINDS[kind].namespaced ? (flags.namespace ?? 'default') : undefined;
      const datastore = await ctx.datastore();
      await updateWithRetry(datastore, kind, name, namespace, (current) => {
        const before = current as unknown as Json;
        const after = (operations
          ? guard(() => applyJsonPatch(before, operations))
          : applyMergePatch(before, patch)) as unknown as AnyResource;
        return keepIdentity(current, after);
      });
      ctx.io.stdout(`Successfully patched 1 '${kindLabel(kind)}' resource\n`);
    });
}

function guard<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof JsonPatchError) throw new CliError(`invalid patch: ${err.message}`);
    throw err;
  }
}

/** A patch may change anything but which object it is. */
function keepIdentity(before: AnyResource, after: AnyResource): AnyResource {
  if (typeof after !== 'object' || after === null || Array.isArray(after)) {
    throw new CliError('invalid patch: the result is not an object');
  }
  const fields: [string, unknown, unknown][] = [
    ['apiVersion', before.apiVersion, after.apiVersion],
    ['kind', before.kind, after.kind],
    ['metadata.name', before.metadata.name, after.metadata?.name],
    ['metadata.namespace', before.metadata.namespace, after.metadata?.namespace],
  ];
  for (const [path, was, now] of fields) {
    if (was !== now) throw new CliError(`invalid patch: ${path} cannot be changed (${JSON.stringify(was)})`);
  }
  return after;
}
