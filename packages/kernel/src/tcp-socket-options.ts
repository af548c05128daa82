/**
 * Socket options Node does not expose, for the BGP speaker: TCP MD5 signatures (RFC 2385),
 * TTL and GTSM minimum TTL (RFC 5082), a chosen source address, and sockets created inside a
 * given network namespace. Options go on the fd with libc setsockopt through koffi.
 *
 * Active side: Node's net.connect sends the SYN before any hook could set a key, so the socket
 * is made by hand (socket → options → bind → non-blocking connect → poll on koffi's worker
 * thread) and then handed to net.Socket. Passive side: keys set on the listening socket are
 * inherited by accepted sockets (tcp_v4_syn_recv_sock copies the md5sig info).
 */

import { readFileSync } from 'node:fs';
import { Server, Socket } from 'node:net';
import { errnoName, KernelError, SyscallError } from './errors.ts';
import { ipFamily, ipToBytes } from './ip-address.ts';
import {
  AF_INET,
  AF_INET6,
  bind,
  close,
  connect,
  EINPROGRESS,
  getsockopt,
  IP_MINTTL,
  IP_TTL,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPV6_MINHOPCOUNT,
  IPV6_UNICAST_HOPS,
  lastErrno,
  POLLOUT,
  poll,
  SO_DOMAIN,
  SO_ERROR,
  SO_REUSEADDR,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  setsockopt,
  socket,
  TCP_MD5SIG,
} from './libc.ts';
import { type NetNamespace, runInNamespace } from './namespace.ts';

export type SocketTarget = Socket | Server | number;

/** The fd behind a Node socket or server (libuv handle's `fd`, stable since Node 0.x). */
export function socketFd(target: SocketTarget): number {
  if (typeof target === 'number') return target;
  const fd = (target as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new KernelError('Socket', { operation: 'finding the fd of a socket that is not open' });
  }
  return fd;
}

function fail(syscall: string, operation: string, namespace?: string): SyscallError {
  return new SyscallError('Socket', syscall, { errno: errnoName(lastErrno()), operation, namespace });
}

function setInt(fd: number, level: number, name: number, value: number, operation: string): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value);
  if (setsockopt(fd, level, name, b, 4) !== 0) throw fail('setsockopt', operation);
}

function getInt(fd: number, level: number, name: number, operation: string): number {
  const b = Buffer.alloc(4);
  if (getsockopt(fd, level, name, b, [4]) !== 0) throw fail('getsockopt', operation);
  return b.readInt32LE(0);
}

function domainOf(fd: number): number {
  return getInt(fd, SOL_SOCKET, SO_DOMAIN, 'reading the socket family');
}

/** struct sockaddr_in / sockaddr_in6; an IPv4 address on an AF_INET6 socket becomes ::ffff:a.b.c.d. */
export function sockaddr(ip: string, port: number, domain: number): Buffer {
  if (domain === AF_INET) {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(port, 2);
    ipToBytes(ip).copy(b, 4);
    return b;
  }
  const b = Buffer.alloc(28);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  (ipFamily(ip) === 4 ? ipToBytes(`::ffff:${ip}`) : ipToBytes(ip)).copy(b, 8);
  return b;
}

/**
 * struct tcp_md5sig (include/uapi/linux/tcp.h): sockaddr_storage tcpm_addr (128 bytes), u8 flags,
 * u8 prefixlen, u16 keylen, i32 ifindex, u8 key[TCP_MD5SIG_MAXKEYLEN = 80]. An empty key deletes.
 */
export function tcpMd5Sig(peer: string, key: Buffer, domain: number): Buffer {
  if (key.length > 80)
    throw new KernelError('Invalid', { operation: `setting a TCP MD5 key of ${key.length} bytes (max 80)` });
  const b = Buffer.alloc(216);
  sockaddr(peer, 0, domain).copy(b, 0);
  b.writeUInt16LE(key.length, 130);
  key.copy(b, 136);
  return b;
}

