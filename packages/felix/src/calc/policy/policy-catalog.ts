/**
 * The policy half of Felix's calculation graph, without I/O: policies, profiles and tiers
 * compiled once (effective selector, parsed rules, IP sets), and for an endpoint the ordered
 * tiers of policies that select it in each direction plus its profiles (felix/calc
 * policy_sorter.go, active_rules_calculator.go; policy-semantics §2.3–2.5, §2.7). The dataplane
 * renders from this resolution and `calico policy explain` evaluates it: one calculation.
 */
import {
  type GlobalNetworkPolicySpec,
  isSelectorParseError,
  kubernetesNetworkPolicyToCalico,
  LABEL_NAMESPACE,
  LABEL_SERVICE_ACCOUNT,
  type Labels,
  type NetworkPolicySpec,
  parseSelector,
  type ResourceOf,
  type Rule,
  SERVICE_ACCOUNT_PROFILE_PREFIX,
  type Selector,
  type SelectorNode,
  type STAGED_ACTIONS,
  WELL_KNOWN_TIER_ORDERS,
} from '@calico-ts/datastore';
import { type IpsetSpec, type ParsedRule, parseRule } from './parsed-rule.ts';
import {
  ENFORCED_KIND_OF,
  isStagedKind,
  type PolicyDirection,
  type PolicyId,
  policyIdString,
} from './policy-id.ts';
import { globalNetworkPolicySelectorText, networkPolicySelectorText } from './selector-scoping.ts';

export interface CompiledPolicy {
  id: PolicyId;
  /** policyIdString(id): `np/<ns>/<name>`, `gnp/<name>`, `knp/<ns>/<name>`. */
  key: string;
  /** The name Calico shows (`knp.default.<name>` for a Kubernetes policy). */
  calicoName: string;
  tier: string;
  order: number | undefined;
  /** Effective selector: the policy's own, scoped to its namespace / namespace and SA selectors. */
  selector: Selector;
  /** Directions the policy governs (its `types`; an empty list governs both, as Felix reads old data). */
  governs: Readonly<Record<PolicyDirection, boolean>>;
  rules: Readonly<Record<PolicyDirection, readonly ParsedRule[]>>;
  /** The v3 rules the parsed ones came from, index for index (for explain). */
  sourceRules: Readonly<Record<PolicyDirection, readonly Rule[]>>;
  /** preDNAT / doNotTrack policies only act on host endpoints and never join the normal tiers. */
  preDNAT: boolean;
  doNotTrack: boolean;
  /** Also applies to traffic a host endpoint forwards (always true for namespaced policies). */
  applyOnForward: boolean;
  ipsets: ReadonlyMap<string, IpsetSpec>;
}

export interface CompiledProfile {
  name: string;
  rules: Readonly<Record<PolicyDirection, readonly ParsedRule[]>>;
  sourceRules: Readonly<Record<PolicyDirection, readonly Rule[]>>;
  labelsToApply: Labels;
  ipsets: ReadonlyMap<string, IpsetSpec>;
}

export interface TierView {
  name: string;
  order: number | undefined;
  defaultAction: 'Deny' | 'Pass';
  /** False for a tier named by policies but with no Tier object: it sorts after all others. */
  exists: boolean;
}

type PolicySpecFields = Pick<NetworkPolicySpec, 'tier' | 'order' | 'types' | 'ingress' | 'egress'>;

function compile(
  id: PolicyId,
  calicoName: string,
  spec: PolicySpecFields,
  selectorText: string,
  extras: {
    preDNAT?: boolean | undefined;
    doNotTrack?: boolean | undefined;
    applyOnForward?: boolean | undefined;
  },
): CompiledPolicy {
  const ipsets = new Map<string, IpsetSpec>();
  const ingress = spec.ingress ?? [];
  const egress = spec.egress ?? [];
  const both = spec.types.length === 0;
  return {
    id,
    key: policyIdString(id),
    calicoName,
    tier: spec.tier,
    order: spec.order,
    selector: parseSelector(selectorText),
    governs: {
      ingress: both || spec.types.includes('Ingress'),
      egress: both || spec.types.includes('Egress'),
    },
    rules: {
      ingress: ingress.map((r) => parseRule(r, id.namespace, ipsets)),
      egress: egress.map((r) => parseRule(r, id.namespace, ipsets)),
    },
    sourceRules: { ingress, egress },
    preDNAT: extras.preDNAT === true,
    doNotTrack: extras.doNotTrack === true,
    applyOnForward: extras.applyOnForward === true,
    ipsets,
  };
}

