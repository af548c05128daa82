/**
 * CNI SPEC §"Error": a failed operation prints `{cniVersion, code, msg, details}` on stdout and exits
 * non-zero. Codes 1–99 are the spec's; 100+ are ours.
 */
export const CNI_ERROR = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodingFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  // CNI SPEC 1.1 §STATUS: the plugin is not ready to serve ADDs.
  notAvailable: 50,
  notAvailableDegraded: 51,
  // Plugin-specific (≥ 100).
  ipamExhausted: 100,
  datastoreUnavailable: 101,
  netnsNotFound: 102,
  dataplaneFailure: 103,
  agentUnreachable: 104,
  internal: 999,
} as const;

export type CniErrorCode = (typeof CNI_ERROR)[keyof typeof CNI_ERROR];

export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export class CniError extends Error {
  override readonly name = 'CniError';
  readonly code: number;
  readonly details: string | undefined;
  constructor(code: number, msg: string, details?: string) {
    super(msg);
    this.code = code;
    this.details = details;
  }

  toJSON(cniVersion: string): CniErrorJson {
    return {
      cniVersion,
      code: this.code,
      msg: this.message,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

export function isCniError(err: unknown): err is CniError {
  return err instanceof CniError;
}
