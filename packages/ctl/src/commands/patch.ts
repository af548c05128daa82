import {
  type AnyResource,
  InvalidResourceError,
  KINDS,
  type KindName,
  validateResource,
} from '@calico-ts/datastore';
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
        // A resource is plain JSON data; the round trip gives the patch a copy it may change.
        const before: Json = JSON.parse(JSON.stringify(current));
        const after = operations
          ? guard(() => applyJsonPatch(before, operations))
          : applyMergePatch(before, patch);
        return patchedResource(kind, current, after);
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

/**
 * The patched document as a resource of `kind`: a patch may change anything but which object it
 * is, and the result must be valid (the same check, and the same error, as the datastore's write).
 */
function patchedResource(kind: KindName, before: AnyResource, after: Json): AnyResource {
  if (typeof after !== 'object' || after === null || Array.isArray(after)) {
    throw new CliError('invalid patch: the result is not an object');
  }
  const metadata = after['metadata'];
  const field = (key: string) =>
    typeof metadata === 'object' && metadata !== null && !Array.isArray(metadata) ? metadata[key] : undefined;
  const fields: [string, unknown, unknown][] = [
    ['apiVersion', before.apiVersion, after['apiVersion']],
    ['kind', before.kind, after['kind']],
    ['metadata.name', before.metadata.name, field('name')],
    ['metadata.namespace', before.metadata.namespace, field('namespace')],
  ];
  for (const [path, was, now] of fields) {
    if (was !== now) throw new CliError(`invalid patch: ${path} cannot be changed (${JSON.stringify(was)})`);
  }
  const result = validateResource(kind, after);
  if (!result.ok) {
    throw new InvalidResourceError(
      KINDS[kind].kind,
      before.metadata.name,
      result.issues,
      before.metadata.namespace,
    );
  }
  return result.value;
}
