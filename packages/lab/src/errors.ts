/**
 * Failures of the lab itself (kernel and process failures underneath keep their own error types,
 * e.g. KernelError from @calico-ts/kernel). `code` is what callers branch on.
 */
export type LabErrorCode =
  /** An option out of range: a bad prefix or name, a node count, an unknown node. */
  | 'Invalid'
  /** Network namespaces need root. */
  | 'NeedsRoot'
  /** A cluster with this state directory is already running. */
  | 'Exists'
  /** A managed process (etcd, calico-node) did not start or become ready in time. */
  | 'NotReady';

export class LabError extends Error {
  override readonly name = 'LabError';
  readonly code: LabErrorCode;
  constructor(code: LabErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isLabError(err: unknown, code?: LabErrorCode): err is LabError {
  return err instanceof LabError && (code === undefined || err.code === code);
}
