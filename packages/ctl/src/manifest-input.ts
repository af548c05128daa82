import { CliError } from './cli-error.ts';
import type { CliIo } from './cli-io.ts';
import {
  formatProblem,
  type ManifestProblem,
  type ManifestResource,
  readManifests,
} from './manifest-documents.ts';
import { type ManifestSource, readManifestSources } from './manifest-sources.ts';

/** The `-f` family of flags shared by validate, apply, create, replace and delete. */
export interface ManifestFlags {
  filename: string;
  recursive?: boolean;
  skipEmpty?: boolean;
  namespace?: string;
}

/**
 * Reads and checks everything `-f` names. Any problem in any document fails the whole command
 * before a single write, listing every problem (one per line). `rewrite` may replace a file's
 * text before it is read (convert turns calicoctl v1 documents into v3 there), adding the problems
 * it finds to the same list.
 */
export async function loadManifest(
  io: CliIo,
  flags: ManifestFlags,
  options: {
    validate: boolean;
    writes: boolean;
    rewrite?: (source: ManifestSource, problems: ManifestProblem[]) => ManifestSource;
  },
): Promise<ManifestResource[]> {
  const read = await readManifestSources(io, flags.filename, { recursive: flags.recursive ?? false });
  const rewriteProblems: ManifestProblem[] = [];
  const { rewrite } = options;
  const sources = rewrite ? read.map((source) => rewrite(source, rewriteProblems)) : read;
  const { resources, problems: readProblems } = readManifests(sources, {
    namespace: flags.namespace,
    validate: options.validate,
  });
  const problems = [...rewriteProblems, ...readProblems];
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
