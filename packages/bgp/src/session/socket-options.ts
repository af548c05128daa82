/**
 * The hook for socket options Node cannot set itself (RFC 2385 TCP-MD5, TTL, RFC 5082 GTSM).
 * The speaker takes an implementation as a port and stays dependency-free; @calico-ts/bgp-agent
 * supplies one built on libc (koffi) for calico-bgpd and the node agent.
 */
import type { Server, Socket } from 'node:net';

export interface ConnectOptions {
  host: string;
  port: number;
  localAddress?: string;
  /** RFC 2385 key for this peer. */
  md5Key?: string;
  /** Outgoing IP TTL (eBGP multihop), or 255 for GTSM. */
  ttl?: number;
  /** RFC 5082: drop segments arriving with a lower TTL. */
  minTtl?: number;
}

export interface SocketOptions {
  /**
   * Open an outgoing connection with the options applied before the SYN (MD5 must be).
   * Resolves with a connected socket or rejects.
   */
  connect(opts: ConnectOptions): Promise<Socket>;
  /** Install or (with undefined) remove the MD5 key for `peerAddress` on a listening socket. */
  setListenerMd5(server: Server, peerAddress: string, key: string | undefined): void;
  setTtl(socket: Socket, ttl: number): void;
  setMinTtl(socket: Socket, minTtl: number): void;
  /**
   * Optional: create the listening server (e.g. with its socket inside a network namespace).
   * Without it the speaker listens with net.createServer in the process's own namespace.
   */
  listen?(opts: { host: string; port: number }): Promise<Server>;
}

export class SocketOptionsError extends Error {
  readonly code = 'BGP_SOCKET_OPTIONS_UNAVAILABLE';
}
