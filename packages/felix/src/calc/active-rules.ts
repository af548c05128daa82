/**
 * The policy half of the calculation graph (Felix's ActiveRulesCalculator with the label index
 * behind it): policies, profiles and tiers kept compiled in one PolicyCatalog, every endpoint
 * and network set in the cluster in one SelectorIndex (selectors match remote pods too), and
 * from the local endpoints' resolutions the active policies, profiles and IP sets reported to
 * the EventSequencer. A member entering or leaving a selector is reported as a delta, never as
 * a rebuilt set.
 */
import { type AnyResource, isResourceOf, type KindName, type Selector } from '@calico-ts/datastore';
import type { ActivePolicy, ActiveProfile } from './dataplane-update.ts';
import type { EventSequencer } from './event-sequencer.ts';
import {
  activePolicySet,
  type CompiledPolicy,
  type CompiledProfile,
  type CompiledStagedPolicy,
  type IndexedItem,
  ipsetTypeOf,
  networkSetIndexItem,
  PolicyCatalog,
  type PolicyEndpoint,
  type ResolvedEndpointPolicy,
  SelectorIndex,
  type TierList,
} from './policy/index.ts';

/** The kinds this calculator consumes. */
export const POLICY_KINDS: readonly KindName[] = [
  'NetworkPolicy',
  'GlobalNetworkPolicy',
  'KubernetesNetworkPolicy',
  'StagedNetworkPolicy',
  'StagedGlobalNetworkPolicy',
  'StagedKubernetesNetworkPolicy',
  'Tier',
  'Profile',
  'NetworkSet',
  'GlobalNetworkSet',
];

export function activePolicyOf(p: CompiledPolicy, stagedView = false): ActivePolicy {
  return {
    id: p.id,
    key: p.key,
    calicoName: p.calicoName,
    rules: { ingress: [...p.rules.ingress], egress: [...p.rules.egress] },
    ...(stagedView ? { stagedView: true } : {}),
  };
}

export function activeProfileOf(p: CompiledProfile, stagedView = false): ActiveProfile {
  return {
    name: p.name,
    rules: { ingress: [...p.rules.ingress], egress: [...p.rules.egress] },
    ...(stagedView ? { stagedView: true } : {}),
  };
}

/** An endpoint's staged view: its staged tiers and its (unchanged) profiles. */
export interface StagedView {
  tiers: TierList;
  profiles: readonly CompiledProfile[];
}

/** More policy changes than this in one batch re-resolve every local endpoint instead. */
const MAX_TRACKED_POLICY_CHANGES = 64;

/**
 * Which local endpoints the policy-side changes since the last look touch: `all`, or the ones
 * `affects` accepts (given the endpoint's last resolution).
 */
export interface CatalogChanges {
  all: boolean;
  affects(resolution: ResolvedEndpointPolicy): boolean;
}

export class ActiveRulesCalculator {
  readonly catalog = new PolicyCatalog();
  readonly index = new SelectorIndex();
  readonly #sequencer: EventSequencer;
  /** Datastore key → policy key. */
  #policyKeys = new Map<string, string>();
  /** Datastore key → staged policy key. */
  #stagedKeys = new Map<string, string>();
  /** Every local endpoint must be resolved again (start, a tier change, a large batch). */
  #allChanged = true;
  /** Policies changed since the last look: the selectors before and after. */
  #changedPolicies = new Map<string, { before: Selector | undefined; after: Selector | undefined }>();
  #changedProfiles = new Set<string>();
  /** What was last reported, by key: a policy or profile is reported again only when recompiled. */
  #sentPolicies = new Map<string, CompiledPolicy>();
  #sentProfiles = new Map<string, CompiledProfile>();
  /** Keys and profile names last reported with their staged form. */
  #sentStagedView = new Set<string>();

  constructor(sequencer: EventSequencer) {
    this.#sequencer = sequencer;
  }

  /** Whether policies, profiles or tiers changed since the last call (every resolution may differ). */
  takeCatalogChanged(): boolean {
    return this.takeCatalogChanges() !== undefined;
  }

