import { KIND_NAMES, KINDS, type KindName, resolveKindAlias } from '@calico-ts/datastore';
import { CliError } from './cli-error.ts';

/** Resolves a KIND argument the way calicoctl does (case-insensitive, plural and short forms). */
export function kindArgument(spelling: string): KindName {
  const kind = resolveKindAlias(spelling);
  if (kind === undefined) {
    throw new CliError(`resource type '${spelling}' is not supported; valid types: ${KIND_NAMES.join(', ')}`);
  }
  return kind;
}

/** How a kind is named in messages: its `kind` field, qualified when two kinds share one. */
export function kindLabel(kind: KindName): string {
  return kind === 'KubernetesNetworkPolicy' ? 'NetworkPolicy.networking.k8s.io' : KINDS[kind].kind;
}