/**
 * The ID of a stored Calico NetworkPolicy: always its own (`np/<ns>/<name>`), also for a name
 * that starts with `knp.default.` (what `calico convert` prints for a Kubernetes policy). A
 * Kubernetes policy is known by its own kind (`knp/<ns>/<name>`, Calico's PolicyID since it
 * stopped storing converted copies), so a Calico policy of that name in the same namespace is a
 * second policy and never replaces or removes the Kubernetes one.
 */
export function networkPolicyId(policy: ResourceOf<'NetworkPolicy'>): PolicyId {
  return {
    kind: 'NetworkPolicy',
    namespace: policy.metadata.namespace ?? 'default',
    name: policy.metadata.name,
  };
}

export function globalNetworkPolicyId(policy: ResourceOf<'GlobalNetworkPolicy'>): PolicyId {
  return { kind: 'GlobalNetworkPolicy', namespace: undefined, name: policy.metadata.name };
}

export function kubernetesNetworkPolicyId(policy: ResourceOf<'KubernetesNetworkPolicy'>): PolicyId {
  return {
    kind: 'KubernetesNetworkPolicy',
    namespace: policy.metadata.namespace ?? 'default',
    name: policy.metadata.name,
  };
}

/** A Calico NetworkPolicy under this ID (a stored one, or a Kubernetes policy converted). */
function compileNamespaced(id: PolicyId, policy: ResourceOf<'NetworkPolicy'>): CompiledPolicy {
  const namespace = policy.metadata.namespace ?? 'default';
  return compile(id, policy.metadata.name, policy.spec, networkPolicySelectorText(namespace, policy.spec), {
    applyOnForward: true,
  });
}

/** Compiles a NetworkPolicy; throws SelectorParseError if a selector does not parse. */
export function compileNetworkPolicy(policy: ResourceOf<'NetworkPolicy'>): CompiledPolicy {
  return compileNamespaced(networkPolicyId(policy), policy);
}

export function compileGlobalNetworkPolicy(policy: ResourceOf<'GlobalNetworkPolicy'>): CompiledPolicy {
  const spec: GlobalNetworkPolicySpec = policy.spec;
  return compile(
    globalNetworkPolicyId(policy),
    policy.metadata.name,
    spec,
    globalNetworkPolicySelectorText(spec),
    spec,
  );
}

export function compileKubernetesNetworkPolicy(
  policy: ResourceOf<'KubernetesNetworkPolicy'>,
): CompiledPolicy {
  return compileNamespaced(kubernetesNetworkPolicyId(policy), kubernetesNetworkPolicyToCalico(policy));
}

/** What a staged policy previews (the model's `stagedAction`). */
export type StagedAction = (typeof STAGED_ACTIONS)[number];

/**
 * A staged policy, compiled like its enforced kind. `Set` previews it in place of the enforced
 * policy of the same kind, namespace and name (`replaces`), or as a new one; `Delete` previews
 * removing that enforced policy; `Learn` and `Ignore` preview nothing.
 */
export interface CompiledStagedPolicy {
  policy: CompiledPolicy;
  action: StagedAction;
  /** Key of the enforced policy it stands for: `np/<ns>/<name>`, `gnp/<name>`, `knp/<ns>/<name>`. */
  replaces: string;
}

function staged(policy: CompiledPolicy, action: StagedAction): CompiledStagedPolicy {
  const kind = policy.id.kind;
  const enforcedKind = isStagedKind(kind) ? ENFORCED_KIND_OF[kind] : kind;
  return { policy, action, replaces: policyIdString({ ...policy.id, kind: enforcedKind }) };
}

export function compileStagedNetworkPolicy(policy: ResourceOf<'StagedNetworkPolicy'>): CompiledStagedPolicy {
  const namespace = policy.metadata.namespace ?? 'default';
  const { stagedAction, ...spec } = policy.spec;
  const id: PolicyId = { kind: 'StagedNetworkPolicy', namespace, name: policy.metadata.name };
  const compiled = compile(id, policy.metadata.name, spec, networkPolicySelectorText(namespace, spec), {
    applyOnForward: true,
  });
  return staged(compiled, stagedAction);
}

