/**
 * CustomResourceDefinitions `crd.projectcalico.org/v1` for the model's Calico kinds, each with an
 * OpenAPI v3 schema generated from the kind's zod schema (`schemaFor` in @calico-ts/datastore).
 *
 * zod writes JSON Schema 2020-12; the API server wants a structural schema (apiextensions.k8s.io/v1:
 * every node typed, no $ref/const/propertyNames, no `additionalProperties: false`, unions only as
 * `x-kubernetes-int-or-string` or `nullable`). `structuralSchema` translates one into the other and
 * throws on a construct it cannot translate, so a model change that the CRDs cannot express fails
 * the generator instead of shipping a wrong schema. What is lost on the way: zod's refinements
 * (selector grammar, CIDR syntax, cross-field rules) have no JSON Schema form, and the API server
 * prunes unknown fields where zod rejects them; calico-node's own validation still applies both.
 */
import { CALICO_API_VERSION, KINDS, type KindName, schemaFor } from '@calico-ts/datastore';
import { z } from 'zod';
import type { K8sObject } from './manifest.ts';

export const CRD_GROUP = 'crd.projectcalico.org';
export const CRD_VERSION = 'v1';

/**
 * The model's kinds that Calico defines as crd.projectcalico.org CRDs, with the CRD's own kind where
 * it differs (Calico stores IPAMConfiguration as IPAMConfig/ipamconfigs). Left out: Node and
 * WorkloadEndpoint (Calico derives them from Kubernetes Nodes and Pods) and networking.k8s.io
 * NetworkPolicy (a built-in Kubernetes kind).
 */
export const CRD_KINDS: readonly { model: KindName; kind: string; plural: string }[] = (
  [
    'BGPConfiguration',
    'BGPFilter',
    'BGPPeer',
    'BlockAffinity',
    'ClusterInformation',
    'FelixConfiguration',
    'GlobalNetworkPolicy',
    'GlobalNetworkSet',
    'HostEndpoint',
    'IPAMBlock',
    'IPAMConfiguration',
    'IPAMHandle',
    'IPPool',
    'IPReservation',
    'KubeControllersConfiguration',
    'NetworkPolicy',
    'NetworkSet',
    'Profile',
    'StagedGlobalNetworkPolicy',
    'StagedKubernetesNetworkPolicy',
    'StagedNetworkPolicy',
    'Tier',
  ] as const
).map((model) =>
  model === 'IPAMConfiguration'
    ? { model, kind: 'IPAMConfig', plural: 'ipamconfigs' }
    : { model, kind: KINDS[model].kind, plural: KINDS[model].plural },
);

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps the translation writes. */
export interface StructuralSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, StructuralSchema>;
  required?: string[];
  additionalProperties?: StructuralSchema;
  items?: StructuralSchema;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  nullable?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

type Json = Record<string, unknown>;
type SchemaType = NonNullable<StructuralSchema['type']>;

const SCHEMA_TYPES = new Set<string>(['object', 'array', 'string', 'integer', 'number', 'boolean']);
// zod bounds every int() by the safe-integer range; that says nothing to a user.
const SAFE = Number.MAX_SAFE_INTEGER;

