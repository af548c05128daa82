/**
 * The policy half of the calculation graph (Felix's ActiveRulesCalculator with the label index
 * behind it): policies, profiles and tiers kept compiled in one PolicyCatalog, every endpoint
 * and network set in the cluster in one SelectorIndex (selectors match remote pods too), and
 * from the local endpoints' resolutions the active policies, profiles and IP sets reported to
 * the EventSequencer. A member entering or leaving a selector is reported as a delta, never as
 * a rebuilt set.
 */
import { type AnyResource, isResourceOf, type KindName } from '@calico-ts/datastore';
import type { ActivePolicy, ActiveProfile } from './dataplane-update.ts';
import type { EventSequencer } from './event-sequencer.ts';
import {
  activePolicySet,
  type CompiledPolicy,
  type CompiledProfile,
  type IndexedItem,
  ipsetTypeOf,
  memberFamily,
  networkSetIndexItem,
  PolicyCatalog,
  type PolicyEndpoint,
  type ResolvedEndpointPolicy,
  SelectorIndex,
} from './policy/index.ts';

/** The kinds this calculator consumes. */
export const POLICY_KINDS: readonly KindName[] = [
  'NetworkPolicy',
  'GlobalNetworkPolicy',
  'KubernetesNetworkPolicy',
  'Tier',
  'Profile',
  'NetworkSet',
  'GlobalNetworkSet',
];

export function activePolicyOf(p: CompiledPolicy): ActivePolicy {
  return {
    id: p.id,
    key: p.key,
    calicoName: p.calicoName,
    rules: { ingress: [...p.rules.ingress], egress: [...p.rules.egress] },
  };
}

export function activeProfileOf(p: CompiledProfile): ActiveProfile {
  return { name: p.name, rules: { ingress: [...p.rules.ingress], egress: [...p.rules.egress] } };
}

export class ActiveRulesCalculator {
  readonly catalog = new PolicyCatalog();
  readonly index = new SelectorIndex();
  readonly #sequencer: EventSequencer;
  /** Datastore key → policy key (a NetworkPolicy `knp.default.x` is known by its Kubernetes key). */
  #policyKeys = new Map<string, string>();
  #catalogChanged = true;
  #sentPolicies = new Set<string>();
  #sentProfiles = new Set<string>();

  constructor(sequencer: EventSequencer) {
    this.#sequencer = sequencer;
  }

  /** Whether policies, profiles or tiers changed since the last call (every resolution may differ). */
  takeCatalogChanged(): boolean {
    const changed = this.#catalogChanged;
    this.#catalogChanged = false;
    return changed;
  }

  /** Handles a policy-side update; false when the kind is not one of POLICY_KINDS. */
  onUpdate(kind: KindName, key: string, value: AnyResource | null): boolean {
    switch (kind) {
      case 'NetworkPolicy':
        this.#setPolicy(
          key,
          value && isResourceOf('NetworkPolicy', value)
            ? () => this.catalog.setNetworkPolicy(value)
            : undefined,
        );
        return true;
      case 'GlobalNetworkPolicy':
        this.#setPolicy(
          key,
          value && isResourceOf('GlobalNetworkPolicy', value)
            ? () => this.catalog.setGlobalNetworkPolicy(value)
            : undefined,
        );
        return true;
      case 'KubernetesNetworkPolicy':
        this.#setPolicy(
          key,
          value && isResourceOf('KubernetesNetworkPolicy', value)
            ? () => this.catalog.setKubernetesNetworkPolicy(value)
            : undefined,
        );
        return true;
      case 'Tier': {
        const name = nameFromKey(key);
        if (value && isResourceOf('Tier', value)) this.catalog.setTier(value);
        else if (!this.catalog.removeTier(name)) return true;
        this.#catalogChanged = true;
        return true;
      }
      case 'Profile': {
        const name = nameFromKey(key);
        const compiled = value && isResourceOf('Profile', value) ? this.catalog.setProfile(value) : undefined;
        if (!compiled) this.catalog.removeProfile(name);
        this.index.setProfileLabels(name, compiled?.labelsToApply);
        this.#catalogChanged = true;
        return true;
      }
      case 'NetworkSet':
      case 'GlobalNetworkSet':
        if (value && (isResourceOf('NetworkSet', value) || isResourceOf('GlobalNetworkSet', value)))
          this.index.setItem(key, networkSetIndexItem(value));
        else this.index.removeItem(key);
        return true;
      default:
        return false;
    }
  }

  #setPolicy(key: string, set: (() => CompiledPolicy | undefined) | undefined): void {
    const old = this.#policyKeys.get(key);
    const compiled = set?.();
    if (compiled) this.#policyKeys.set(key, compiled.key);
    else this.#policyKeys.delete(key);
    if (old !== undefined && old !== compiled?.key) this.catalog.removePolicy(old);
    if (old === undefined && !compiled) return;
    this.#catalogChanged = true;
  }

  /** An endpoint anywhere in the cluster (its addresses feed selector IP sets), or its removal. */
  setEndpoint(key: string, item: IndexedItem | undefined): void {
    if (item) this.index.setItem(key, item);
    else this.index.removeItem(key);
  }

  resolve(endpoint: PolicyEndpoint): ResolvedEndpointPolicy {
    return this.catalog.resolve(endpoint);
  }

  /**
   * Reports the policies, profiles and IP sets these (all local) resolutions need: new and
   * changed ones as updates, the rest as removes; then the members each set gained or lost.
   */
  publish(resolutions: Iterable<ResolvedEndpointPolicy>): void {
    const active = activePolicySet(resolutions);
    const policies = new Set<string>();
    for (const p of active.policies) {
      policies.add(p.key);
      this.#sequencer.onActivePolicy(p.key, activePolicyOf(p));
    }
    for (const key of this.#sentPolicies) if (!policies.has(key)) this.#sequencer.onActivePolicy(key, null);
    this.#sentPolicies = policies;
    const profiles = new Set<string>();
    for (const p of active.profiles) {
      profiles.add(p.name);
      this.#sequencer.onActiveProfile(p.name, activeProfileOf(p));
    }
    for (const name of this.#sentProfiles)
      if (!profiles.has(name)) this.#sequencer.onActiveProfile(name, null);
    this.#sentProfiles = profiles;

    const { added, removed } = this.index.syncIpsets(active.ipsets.values());
    for (const id of removed) this.#sequencer.onIpsetRemoved(id);
    for (const id of added) this.#sequencer.onIpsetAdded(id, ipsetTypeOf(active.ipsets.get(id)!));
    this.publishDeltas();
  }

  /** Members the tracked sets gained or lost (IPv4 only: the dataplane programs IPv4 sets). */
  publishDeltas(): void {
    for (const d of this.index.takeDeltas()) {
      for (const m of d.removed) if (memberFamily(m) === 4) this.#sequencer.onIpsetMemberRemoved(d.id, m);
      for (const m of d.added) if (memberFamily(m) === 4) this.#sequencer.onIpsetMemberAdded(d.id, m);
    }
  }
}

function nameFromKey(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}
