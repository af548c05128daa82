/**
 * The speaker's SocketOptions port on Linux: TCP-MD5 (RFC 2385), TTL and GTSM (RFC 5082) set
 * through libc by @calico-ts/kernel, before the SYN where they must be. With a network namespace,
 * outgoing connections and the listening socket are made inside it; the sockets still belong to
 * this process, so one process can run speakers for several namespaces.
 */
import type { SocketOptions } from '@calico-ts/bgp';
import {
  connectTcp,
  listenTcp,
  type NetNamespace,
  setIpMinTtl,
  setIpTtl,
  setTcpMd5Key,
} from '@calico-ts/kernel';

/** How long a connection attempt may take before it counts as failed. */
const CONNECT_TIMEOUT_MS = 10_000;

export function kernelSocketOptions(namespace?: NetNamespace): SocketOptions {
  const options: SocketOptions = {
    connect: (o) =>
      connectTcp({
        host: o.host,
        port: o.port,
        localAddress: o.localAddress,
        md5Key: o.md5Key,
        ttl: o.ttl,
        minTtl: o.minTtl,
        namespace,
        timeoutMs: CONNECT_TIMEOUT_MS,
      }),
    setListenerMd5: (server, peer, key) => setTcpMd5Key(server, peer, key),
    setTtl: (socket, ttl) => setIpTtl(socket, ttl),
    setMinTtl: (socket, minTtl) => setIpMinTtl(socket, minTtl),
  };
  // In our own namespace Node's own listener does; elsewhere the socket must be made in it.
  if (namespace) options.listen = ({ host, port }) => listenTcp({ host, port, namespace });
  return options;
}
