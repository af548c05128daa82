/**
 * The envelope every kind shares (apiVersion, kind, metadata, spec, status) and the way a kind's
 * schema is assembled from its spec schema, its naming rule and its cross-field checks.
 */
import { z } from 'zod';
import { KINDS, type KindName } from '../kinds.ts';
import { labelMap } from './field-types.ts';
import { type Report, reporterFor } from './issues.ts';
import { labelKeyProblem, labelNameProblem, subdomainProblem } from './names.ts';

const ANNOTATIONS_MAX_BYTES = 256 * 1024;

const annotationMap = () =>
  z.record(z.string(), z.string()).superRefine((annotations, ctx) => {
    let size = 0;
    for (const [key, value] of Object.entries(annotations)) {
      size += Buffer.byteLength(key) + Buffer.byteLength(value);
      const msg = labelKeyProblem(key);
      if (msg)
        ctx.addIssue({ code: 'custom', path: [key], input: key, message: `invalid annotation ${msg}` });
    }
    // Kubernetes' own limit (apimachinery ValidateAnnotations), which Calico applies too.
    if (size > ANNOTATIONS_MAX_BYTES) {
      ctx.addIssue({
        code: 'custom',
        input: size,
        message: `annotations total ${size} bytes; the limit is 256 KiB`,
      });
    }
  });

/**
 * ObjectMeta as users write it. Besides our fields it admits the Kubernetes fields that appear in
 * objects exported from a cluster (finalizers, ownerReferences, managedFields…) so that such
 * exports re-apply cleanly.
 */
export function metadataSchema(nameProblem: (name: string) => string | undefined) {
  return z.strictObject({
    name: z.string().superRefine((name, ctx) => {
      const message = name === '' ? 'required' : nameProblem(name);
      if (message !== undefined) ctx.addIssue({ code: 'custom', input: name, message });
    }),
    namespace: z
      .string()
      .superRefine((ns, ctx) => {
        const message = labelNameProblem(ns);
        if (message !== undefined)
          ctx.addIssue({ code: 'custom', input: ns, message: `namespace ${message}` });
      })
      .optional(),
    resourceVersion: z.string().optional(),
    uid: z.string().optional(),
    creationTimestamp: z.string().optional(),
    generation: z.number().int().optional(),
    labels: labelMap().optional(),
    annotations: annotationMap().optional(),
    generateName: z.string().optional(),
    deletionTimestamp: z.string().optional(),
    deletionGracePeriodSeconds: z.number().int().optional(),
    finalizers: z.array(z.string()).optional(),
    ownerReferences: z.array(z.record(z.string(), z.unknown())).optional(),
    managedFields: z.array(z.unknown()).optional(),
    selfLink: z.string().optional(),
  });
}

export type Metadata = z.output<ReturnType<typeof metadataSchema>>;

export interface KindOptions<Spec> {
  /** Naming rule for metadata.name (default: DNS-1123 subdomain). */
  nameProblem?: (name: string) => string | undefined;
  /** Checks that need more than one field; `report` paths are relative to the resource root. */
  check?: (resource: { metadata: Metadata; spec: Spec }, report: Report) => void;
  /**
   * Like `check`, but runs even when other fields failed to parse, so it must treat what it reads
   * as unknown. For rules whose problem users should see alongside any other (naming rules).
   */
  robustCheck?: (resource: { metadata?: unknown; spec?: unknown }, report: Report) => void;
}

/**
 * One kind's full schema. `spec` should already carry its own defaults and, when the whole spec
 * may be omitted, a `.prefault({})` so nested defaults still apply.
 */
export function kindSchema<K extends KindName, S extends z.ZodType>(
  kind: K,
  spec: S,
  options: KindOptions<z.output<S>> = {},
) {
  const info = KINDS[kind];
  // Reading a property of KINDS[K] widens it to every kind's value; name the kind's own literal
  // types so that the schema's output matches ResourceOf<K>.
  type Info = (typeof KINDS)[K];
  const schema = z.strictObject({
    apiVersion: z.literal<Info['apiVersion']>(info.apiVersion),
    kind: z.literal<Info['kind']>(info.kind),
    metadata: metadataSchema(options.nameProblem ?? subdomainProblem),
    spec,
    status: z.unknown().optional(),
  });
  const { check, robustCheck } = options;
  const withRobust = robustCheck
    ? schema.superRefine(
        (resource, ctx) => robustCheck(resource as { metadata?: unknown; spec?: unknown }, reporterFor(ctx)),
        { when: () => true },
      )
    : schema;
  if (!check) return withRobust;
  // Zod skips this one when parsing aborted somewhere, so `check` may trust the types.
  return withRobust.superRefine((resource, ctx) => {
    check(resource as { metadata: Metadata; spec: z.output<S> }, reporterFor(ctx));
  });
}
