/**
 * Network namespaces. A namespace is held open by fd, so a handle stays valid even if its
 * /run/netns name is removed. Work inside a namespace never spawns a process: setns(2) moves the
 * main thread in, the caller creates its sockets (a socket belongs to the namespace it was created
 * in for its whole life, see net/socket.c sock_create → current->nsproxy->net_ns), and we setns
 * back to the namespace we started in.
 */
import { execFile } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { CommandError, errnoName, KernelError, SyscallError } from './errors.ts';
import { CLONE_NEWNET, lastErrno, setns } from './libc.ts';
import { logger } from './logger.ts';

const execFileP = promisify(execFile);

export const NETNS_RUN_DIR = '/run/netns';

/** Names `ip netns` accepts and interfaces can be derived from: no '/', no leading dot. */
const namePattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/;

export class NetNamespace {
  /** Human name: the /run/netns name, or the path for /proc/<pid>/ns/net handles. */
  readonly name: string;
  readonly path: string;
  #fd: number;

  private constructor(name: string, path: string, fd: number) {
    this.name = name;
    this.path = path;
    this.#fd = fd;
  }

  /** Open `/run/netns/<name>`, `/proc/<pid>/ns/net`, or any other nsfs path. */
  static open(nameOrPath: string): NetNamespace {
    const path = nameOrPath.includes('/') ? nameOrPath : `${NETNS_RUN_DIR}/${nameOrPath}`;
    const name = path.startsWith(`${NETNS_RUN_DIR}/`) ? path.slice(NETNS_RUN_DIR.length + 1) : path;
    try {
      return new NetNamespace(name, path, openSync(path, 'r'));
    } catch (err) {
      const errno = (err as NodeJS.ErrnoException).code;
      throw new KernelError('Namespace', { errno, operation: `opening namespace ${path}`, cause: err });
    }
  }

  /** Takes ownership of an open namespace fd (see lookUpNetNamespace); `path` names it. */
  static fromFd(fd: number, path: string): NetNamespace {
    const name = path.startsWith(`${NETNS_RUN_DIR}/`) ? path.slice(NETNS_RUN_DIR.length + 1) : path;
    return new NetNamespace(name, path, fd);
  }

  /** The namespace of the given process. */
  static ofPid(pid: number): NetNamespace {
    return NetNamespace.open(`/proc/${pid}/ns/net`);
  }

  get fd(): number {
    if (this.#fd < 0)
      throw new KernelError('Namespace', { operation: `using closed handle of ${this.path}` });
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }

  toString(): string {
    return this.name;
  }
}

let home: NetNamespace | undefined;
/** The namespace this process started in; every setns ends back here (or in the enclosing one). */
let current: NetNamespace | undefined;

/** Our own namespace, opened once and kept for the life of the process. */
export function hostNamespace(): NetNamespace {
  home ??= NetNamespace.open('/proc/self/ns/net');
  return home;
}

function enter(ns: NetNamespace, why: string): void {
  if (setns(ns.fd, CLONE_NEWNET) !== 0) {
    throw new SyscallError('Namespace', 'setns', {
      errno: errnoName(lastErrno()),
      operation: `entering namespace ${ns.name} for ${why}`,
    });
  }
}

/**
 * Run `fn` synchronously with the main thread inside `ns`, then return to the namespace we were
 * in. For brief work that creates sockets (netlink, TCP, UDP); anything asynchronous started
 * inside runs later, back in our own namespace, so `fn` must not return a promise.
 */
export function runInNamespace<T>(ns: NetNamespace, fn: () => T, why = 'work'): T {
  const outer = current ?? hostNamespace();
  enter(ns, why);
  current = ns;
  let result: T | undefined;
  let failure: { error: unknown } | undefined;
  try {
    result = fn();
  } catch (error) {
    failure = { error };
  }
  current = outer;
  // If we cannot get back, every later socket would land in the wrong namespace: fail hard.
  if (setns(outer.fd, CLONE_NEWNET) !== 0) {
    const errno = errnoName(lastErrno());
    logger.fatal({ errno, ns: ns.name }, 'cannot return to the original network namespace');
    throw new SyscallError('Namespace', 'setns', { errno, operation: `returning from namespace ${ns.name}` });
  }
  if (failure) throw failure.error;
  if (result && typeof (result as { then?: unknown }).then === 'function') {
    throw new KernelError('Invalid', {
      operation: `running ${why} in namespace ${ns.name}: the function returned a promise; only synchronous work runs inside`,
    });
  }
  return result as T;
}

async function ipNetns(args: string[], operation: string, namespace: string): Promise<void> {
  try {
    await execFileP('ip', ['netns', ...args]);
  } catch (err) {
    const e = err as { code?: number | string; stderr?: string };
    const stderr = e.stderr ?? String(err);
    const errno = /File exists/.test(stderr) ? 'EEXIST' : /No such file/.test(stderr) ? 'ENOENT' : undefined;
    throw new CommandError('Namespace', {
      errno,
      operation,
      namespace,
      command: `ip netns ${args.join(' ')}`,
      exitCode: typeof e.code === 'number' ? e.code : null,
      stderr,
    });
  }
}

/**
 * Create a named namespace (bind mount under /run/netns, as `ip netns add` does — it also makes
 * /run/netns a shared mount so the name is visible in other mount namespaces) and open it.
 */
export async function createNamespace(name: string): Promise<NetNamespace> {
  if (!namePattern.test(name)) {
    throw new KernelError('Invalid', { operation: `creating namespace "${name}": invalid name` });
  }
  await ipNetns(['add', name], `creating namespace ${name}`, name);
  logger.debug({ ns: name }, 'namespace created');
  return NetNamespace.open(name);
}

/** Delete a named namespace; with ifExists a missing one is not an error. Open handles stay valid. */
export async function deleteNamespace(name: string, options: { ifExists?: boolean } = {}): Promise<void> {
  if (options.ifExists && !existsSync(`${NETNS_RUN_DIR}/${name}`)) return;
  await ipNetns(['del', name], `deleting namespace ${name}`, name);
  logger.debug({ ns: name }, 'namespace deleted');
}

/** Names under /run/netns, optionally only those starting with `prefix`. */
export function listNamespaces(prefix = ''): string[] {
  if (!existsSync(NETNS_RUN_DIR)) return [];
  return readdirSync(NETNS_RUN_DIR)
    .filter((n) => n.startsWith(prefix))
    .sort();
}
