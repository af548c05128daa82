/**
 * The plugin in TypeScript, installed as `calico.cjs` / `calico-ipam.cjs` beside the byte relays
 * (relay/cni-relay.c), which run it when calico-node cannot be reached or the config names another
 * socket (or installed as the plugins themselves with installCni's `relay: false`): read stdin,
 * send it and the CNI_* variables to calico-node's socket, print the answer, exit with its code. Kept to Node
 * built-ins and a few small modules so that a cold start costs little more than Node's own.
 *
 * Start-up notes (measured, see README): `node:net` (with the stream machinery it pulls in) costs
 * 5–8 ms to load, so it is loaded only when there is an agent to talk to, through
 * `process.getBuiltinModule` (synchronous, no module loader); and output goes out with
 * `writeSync(1)`, because touching `process.stdout` on a pipe loads `node:net` too.
 */
import { readFileSync, writeSync } from 'node:fs';
import { CNI_ERROR, CniError } from './errors.ts';
import {
  cniEnv,
  DEFAULT_AGENT_SOCKET,
  errorResponse,
  type PluginType,
  versionResponse,
  type WireResponse,
} from './protocol.ts';
import { parseRequest } from './request.ts';

function send(socketPath: string, payload: string): Promise<WireResponse> {
  const { connect } = process.getBuiltinModule('node:net');
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    const chunks: Buffer[] = [];
    sock.on('connect', () => sock.end(payload));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (!text) return reject(new Error(`calico-node closed ${socketPath} without answering`));
      try {
        resolve(JSON.parse(text) as WireResponse);
      } catch (err) {
        reject(err);
      }
    });
  });
}

interface ShimConf {
  agent_socket?: string;
  standalone?: boolean;
  /** As a delegated IPAM plugin our settings sit in the `ipam` section of another plugin's config. */
  ipam?: { agent_socket?: string; standalone?: boolean };
}

export async function runShim(plugin: PluginType): Promise<number> {
  const stdin = readStdin();
  let response: WireResponse;
  if (process.env['CNI_COMMAND'] === 'VERSION') {
    response = versionResponse(stdin);
  } else {
    // Bad environment or config is answered here, so the runtime gets the right code even when
    // calico-node is down; the agent validates again (it may be talked to by other clients).
    try {
      parseRequest(process.env, stdin, plugin);
    } catch (err) {
      if (!(err instanceof CniError)) throw err;
      writeOut(errorResponse(err, stdin).stdout);
      return 1;
    }
    const conf = JSON.parse(stdin) as ShimConf;
    const socketPath =
      conf.agent_socket ??
      conf.ipam?.agent_socket ??
      process.env['CALICO_CNI_AGENT_SOCKET'] ??
      DEFAULT_AGENT_SOCKET;
    try {
      response = await send(socketPath, `${JSON.stringify({ plugin, env: cniEnv(process.env), stdin })}\n`);
    } catch (err) {
      if (conf.standalone ?? conf.ipam?.standalone) {
        const { runStandalone } = await import('./standalone.ts');
        response = await runStandalone(plugin, process.env, stdin);
      } else {
        const e = err as NodeJS.ErrnoException;
        const status = process.env['CNI_COMMAND'] === 'STATUS';
        response = errorResponse(
          new CniError(
            status ? CNI_ERROR.notAvailable : CNI_ERROR.tryAgainLater,
            'calico-node is not reachable',
            `cannot connect to calico-node at ${socketPath}: ${e.code ?? e.message} (is calico-node running on this host? set "standalone": true in the network config to run without it)`,
          ),
          stdin,
        );
      }
    }
  }
  writeOut(response.stdout);
  return response.exitCode;
}

/**
 * The binaries' entry. Once the answer is written the process exits at once instead of waiting for
 * Node's own teardown (a few ms per call) — unless output is still queued (see writeOut).
 */
export function main(plugin: PluginType): void {
  void runShim(plugin).then((code) => {
    if (stdoutQueued) process.exitCode = code;
    else process.exit(code);
  });
}

let stdoutQueued = false;

/** Runtimes hand plugins a blocking pipe; should stdout be non-blocking and full, let Node queue. */
function writeOut(text: string): void {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  try {
    while (off < buf.length) off += writeSync(1, buf, off);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    stdoutQueued = true;
    process.stdout.write(buf.subarray(off));
  }
}

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}