/** Set (or with an empty/undefined key, remove) the RFC 2385 key for one peer address. */
export function setTcpMd5Key(target: SocketTarget, peer: string, key: string | Buffer | undefined): void {
  const fd = socketFd(target);
  const k = key === undefined ? Buffer.alloc(0) : Buffer.isBuffer(key) ? key : Buffer.from(key, 'utf8');
  const sig = tcpMd5Sig(peer, k, domainOf(fd));
  if (setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, sig, sig.length) !== 0) {
    throw fail('setsockopt', `${k.length ? 'setting' : 'removing'} the TCP MD5 key for peer ${peer}`);
  }
}

/** Outgoing TTL / hop limit (eBGP single hop uses 1; GTSM senders use 255). */
export function setIpTtl(target: SocketTarget, ttl: number): void {
  const fd = socketFd(target);
  if (domainOf(fd) === AF_INET6) setInt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl, `setting hop limit ${ttl}`);
  else setInt(fd, IPPROTO_IP, IP_TTL, ttl, `setting TTL ${ttl}`);
}

/** RFC 5082 GTSM: drop packets arriving with a TTL below `minTtl` (e.g. 255 − hops + 1). */
export function setIpMinTtl(target: SocketTarget, minTtl: number): void {
  const fd = socketFd(target);
  if (domainOf(fd) === AF_INET6)
    setInt(fd, IPPROTO_IPV6, IPV6_MINHOPCOUNT, minTtl, `setting min hop count ${minTtl}`);
  else setInt(fd, IPPROTO_IP, IP_MINTTL, minTtl, `setting min TTL ${minTtl}`);
}

export interface TcpSocketOptions {
  /** Create the socket inside this namespace. */
  namespace?: NetNamespace | undefined;
  ttl?: number | undefined;
  minTtl?: number | undefined;
}

function newSocket(family: 4 | 6, namespace: NetNamespace | undefined, why: string): number {
  const make = () => socket(family === 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const fd = namespace ? runInNamespace(namespace, make, why) : make();
  if (fd < 0) throw fail('socket', why, namespace?.name);
  return fd;
}

function withFd<T>(fd: number, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    close(fd);
    throw err;
  }
}

export interface ListenOptions extends TcpSocketOptions {
  host: string;
  port: number;
  /** Per-peer MD5 keys, set before the socket listens. */
  md5Keys?: readonly { peer: string; key: string | Buffer }[] | undefined;
  backlog?: number;
}

