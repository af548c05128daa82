/**
 * Every IPAM failure is an IpamError with a stable `code` callers can branch on (the CNI plugin
 * maps them to CNI error codes, `calico ipam` to exit statuses). Messages name the pool, node,
 * address or block involved and say what would make the request succeed.
 */
export type IpamErrorCode =
  /** The eligible pools have no address left for this node (blocks all claimed, borrowing off or nothing to borrow). */
  | 'NoFreeAddress'
  /** No enabled pool matches the request (family, intended use, node selector, explicit names). */
  | 'NoUsablePool'
  /** The node already holds maxBlocksPerHost blocks and they are full. */
  | 'BlockLimitReached'
  /** assignIP: the address is already allocated. */
  | 'AddressInUse'
  /** The address lies in no configured IP pool. */
  | 'AddressNotInPool'
  /** strictAffinity forbids using a block affine to another node. */
  | 'NotAffine'
  /** releaseAffinity(mustBeEmpty): the block still has allocations. */
  | 'BlockNotEmpty'
  /** A release carried a sequence number that no longer matches: the address was reallocated since. */
  | 'BadSequenceNumber'
  /** Compare-and-swap kept conflicting beyond the retry budget. */
  | 'TooManyConflicts'
  /** The datastore stayed unreachable beyond the configured deadline. */
  | 'DatastoreUnavailable'
  /** A pool's nodeSelector needs the Node resource, which does not exist. */
  | 'NodeNotFound'
  /** A pool's nodeSelector cannot be parsed. */
  | 'SelectorUnsupported'
  | 'InvalidArgument';

export class IpamError extends Error {
  override readonly name = 'IpamError';
  readonly code: IpamErrorCode;
  constructor(code: IpamErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isIpamError(err: unknown, code?: IpamErrorCode): err is IpamError {
  return err instanceof IpamError && (code === undefined || err.code === code);
}
