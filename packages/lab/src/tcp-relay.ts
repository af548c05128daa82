import { createServer, type Server, type Socket } from 'node:net';
import { connectTcp, listenTcp, type NetNamespace } from '@calico-ts/kernel';

export interface TcpRelayOptions {
  /** Where the relay listens; `namespace` omitted = our own namespace. */
  listen: { host: string; port: number; namespace?: NetNamespace | undefined };
  /** Where each accepted connection is forwarded; `namespace` omitted = our own namespace. */
  target: { host: string; port: number; namespace?: NetNamespace | undefined };
}

export interface TcpRelay {
  /** The port actually listened on (useful with port 0). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Forwards TCP connections between network namespaces from inside one process: sockets are created
 * in their namespace (setns around socket(2)), so no process has to run there. The lab uses it to
 * let a client on this host reach a service on the lab's underlay (etcd on 198.51.100.1) and the
 * reverse, without adding any address or route to either namespace.
 */
export async function relayTcp(options: TcpRelayOptions): Promise<TcpRelay> {
  const open = new Set<Socket>();
  const onConnection = (client: Socket): void => {
    open.add(client);
    client.on('close', () => open.delete(client));
    client.pause();
    connectTcp({ host: options.target.host, port: options.target.port, namespace: options.target.namespace })
      .then((upstream) => {
        open.add(upstream);
        upstream.on('close', () => open.delete(upstream));
        const end = (): void => {
          client.destroy();
          upstream.destroy();
        };
        client.on('error', end).on('close', end);
        upstream.on('error', end).on('close', end);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      })
      .catch(() => client.destroy());
  };
  let server: Server;
  if (options.listen.namespace) {
    server = await listenTcp({
      host: options.listen.host,
      port: options.listen.port,
      namespace: options.listen.namespace,
    });
    server.on('connection', onConnection);
  } else {
    server = createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listen.port, options.listen.host, () => resolve());
    });
  }
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.listen.port;
  return {
    port,
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