export function compileStagedGlobalNetworkPolicy(
  policy: ResourceOf<'StagedGlobalNetworkPolicy'>,
): CompiledStagedPolicy {
  const { stagedAction, ...spec } = policy.spec;
  const id: PolicyId = {
    kind: 'StagedGlobalNetworkPolicy',
    namespace: undefined,
    name: policy.metadata.name,
  };
  return staged(
    compile(id, policy.metadata.name, spec, globalNetworkPolicySelectorText(spec), spec),
    stagedAction,
  );
}

/**
 * A StagedKubernetesNetworkPolicy converts as a Kubernetes NetworkPolicy does (Calico name
 * `knp.default.<name>`, tier default, order 1000) and stands for the Kubernetes policy of its name.
 */
export function compileStagedKubernetesNetworkPolicy(
  policy: ResourceOf<'StagedKubernetesNetworkPolicy'>,
): CompiledStagedPolicy {
  const { stagedAction, ...spec } = policy.spec;
  const calico = kubernetesNetworkPolicyToCalico({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: policy.metadata,
    spec,
  });
  const namespace = policy.metadata.namespace ?? 'default';
  const id: PolicyId = { kind: 'StagedKubernetesNetworkPolicy', namespace, name: policy.metadata.name };
  const compiled = compile(
    id,
    calico.metadata.name,
    calico.spec,
    networkPolicySelectorText(namespace, calico.spec),
    { applyOnForward: true },
  );
  return staged(compiled, stagedAction);
}

export function compileProfile(profile: ResourceOf<'Profile'>): CompiledProfile {
  const ipsets = new Map<string, IpsetSpec>();
  const ingress = profile.spec.ingress ?? [];
  const egress = profile.spec.egress ?? [];
  return {
    name: profile.metadata.name,
    rules: {
      ingress: ingress.map((r) => parseRule(r, undefined, ipsets)),
      egress: egress.map((r) => parseRule(r, undefined, ipsets)),
    },
    sourceRules: { ingress, egress },
    labelsToApply: { ...(profile.spec.labelsToApply ?? {}) },
    ipsets,
  };
}

/** What resolution needs to know about an endpoint (workload or host endpoint). */
export interface PolicyEndpoint {
  /** Namespace of a workload endpoint; undefined for host endpoints. */
  namespace: string | undefined;
  /** The endpoint's own labels. */
  labels: Labels;
  /** Profiles in the endpoint's order (a pod: `kns.<ns>`, then `ksa.<ns>.<sa>`). */
  profiles: readonly string[];
  serviceAccount?: string | undefined;
}

/** Calico only writes the service-account label for names shorter than 63 characters. */
const MAX_SERVICE_ACCOUNT_LABEL = 63;

/**
 * The profiles an endpoint uses: its own list, plus `ksa.<ns>.<sa>` when it runs as a service
 * account that the list does not name (Calico's pod conversion lists both).
 */
export function endpointProfiles(endpoint: PolicyEndpoint): string[] {
  const profiles = [...endpoint.profiles];
  if (endpoint.serviceAccount && endpoint.namespace !== undefined) {
    const ksa = `${SERVICE_ACCOUNT_PROFILE_PREFIX}${endpoint.namespace}.${endpoint.serviceAccount}`;
    if (!profiles.includes(ksa)) profiles.push(ksa);
  }
  return profiles;
}

/**
 * The labels selectors see on an endpoint (label_inheritance_index.go): labels inherited from
 * its profiles (an earlier profile wins), overridden by its own labels, which include
 * `projectcalico.org/namespace` and `projectcalico.org/serviceaccount`.
 */
export function effectiveLabels(
  own: Labels,
  profiles: readonly string[],
  profileLabels: (profile: string) => Labels | undefined,
): Record<string, string> {
  const labels: Record<string, string> = {};
  for (let i = profiles.length - 1; i >= 0; i--) Object.assign(labels, profileLabels(profiles[i]!) ?? {});
  return Object.assign(labels, own);
}

