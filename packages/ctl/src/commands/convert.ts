/**
 * `calico convert`: what a manifest becomes in Calico's model, without a datastore. A
 * networking.k8s.io/v1 NetworkPolicy becomes the Calico NetworkPolicy Felix enforces for it
 * (`knp.default.<name>`, order 1000, selectors over `projectcalico.org/*` labels); calicoctl v1
 * resources (`apiVersion: v1`, kinds `policy`, `profile`, `ipPool`, …) become their
 * projectcalico.org/v3 resources; Calico resources are printed as validated, with their defaults
 * filled in.
 */
import { type AnyResource, isResourceOf, kubernetesNetworkPolicyToCalico } from '@calico-ts/datastore';
import { Command, Option } from 'commander';
import { LineCounter, parseAllDocuments, stringify } from 'yaml';
import { convertV1Resource, isCalicoV1Document } from '../calico-v1-conversion.ts';
import type { CommandContext } from '../command-context.ts';
import type { ManifestProblem } from '../manifest-documents.ts';
import { loadManifest, type ManifestFlags } from '../manifest-input.ts';
import type { ManifestSource } from '../manifest-sources.ts';

/** The resource as a file would carry it: without what the datastore stamps. */
function asManifest(resource: AnyResource): AnyResource {
  const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, ...metadata } = resource.metadata;
  return { ...resource, metadata };
}

export function convertCommand(ctx: CommandContext): Command {
  return new Command('convert')
    .summary(
      'Print what a manifest becomes in Calico’s model (Kubernetes NetworkPolicy → Calico NetworkPolicy, calicoctl v1 → v3)',
    )
    .requiredOption('-f, --filename <FILE>', 'file, directory (its .yaml, .yml, .json files) or - for stdin')
    .option('-R, --recursive', 'process directories given with -f recursively')
    .option('-n, --namespace <NS>', 'namespace for namespaced resources that name none (default "default")')
    .addOption(new Option('-o, --output <FORMAT>', 'output format').choices(['yaml', 'json']).default('yaml'))
    .addHelpText(
      'after',
      '\nExamples:\n  calico convert -f knp.yaml\n  calico convert -f calicoctl-v1-policy.yaml\n  calico convert -f knp.yaml -o json | calico apply -f -\n',
    )
    .action(async (flags: ManifestFlags & { output: 'yaml' | 'json' }) => {
      // Read and validated as the other verbs read -f, with calicoctl v1 documents turned into v3 first.
      const resources = await loadManifest(ctx.io, flags, {
        validate: true,
        writes: false,
        rewrite: withV1Converted,
      });
      const converted: AnyResource[] = [];
      for (const { resource } of resources) {
        if (!resource) continue;
        converted.push(
          asManifest(
            isResourceOf('KubernetesNetworkPolicy', resource)
              ? kubernetesNetworkPolicyToCalico(resource)
              : resource,
          ),
        );
      }
      if (flags.output === 'json') {
        const body =
          converted.length === 1 ? converted[0] : { apiVersion: 'v1', kind: 'List', items: converted };
        ctx.io.stdout(`${JSON.stringify(body, null, 2)}\n`);
      } else {
        ctx.io.stdout(converted.map((r) => stringify(r)).join('---\n'));
      }
    });
}

/**
 * The source with each calicoctl v1 document (alone, in a top-level YAML list as calicoctl v1
 * accepted, or in a List's items) replaced by the v3 resource it converts to, so the rest of the
 * command reads one v3 manifest. A source without v1 documents (or with a syntax error, which the
 * manifest reader reports) is returned as it was; a v1 document that cannot be converted is
 * reported with its field, value and what was expected.
 */
function withV1Converted(source: ManifestSource, problems: ManifestProblem[]): ManifestSource {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(source.text, { lineCounter, prettyErrors: false });
  if (!Array.isArray(docs) || docs.some((doc) => doc.errors.length > 0)) return source;
  let sawV1 = false;
  const converted = docs.map((doc, document) => {
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    const line = doc.contents?.range ? lineCounter.linePos(doc.contents.range[0]).line : 1;
    const convert = (object: unknown, item?: number): unknown => {
      if (!isCalicoV1Document(object)) return object;
      sawV1 = true;
      const result = convertV1Resource(object);
      if (result.ok) return result.resource;
      const position = item === undefined ? { document, line } : { document, line, item };
      for (const issue of result.issues)
        problems.push({ source: source.name, position, subject: result.subject, issue });
      // Reported above; left out so the manifest reader does not report it again.
      return null;
    };
    // Items that failed are left out of a list; the command fails on their problems anyway.
    const convertItems = (items: unknown[]): unknown[] =>
      items.map((item, i) => convert(item, i)).filter((item) => item !== null);
    if (Array.isArray(value)) {
      if (!value.some(isCalicoV1Document)) return value;
      return { apiVersion: 'v1', kind: 'List', items: convertItems(value) };
    }
    if (isListOfItems(value)) return { ...value, items: convertItems(value.items) };
    return convert(value);
  });
  if (!sawV1) return source;
  return { name: source.name, text: converted.map((value) => stringify(value)).join('---\n') };
}

function isListOfItems(value: unknown): value is Record<string, unknown> & { items: unknown[] } {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  if (!('kind' in value) || !('items' in value)) return false;
  return typeof value.kind === 'string' && value.kind.endsWith('List') && Array.isArray(value.items);
}
