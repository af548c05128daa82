/** The envelope every stored object shares (Kubernetes-style). */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  /** The store's revision of this object (etcd mod revision); set by the datastore on every write. */
  resourceVersion?: string;
  uid?: string;
  creationTimestamp?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface Resource<Spec = Record<string, unknown>> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Spec;
  status?: unknown;
}

/** One problem found while validating: where, what was there, and what was expected. */
export interface ValidationIssue {
  /** Dotted path from the document root, e.g. `spec.ingress[0].destination.ports[1]`. */
  path: string;
  value: unknown;
  message: string;
}

export type ValidationResult<T = Resource> =
  | { ok: true; value: T }
  | { ok: false; issues: ValidationIssue[] };

/** Formats issues one per line: `spec.cidr: "10.0.0.1/8" — must be a masked CIDR (host bits zero)`. */
export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues
    .map(
      (i) =>
        `${i.path || '(root)'}: ${i.value === undefined ? '(missing)' : JSON.stringify(i.value)} — ${i.message}`,
    )
    .join('\n');
}