/** The endpoint's own labels plus the ones Calico derives from its namespace and service account. */
export function endpointOwnLabels(endpoint: PolicyEndpoint): Record<string, string> {
  const own: Record<string, string> = { ...endpoint.labels };
  if (endpoint.namespace !== undefined) own[LABEL_NAMESPACE] ??= endpoint.namespace;
  const sa = endpoint.serviceAccount;
  if (sa && sa.length < MAX_SERVICE_ACCOUNT_LABEL) own[LABEL_SERVICE_ACCOUNT] ??= sa;
  return own;
}

export interface ResolvedTier {
  name: string;
  defaultAction: 'Deny' | 'Pass';
  /** Policies of the tier that select the endpoint and govern this direction, in order. */
  policies: CompiledPolicy[];
}

/** Ordered tiers per direction. */
export interface TierList {
  /** Only tiers with at least one applicable policy: the others are skipped entirely. */
  tiers: Readonly<Record<PolicyDirection, readonly ResolvedTier[]>>;
  /** Every tier with a policy selecting the endpoint (either direction), in tier order. */
  tierOrder: readonly string[];
}

export interface ResolvedEndpointPolicy extends TierList {
  /** The labels the policies were matched against. */
  labels: Readonly<Record<string, string>>;
  /** Known profiles in the endpoint's order; unknown names are listed in `missingProfiles`. */
  profiles: readonly CompiledProfile[];
  missingProfiles: readonly string[];
}

export interface ResolvedHostEndpointPolicy extends ResolvedEndpointPolicy {
  untracked: TierList;
  preDNAT: TierList;
  forward: TierList;
}

function compareOptionalOrder(a: number | undefined, b: number | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return 1;
  if (b === undefined) return -1;
  return a - b;
}

