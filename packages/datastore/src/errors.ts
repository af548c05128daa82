/** One error family for every datastore failure; `code` is stable and safe to branch on. */
export type DatastoreErrorCode = 'NotFound' | 'AlreadyExists' | 'Conflict' | 'Unavailable' | 'Invalid';

export interface ResourceRef {
  kind: string;
  name: string;
  namespace?: string | undefined;
}

function describe(ref: ResourceRef): string {
  return ref.namespace ? `${ref.kind} ${ref.namespace}/${ref.name}` : `${ref.kind} ${ref.name}`;
}

export class DatastoreError extends Error {
  override readonly name = 'DatastoreError';
  readonly code: DatastoreErrorCode;
  readonly ref: ResourceRef | undefined;
  constructor(code: DatastoreErrorCode, message: string, ref?: ResourceRef, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.ref = ref;
  }

  static notFound(ref: ResourceRef): DatastoreError {
    return new DatastoreError('NotFound', `${describe(ref)} not found`, ref);
  }

  static alreadyExists(ref: ResourceRef): DatastoreError {
    return new DatastoreError('AlreadyExists', `${describe(ref)} already exists`, ref);
  }

  static conflict(ref: ResourceRef, expected: string, actual: string | undefined): DatastoreError {
    return new DatastoreError(
      'Conflict',
      `${describe(ref)} was modified: expected resourceVersion ${expected}, found ${actual ?? 'none (deleted)'}`,
      ref,
    );
  }
}

/** True when `err` is a DatastoreError with the given code. */
export function isDatastoreError(err: unknown, code?: DatastoreErrorCode): err is DatastoreError {
  return err instanceof DatastoreError && (code === undefined || err.code === code);
}