  /**
   * The policy-side changes since the last call, as the local endpoints they touch: a policy
   * change touches the endpoints its selector matched before or matches after, a profile change
   * those that use the profile, a tier change all. undefined when nothing changed.
   */
  takeCatalogChanges(): CatalogChanges | undefined {
    const all = this.#allChanged || this.#changedPolicies.size > MAX_TRACKED_POLICY_CHANGES;
    const selectors = [...this.#changedPolicies.values()].flatMap((c) =>
      [c.before, c.after].filter((s): s is Selector => s !== undefined),
    );
    const profiles = new Set(this.#changedProfiles);
    const any = all || this.#changedPolicies.size > 0 || profiles.size > 0;
    this.#allChanged = false;
    this.#changedPolicies.clear();
    this.#changedProfiles.clear();
    if (!any) return undefined;
    return {
      all,
      affects: (r) =>
        all ||
        r.profiles.some((p) => profiles.has(p.name)) ||
        r.missingProfiles.some((p) => profiles.has(p)) ||
        selectors.some((sel) => sel.evaluate(r.labels)),
    };
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
      case 'StagedNetworkPolicy':
        this.#setStaged(
          key,
          value && isResourceOf('StagedNetworkPolicy', value)
            ? () => this.catalog.setStagedNetworkPolicy(value)
            : undefined,
        );
        return true;
      case 'StagedGlobalNetworkPolicy':
        this.#setStaged(
          key,
          value && isResourceOf('StagedGlobalNetworkPolicy', value)
            ? () => this.catalog.setStagedGlobalNetworkPolicy(value)
            : undefined,
        );
        return true;
      case 'StagedKubernetesNetworkPolicy':
        this.#setStaged(
          key,
          value && isResourceOf('StagedKubernetesNetworkPolicy', value)
            ? () => this.catalog.setStagedKubernetesNetworkPolicy(value)
            : undefined,
        );
        return true;
      case 'Tier': {
        const name = nameFromKey(key);
        if (value && isResourceOf('Tier', value)) this.catalog.setTier(value);
        else if (!this.catalog.removeTier(name)) return true;
        this.#allChanged = true;
        return true;
      }
      case 'Profile': {
        const name = nameFromKey(key);
        const compiled = value && isResourceOf('Profile', value) ? this.catalog.setProfile(value) : undefined;
        if (!compiled) this.catalog.removeProfile(name);
        this.index.setProfileLabels(name, compiled?.labelsToApply);
        this.#changedProfiles.add(name);
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
    const before = old === undefined ? undefined : this.catalog.policy(old);
    const compiled = set?.();
    if (compiled) this.#policyKeys.set(key, compiled.key);
    else this.#policyKeys.delete(key);
    if (old !== undefined && old !== compiled?.key) this.catalog.removePolicy(old);
    if (old === undefined && !compiled) return;
    this.#policyChanged(old ?? compiled?.key, before?.selector, compiled?.selector);
    if (compiled && old !== undefined && old !== compiled.key)
      this.#policyChanged(compiled.key, undefined, compiled.selector);
  }

  /**
   * A staged policy changed: the endpoints its selector matched before or matches now, and the
   * ones the enforced policy it stands for (before and after) selects, may see another staged view.
   */
  #setStaged(key: string, set: (() => CompiledStagedPolicy | undefined) | undefined): void {
    const oldKey = this.#stagedKeys.get(key);
    const before = oldKey === undefined ? undefined : this.catalog.stagedPolicy(oldKey);
    const compiled = set?.();
    if (compiled) this.#stagedKeys.set(key, compiled.policy.key);
    else this.#stagedKeys.delete(key);
    if (oldKey !== undefined && oldKey !== compiled?.policy.key) this.catalog.removeStagedPolicy(oldKey);
    if (!before && !compiled) return;
    this.#policyChanged(
      `staged:${before?.policy.key ?? compiled?.policy.key}`,
      before?.policy.selector,
      compiled?.policy.selector,
    );
    for (const target of new Set([before?.replaces, compiled?.replaces])) {
      const enforced = target === undefined ? undefined : this.catalog.policy(target);
      if (enforced) this.#policyChanged(`target:${target}`, enforced.selector, enforced.selector);
    }
  }

  #policyChanged(key: string | undefined, before: Selector | undefined, after: Selector | undefined): void {
    if (key === undefined) return;
    const seen = this.#changedPolicies.get(key);
    // The first "before" of the batch is what the endpoints were last resolved against.
    this.#changedPolicies.set(key, { before: seen ? seen.before : before, after });
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
  publish(resolutions: Iterable<ResolvedEndpointPolicy>, stagedViews: Iterable<StagedView> = []): void {
    const views = [...stagedViews];
    const active = activePolicySet([
      ...resolutions,
      ...views.map((v) => ({ ...v.tiers, labels: {}, profiles: v.profiles, missingProfiles: [] })),
    ]);
    // Which policies and profiles some staged view walks through: they need their staged form.
    const stagedView = new Set<string>();
    for (const v of views) {
      for (const direction of ['ingress', 'egress'] as const)
        for (const t of v.tiers.tiers[direction]) for (const p of t.policies) stagedView.add(p.key);
      for (const p of v.profiles) stagedView.add(`pr/${p.name}`);
    }
    const policies = new Map<string, CompiledPolicy>();
    for (const p of active.policies) {
      policies.set(p.key, p);
      const s = stagedView.has(p.key);
      if (this.#sentPolicies.get(p.key) !== p || this.#sentStagedView.has(p.key) !== s)
        this.#sequencer.onActivePolicy(p.key, activePolicyOf(p, s));
    }
    for (const key of this.#sentPolicies.keys())
      if (!policies.has(key)) this.#sequencer.onActivePolicy(key, null);
    this.#sentPolicies = policies;
    const profiles = new Map<string, CompiledProfile>();
    for (const p of active.profiles) {
      profiles.set(p.name, p);
      const s = stagedView.has(`pr/${p.name}`);
      if (this.#sentProfiles.get(p.name) !== p || this.#sentStagedView.has(`pr/${p.name}`) !== s)
        this.#sequencer.onActiveProfile(p.name, activeProfileOf(p, s));
    }
    for (const name of this.#sentProfiles.keys())
      if (!profiles.has(name)) this.#sequencer.onActiveProfile(name, null);
    this.#sentProfiles = profiles;
    this.#sentStagedView = stagedView;

    const { added, removed } = this.index.syncIpsets(active.ipsets.values());
    for (const id of removed) this.#sequencer.onIpsetRemoved(id);
    for (const id of added) this.#sequencer.onIpsetAdded(id, ipsetTypeOf(active.ipsets.get(id)!));
    this.publishDeltas();
  }

  /**
   * Members the tracked sets gained or lost, of both families: the dataplane puts IPv4 members
   * in the `cali40` set and IPv6 members in the `cali60` set of the same id.
   */
  publishDeltas(): void {
    for (const d of this.index.takeDeltas()) {
      for (const m of d.removed) this.#sequencer.onIpsetMemberRemoved(d.id, m);
      for (const m of d.added) this.#sequencer.onIpsetMemberAdded(d.id, m);
    }
  }
}

function nameFromKey(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}
