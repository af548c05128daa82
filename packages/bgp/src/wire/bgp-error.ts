/**
 * The one error family of the codec. Every rejection carries the NOTIFICATION it maps to
 * (RFC 4271 §4.5, §6) so the session can send it unchanged.
 */
export class BgpError extends Error {
  /** Stable machine-readable code, e.g. `BGP_UPDATE_MALFORMED_ATTRIBUTE_LIST`. */
  readonly code: string;
  readonly errorCode: number;
  readonly errorSubcode: number;
  /** The NOTIFICATION data field. */
  readonly data: Uint8Array;

  constructor(code: string, errorCode: number, errorSubcode: number, message: string, data?: Uint8Array) {
    super(message);
    this.name = 'BgpError';
    this.code = code;
    this.errorCode = errorCode;
    this.errorSubcode = errorSubcode;
    this.data = data ?? new Uint8Array(0);
  }
}

export function isBgpError(e: unknown): e is BgpError {
  return e instanceof BgpError;
}
