/**
 * `calico convert`: what a manifest becomes in Calico's model, without a datastore. A
 * networking.k8s.io/v1 NetworkPolicy becomes the Calico NetworkPolicy Felix enforces for it
 * (`knp.default.<name>`, order 1000, selectors over `projectcalico.org/*` labels); Calico
 * resources are printed as validated, with their defaults filled in.
 */
import { type AnyResource, isResourceOf, kubernetesNetworkPolicyToCalico } from '@calico-ts/datastore';
import { Command, Option } from 'commander';
import { stringify } from 'yaml';
import type { CommandContext } from '../command-context.ts';
import { loadManifest, type ManifestFlags } from '../manifest-input.ts';

/** The resource as a file would carry it: without what the datastore stamps. */
function asManifest(resource: AnyResource): AnyResource {
  const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, ...metadata } = resource.metadata;
  return { ...resource, metadata };
}

export function convertCommand(ctx: CommandContext): Command {
  return new Command('convert')
    .summary(
      'Print what a manifest becomes in Calico’s model (Kubernetes NetworkPolicy → Calico NetworkPolicy)',
    )
    .requiredOption('-f, --filename <FILE>', 'file, directory (its .yaml, .yml, .json files) or - for stdin')
    .option('-R, --recursive', 'process directories given with -f recursively')
    .option('-n, --namespace <NS>', 'namespace for namespaced resources that name none (default "default")')
    .addOption(new Option('-o, --output <FORMAT>', 'output format').choices(['yaml', 'json']).default('yaml'))
    .addHelpText(
      'after',
      '\nExamples:\n  calico convert -f knp.yaml\n  calico convert -f knp.yaml -o json | calico apply -f -\n',
    )
    .action(async (flags: ManifestFlags & { output: 'yaml' | 'json' }) => {
      const resources = await loadManifest(ctx.io, flags, { validate: true, writes: false });
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
