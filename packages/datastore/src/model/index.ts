/**
 * The typed model: one zod schema per kind, which is at once the TypeScript type, the runtime
 * validator and the defaulting (Calico's defaults). `validateResource` is the one entry point
 * the datastore and the CLI use.
 */
import type { z } from 'zod';
import { z as zod } from 'zod';
import { DatastoreError } from '../errors.ts';
import type { KINDS, KindName } from '../kinds.ts';
import { formatIssues, type ValidationResult } from '../resource.ts';
import {
  type BlockAffinitySpec,
  type BlockAffinitySpecInput,
  blockAffinitySchema,
  type IPAMBlockSpec,
  type IPAMBlockSpecInput,
  type IPAMConfigurationSpec,
  type IPAMConfigurationSpecInput,
  type IPAMHandleSpec,
  type IPAMHandleSpecInput,
  ipamBlockSchema,
  ipamConfigurationSchema,
  ipamHandleSchema,
} from './ipam.ts';
import { issueMessage, toValidationIssues } from './issues.ts';
import { kindSchema, type Metadata } from './resource-schema.ts';

// Kinds whose schemas are still being written accept any spec for now.
const pending = <K extends KindName>(kind: K) =>
  kindSchema(kind, zod.record(zod.string(), zod.unknown()).prefault({}));
type PendingSpec = Record<string, unknown>;

const SCHEMAS = {
  IPPool: pending('IPPool'),
  BGPConfiguration: pending('BGPConfiguration'),
  BGPPeer: pending('BGPPeer'),
  BGPFilter: pending('BGPFilter'),
  Node: pending('Node'),
  WorkloadEndpoint: pending('WorkloadEndpoint'),
  HostEndpoint: pending('HostEndpoint'),
  NetworkPolicy: pending('NetworkPolicy'),
  GlobalNetworkPolicy: pending('GlobalNetworkPolicy'),
  StagedNetworkPolicy: pending('StagedNetworkPolicy'),
  StagedGlobalNetworkPolicy: pending('StagedGlobalNetworkPolicy'),
  StagedKubernetesNetworkPolicy: pending('StagedKubernetesNetworkPolicy'),
  NetworkSet: pending('NetworkSet'),
  GlobalNetworkSet: pending('GlobalNetworkSet'),
  Profile: pending('Profile'),
  Tier: pending('Tier'),
  FelixConfiguration: pending('FelixConfiguration'),
  IPAMConfiguration: ipamConfigurationSchema,
  KubeControllersConfiguration: pending('KubeControllersConfiguration'),
  ClusterInformation: pending('ClusterInformation'),
  IPReservation: pending('IPReservation'),
  IPAMBlock: ipamBlockSchema,
  BlockAffinity: blockAffinitySchema,
  IPAMHandle: ipamHandleSchema,
  KubernetesNetworkPolicy: pending('KubernetesNetworkPolicy'),
} satisfies Record<KindName, z.ZodType>;

/** The stored (defaulted) spec of each kind. */
export interface SpecTypes {
  IPPool: PendingSpec;
  BGPConfiguration: PendingSpec;
  BGPPeer: PendingSpec;
  BGPFilter: PendingSpec;
  Node: PendingSpec;
  WorkloadEndpoint: PendingSpec;
  HostEndpoint: PendingSpec;
  NetworkPolicy: PendingSpec;
  GlobalNetworkPolicy: PendingSpec;
  StagedNetworkPolicy: PendingSpec;
  StagedGlobalNetworkPolicy: PendingSpec;
  StagedKubernetesNetworkPolicy: PendingSpec;
  NetworkSet: PendingSpec;
  GlobalNetworkSet: PendingSpec;
  Profile: PendingSpec;
  Tier: PendingSpec;
  FelixConfiguration: PendingSpec;
  IPAMConfiguration: IPAMConfigurationSpec;
  KubeControllersConfiguration: PendingSpec;
  ClusterInformation: PendingSpec;
  IPReservation: PendingSpec;
  IPAMBlock: IPAMBlockSpec;
  BlockAffinity: BlockAffinitySpec;
  IPAMHandle: IPAMHandleSpec;
  KubernetesNetworkPolicy: PendingSpec;
}

/** The spec of each kind as users write it: fields with defaults may be left out. */
export interface SpecInputTypes {
  IPPool: PendingSpec | undefined;
  BGPConfiguration: PendingSpec | undefined;
  BGPPeer: PendingSpec | undefined;
  BGPFilter: PendingSpec | undefined;
  Node: PendingSpec | undefined;
  WorkloadEndpoint: PendingSpec | undefined;
  HostEndpoint: PendingSpec | undefined;
  NetworkPolicy: PendingSpec | undefined;
  GlobalNetworkPolicy: PendingSpec | undefined;
  StagedNetworkPolicy: PendingSpec | undefined;
  StagedGlobalNetworkPolicy: PendingSpec | undefined;
  StagedKubernetesNetworkPolicy: PendingSpec | undefined;
  NetworkSet: PendingSpec | undefined;
  GlobalNetworkSet: PendingSpec | undefined;
  Profile: PendingSpec | undefined;
  Tier: PendingSpec | undefined;
  FelixConfiguration: PendingSpec | undefined;
  IPAMConfiguration: IPAMConfigurationSpecInput;
  KubeControllersConfiguration: PendingSpec | undefined;
  ClusterInformation: PendingSpec | undefined;
  IPReservation: PendingSpec | undefined;
  IPAMBlock: IPAMBlockSpecInput;
  BlockAffinity: BlockAffinitySpecInput;
  IPAMHandle: IPAMHandleSpecInput;
  KubernetesNetworkPolicy: PendingSpec | undefined;
}

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

export {
  BLOCK_AFFINITY_STATES,
  type BlockAffinitySpec,
  type IPAMBlockSpec,
  type IPAMConfigurationSpec,
  type IPAMHandleSpec,
} from './ipam.ts';

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
  const schema: z.ZodType = SCHEMAS[kind];
  const parsed = schema.safeParse(input, { reportInput: true, error: issueMessage });
  if (!parsed.success) return { ok: false, issues: toValidationIssues(parsed.error.issues, input) };
  return { ok: true, value: parsed.data as ResourceOf<K> };
}

/** Like validateResource, but returns the defaulted resource or throws DatastoreError `Invalid`. */
export function defaultResource<K extends KindName>(kind: K, input: ResourceInput<K>): ResourceOf<K> {
  const result = validateResource(kind, input);
  if (!result.ok) throw new DatastoreError('Invalid', `${kind} is invalid:\n${formatIssues(result.issues)}`);
  return result.value;
}
