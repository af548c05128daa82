/**
 * The typed model: one zod schema per kind, which is at once the TypeScript type, the runtime
 * validator and the defaulting (Calico's defaults). `validateResource` is the one entry point
 * the datastore and the CLI use.
 */
import type { z } from 'zod';
import { DatastoreError } from '../errors.ts';
import { KINDS, type KindInfo, type KindName, kindNameOf } from '../kinds.ts';
import { formatIssues, type ValidationResult } from '../resource.ts';
import {
  type BGPConfigurationSpec,
  type BGPFilterSpec,
  type BGPPeerSpec,
  bgpConfigurationSchema,
  bgpFilterSchema,
  bgpPeerSchema,
  deriveBGPConfigurationSpec,
} from './bgp.ts';
import {
  type ClusterInformationSpec,
  clusterInformationSchema,
  type FelixConfigurationSpec,
  felixConfigurationSchema,
  type KubeControllersConfigurationSpec,
  kubeControllersConfigurationSchema,
} from './configuration.ts';
import {
  type HostEndpointSpec,
  hostEndpointSchema,
  type NodeSpec,
  nodeSchema,
  type WorkloadEndpointSpec,
  workloadEndpointSchema,
} from './endpoints.ts';
import {
  type BlockAffinitySpec,
  blockAffinitySchema,
  type IPAMBlockSpec,
  type IPAMConfigurationSpec,
  type IPAMHandleSpec,
  ipamBlockSchema,
  ipamConfigurationSchema,
  ipamHandleSchema,
} from './ipam.ts';
import {
  deriveIPPoolSpec,
  type IPPoolSpec,
  type IPReservationSpec,
  ipPoolSchema,
  ipReservationSchema,
} from './ippool.ts';
import { issueMessage, toValidationIssues } from './issues.ts';
import {
  defaultKubernetesPolicyTypes,
  type KubernetesNetworkPolicySpec,
  kubernetesNetworkPolicySchema,
  type StagedKubernetesNetworkPolicySpec,
  stagedKubernetesNetworkPolicySchema,
} from './kubernetes-network-policy.ts';
import { type CalicoNodeStatusSpec, calicoNodeStatusSchema } from './node-status.ts';
import {
  defaultPolicyTypes,
  type GlobalNetworkPolicySpec as GlobalNetworkPolicySpecRaw,
  type GlobalNetworkSetSpec,
  globalNetworkPolicySchema,
  globalNetworkSetSchema,
  type NetworkPolicySpec as NetworkPolicySpecRaw,
  type NetworkSetSpec,
  networkPolicySchema,
  networkSetSchema,
  type PolicyType,
  type ProfileSpec,
  profileSchema,
  type StagedGlobalNetworkPolicySpec as StagedGlobalNetworkPolicySpecRaw,
  type StagedNetworkPolicySpec as StagedNetworkPolicySpecRaw,
  stagedGlobalNetworkPolicySchema,
  stagedNetworkPolicySchema,
  type TierSpec,
  tierSchema,
} from './policy.ts';
import type { Metadata } from './resource-schema.ts';

const SCHEMAS = {
  IPPool: ipPoolSchema,
  BGPConfiguration: bgpConfigurationSchema,
  BGPPeer: bgpPeerSchema,
  BGPFilter: bgpFilterSchema,
  Node: nodeSchema,
  WorkloadEndpoint: workloadEndpointSchema,
  HostEndpoint: hostEndpointSchema,
  NetworkPolicy: networkPolicySchema,
  GlobalNetworkPolicy: globalNetworkPolicySchema,
  StagedNetworkPolicy: stagedNetworkPolicySchema,
  StagedGlobalNetworkPolicy: stagedGlobalNetworkPolicySchema,
  StagedKubernetesNetworkPolicy: stagedKubernetesNetworkPolicySchema,
  NetworkSet: networkSetSchema,
  GlobalNetworkSet: globalNetworkSetSchema,
  Profile: profileSchema,
  Tier: tierSchema,
  FelixConfiguration: felixConfigurationSchema,
  IPAMConfiguration: ipamConfigurationSchema,
  KubeControllersConfiguration: kubeControllersConfigurationSchema,
  ClusterInformation: clusterInformationSchema,
  IPReservation: ipReservationSchema,
  CalicoNodeStatus: calicoNodeStatusSchema,
  IPAMBlock: ipamBlockSchema,
  BlockAffinity: blockAffinitySchema,
  IPAMHandle: ipamHandleSchema,
  KubernetesNetworkPolicy: kubernetesNetworkPolicySchema,
} satisfies Record<KindName, z.ZodType>;

type SchemaMap = typeof SCHEMAS;

/** Stored policies always carry `types` (defaulted from which rule lists are present). */
type WithTypes<S> = Omit<S, 'types'> & { types: PolicyType[] };
export type NetworkPolicySpec = WithTypes<NetworkPolicySpecRaw>;
export type GlobalNetworkPolicySpec = WithTypes<GlobalNetworkPolicySpecRaw>;
export type StagedNetworkPolicySpec = WithTypes<StagedNetworkPolicySpecRaw>;
export type StagedGlobalNetworkPolicySpec = WithTypes<StagedGlobalNetworkPolicySpecRaw>;

