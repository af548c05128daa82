/**
 * The daemon's SocketOptions: TCP-MD5, TTL and GTSM through @calico-ts/kernel (libc via koffi).
 * Loaded lazily so a daemon without passwords never needs the FFI.
 */
import type { SocketOptions } from '../session/socket-options.ts';

export async function loadKernelSocketOptions(): Promise<SocketOptions> {
  const k = await import('@calico-ts/kernel');
  return {
    connect: (o) =>
      k.connectTcp({
        host: o.host,
        port: o.port,
        localAddress: o.localAddress,
        md5Key: o.md5Key,
        ttl: o.ttl,
        minTtl: o.minTtl,
        timeoutMs: 10_000,
      }),
    setListenerMd5: (server, peer, key) => k.setTcpMd5Key(server, peer, key),
    setTtl: (socket, ttl) => k.setIpTtl(socket, ttl),
    setMinTtl: (socket, minTtl) => k.setIpMinTtl(socket, minTtl),
  };
}
