/**
 * The CRDs in calico-ts.yaml: each is a valid CustomResourceDefinition (kubernetes-models), its
 * schema is structural, it names a kind the model has, and Ajv with that schema accepts every
 * resource of the shared corpus of real Calico YAML (`<repo>/../shared/calico-yaml`, 72 resources)
 * and rejects resources of the wrong shape.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KINDS, resolveKindAlias } from '@calico-ts/datastore';
import { Ajv, type ValidateFunction } from 'ajv';
import {
  CustomResourceDefinition,
  type ICustomResourceDefinition,
} from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import type { IJSONSchemaProps } from 'kubernetes-models/apiextensions.k8s.io/v1/JSONSchemaProps';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { asCrdResource, CRD_GROUP, structuralSchema } from './crds.ts';
import { MANIFEST_FILE } from './generate.ts';

const documents = parseAllDocuments(readFileSync(MANIFEST_FILE, 'utf8')).map((d) => d.toJS());
const crds: ICustomResourceDefinition[] = documents.filter((d) => d?.kind === 'CustomResourceDefinition');

const CORPUS = resolve(import.meta.dirname, '../../../shared/calico-yaml');
const corpus = readdirSync(CORPUS)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(CORPUS, file), 'utf8'))
      .map((d) => d.toJS() as Record<string, unknown> | null)
      .filter((r): r is Record<string, unknown> => r !== null)
      .map((resource, i) => ({ name: `${file}#${i + 1}`, resource })),
  );

/** Ajv knowing the two Kubernetes extensions the schemas use. */
function validatorFor(schema: IJSONSchemaProps): ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: true });
  ajv.addKeyword({
    keyword: 'x-kubernetes-int-or-string',
    schemaType: 'boolean',
    validate: (on: boolean, data: unknown) => !on || typeof data === 'string' || Number.isInteger(data),
  });
  // Keeps unknown fields instead of pruning them; no constraint on the value.
  ajv.addKeyword({ keyword: 'x-kubernetes-preserve-unknown-fields', schemaType: 'boolean' });
  return ajv.compile(schema);
}

const validators = new Map(
  crds.map((crd) => [
    `${crd.spec.group}/${crd.spec.versions[0]?.name}/${crd.spec.names.kind}`,
    validatorFor(crd.spec.versions[0]?.schema?.openAPIV3Schema ?? {}),
  ]),
);

