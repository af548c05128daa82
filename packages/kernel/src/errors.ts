import { constants } from 'node:os';

/**
 * Stable error families of the kernel layer. `code` is what callers branch on; `errno` (a name
 * such as 'EEXIST') says what the kernel answered, `operation` what we were doing.
 */
export type KernelErrorCode =
  | 'Netlink'
  | 'Namespace'
  | 'Sysctl'
  | 'Iptables'
  | 'Ipset'
  | 'Socket'
  | 'Process'
  | 'ModuleMissing'
  | 'Timeout'
  | 'Invalid';

export interface KernelErrorDetails {
  /** errno name, e.g. 'EEXIST', when the failure came from a syscall or a netlink NLMSG_ERROR. */
  errno?: string | undefined;
  /** What we were doing, e.g. 'adding route 10.0.0.0/26 via 192.0.2.2'. */
  operation: string;
  /** Network namespace name (or path) the operation ran in; undefined for our own namespace. */
  namespace?: string | undefined;
  cause?: unknown;
}

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value as number, name]),
);

/** errno number → name ('EEXIST'); unknown numbers become 'E<n>'. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return errnoNames.get(n) ?? `E${n}`;
}

function render(errno: string | undefined, operation: string, namespace: string | undefined): string {
  const where = namespace ? ` in netns ${namespace}` : '';
  return `${errno ? `${errno} ` : ''}${operation}${where}`;
}

export class KernelError extends Error {
  override readonly name: string = 'KernelError';
  readonly code: KernelErrorCode;
  readonly errno: string | undefined;
  readonly operation: string;
  readonly namespace: string | undefined;
  constructor(code: KernelErrorCode, details: KernelErrorDetails, message?: string) {
    super(message ?? render(details.errno, details.operation, details.namespace), { cause: details.cause });
    this.code = code;
    this.errno = details.errno;
    this.operation = details.operation;
    this.namespace = details.namespace;
  }
}

/** A netlink request answered with NLMSG_ERROR (or a socket failure). */
export class NetlinkError extends KernelError {
  override readonly name = 'NetlinkError';
  constructor(details: KernelErrorDetails, message?: string) {
    super('Netlink', details, message);
  }
}

/** A libc call (setns, socket, setsockopt, …) failed. */
export class SyscallError extends KernelError {
  override readonly name = 'SyscallError';
  readonly syscall: string;
  constructor(code: KernelErrorCode, syscall: string, details: KernelErrorDetails) {
    super(code, details, `${render(details.errno, details.operation, details.namespace)} (${syscall})`);
    this.syscall = syscall;
  }
}

/** A helper binary (ip, iptables-restore, ipset) exited non-zero; stderr is kept for the user. */
export class CommandError extends KernelError {
  override readonly name = 'CommandError';
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(
    code: KernelErrorCode,
    details: KernelErrorDetails & { command: string; exitCode: number | null; stderr: string },
  ) {
    const base = render(details.errno, details.operation, details.namespace);
    const tail = details.stderr.trim().split('\n').slice(-3).join(' | ');
    super(code, details, `${base}: ${details.command} exited ${details.exitCode}${tail ? `: ${tail}` : ''}`);
    this.command = details.command;
    this.exitCode = details.exitCode;
    this.stderr = details.stderr;
  }
}

/** True when `err` is a KernelError, optionally of one family and/or errno. */
export function isKernelError(err: unknown, code?: KernelErrorCode, errno?: string): err is KernelError {
  return (
    err instanceof KernelError &&
    (code === undefined || err.code === code) &&
    (errno === undefined || err.errno === errno)
  );
}
