import {
  type AnyResource,
  type Datastore,
  DatastoreError,
  isDatastoreError,
  KINDS,
} from '@calico-ts/datastore';
import { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import type { CommandContext } from '../command-context.ts';
import { kindArgument, kindLabel } from '../kind-argument.ts';
import type { ManifestResource } from '../manifest-documents.ts';
import { loadManifest, type ManifestFlags } from '../manifest-input.ts';

interface WriteVerb {
  name: 'apply' | 'create' | 'replace' | 'delete';
  past: string;
  summary: string;
  description: string;
  examples: string;
}

const VERBS: Record<WriteVerb['name'], WriteVerb> = {
  apply: {
    name: 'apply',
    past: 'applied',
    summary: 'Create or replace resources from files or stdin',
    description:
      'Creates each resource that does not exist and replaces the spec of each one that does. When a ' +
      'document carries metadata.resourceVersion the replace is compare-and-swap on that version.',
    examples:
      '  calico apply -f pool.yaml\n  cat policy.json | calico apply -f -\n  calico apply -f manifests/ -R',
  },
  create: {
    name: 'create',
    past: 'created',
    summary: 'Create resources from files or stdin',
    description: 'Creates each resource; one that already exists is an error unless --skip-exists is given.',
    examples: '  calico create -f pool.yaml\n  calico create -f pools.yaml --skip-exists',
  },
  replace: {
    name: 'replace',
    past: 'replaced',
    summary: 'Replace existing resources from files or stdin',
    description:
      'Replaces each resource, which must exist. When a document carries metadata.resourceVersion the ' +
      'replace succeeds only if the stored object still has that version (compare-and-swap).',
    examples:
      '  calico get ippool pool-a -o yaml > pool.yaml   # edit it, then\n  calico replace -f pool.yaml',
  },
  delete: {
    name: 'delete',
    past: 'deleted',
    summary: 'Delete resources named in files or stdin, or by KIND and NAME',
    description:
      'Deletes the resources the documents name (only their kind, name and namespace are used), or the ' +
      'resources of KIND with the given NAMEs. A missing resource is an error unless -s is given.',
    examples:
      '  calico delete -f policy.yaml\n  calico delete ippool pool-a pool-b\n  calico delete networkpolicy allow-web -n shop',
  },
};

function manifestOptions(cmd: Command, required: boolean): Command {
  const file = '-f, --filename <FILE>';
  const fileHelp = 'file, directory (its .yaml, .yml, .json files) or - for stdin';
  (required ? cmd.requiredOption(file, fileHelp) : cmd.option(file, fileHelp))
    .option('-R, --recursive', 'process directories given with -f recursively')
    .option('--skip-empty', 'do not fail when -f names no resources')
    .option('-n, --namespace <NS>', 'namespace for namespaced resources that name none (default "default")');
  return cmd;
}

/** `calico validate`: every check `apply` makes before it writes, without a datastore. */
export function validateCommand(ctx: CommandContext): Command {
  const cmd = new Command('validate')
    .summary('Check resource files without touching the datastore')
    .description(
      'Parses every document (multi-document YAML or JSON, List kinds expanded) and validates each ' +
        'resource against the projectcalico.org/v3 model. Lists every problem found and exits 1 if any.',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  calico validate -f pool.yaml\n  calico validate -f manifests/ -R\n',
    );
  manifestOptions(cmd, true).action(async (flags: ManifestFlags) => {
    const resources = await loadManifest(ctx.io, flags, { validate: true, writes: false });
    ctx.io.stdout(`Successfully validated ${resources.length} resource(s)\n`);
  });
  return cmd;
}

export function writeCommand(ctx: CommandContext, verb: WriteVerb['name']): Command {
  const v = VERBS[verb];
  const cmd = new Command(v.name)
    .summary(v.summary)
    .description(v.description)
    .addHelpText('after', `\nExamples:\n${v.examples}\n`);
  if (verb === 'delete') {
    cmd.argument('[KIND]', 'resource kind (any calicoctl spelling: ippool, ippools, ipp, pool…)');
    cmd.argument('[NAME...]', 'names of the resources to delete');
    cmd.option('-s, --skip-not-exists', 'treat resources that do not exist as deleted');
  }
  if (verb === 'create') cmd.option('--skip-exists', 'treat resources that already exist as created');
  manifestOptions(cmd, verb !== 'delete');
  cmd.action(async (...args: unknown[]) => {
    const flags = (verb === 'delete' ? args[2] : args[0]) as ManifestFlags & {
      skipExists?: boolean;
      skipNotExists?: boolean;
    };
    let targets: ManifestResource[];
    if (verb === 'delete' && args[0] !== undefined) {
      if (flags.filename !== undefined) throw new CliError('give either -f or KIND NAME…, not both');
      targets = deleteTargets(args[0] as string, args[1] as string[], flags.namespace);
    } else {
      if (flags.filename === undefined) throw new CliError(`${verb} needs -f FILE (or KIND NAME…)`);
      targets = await loadManifest(ctx.io, flags, { validate: verb !== 'delete', writes: true });
    }
    if (targets.length === 0) {
      ctx.io.stdout('No resources specified\n');
      return;
    }
    const datastore = await ctx.datastore();
    const kinds = new Set(targets.map((t) => t.kind));
    const single = kinds.size === 1 ? kindLabel(targets[0]!.kind) : undefined;
    let done = 0;
    const skipped: string[] = [];
    for (const target of targets) {
      try {
        if ((await writeOne(datastore, verb, target, flags)) === 'written') done++;
        else skipped.push(describeTarget(target, single !== undefined));
      } catch (err) {
        // Connection failures are not about this resource: report them as they are.
        if (isDatastoreError(err, 'Unavailable') || !(err instanceof DatastoreError)) throw err;
        const what = single ? `'${single}' ` : '';
        if (done > 0) {
          ctx.io.stdout(
            `Partial success: ${v.past} the first ${done} out of ${targets.length} ${what}resources:\n`,
          );
          throw new CliError(`Hit error: ${err.message}`);
        }
        if (targets.length === 1) throw new CliError(`Failed to ${verb} ${what}resource: ${err.message}`);
        throw new CliError(`Failed to ${verb} any ${what}resources: ${err.message}`);
      }
    }
    const what = single ? `'${single}' ` : '';
    if (done > 0 || skipped.length === 0)
      ctx.io.stdout(`Successfully ${v.past} ${done} ${what}resource(s)\n`);
    if (skipped.length > 0) {
      const why = verb === 'delete' ? 'do not exist' : 'already exist';
      ctx.io.stdout(`Skipped ${skipped.length} ${what}resource(s) that ${why}: ${skipped.join(', ')}\n`);
    }
  });
  return cmd;
}

/** A target as a skip report names it: `name` when every target is of one kind, else `Kind name`. */
function describeTarget(target: ManifestResource, oneKind: boolean): string {
  const { name, namespace } = target.identity;
  const id = namespace ? `${namespace}/${name}` : name;
  return oneKind ? id : `${kindLabel(target.kind)} ${id}`;
}

async function writeOne(
  datastore: Datastore,
  verb: WriteVerb['name'],
  target: ManifestResource,
  flags: { skipExists?: boolean; skipNotExists?: boolean },
): Promise<'written' | 'skipped'> {
  const { kind, resource } = target;
  const { name, namespace, resourceVersion } = target.identity;
  if (verb === 'delete') {
    try {
      await datastore.delete(kind, name, namespace, resourceVersion === undefined ? {} : { resourceVersion });
    } catch (err) {
      if (!(flags.skipNotExists && isDatastoreError(err, 'NotFound'))) throw err;
      return 'skipped';
    }
    return 'written';
  }
  // Every verb that writes reads its manifest with validation, which yields the resource.
  if (!resource) throw new Error(`${verb} was given ${kind} ${name} without validating it`);
  switch (verb) {
    case 'create':
      try {
        await datastore.create(kind, withoutVersion(resource));
      } catch (err) {
        if (!(flags.skipExists && isDatastoreError(err, 'AlreadyExists'))) throw err;
        return 'skipped';
      }
      return 'written';
    case 'replace':
      await datastore.update(kind, resource);
      return 'written';
    case 'apply':
      // Like calicoctl: a resourceVersion in the document makes the replace compare-and-swap.
      if (resourceVersion === undefined) {
        await datastore.apply(kind, resource);
        return 'written';
      }
      try {
        await datastore.update(kind, resource);
      } catch (err) {
        if (!isDatastoreError(err, 'NotFound')) throw err;
        await datastore.create(kind, withoutVersion(resource));
      }
      return 'written';
  }
}

function withoutVersion(resource: AnyResource): AnyResource {
  const { resourceVersion: _rv, ...metadata } = resource.metadata;
  return { ...resource, metadata };
}

function deleteTargets(
  kindSpelling: string,
  names: string[],
  namespace: string | undefined,
): ManifestResource[] {
  if (names.length === 0) throw new CliError('delete KIND needs at least one NAME');
  return names.map((name) => deleteTarget(kindSpelling, name, namespace));
}

function deleteTarget(kindSpelling: string, name: string, namespace: string | undefined): ManifestResource {
  const kind = kindArgument(kindSpelling);
  return {
    source: '(command line)',
    position: undefined,
    kind,
    identity: KINDS[kind].namespaced ? { name, namespace: namespace ?? 'default' } : { name },
  };
}
