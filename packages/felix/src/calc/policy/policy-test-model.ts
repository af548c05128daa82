/**
 * A small model for the policy unit tests: resources through the datastore's validation and
 * defaulting (so tests see stored objects, with `types` defaulted), pods with addresses, and a
 * catalog plus selector index kept in step the way the dataplane wiring keeps them.
 */
import { defaultResource, namespaceProfile, type ResourceInput } from '@calico-ts/datastore';
import type { PolicyCatalog, PolicyEndpoint } from './policy-catalog.ts';
import { type EndpointPort, endpointIndexItem, type IndexedItem, SelectorIndex } from './selector-index.ts';

export const np = (namespace: string, name: string, spec: ResourceInput<'NetworkPolicy'>['spec']) =>
  defaultResource('NetworkPolicy', { metadata: { name, namespace }, spec });

export const gnp = (name: string, spec: ResourceInput<'GlobalNetworkPolicy'>['spec']) =>
  defaultResource('GlobalNetworkPolicy', { metadata: { name }, spec });

export const knp = (
  namespace: string,
  name: string,
  spec: ResourceInput<'KubernetesNetworkPolicy'>['spec'],
) =>
  defaultResource('KubernetesNetworkPolicy', {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace },
    spec,
  });

export const tier = (name: string, spec: ResourceInput<'Tier'>['spec'] = {}) =>
  defaultResource('Tier', { metadata: { name }, spec });

export const profile = (name: string, spec: ResourceInput<'Profile'>['spec']) =>
  defaultResource('Profile', { metadata: { name }, spec });

export interface TestPod extends PolicyEndpoint {
  name: string;
  ip: string;
  ports?: EndpointPort[];
}

/** A pod as the CNI plugin writes its endpoint: namespace/orchestrator labels, profile kns.<ns>. */
export function pod(
  namespace: string,
  name: string,
  ip: string,
  labels: Record<string, string> = {},
  extra: { serviceAccount?: string; ports?: EndpointPort[] } = {},
): TestPod {
  return {
    name: `${namespace}/${name}`,
    ip,
    namespace,
    labels: { ...labels, 'projectcalico.org/orchestrator': 'k8s' },
    profiles: [`kns.${namespace}`],
    serviceAccount: extra.serviceAccount,
    ports: extra.ports,
  };
}

/** Namespace profiles for the given namespaces and labels. */
export function namespaces(labels: Record<string, Record<string, string>>) {
  return Object.entries(labels).map(([ns, l]) => namespaceProfile(ns, l));
}

/** Feeds the catalog's profiles, IP sets and these pods/items into a fresh selector index. */
export function indexFor(
  catalog: PolicyCatalog,
  pods: readonly TestPod[],
  others: Record<string, IndexedItem> = {},
): SelectorIndex {
  const index = new SelectorIndex();
  for (const p of catalog.profiles()) index.setProfileLabels(p.name, p.labelsToApply);
  for (const p of pods) {
    index.setItem(p.name, endpointIndexItem(p, [`${p.ip}/32`], p.ports));
  }
  for (const [key, item] of Object.entries(others)) index.setItem(key, item);
  index.syncIpsets(catalog.ipsets().values());
  index.takeDeltas();
  return index;
}