/** The stored (defaulted) spec of each kind. */
export interface SpecTypes {
  IPPool: IPPoolSpec;
  BGPConfiguration: BGPConfigurationSpec;
  BGPPeer: BGPPeerSpec;
  BGPFilter: BGPFilterSpec;
  Node: NodeSpec;
  WorkloadEndpoint: WorkloadEndpointSpec;
  HostEndpoint: HostEndpointSpec;
  NetworkPolicy: NetworkPolicySpec;
  GlobalNetworkPolicy: GlobalNetworkPolicySpec;
  StagedNetworkPolicy: StagedNetworkPolicySpec;
  StagedGlobalNetworkPolicy: StagedGlobalNetworkPolicySpec;
  StagedKubernetesNetworkPolicy: StagedKubernetesNetworkPolicySpec;
  NetworkSet: NetworkSetSpec;
  GlobalNetworkSet: GlobalNetworkSetSpec;
  Profile: ProfileSpec;
  Tier: TierSpec;
  FelixConfiguration: FelixConfigurationSpec;
  IPAMConfiguration: IPAMConfigurationSpec;
  KubeControllersConfiguration: KubeControllersConfigurationSpec;
  ClusterInformation: ClusterInformationSpec;
  IPReservation: IPReservationSpec;
  CalicoNodeStatus: CalicoNodeStatusSpec;
  IPAMBlock: IPAMBlockSpec;
  BlockAffinity: BlockAffinitySpec;
  IPAMHandle: IPAMHandleSpec;
  KubernetesNetworkPolicy: KubernetesNetworkPolicySpec;
}

/** The spec of each kind as users write it: fields with defaults may be left out. */
export type SpecInputTypes = { [K in KindName]: z.input<SchemaMap[K]>['spec'] };

type KindInfoOf<K extends KindName> = (typeof KINDS)[K];

/** A stored object of kind K: validated, defaulted, with its envelope filled in. */
export interface ResourceOf<K extends KindName> {
  apiVersion: KindInfoOf<K>['apiVersion'];
  kind: KindInfoOf<K>['kind'];
  metadata: Metadata;
  spec: SpecTypes[K];
  status?: unknown;
}

/**
 * What a user writes for kind K: apiVersion/kind may be left to the kind being written, and
 * every defaulted field (and a spec whose fields are all optional) may be omitted.
 */
export type ResourceInput<K extends KindName> = {
  apiVersion?: string;
  kind?: string;
  metadata: Metadata;
  status?: unknown;
} & (undefined extends SpecInputTypes[K] ? { spec?: SpecInputTypes[K] } : { spec: SpecInputTypes[K] });

export type {
  BGPConfigurationSpec,
  BGPFilterRule,
  BGPFilterSpec,
  BGPPeerSpec,
} from './bgp.ts';
export { BGP_CONFIGURATION_DEFAULTS, communityValueProblem } from './bgp.ts';
export type {
  ClusterInformationSpec,
  FelixConfigurationSpec,
  KubeControllersConfigurationSpec,
} from './configuration.ts';
export type { HostEndpointSpec, NodeSpec, WorkloadEndpointSpec } from './endpoints.ts';
export { asNumberValue } from './field-types.ts';
export {
  BLOCK_AFFINITY_STATES,
  type BlockAffinitySpec,
  type IPAMBlockSpec,
  type IPAMConfigurationSpec,
  type IPAMHandleSpec,
} from './ipam.ts';
export {
  DEFAULT_BLOCK_SIZE,
  ENCAPSULATION_MODES,
  type EncapsulationMode,
  type EncapsulationType,
  encapsulatedBetween,
  IP_POOL_USES,
  type IPPoolEncapsulation,
  type IPPoolSpec,
  type IPReservationSpec,
  ipPoolStoredIssues,
  poolEncapsulation,
  type StoredIPPool,
} from './ippool.ts';
export * from './k8s-network-policy-conversion.ts';
export type {
  KubernetesNetworkPolicySpec,
  LabelSelector,
  StagedKubernetesNetworkPolicySpec,
} from './kubernetes-network-policy.ts';
export {
  type CalicoNodeStatusPeer,
  type CalicoNodeStatusSpec,
  type CalicoNodeStatusStatus,
  NODE_STATUS_CLASSES,
  NODE_STATUS_PEER_TYPES,
  NODE_STATUS_SESSION_STATES,
  parseCalicoNodeStatusStatus,
} from './node-status.ts';
export {
  type GlobalNetworkSetSpec,
  type NetworkSetSpec,
  POLICY_TYPES,
  type PolicyType,
  type ProfileSpec,
  STAGED_ACTIONS,
  type TierSpec,
  WELL_KNOWN_TIER_ORDERS,
} from './policy.ts';
export {
  type EntityRule,
  type ParsedPort,
  PROTOCOL_NAMES,
  parsePort,
  protocolNumber,
  RULE_ACTIONS,
  type Rule,
  type RuleInput,
} from './policy-rule.ts';
export type { Metadata } from './resource-schema.ts';

