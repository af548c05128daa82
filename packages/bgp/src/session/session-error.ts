/**
 * Why a session is not Established, in words an operator can act on: the NOTIFICATION codes
 * decoded (RFC 4271 §4.5, RFC 4486, RFC 7313, RFC 8538), socket errors told apart (nothing
 * listening, no answer, an address that is not ours), and a kind for programs. Pure: the session
 * feeds it what happened.
 */
import { CeaseSubcode, ErrorCode, OpenSubcode } from '../wire/constants.ts';

export type SessionErrorKind =
  /** The peer's host answered the SYN with a RST: nothing listens on the BGP port. */
  | 'connection-refused'
  /** No answer to the SYN before the connect-retry timer (a filter, a dead host, or TCP-MD5). */
  | 'connect-timeout'
  /** The source address to bind is not on this host (EADDRNOTAVAIL). */
  | 'source-address'
  /** The OPEN named another AS than configured, on either side (OPEN error Bad Peer AS). */
  | 'as-mismatch'
  /** The peer shut the session down, reset it or removed it (Cease 2, 4 or 3, Peer De-configured). */
  | 'admin-shutdown'
  | 'notification-received'
  | 'notification-sent'
  | 'hold-timer-expired'
  | 'connection-closed'
  | 'socket-error';

export interface SessionError {
  kind: SessionErrorKind;
  message: string;
}

const ERROR_NAMES: Record<number, string> = {
  1: 'Message Header Error',
  2: 'OPEN Message Error',
  3: 'UPDATE Message Error',
  4: 'Hold Timer Expired',
  5: 'Finite State Machine Error',
  6: 'Cease',
  7: 'ROUTE-REFRESH Message Error',
};

const SUBCODE_NAMES: Record<number, Record<number, string>> = {
  1: { 1: 'Connection Not Synchronized', 2: 'Bad Message Length', 3: 'Bad Message Type' },
  2: {
    1: 'Unsupported Version Number',
    2: 'Bad Peer AS',
    3: 'Bad BGP Identifier',
    4: 'Unsupported Optional Parameter',
    5: 'Authentication Failure',
    6: 'Unacceptable Hold Time',
    7: 'Unsupported Capability',
    11: 'Role Mismatch',
  },
  3: {
    1: 'Malformed Attribute List',
    2: 'Unrecognized Well-known Attribute',
    3: 'Missing Well-known Attribute',
    4: 'Attribute Flags Error',
    5: 'Attribute Length Error',
    6: 'Invalid ORIGIN Attribute',
    7: 'AS Routing Loop',
    8: 'Invalid NEXT_HOP Attribute',
    9: 'Optional Attribute Error',
    10: 'Invalid Network Field',
    11: 'Malformed AS_PATH',
  },
  5: {
    1: 'Unexpected Message in OpenSent',
    2: 'Unexpected Message in OpenConfirm',
    3: 'Unexpected Message in Established',
  },
  6: {
    1: 'Maximum Number of Prefixes Reached',
    2: 'Administrative Shutdown',
    3: 'Peer De-configured',
    4: 'Administrative Reset',
    5: 'Connection Rejected',
    6: 'Other Configuration Change',
    7: 'Connection Collision Resolution',
    8: 'Out of Resources',
    9: 'Hard Reset',
    10: 'BFD Down',
  },
  7: { 1: 'Invalid Message Length' },
};

/** `OPEN Message Error / Bad Peer AS`; unknown codes keep their numbers. */
export function notificationText(code: number, subcode: number): string {
  const name = ERROR_NAMES[code] ?? `error code ${code}`;
  if (subcode === 0) return name;
  const sub = SUBCODE_NAMES[code]?.[subcode] ?? `subcode ${subcode}`;
  return `${name} / ${sub}`;
}

/**
 * RFC 9003 §2: the data of a Cease Administrative Shutdown or Reset may be a length-prefixed
 * UTF-8 message from the peer's operator.
 */
export function shutdownCommunication(data: Uint8Array): string | undefined {
  const len = data[0];
  if (len === undefined || len === 0 || data.length < 1 + len) return undefined;
  const text = Buffer.from(data.subarray(1, 1 + len)).toString('utf8');
  return text.includes('\uFFFD') ? undefined : text;
}

function isAdminShutdown(code: number, subcode: number): boolean {
  return (
    code === ErrorCode.Cease &&
    (subcode === CeaseSubcode.AdminShutdown || subcode === CeaseSubcode.AdminReset)
  );
}