/** `TierLess`: existing tiers first, by order (unset last), then name. */
export function compareTiers(a: TierView, b: TierView): number {
  if (a.exists !== b.exists) return a.exists ? -1 : 1;
  return compareOptionalOrder(a.order, b.order) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** `PolKVLess`: by order (unset = after every ordered policy), then by name/namespace/kind. */
export function comparePolicies(a: CompiledPolicy, b: CompiledPolicy): number {
  const tie = (p: CompiledPolicy) => `${p.calicoName}/${p.id.namespace ?? ''}/${p.id.kind}`;
  const ta = tie(a);
  const tb = tie(b);
  return compareOptionalOrder(a.order, b.order) || (ta < tb ? -1 : ta > tb ? 1 : 0);
}

/**
 * A label an endpoint must carry, with one of `values`, for the selector to match it; undefined
 * when the selector has no such requirement (`all()`, `has()`, `!=`, a mixed `||`…).
 */
export function selectorRequirement(
  node: SelectorNode,
): { label: string; values: readonly string[] } | undefined {
  switch (node.kind) {
    case 'eq':
      return { label: node.label, values: [node.value] };
    case 'in':
      return { label: node.label, values: node.values };
    case 'and': {
      let best: { label: string; values: readonly string[] } | undefined;
      for (const operand of node.operands) {
        const r = selectorRequirement(operand);
        if (!r) continue;
        // The narrowest requirement; Calico's own namespace label narrows least, so it loses ties.
        const worse =
          best !== undefined &&
          (r.values.length > best.values.length ||
            (r.values.length === best.values.length && r.label.startsWith('projectcalico.org/')));
        if (!worse) best = r;
      }
      return best;
    }
    case 'or': {
      const parts = node.operands.map(selectorRequirement);
      const label = parts[0]?.label;
      if (label === undefined || parts.some((r) => r?.label !== label)) return undefined;
      return { label, values: [...new Set(parts.flatMap((r) => r?.values ?? []))] };
    }
    default:
      return undefined;
  }
}

/**
 * Policies by the label value their selector requires (selectorRequirement), so the policies
 * that may select an endpoint are found from its labels instead of by testing every selector.
 */
class PolicyLabelIndex {
  #byLabel = new Map<string, Map<string, Set<string>>>();
  #unindexed = new Set<string>();
  #entries = new Map<string, { label: string; values: readonly string[] } | undefined>();

  set(key: string, selector: Selector): void {
    this.delete(key);
    const r = selectorRequirement(selector.root);
    this.#entries.set(key, r);
    if (!r) {
      this.#unindexed.add(key);
      return;
    }
    let byValue = this.#byLabel.get(r.label);
    if (!byValue) {
      byValue = new Map();
      this.#byLabel.set(r.label, byValue);
    }
    for (const v of r.values) {
      let keys = byValue.get(v);
      if (!keys) {
        keys = new Set();
        byValue.set(v, keys);
      }
      keys.add(key);
    }
  }

  delete(key: string): void {
    if (!this.#entries.has(key)) return;
    const r = this.#entries.get(key);
    this.#entries.delete(key);
    if (!r) {
      this.#unindexed.delete(key);
      return;
    }
    const byValue = this.#byLabel.get(r.label);
    for (const v of r.values) {
      const keys = byValue?.get(v);
      keys?.delete(key);
      if (keys?.size === 0) byValue?.delete(v);
    }
    if (byValue?.size === 0) this.#byLabel.delete(r.label);
  }

  /** Keys of the policies that may select an endpoint with these labels (a superset). */
  candidates(labels: Labels): Set<string> {
    const out = new Set(this.#unindexed);
    for (const label in labels) {
      const keys = this.#byLabel.get(label)?.get(labels[label] as string);
      if (keys) for (const k of keys) out.add(k);
    }
    return out;
  }
}

export interface PolicyCatalogInput {
  networkPolicies?: readonly ResourceOf<'NetworkPolicy'>[];
  globalNetworkPolicies?: readonly ResourceOf<'GlobalNetworkPolicy'>[];
  kubernetesNetworkPolicies?: readonly ResourceOf<'KubernetesNetworkPolicy'>[];
  tiers?: readonly ResourceOf<'Tier'>[];
  profiles?: readonly ResourceOf<'Profile'>[];
  stagedNetworkPolicies?: readonly ResourceOf<'StagedNetworkPolicy'>[];
  stagedGlobalNetworkPolicies?: readonly ResourceOf<'StagedGlobalNetworkPolicy'>[];
  stagedKubernetesNetworkPolicies?: readonly ResourceOf<'StagedKubernetesNetworkPolicy'>[];
}

/**
 * Every policy, profile and tier, kept compiled and updated one object at a time. Staged
 * policies are kept apart: they never change an endpoint's enforced tiers, only the staged view
 * of them (resolveStaged).
 */
export class PolicyCatalog {
  #policies = new Map<string, CompiledPolicy>();
  /** Insertion rank of each policy key (the order #policies iterates in), to list matches stably. */
  #rank = new Map<string, number>();
  #nextRank = 0;
  #index = new PolicyLabelIndex();
  #profiles = new Map<string, CompiledProfile>();
  #tiers = new Map<string, ResourceOf<'Tier'>>();
  /** Staged policies by their own key (`snp/…`, `sgnp/…`, `sknp/…`), kept apart from enforced ones. */
  #staged = new Map<string, CompiledStagedPolicy>();
  #stagedIndex = new PolicyLabelIndex();
  /** Enforced policy key → the staged key that replaces (Set) or removes (Delete) it. */
  #stagedTargets = new Map<string, string>();

  static from(input: PolicyCatalogInput): PolicyCatalog {
    const catalog = new PolicyCatalog();
    for (const t of input.tiers ?? []) catalog.setTier(t);
    for (const p of input.profiles ?? []) catalog.setProfile(p);
    for (const p of input.networkPolicies ?? []) catalog.setNetworkPolicy(p);
    for (const p of input.globalNetworkPolicies ?? []) catalog.setGlobalNetworkPolicy(p);
    for (const p of input.kubernetesNetworkPolicies ?? []) catalog.setKubernetesNetworkPolicy(p);
    for (const p of input.stagedNetworkPolicies ?? []) catalog.setStagedNetworkPolicy(p);
    for (const p of input.stagedGlobalNetworkPolicies ?? []) catalog.setStagedGlobalNetworkPolicy(p);
    for (const p of input.stagedKubernetesNetworkPolicies ?? []) catalog.setStagedKubernetesNetworkPolicy(p);
    return catalog;
  }

  /**
   * Adds or replaces a NetworkPolicy; returns its compiled form. A policy that cannot be compiled
   * (a selector that does not parse) is treated as deleted, as Felix's validation filter does, so
   * it never reaches the dataplane; `undefined` then.
   */
  setNetworkPolicy(policy: ResourceOf<'NetworkPolicy'>): CompiledPolicy | undefined {
    return this.#add(networkPolicyId(policy), () => compileNetworkPolicy(policy));
  }

  setGlobalNetworkPolicy(policy: ResourceOf<'GlobalNetworkPolicy'>): CompiledPolicy | undefined {
    return this.#add(globalNetworkPolicyId(policy), () => compileGlobalNetworkPolicy(policy));
  }

  /** Adds or replaces a Kubernetes NetworkPolicy, converted as Calico converts it. */
  setKubernetesNetworkPolicy(policy: ResourceOf<'KubernetesNetworkPolicy'>): CompiledPolicy | undefined {
    return this.#add(kubernetesNetworkPolicyId(policy), () => compileKubernetesNetworkPolicy(policy));
  }

  #add(id: PolicyId, build: () => CompiledPolicy): CompiledPolicy | undefined {
    const key = policyIdString(id);
    try {
      const compiled = build();
      if (!this.#rank.has(key)) this.#rank.set(key, this.#nextRank++);
      this.#policies.set(key, compiled);
      this.#index.set(key, compiled.selector);
      return compiled;
    } catch (err) {
      if (!isSelectorParseError(err)) throw err;
      this.removePolicy(key);
      return undefined;
    }
  }

  /**
   * Adds or replaces a staged policy; returns its compiled form, or undefined when it cannot be
   * compiled (then it is treated as deleted, as an enforced policy would be).
   */
  setStagedNetworkPolicy(policy: ResourceOf<'StagedNetworkPolicy'>): CompiledStagedPolicy | undefined {
    return this.#addStaged(
      policyIdString({
        kind: 'StagedNetworkPolicy',
        namespace: policy.metadata.namespace ?? 'default',
        name: policy.metadata.name,
      }),
      () => compileStagedNetworkPolicy(policy),
    );
  }

  setStagedGlobalNetworkPolicy(
    policy: ResourceOf<'StagedGlobalNetworkPolicy'>,
  ): CompiledStagedPolicy | undefined {
    return this.#addStaged(
      policyIdString({ kind: 'StagedGlobalNetworkPolicy', namespace: undefined, name: policy.metadata.name }),
      () => compileStagedGlobalNetworkPolicy(policy),
    );
  }

  setStagedKubernetesNetworkPolicy(
    policy: ResourceOf<'StagedKubernetesNetworkPolicy'>,
  ): CompiledStagedPolicy | undefined {
    return this.#addStaged(
      policyIdString({
        kind: 'StagedKubernetesNetworkPolicy',
        namespace: policy.metadata.namespace ?? 'default',
        name: policy.metadata.name,
      }),
      () => compileStagedKubernetesNetworkPolicy(policy),
    );
  }

  #addStaged(key: string, build: () => CompiledStagedPolicy): CompiledStagedPolicy | undefined {
    try {
      const compiled = build();
      this.removeStagedPolicy(key);
      this.#staged.set(key, compiled);
      if (compiled.action === 'Set') this.#stagedIndex.set(key, compiled.policy.selector);
      if (compiled.action === 'Set' || compiled.action === 'Delete')
        this.#stagedTargets.set(compiled.replaces, key);
      return compiled;
    } catch (err) {
      if (!isSelectorParseError(err)) throw err;
      this.removeStagedPolicy(key);
      return undefined;
    }
  }

  /** Removes a staged policy by its key; true if it was known. */
  removeStagedPolicy(key: string): boolean {
    const old = this.#staged.get(key);
    if (!old) return false;
    this.#staged.delete(key);
    this.#stagedIndex.delete(key);
    if (this.#stagedTargets.get(old.replaces) === key) this.#stagedTargets.delete(old.replaces);
    return true;
  }

  stagedPolicy(key: string): CompiledStagedPolicy | undefined {
    return this.#staged.get(key);
  }

  stagedPolicies(): CompiledStagedPolicy[] {
    return [...this.#staged.values()];
  }

  /**
   * The endpoint's tiers as the staged policies would make them: each staged `Set` policy that
   * selects the endpoint in place of the enforced policy it replaces (or beside the others when
   * new), each enforced policy a staged `Set` or `Delete` stands for taken out. Undefined when no
   * staged policy changes anything for this endpoint: it then needs no staged evaluation.
   */
  resolveStaged(enforced: ResolvedEndpointPolicy): TierList | undefined {
    if (this.#staged.size === 0) return undefined;
    const selecting: CompiledPolicy[] = [];
    for (const key of this.#stagedIndex.candidates(enforced.labels)) {
      const s = this.#staged.get(key);
      if (!s || s.policy.preDNAT || s.policy.doNotTrack) continue;
      if (s.policy.selector.evaluate(enforced.labels)) selecting.push(s.policy);
    }
    const inTiers = new Map<string, CompiledPolicy>();
    for (const direction of ['ingress', 'egress'] as const)
      for (const t of enforced.tiers[direction]) for (const p of t.policies) inTiers.set(p.key, p);
    const kept = [...inTiers.values()].filter((p) => !this.#stagedTargets.has(p.key));
    if (selecting.length === 0 && kept.length === inTiers.size) return undefined;
    return this.#tierList([...kept, ...selecting]);
  }

  /** Removes a policy by key (policyIdString); true if it was known. */
  removePolicy(key: string): boolean {
    this.#index.delete(key);
    this.#rank.delete(key);
    return this.#policies.delete(key);
  }

  /** Adds or replaces a profile; one that cannot be compiled is treated as deleted (`undefined`). */
  setProfile(profile: ResourceOf<'Profile'>): CompiledProfile | undefined {
    try {
      const compiled = compileProfile(profile);
      this.#profiles.set(compiled.name, compiled);
      return compiled;
    } catch (err) {
      if (!isSelectorParseError(err)) throw err;
      this.#profiles.delete(profile.metadata.name);
      return undefined;
    }
  }

  removeProfile(name: string): boolean {
    return this.#profiles.delete(name);
  }

  setTier(tier: ResourceOf<'Tier'>): void {
    this.#tiers.set(tier.metadata.name, tier);
  }

  removeTier(name: string): boolean {
    return this.#tiers.delete(name);
  }

  policy(key: string): CompiledPolicy | undefined {
    return this.#policies.get(key);
  }

  policies(): CompiledPolicy[] {
    return [...this.#policies.values()];
  }

  profile(name: string): CompiledProfile | undefined {
    return this.#profiles.get(name);
  }

  profiles(): CompiledProfile[] {
    return [...this.#profiles.values()];
  }

  /** Labels a profile gives its endpoints (for effectiveLabels and the selector index). */
  profileLabels = (name: string): Labels | undefined => this.#profiles.get(name)?.labelsToApply;

  /**
   * A tier as policy ordering sees it. The fixed tiers exist even without an object (Calico
   * creates them): `default` denies at its end, `kube-admin` and `kube-baseline` pass.
   */
  tier(name: string): TierView {
    const obj = this.#tiers.get(name);
    const wellKnown = WELL_KNOWN_TIER_ORDERS[name];
    if (obj)
      return {
        name,
        order: obj.spec.order ?? wellKnown,
        defaultAction: obj.spec.defaultAction,
        exists: true,
      };
    if (wellKnown !== undefined) {
      return { name, order: wellKnown, defaultAction: name === 'default' ? 'Deny' : 'Pass', exists: true };
    }
    return { name, order: undefined, defaultAction: 'Deny', exists: false };
  }

  /** Every IP set some policy (enforced or staged) or profile refers to. */
  ipsets(): Map<string, IpsetSpec> {
    const all = new Map<string, IpsetSpec>();
    for (const p of this.#policies.values()) for (const [id, s] of p.ipsets) all.set(id, s);
    for (const p of this.#staged.values()) for (const [id, s] of p.policy.ipsets) all.set(id, s);
    for (const p of this.#profiles.values()) for (const [id, s] of p.ipsets) all.set(id, s);
    return all;
  }

  /**
   * The policies whose selector matches these (effective) labels, in any tier or direction, in
   * the order they were added. Only the policies the label index offers are evaluated.
   */
  policiesSelecting(labels: Labels): CompiledPolicy[] {
    const out: CompiledPolicy[] = [];
    for (const key of this.#index.candidates(labels)) {
      const p = this.#policies.get(key);
      if (p?.selector.evaluate(labels)) out.push(p);
    }
    const rank = (p: CompiledPolicy) => this.#rank.get(p.key) ?? 0;
    return out.sort((a, b) => rank(a) - rank(b));
  }

  /** The endpoint's tiers, policies and profiles per direction (policy-semantics §2.5). */
  resolve(endpoint: PolicyEndpoint): ResolvedEndpointPolicy {
    const profileNames = endpointProfiles(endpoint);
    const labels = effectiveLabels(endpointOwnLabels(endpoint), profileNames, this.profileLabels);
    const selecting = this.policiesSelecting(labels);
    const profiles: CompiledProfile[] = [];
    const missingProfiles: string[] = [];
    for (const name of profileNames) {
      const p = this.#profiles.get(name);
      if (p) profiles.push(p);
      else missingProfiles.push(name);
    }
    return {
      labels,
      ...this.#tierList(selecting.filter((p) => !p.preDNAT && !p.doNotTrack)),
      profiles,
      missingProfiles,
    };
  }

  /**
   * A host endpoint's resolution: the normal tiers (for traffic to and from the host), plus the
   * tier lists Felix renders only for host endpoints (event_sequencer.go
   * `tierInfoToProtoTierInfo`): untracked (doNotTrack, raw table), preDNAT (mangle, ingress
   * only) — both ending in Pass so normal policy still runs — and forward (applyOnForward
   * policies, for traffic the host forwards).
   */
  resolveHostEndpoint(endpoint: PolicyEndpoint): ResolvedHostEndpointPolicy {
    const resolved = this.resolve(endpoint);
    const selecting = this.policiesSelecting(resolved.labels);
    return {
      ...resolved,
      untracked: this.#tierList(
        selecting.filter((p) => p.doNotTrack),
        'Pass',
      ),
      preDNAT: this.#tierList(
        selecting.filter((p) => p.preDNAT),
        'Pass',
      ),
      forward: this.#tierList(selecting.filter((p) => p.applyOnForward && !p.preDNAT && !p.doNotTrack)),
    };
  }

  #tierList(policies: readonly CompiledPolicy[], defaultAction?: 'Pass'): TierList {
    const byTier = new Map<string, CompiledPolicy[]>();
    for (const p of policies) {
      const list = byTier.get(p.tier) ?? [];
      list.push(p);
      byTier.set(p.tier, list);
    }
    const tierViews = [...byTier.keys()].map((n) => this.tier(n)).sort(compareTiers);
    const forDirection = (direction: PolicyDirection): ResolvedTier[] =>
      tierViews.flatMap((t) => {
        const list = (byTier.get(t.name) ?? []).filter((p) => p.governs[direction]).sort(comparePolicies);
        return list.length > 0
          ? [{ name: t.name, defaultAction: defaultAction ?? t.defaultAction, policies: list }]
          : [];
      });
    return {
      tiers: { ingress: forDirection('ingress'), egress: forDirection('egress') },
      tierOrder: tierViews.map((t) => t.name),
    };
  }
}

export interface ActivePolicySet {
  /** Policies in some endpoint's tiers: the ones that need chains. */
  policies: CompiledPolicy[];
  /** Profiles some endpoint uses. */
  profiles: CompiledProfile[];
  /** IP sets those policies and profiles refer to. */
  ipsets: Map<string, IpsetSpec>;
}

/**
 * What the dataplane must program for these endpoints (Felix's ActiveRulesCalculator): only
 * policies that select at least one of them and profiles they use get chains, and only their
 * IP sets are created.
 */
export function activePolicySet(resolutions: Iterable<ResolvedEndpointPolicy>): ActivePolicySet {
  const policies = new Map<string, CompiledPolicy>();
  const profiles = new Map<string, CompiledProfile>();
  for (const r of resolutions) {
    for (const direction of ['ingress', 'egress'] as const) {
      for (const t of r.tiers[direction]) for (const p of t.policies) policies.set(p.key, p);
    }
    for (const p of r.profiles) profiles.set(p.name, p);
  }
  const ipsets = new Map<string, IpsetSpec>();
  for (const p of [...policies.values(), ...profiles.values()])
    for (const [id, s] of p.ipsets) ipsets.set(id, s);
  const byKey = <T>(m: Map<string, T>) =>
    [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  return { policies: byKey(policies), profiles: byKey(profiles), ipsets };
}