/** What a kind's schema produces, before the defaults that depend on other fields. */
type Parsed<K extends KindName> = z.output<SchemaMap[K]>;

/** The schemas again, typed per kind so that `validateResource<K>` knows what each one produces. */
const SCHEMA_OF: { readonly [K in KindName]: z.ZodType<Parsed<K>> } = SCHEMAS;

/** Stored policies always carry `types`, defaulted from which rule lists are present. */
function withPolicyTypes<
  S extends { types?: PolicyType[] | undefined; ingress?: unknown[]; egress?: unknown[] },
>(spec: S): WithTypes<S> {
  return { ...spec, types: spec.types ?? defaultPolicyTypes(spec) };
}

function withKubernetesPolicyTypes<
  S extends { policyTypes?: ('Ingress' | 'Egress')[] | undefined; egress?: unknown[] },
>(spec: S): Omit<S, 'policyTypes'> & { policyTypes: ('Ingress' | 'Egress')[] } {
  return { ...spec, policyTypes: spec.policyTypes ?? defaultKubernetesPolicyTypes(spec) };
}

/**
 * How a parsed object becomes the stored one: defaults that depend on other fields, which a
 * schema's static `.default()` cannot express (and which must stay out of the schema so it still
 * converts to JSON Schema). Most kinds are stored as parsed.
 */
const STORED: { readonly [K in KindName]: (parsed: Parsed<K>) => ResourceOf<K> } = {
  IPPool: (r) => ({ ...r, spec: deriveIPPoolSpec(r.spec) }),
  BGPConfiguration: (r) => ({ ...r, spec: deriveBGPConfigurationSpec(r.metadata.name, r.spec) }),
  BGPPeer: (r) => r,
  BGPFilter: (r) => r,
  Node: (r) => r,
  WorkloadEndpoint: (r) => r,
  HostEndpoint: (r) => r,
  NetworkPolicy: (r) => ({ ...r, spec: withPolicyTypes(r.spec) }),
  GlobalNetworkPolicy: (r) => ({ ...r, spec: withPolicyTypes(r.spec) }),
  StagedNetworkPolicy: (r) => ({ ...r, spec: withPolicyTypes(r.spec) }),
  StagedGlobalNetworkPolicy: (r) => ({ ...r, spec: withPolicyTypes(r.spec) }),
  StagedKubernetesNetworkPolicy: (r) => ({ ...r, spec: withKubernetesPolicyTypes(r.spec) }),
  NetworkSet: (r) => r,
  GlobalNetworkSet: (r) => r,
  Profile: (r) => r,
  Tier: (r) => r,
  FelixConfiguration: (r) => r,
  IPAMConfiguration: (r) => r,
  KubeControllersConfiguration: (r) => r,
  ClusterInformation: (r) => r,
  IPReservation: (r) => r,
  CalicoNodeStatus: (r) => r,
  IPAMBlock: (r) => r,
  BlockAffinity: (r) => r,
  IPAMHandle: (r) => r,
  KubernetesNetworkPolicy: (r) => ({ ...r, spec: withKubernetesPolicyTypes(r.spec) }),
};

/** The zod schema of one kind (for OpenAPI generation, or composing larger schemas). */
export function schemaFor<K extends KindName>(kind: K): (typeof SCHEMAS)[K] {
  return SCHEMAS[kind];
}

/**
 * Validates `input` as a resource of `kind` and returns it with Calico's defaults applied, or
 * every problem found (each with its path, the value and what was expected).
 */
export function validateResource<K extends KindName>(
  kind: K,
  input: unknown,
): ValidationResult<ResourceOf<K>> {
  // What users write may leave apiVersion/kind to the kind being validated (ResourceInput).
  let candidate = input;
  if (input !== null && typeof input === 'object' && !Array.isArray(input)) {
    const info: KindInfo = KINDS[kind];
    const obj = input as Record<string, unknown>;
    if (obj.apiVersion === undefined || obj.kind === undefined) {
      candidate = { ...obj, apiVersion: obj.apiVersion ?? info.apiVersion, kind: obj.kind ?? info.kind };
    }
  }
  const parsed = SCHEMA_OF[kind].safeParse(candidate, { reportInput: true, error: issueMessage });
  if (!parsed.success) return { ok: false, issues: toValidationIssues(parsed.error.issues, candidate) };
  return { ok: true, value: STORED[kind](parsed.data) };
}

/**
 * Narrows a resource of any kind to kind K by its apiVersion and kind. Every datastore write
 * validated the object, so a stored resource of that kind has that kind's typed spec.
 */
export function isResourceOf<K extends KindName>(
  kind: K,
  resource: ResourceOf<KindName>,
): resource is ResourceOf<K> {
  return kindNameOf(resource.apiVersion, resource.kind) === kind;
}

/** Like validateResource, but returns the defaulted resource or throws DatastoreError `Invalid`. */
export function defaultResource<K extends KindName>(kind: K, input: ResourceInput<K>): ResourceOf<K> {
  const result = validateResource(kind, input);
  if (!result.ok) throw new DatastoreError('Invalid', `${kind} is invalid:\n${formatIssues(result.issues)}`);
  return result.value;
}
