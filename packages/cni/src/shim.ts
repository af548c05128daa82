/**
 * The plugin binaries' whole program when calico-node runs on the host: read stdin, send it and the
 * CNI_* variables to calico-node's socket, print the answer, exit with its code. Kept to Node
 * built-ins and a few small modules so that a cold start costs little more than Node's own.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { CNI_ERROR, CniError } from './errors.ts';
import { cniEnv, errorResponse, type PluginType, versionResponse, type WireResponse } from './protocol.ts';
import { parseRequest } from './request.ts';
import { DEFAULT_AGENT_SOCKET } from './server.ts';

function send(socketPath: string, payload: string): Promise<WireResponse> {
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
      process.stdout.write(errorResponse(err, stdin).stdout);
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
  process.stdout.write(response.stdout);
  return response.exitCode;
}

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}
