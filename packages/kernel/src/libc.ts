/**
 * The few libc calls Node does not expose, through koffi (prebuilt FFI, nothing compiles).
 * Every wrapper returns the raw result; callers read `lastErrno()` right after a -1, before any
 * other FFI call can overwrite errno.
 */
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

export const setns = libc.func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number;
export const socket = libc.func('int socket(int domain, int type, int protocol)') as (
  domain: number,
  type: number,
  protocol: number,
) => number;
export const close = libc.func('int close(int fd)') as (fd: number) => number;
export const setsockopt = libc.func(
  'int setsockopt(int fd, int level, int optname, const void *optval, uint32_t optlen)',
) as (fd: number, level: number, optname: number, optval: Buffer, optlen: number) => number;
export const getsockopt = libc.func(
  'int getsockopt(int fd, int level, int optname, void *optval, _Inout_ uint32_t *optlen)',
) as (fd: number, level: number, optname: number, optval: Buffer, optlen: number[]) => number;
export const bind = libc.func('int bind(int fd, const void *addr, uint32_t addrlen)') as (
  fd: number,
  addr: Buffer,
  len: number,
) => number;
export const connect = libc.func('int connect(int fd, const void *addr, uint32_t addrlen)') as (
  fd: number,
  addr: Buffer,
  len: number,
) => number;
export const listen = libc.func('int listen(int fd, int backlog)') as (fd: number, backlog: number) => number;
/** For syscalls glibc has no wrapper for (openat2 in glibc 2.36); variadic: pass each argument's type. */
export const syscall = libc.func('long syscall(long number, ...)') as (
  number: number,
  ...typedArgs: unknown[]
) => number;
/** Variadic as in C: pass the argument's type before it (`'int', 0`). */
export const ioctl = libc.func('int ioctl(int fd, unsigned long request, ...)') as (
  fd: number,
  request: number,
  ...typedArgs: unknown[]
) => number;
/** poll(2) is run on koffi's worker thread (`.async`) so a slow connect never blocks the event loop. */
export const poll = libc.func('int poll(void *fds, uint64_t nfds, int timeout)');

export function lastErrno(): number {
  return koffi.errno();
}

// linux/sched.h
export const CLONE_NEWNET = 0x40000000;
// linux/socket.h, bits/socket_type.h
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
// asm-generic/socket.h
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_ERROR = 4;
export const SO_DOMAIN = 39;
export const SO_PEERCRED = 17;
// asm-generic/unistd.h, linux/openat2.h, asm-generic/fcntl.h
export const SYS_openat2 = 437;
export const RESOLVE_IN_ROOT = 0x10;
export const O_RDONLY = 0;
export const O_CLOEXEC = 0o2000000;
export const O_DIRECTORY = 0o200000;
export const O_PATH = 0o10000000;
// linux/nsfs.h: _IO(0xb7, 0x3)
export const NS_GET_NSTYPE = 0xb703;
// linux/in.h, linux/in6.h, linux/tcp.h
export const IPPROTO_IP = 0;
export const IPPROTO_TCP = 6;
export const IPPROTO_IPV6 = 41;
export const IP_TTL = 2;
export const IP_MINTTL = 21;
export const IPV6_UNICAST_HOPS = 16;
export const IPV6_MINHOPCOUNT = 73;
export const IPV6_V6ONLY = 26;
export const TCP_MD5SIG = 14;
export const EINPROGRESS = 115;
// poll.h
export const POLLOUT = 0x4;
