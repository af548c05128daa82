import { CliError } from './cli-error.ts';
import type { CliIo } from './cli-io.ts';
import { formatProblem, type ManifestResource, readManifests } from './manifest-documents.ts';
import { readManifestSources } from './manifest-sources.ts';

/** The `-f` family of flags shared by validate, apply, create, replace and delete. */
export interface ManifestFlags {
  filename: string;
  recursive?: boolean;
  skipEmpty?: boolean;
  namespace?: string;
}

/**
 * Reads and checks everything `-f` names. Any problem in any document fails the whole command
 * before a single write, listing every problem (one per line).
 */
export async function loadManifest(
  io: CliIo,
  flags: ManifestFlags,
  options: { validate: boolean; writes: boolean },
): Promise<ManifestResource[]> {
  const sources = await readManifestSources(io, flags.filename, { recursive: flags.recursive ?? false });
  const { resources, problems } = readManifests(sources, {
    namespace: flags.namespace,
    validate: options.validate,
  });
  if (problems.length > 0) {
    const n = problems.length;
    throw new CliError(
      `${problems.map(formatProblem).join('\n')}\n${n} error${n === 1 ? '' : 's'} found${options.writes ? '; nothing was written' : ''}`,
    );
  }
  if (resources.length === 0 && !flags.skipEmpty) {
    throw new CliError(`no resources found in ${flags.filename === '-' ? 'stdin' : flags.filename}`);
  }
  return resources;
}
