import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { peerCredentials } from '@calico-ts/kernel';
import type { Logger } from 'pino';
import { CNI_ERROR, CniError } from './errors.ts';
import {
  DEFAULT_AGENT_SOCKET,
  errorResponse,
  execute,
  type PluginType,
  type RequestHandler,
  type WireRequest,
  type WireResponse,
} from './protocol.ts';

export { DEFAULT_AGENT_SOCKET };

/** Longest request we accept: a network config with a large prevResult is a few KiB. */
const MAX_REQUEST_BYTES = 1 << 20;

/**
 * calico-node's side of the plugin: a unix socket where the short-lived plugin process hands over
 * its environment and stdin and gets back what to print, so each ADD runs with a warm datastore
 * connection and IPAM cache instead of paying for them in a fresh process.
 */
export class CniServer {
  readonly socketPath: string;
  readonly #handlers: Record<PluginType, RequestHandler>;
  readonly #log: Logger | undefined;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();

  constructor(options: {
    socketPath?: string;
    handlers: Record<PluginType, RequestHandler>;
    logger?: Logger;
  }) {
    this.socketPath = options.socketPath ?? DEFAULT_AGENT_SOCKET;
    this.#handlers = options.handlers;
    this.#log = options.logger;
  }

  async listen(): Promise<void> {
    mkdirSync(dirname(this.socketPath), { recursive: true });
    rmSync(this.socketPath, { force: true });
    // allowHalfOpen: the plugin ends its side after the request; the answer still has to go back.
    const server = createServer({ allowHalfOpen: true }, (sock) => this.#serve(sock));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Only root (the runtime) may ask for interfaces to be plumbed.
    chmodSync(this.socketPath, 0o600);
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.socketPath, { force: true });
  }

  #serve(sock: Socket): void {
    this.#sockets.add(sock);
    // The plugin process names the pod's namespace by a path in its own mount namespace; the
    // kernel tells us who it is, so the path can be resolved as it sees it. 0: a process in a PID
    // namespace we cannot see (then the path is resolved in ours).
    let peerPid: number | undefined;
    try {
      peerPid = peerCredentials(sock).pid || undefined;
    } catch (err) {
      this.#log?.warn({ err }, 'cannot read the CNI client credentials');
    }
    sock.on('close', () => this.#sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    const chunks: Buffer[] = [];
    let size = 0;
    let handled = false;
    sock.on('data', (chunk: Buffer) => {
      if (handled) return;
      chunks.push(chunk);
      size += chunk.length;
      const nl = chunk.indexOf(0x0a);
      if (nl < 0 && size < MAX_REQUEST_BYTES) return;
      handled = true;
      void this.#answer(sock, Buffer.concat(chunks).toString('utf8').split('\n')[0]!, peerPid);
    });
  }

  async #answer(sock: Socket, line: string, peerPid: number | undefined): Promise<void> {
    let req: WireRequest;
    let response: WireResponse;
    try {
      req = JSON.parse(line) as WireRequest;
      const handler = this.#handlers[req.plugin];
      if (!handler)
        throw new CniError(
          CNI_ERROR.invalidConfig,
          'unknown plugin',
          `no plugin named ${JSON.stringify(req.plugin)}`,
        );
      const started = performance.now();
      response = await execute(req.plugin, req.env, req.stdin, handler, peerPid);
      this.#log?.info(
        {
          command: req.env['CNI_COMMAND'],
          containerId: req.env['CNI_CONTAINERID'],
          peerPid,
          exitCode: response.exitCode,
          ms: Math.round((performance.now() - started) * 10) / 10,
        },
        'cni request',
      );
    } catch (err) {
      const e =
        err instanceof CniError
          ? err
          : new CniError(CNI_ERROR.decodingFailure, 'bad request from plugin', String(err));
      response = errorResponse(e, '');
    }
    sock.end(`${JSON.stringify(response)}\n`);
  }
}
