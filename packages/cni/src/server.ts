import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { peerCredentials } from '@calico-ts/kernel';
import type { Logger } from 'pino';
import { CNI_ERROR, CniError } from './errors.ts';
import {
  cniEnv,
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
 * The first line of a request from the byte relay (relay/cni-relay.c), which then sends
 * `<plugin>\0`, its `CNI_*` (and `CALICO_CNI_AGENT_SOCKET`) environment as `K=V\0` entries, an
 * empty entry, and stdin to the end; it is answered `<exit code>\n<stdout>`, or `shim\n` to make
 * it run the Node shim instead.
 */
export const RELAY_MAGIC = 'CALICO-CNI-RELAY 1\n';
const RELAY_MAGIC_BYTES = Buffer.from(RELAY_MAGIC);

/** A relay frame's parts; undefined when the frame is cut short. */
export function parseRelayFrame(
  frame: Buffer,
): { plugin: string; env: Record<string, string>; stdin: string } | undefined {
  let at = RELAY_MAGIC_BYTES.length;
  const next = (): string | undefined => {
    const end = frame.indexOf(0, at);
    if (end < 0) return undefined;
    const text = frame.toString('utf8', at, end);
    at = end + 1;
    return text;
  };
  const plugin = next();
  if (plugin === undefined) return undefined;
  const env: Record<string, string> = {};
  for (let entry = next(); entry !== ''; entry = next()) {
    if (entry === undefined) return undefined;
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return { plugin, env, stdin: frame.toString('utf8', at) };
}

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
    let relay: boolean | undefined;
    sock.on('data', (chunk: Buffer) => {
      if (handled) return;
      chunks.push(chunk);
      size += chunk.length;
      if (relay === undefined && size >= RELAY_MAGIC_BYTES.length) {
        relay = Buffer.concat(chunks).subarray(0, RELAY_MAGIC_BYTES.length).equals(RELAY_MAGIC_BYTES);
      }
      // A relay frame ends where the relay shuts its side down; a JSON request at its newline.
      if (relay || chunk.indexOf(0x0a) < 0) {
        if (size < MAX_REQUEST_BYTES) return;
      }
      handled = true;
      if (relay) void this.#answerRelay(sock, undefined);
      else void this.#answer(sock, Buffer.concat(chunks).toString('utf8').split('\n')[0]!, peerPid);
    });
    sock.on('end', () => {
      if (handled || !relay) return;
      handled = true;
      void this.#answerRelay(sock, Buffer.concat(chunks), peerPid);
    });
  }

  /**
   * One request from the byte relay. It connected to the socket it was installed with; the
   * request is ours only if the Node shim would have picked this socket too (the config's
   * `agent_socket`, else CALICO_CNI_AGENT_SOCKET, else the default), otherwise the relay is told
   * to run the shim, which goes where the config says. VERSION is answered whatever the socket.
   */
  async #answerRelay(sock: Socket, frame: Buffer | undefined, peerPid?: number): Promise<void> {
    const req = frame && parseRelayFrame(frame);
    let response: WireResponse;
    if (!req) {
      response = errorResponse(
        new CniError(
          CNI_ERROR.decodingFailure,
          'bad request from plugin',
          'relay frame cut short or over 1 MiB',
        ),
        '',
      );
    } else {
      let wanted: string | undefined;
      try {
        const conf = JSON.parse(req.stdin) as { agent_socket?: unknown; ipam?: { agent_socket?: unknown } };
        const named = conf.agent_socket ?? conf.ipam?.agent_socket;
        wanted = typeof named === 'string' ? named : undefined;
      } catch {
        // Not JSON: the shim would answer that itself, and so does execute() here.
      }
      wanted ??= req.env['CALICO_CNI_AGENT_SOCKET'] ?? DEFAULT_AGENT_SOCKET;
      // VERSION names no socket that matters: the shim answers it without one, as execute() does.
      if (req.env['CNI_COMMAND'] !== 'VERSION' && resolve(wanted) !== resolve(this.socketPath)) {
        sock.end('shim\n');
        return;
      }
      response = await this.#run(req.plugin, cniEnv(req.env), req.stdin, peerPid);
    }
    sock.end(`${response.exitCode}\n${response.stdout}`);
  }

  async #answer(sock: Socket, line: string, peerPid: number | undefined): Promise<void> {
    let response: WireResponse;
    try {
      const req = JSON.parse(line) as WireRequest;
      response = await this.#run(req.plugin, req.env, req.stdin, peerPid);
    } catch (err) {
      response = errorResponse(
        new CniError(CNI_ERROR.decodingFailure, 'bad request from plugin', String(err)),
        '',
      );
    }
    sock.end(`${JSON.stringify(response)}\n`);
  }

  async #run(
    plugin: string,
    env: Record<string, string>,
    stdin: string,
    peerPid: number | undefined,
  ): Promise<WireResponse> {
    const handler = this.#handlers[plugin as PluginType];
    if (!handler) {
      return errorResponse(
        new CniError(CNI_ERROR.invalidConfig, 'unknown plugin', `no plugin named ${JSON.stringify(plugin)}`),
        stdin,
      );
    }
    const started = performance.now();
    const response = await execute(plugin as PluginType, env, stdin, handler, peerPid);
    this.#log?.info(
      {
        command: env['CNI_COMMAND'],
        containerId: env['CNI_CONTAINERID'],
        peerPid,
        exitCode: response.exitCode,
        ms: Math.round((performance.now() - started) * 10) / 10,
      },
      'cni request',
    );
    return response;
  }
}