function validate(resource: Record<string, unknown>): string[] {
  const crdForm = asCrdResource(resource);
  const validator = validators.get(`${crdForm.apiVersion}/${crdForm.kind}`);
  if (!validator) return [`no CRD for ${crdForm.apiVersion} ${crdForm.kind}`];
  if (validator(crdForm)) return [];
  return (validator.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

/** apiextensions.k8s.io/v1 structural-schema rules, as the API server checks them on create. */
function structuralProblems(node: IJSONSchemaProps, path: string): string[] {
  const problems: string[] = [];
  const extension = node['x-kubernetes-int-or-string'] || node['x-kubernetes-preserve-unknown-fields'];
  if (node.type === undefined && !extension) problems.push(`${path}: no type`);
  if (node.properties && node.additionalProperties)
    problems.push(`${path}: properties and additionalProperties together`);
  for (const key of Object.keys(node)) {
    if (['$ref', '$schema', 'const', 'propertyNames', 'anyOf', 'oneOf', 'allOf', 'default'].includes(key))
      problems.push(`${path}: ${key}`);
  }
  for (const [key, child] of Object.entries(node.properties ?? {}))
    problems.push(...structuralProblems(child, `${path}.${key}`));
  if (node.items) problems.push(...structuralProblems(node.items, `${path}[]`));
  if (node.additionalProperties)
    problems.push(...structuralProblems(node.additionalProperties, `${path}[*]`));
  return problems;
}

describe('the crd.projectcalico.org/v1 CRDs in calico-ts.yaml', () => {
  it('are valid CustomResourceDefinitions (kubernetes-models) with structural schemas', () => {
    expect(crds.length).toBeGreaterThanOrEqual(20);
    for (const crd of crds) {
      expect(() => new CustomResourceDefinition(crd).validate(), crd.metadata?.name).not.toThrow();
      expect(crd.metadata?.name).toBe(`${crd.spec.names.plural}.${CRD_GROUP}`);
      const schema = crd.spec.versions[0]?.schema?.openAPIV3Schema;
      expect(schema && structuralProblems(schema, crd.spec.names.kind), crd.metadata?.name).toEqual([]);
    }
  });

  it("name only kinds the model has, with the model's scope", () => {
    for (const crd of crds) {
      const model = resolveKindAlias(crd.spec.names.kind);
      expect(model, crd.spec.names.kind).toBeDefined();
      if (!model) continue;
      expect(resolveKindAlias(crd.spec.names.plural)).toBe(model);
      expect(KINDS[model].apiVersion).toBe('projectcalico.org/v3');
      expect(crd.spec.scope).toBe(KINDS[model].namespaced ? 'Namespaced' : 'Cluster');
    }
  });

  it('accept every resource of the shared Calico YAML corpus (72), in CRD form', () => {
    expect(corpus).toHaveLength(72);
    const rejected = corpus
      .map(({ name, resource }) => ({ name, problems: validate(resource) }))
      .filter((r) => r.problems.length > 0);
    expect(rejected).toEqual([]);
  });

  it('reject resources of the wrong shape, naming the field', () => {
    const pool = { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p' } };
    expect(validate({ ...pool, spec: { cidr: '10.0.0.0/16', blockSize: 26 } })).toEqual([]);
    expect(validate({ ...pool, spec: { cidr: 42 } })).toEqual(['/spec/cidr must be string']);
    expect(validate({ ...pool, spec: { blockSize: 26 } })).toEqual([
      "/spec must have required property 'cidr'",
    ]);
    expect(validate({ ...pool, spec: { cidr: '10.0.0.0/16', vxlanMode: 'Sometimes' } })).toEqual([
      '/spec/vxlanMode must be equal to one of the allowed values',
    ]);
    const policy = {
      apiVersion: 'projectcalico.org/v3',
      kind: 'NetworkPolicy',
      metadata: { name: 'np', namespace: 'ns' },
    };
    const rule = { action: 'Allow', protocol: 'TCP', destination: { ports: [80, '8080:8090'] } };
    expect(validate({ ...policy, spec: { ingress: [rule] } })).toEqual([]);
    expect(validate({ ...policy, spec: { ingress: [{ ...rule, destination: { ports: [true] } }] } })).toEqual(
      ['/spec/ingress/0/destination/ports/0 must pass "x-kubernetes-int-or-string" keyword validation'],
    );
    expect(validate({ ...policy, spec: { ingress: [{ ...rule, ipVersion: 5 }] } })).toEqual([
      '/spec/ingress/0/ipVersion must be equal to one of the allowed values',
    ]);
  });
});

describe('structuralSchema', () => {
  it('turns unions into int-or-string, enums or nullable, and bounds into OpenAPI v3 form', () => {
    expect(structuralSchema({ type: ['number', 'string'] })).toEqual({ 'x-kubernetes-int-or-string': true });
    expect(
      structuralSchema({
        anyOf: [
          { type: 'number', const: 4 },
          { type: 'number', const: 6 },
        ],
      }),
    ).toEqual({ type: 'integer', enum: [4, 6] });
    expect(structuralSchema({ anyOf: [{ type: 'integer' }, { type: 'null' }] })).toEqual({
      type: 'integer',
      nullable: true,
    });
    expect(structuralSchema({ type: 'integer', exclusiveMinimum: 0, maximum: 9007199254740991 })).toEqual({
      type: 'integer',
      minimum: 0,
      exclusiveMinimum: true,
    });
    expect(
      structuralSchema({ type: 'object', propertyNames: { type: 'string' }, additionalProperties: {} }),
    ).toEqual({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
  });

  it('refuses what a structural schema cannot say, naming where', () => {
    expect(() =>
      structuralSchema({
        type: 'object',
        properties: { x: { anyOf: [{ type: 'object' }, { type: 'array' }] } },
      }),
    ).toThrow('$.x: a union of object, array has no structural form');
    expect(() => structuralSchema({ type: 'object', properties: { y: { type: 'null' } } })).toThrow(
      '$.y: type "null" has no structural form',
    );
  });
});
