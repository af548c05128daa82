/**
 * Opening a network namespace by the path another process gave us, as that process sees it.
 *
 * A container runtime names the pod's namespace by a path in its own mount namespace (podman's
 * `/run/netns/netns-…` bind mount, made after `ip netns exec` or in a service with private
 * mounts, is invisible to everyone else; there the path is only the empty file under the mount).
 * Resolving the path under `/proc/<pid>/root` of the runtime's process walks that process's
 * mounts instead of ours. openat2(RESOLVE_IN_ROOT) keeps absolute symlinks on the way
 * (`/var/run` → `/run`) inside that root too; it refuses magic links such as `/proc/<pid>/ns/net`,
 * which are then opened through the plain `/proc/<pid>/root/…` path.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { errnoName, KernelError } from './errors.ts';
import {
  CLONE_NEWNET,
  ioctl,
  lastErrno,
  NS_GET_NSTYPE,
  O_CLOEXEC,
  O_DIRECTORY,
  O_PATH,
  O_RDONLY,
  RESOLVE_IN_ROOT,
  SYS_openat2,
  syscall,
} from './libc.ts';
import { NetNamespace } from './namespace.ts';

export type NamespaceLookup =
  | { found: 'netns'; namespace: NetNamespace }
  | { found: 'nothing' }
  /** Something that is not a network namespace: `what` says what it is ("a regular file"). */
  | { found: 'other'; what: string };

export interface LookupOptions {
  /**
   * Resolve the path in this process's root (its mount namespace), e.g. the peer of a unix
   * socket. Undefined: resolve it in our own.
   */
  rootOfPid?: number;
}

// linux/sched.h: the namespace types NS_GET_NSTYPE answers.
const NAMESPACE_TYPES: Record<number, string> = {
  128: 'time',
  131072: 'mount',
  33554432: 'cgroup',
  67108864: 'UTS',
  134217728: 'IPC',
  268435456: 'user',
  536870912: 'PID',
};

/** Opens `path` (as the process `rootOfPid` sees it) and says whether it is a network namespace. */
export function lookUpNetNamespace(path: string, options: LookupOptions = {}): NamespaceLookup {
  if (!path.startsWith('/')) {
    throw new KernelError('Invalid', { operation: `opening namespace ${path}: expected an absolute path` });
  }
  const fd = openAs(path, options.rootOfPid);
  if (fd === undefined) return { found: 'nothing' };
  const nstype = ioctl(fd, NS_GET_NSTYPE, 'int', 0);
  if (nstype === CLONE_NEWNET) return { found: 'netns', namespace: NetNamespace.fromFd(fd, path) };
  const errno = nstype < 0 ? lastErrno() : 0;
  let what: string;
  if (nstype >= 0) what = `a ${NAMESPACE_TYPES[nstype] ?? `type 0x${nstype.toString(16)}`} namespace`;
  else what = fileKind(fd) ?? `not a namespace (${errnoName(errno)})`;
  closeSync(fd);
  return { found: 'other', what };
}

function fileKind(fd: number): string | undefined {
  const st = fstatSync(fd);
  if (st.isFile()) return st.size === 0 ? 'an empty regular file' : 'a regular file';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return undefined;
}

/** An fd for `path`, undefined when nothing is there. */
function openAs(path: string, rootOfPid: number | undefined): number | undefined {
  if (rootOfPid === undefined) return openOrNothing(path);
  const rootPath = `/proc/${rootOfPid}/root`;
  let root: number;
  try {
    root = openSync(rootPath, O_PATH | O_DIRECTORY | O_CLOEXEC);
  } catch (err) {
    throw new KernelError('Namespace', {
      errno: (err as NodeJS.ErrnoException).code,
      operation: `opening the root of process ${rootOfPid} to find ${path}`,
      cause: err,
    });
  }
  try {
    const how = Buffer.alloc(24); // struct open_how { u64 flags; u64 mode; u64 resolve; }
    how.writeBigUInt64LE(BigInt(O_RDONLY | O_CLOEXEC), 0);
    how.writeBigUInt64LE(BigInt(RESOLVE_IN_ROOT), 16);
    const fd = Number(syscall(SYS_openat2, 'int', root, 'str', path, 'void *', how, 'size_t', how.length));
    if (fd >= 0) return fd;
    const errno = errnoName(lastErrno());
    if (errno === 'ENOENT' || errno === 'ENOTDIR') return undefined;
    // Magic links (/proc/<pid>/ns/net), or a kernel without openat2: the plain path.
    return openOrNothing(`${rootPath}${path}`);
  } finally {
    closeSync(root);
  }
}

function openOrNothing(path: string): number | undefined {
  try {
    return openSync(path, O_RDONLY | O_CLOEXEC);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new KernelError('Namespace', { errno: code, operation: `opening namespace ${path}`, cause: err });
  }
}