function isJson(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function schemaType(value: unknown, path: string): SchemaType {
  if (typeof value === 'string' && SCHEMA_TYPES.has(value)) return value as SchemaType;
  throw new Error(`${path}: type ${JSON.stringify(value)} has no structural form`);
}

/** The values a member of a union allows, when it is a list of constants. */
function constants(member: Json): unknown[] | undefined {
  if ('const' in member) return [member.const];
  if (Array.isArray(member.enum)) return member.enum;
  return undefined;
}

const NUMERIC = new Set(['integer', 'number']);

/** `string | number` (ports, protocols, AS numbers): Kubernetes' int-or-string. */
const intOrString = (description: unknown): StructuralSchema => ({
  ...(typeof description === 'string' ? { description } : {}),
  'x-kubernetes-int-or-string': true,
});

/** Translates one zod-made JSON Schema node into a structural schema node. */
export function structuralSchema(node: unknown, path = '$'): StructuralSchema {
  if (!isJson(node)) throw new Error(`${path}: not a schema: ${JSON.stringify(node)}`);
  const description = typeof node.description === 'string' ? { description: node.description } : {};
  if (Array.isArray(node.anyOf) || Array.isArray(node.oneOf)) {
    const members = ((node.anyOf ?? node.oneOf) as unknown[]).filter(isJson);
    const nullable = members.some((m) => m.type === 'null');
    const rest = members.filter((m) => m.type !== 'null');
    const types = new Set(rest.map((m) => m.type));
    let merged: StructuralSchema;
    if (rest.length === 1) {
      merged = structuralSchema(rest[0], `${path}/anyOf`);
    } else if (types.size === 1 && rest.every((m) => constants(m) !== undefined)) {
      const only = [...types][0];
      merged = {
        type: schemaType(only === 'number' && rest.every(allIntegers) ? 'integer' : only, path),
        enum: rest.flatMap((m) => constants(m) ?? []),
      };
    } else if (types.has('string') && [...types].every((t) => t === 'string' || NUMERIC.has(String(t)))) {
      merged = intOrString(undefined);
    } else {
      throw new Error(`${path}: a union of ${[...types].join(', ')} has no structural form`);
    }
    return { ...description, ...merged, ...(nullable ? { nullable: true } : {}) };
  }
  if (Array.isArray(node.type)) {
    const types = node.type.filter((t) => t !== 'null');
    const nullable = types.length < node.type.length ? { nullable: true } : {};
    if (types.length === 1) return { ...structuralSchema({ ...node, type: types[0] }, path), ...nullable };
    if (types.includes('string') && types.every((t) => t === 'string' || NUMERIC.has(String(t))))
      return { ...intOrString(node.description), ...nullable };
    throw new Error(`${path}: type ${JSON.stringify(node.type)} has no structural form`);
  }
  if (node.type === undefined) {
    if ('const' in node || Array.isArray(node.enum)) throw new Error(`${path}: an untyped enum`);
    // z.unknown()/z.any(): anything goes, kept as written.
    return { ...description, 'x-kubernetes-preserve-unknown-fields': true };
  }
  const type = schemaType(node.type === 'number' && allIntegers(node) ? 'integer' : node.type, path);
  const out: StructuralSchema = { ...description, type };
  const values = constants(node);
  if (values) out.enum = values;
  if (type === 'object') {
    if (isJson(node.properties)) {
      out.properties = Object.fromEntries(
        Object.entries(node.properties).map(([key, value]) => [
          key,
          structuralSchema(value, `${path}.${key}`),
        ]),
      );
      if (Array.isArray(node.required) && node.required.length > 0) out.required = node.required.map(String);
    } else if (isJson(node.additionalProperties)) {
      // A record: its values' schema, unless they may be anything.
      const values = structuralSchema(node.additionalProperties, `${path}[*]`);
      if (values['x-kubernetes-preserve-unknown-fields'] && values.type === undefined)
        out['x-kubernetes-preserve-unknown-fields'] = true;
      else out.additionalProperties = values;
    } else {
      out['x-kubernetes-preserve-unknown-fields'] = true;
    }
  } else if (type === 'array') {
    out.items =
      node.items === undefined
        ? { 'x-kubernetes-preserve-unknown-fields': true }
        : structuralSchema(node.items, `${path}[]`);
    if (typeof node.minItems === 'number') out.minItems = node.minItems;
    if (typeof node.maxItems === 'number') out.maxItems = node.maxItems;
  } else if (type === 'string') {
    if (typeof node.pattern === 'string') out.pattern = node.pattern;
    if (typeof node.minLength === 'number') out.minLength = node.minLength;
    if (typeof node.maxLength === 'number') out.maxLength = node.maxLength;
  } else if (type === 'integer' || type === 'number') {
    // JSON Schema 2020-12 writes an exclusive bound as a number; OpenAPI v3 as a flag beside it.
    if (typeof node.minimum === 'number' && node.minimum > -SAFE) out.minimum = node.minimum;
    if (typeof node.maximum === 'number' && node.maximum < SAFE) out.maximum = node.maximum;
    if (typeof node.exclusiveMinimum === 'number') {
      out.minimum = node.exclusiveMinimum;
      out.exclusiveMinimum = true;
    }
    if (typeof node.exclusiveMaximum === 'number') {
      out.maximum = node.exclusiveMaximum;
      out.exclusiveMaximum = true;
    }
  }
  return out;
}

/** A `number` whose every allowed value is a whole number (zod's int() or integer constants). */
function allIntegers(node: Json): boolean {
  const values = constants(node);
  return values?.every((v) => Number.isInteger(v)) ?? false;
}

/** The openAPIV3Schema of one CRD: the envelope, the spec from the model, status kept as written. */
export function crdSchema(model: KindName): StructuralSchema {
  const json = z.toJSONSchema(schemaFor(model), { io: 'input', unrepresentable: 'any' });
  const spec = isJson(json.properties) ? json.properties.spec : undefined;
  if (spec === undefined) throw new Error(`${model}: the model's schema has no spec`);
  return {
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: structuralSchema(spec, `${model}.spec`),
      status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    },
  };
}

export function calicoCrds(): K8sObject[] {
  return CRD_KINDS.map(({ model, kind, plural }) => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${CRD_GROUP}` },
    spec: {
      group: CRD_GROUP,
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase() },
      scope: KINDS[model].namespaced ? 'Namespaced' : 'Cluster',
      versions: [
        {
          name: CRD_VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: crdSchema(model) },
        },
      ],
    },
  }));
}

/** The CRD form of a projectcalico.org/v3 resource (as kubectl users apply it). */
export function asCrdResource(resource: Json): Json {
  if (resource.apiVersion !== CALICO_API_VERSION) return resource;
  const entry = CRD_KINDS.find((c) => c.model === resource.kind);
  return { ...resource, apiVersion: `${CRD_GROUP}/${CRD_VERSION}`, kind: entry?.kind ?? resource.kind };
}