/** A listening net.Server whose socket lives in `namespace` and carries the given options. */
export async function listenTcp(options: ListenOptions): Promise<Server> {
  const family = ipFamily(options.host);
  const what = `listening on ${options.host} port ${options.port}`;
  const fd = newSocket(family, options.namespace, what);
  withFd(fd, () => {
    setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1, what);
    for (const { peer, key } of options.md5Keys ?? []) setTcpMd5Key(fd, peer, key);
    if (options.ttl !== undefined) setIpTtl(fd, options.ttl);
    if (options.minTtl !== undefined) setIpMinTtl(fd, options.minTtl);
    const addr = sockaddr(options.host, options.port, family === 4 ? AF_INET : AF_INET6);
    if (bind(fd, addr, addr.length) !== 0) throw fail('bind', what, options.namespace?.name);
  });
  const server = new Server();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // Node adopts the bound fd and calls listen(2) on it.
    server.listen({ fd, backlog: options.backlog ?? 511 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

export interface ConnectOptions extends TcpSocketOptions {
  host: string;
  port: number;
  localAddress?: string | undefined;
  localPort?: number | undefined;
  md5Key?: string | Buffer | undefined;
  /** Give up after this long (a SYN without the right MD5 signature is dropped silently). Default 5000. */
  timeoutMs?: number;
}

const pollAsync = (buf: Buffer, timeoutMs: number): Promise<number> =>
  new Promise((resolve, reject) => {
    (poll as unknown as { async: (...a: unknown[]) => void }).async(
      buf,
      1,
      timeoutMs,
      (err: unknown, res: number) => (err ? reject(err) : resolve(res)),
    );
  });

/** A connected net.Socket whose socket was created (and signed, bound, TTL'd) before its SYN. */
export async function connectTcp(options: ConnectOptions): Promise<Socket> {
  const family = ipFamily(options.host);
  const domain = family === 4 ? AF_INET : AF_INET6;
  const what = `connecting to ${options.host} port ${options.port}`;
  const ns = options.namespace?.name;
  const fd = newSocket(family, options.namespace, what);
  withFd(fd, () => {
    if (options.md5Key !== undefined) setTcpMd5Key(fd, options.host, options.md5Key);
    if (options.ttl !== undefined) setIpTtl(fd, options.ttl);
    if (options.minTtl !== undefined) setIpMinTtl(fd, options.minTtl);
    if (options.localAddress !== undefined || options.localPort !== undefined) {
      const local = sockaddr(
        options.localAddress ?? (family === 4 ? '0.0.0.0' : '::'),
        options.localPort ?? 0,
        domain,
      );
      if (bind(fd, local, local.length) !== 0) throw fail('bind', `${what} from ${options.localAddress}`, ns);
    }
    const addr = sockaddr(options.host, options.port, domain);
    if (connect(fd, addr, addr.length) !== 0 && lastErrno() !== EINPROGRESS) throw fail('connect', what, ns);
  });
  const pfd = Buffer.alloc(8); // struct pollfd { int fd; short events; short revents; }
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(POLLOUT, 4);
  let ready: number;
  try {
    ready = await pollAsync(pfd, options.timeoutMs ?? 5000);
  } catch (err) {
    close(fd);
    throw new KernelError('Socket', { operation: what, namespace: ns, cause: err });
  }
  if (ready === 0) {
    close(fd);
    throw new SyscallError('Socket', 'connect', { errno: 'ETIMEDOUT', operation: what, namespace: ns });
  }
  const soError = withFd(fd, () => getInt(fd, SOL_SOCKET, SO_ERROR, what));
  if (soError !== 0) {
    close(fd);
    throw new SyscallError('Socket', 'connect', {
      errno: errnoName(soError),
      operation: what,
      namespace: ns,
    });
  }
  return new Socket({ fd, readable: true, writable: true });
}

export interface TcpMd5Counters {
  /** TcpExtTCPMD5NotFound: signature/key mismatch in presence (6.7+ also counts unsigned segments from a keyed peer here). */
  notFound: number;
  /** TcpExtTCPMD5Unexpected: signed segment where no key is configured (older kernels: also the reverse). */
  unexpected: number;
  /** TcpExtTCPMD5Failure: signature mismatch (wrong password). */
  failure: number;
}

/**
 * MD5 drop counters of a namespace (from /proc/net/netstat). A wrong password is otherwise
 * silent — no accept, no error — so these are the only diagnostic.
 */
export function tcpMd5Counters(namespace?: NetNamespace): TcpMd5Counters {
  // /proc/thread-self/net follows the reading thread's namespace (fs/proc/proc_net.c).
  const read = () => readFileSync('/proc/thread-self/net/netstat', 'utf8');
  const text = namespace ? runInNamespace(namespace, read, 'reading /proc/net/netstat') : read();
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.startsWith('TcpExt:'));
  const names = (lines[i] ?? '').split(/\s+/);
  const values = (lines[i + 1] ?? '').split(/\s+/).map(Number);
  const get = (n: string) => values[names.indexOf(n)] ?? 0;
  return {
    notFound: get('TCPMD5NotFound'),
    unexpected: get('TCPMD5Unexpected'),
    failure: get('TCPMD5Failure'),
  };
}