/** A NOTIFICATION the peer sent us. */
export function receivedNotification(code: number, subcode: number, data: Uint8Array): SessionError {
  const text = notificationText(code, subcode);
  if (code === ErrorCode.Open && subcode === OpenSubcode.BadPeerAs) {
    return {
      kind: 'as-mismatch',
      message: `AS mismatch: the peer rejected our OPEN with NOTIFICATION ${text} (check the AS numbers both sides expect)`,
    };
  }
  if (isAdminShutdown(code, subcode)) {
    const said = shutdownCommunication(data);
    return {
      kind: 'admin-shutdown',
      message: `peer administratively shut down the session (NOTIFICATION ${text}${said ? `: "${said}"` : ''})`,
    };
  }
  if (code === ErrorCode.Cease && subcode === CeaseSubcode.PeerDeconfigured) {
    return {
      kind: 'admin-shutdown',
      message: `peer removed the session from its configuration (NOTIFICATION ${text})`,
    };
  }
  return { kind: 'notification-received', message: `received NOTIFICATION ${text}` };
}

/** A NOTIFICATION we sent; `detail` says what we found wrong. */
export function sentNotification(code: number, subcode: number, detail?: string): SessionError {
  const text = notificationText(code, subcode);
  if (code === ErrorCode.Open && subcode === OpenSubcode.BadPeerAs) {
    return {
      kind: 'as-mismatch',
      message: `AS mismatch: ${detail ?? 'unexpected peer AS'} (sent NOTIFICATION ${text})`,
    };
  }
  return { kind: 'notification-sent', message: `sent NOTIFICATION ${text}${detail ? `: ${detail}` : ''}` };
}

export interface ConnectAttempt {
  peer: string;
  port: number;
  localAddress?: string | undefined;
  /** A TCP-MD5 password is configured for this peer. */
  password: boolean;
}

/** The errno of a Node socket error (`code`) or a @calico-ts/kernel one (`errno`). */
function errnoOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  for (const key of ['code', 'errno'] as const) {
    const v: unknown = Reflect.get(err, key);
    if (typeof v === 'string' && /^E[A-Z]+$/.test(v)) return v;
  }
  const m = /\b(E[A-Z]{4,})\b/.exec(err instanceof Error ? err.message : '');
  return m?.[1];
}

/** A connection attempt that never got an answer to its SYN. */
export function connectTimeout(a: ConnectAttempt): SessionError {
  return {
    kind: 'connect-timeout',
    message: a.password
      ? `no answer from ${a.peer}:${a.port} (SYN unanswered) with a TCP-MD5 password configured: check the password on both sides`
      : `connection to ${a.peer}:${a.port} timed out (SYN unanswered: host down, filtered, or it expects a TCP-MD5 password)`,
  };
}

/** A socket error while connecting or on an open connection. */
export function socketFailure(err: unknown, a: ConnectAttempt): SessionError {
  const errno = errnoOf(err);
  switch (errno) {
    case 'ECONNREFUSED':
      return {
        kind: 'connection-refused',
        message: `connection refused: nothing listens on ${a.peer}:${a.port} (ECONNREFUSED)`,
      };
    case 'ETIMEDOUT':
      return connectTimeout(a);
    case 'EADDRNOTAVAIL':
      return {
        kind: 'source-address',
        message: `source address ${a.localAddress ?? '(unset)'} is not an address of this host (EADDRNOTAVAIL)`,
      };
    default: {
      const text = err instanceof Error ? err.message : String(err);
      return { kind: 'socket-error', message: `socket: ${text}` };
    }
  }
}

/**
 * Which error to show when a new one follows an earlier one: a close, a reset, a refused or a
 * rejected connection after the peer shut the session down, or rejected our AS, is the
 * consequence (the peer keeps refusing), so the cause stays and the new symptom is added.
 */
export function laterError(previous: SessionError | undefined, next: SessionError): SessionError {
  if (!previous || (previous.kind !== 'admin-shutdown' && previous.kind !== 'as-mismatch')) return next;
  const symptom =
    next.kind === 'connection-closed' ||
    next.kind === 'connection-refused' ||
    next.kind === 'socket-error' ||
    (next.kind === 'notification-received' && /Connection Rejected/.test(next.message));
  if (!symptom) return next;
  const base = previous.message.replace(/; since then: .*$/, '');
  return { kind: previous.kind, message: `${base}; since then: ${next.message}` };
}
