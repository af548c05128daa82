/**
 * The agent's control socket (our counterpart of BIRD's /var/run/calico/bird.ctl, which
 * `calicoctl node status` reads): a unix stream socket; the client writes one JSON line
 * `{"command":"status"}` and reads one JSON line back, `{"ok":true,"status":{…}}` or
 * `{"ok":false,"error":"…"}`; then the server closes the connection.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';

export const DEFAULT_CONTROL_SOCKET = '/var/run/calico/bgp.ctl';

export interface ControlRequest {
  command: string;
}

export type ControlHandler = (request: ControlRequest) => unknown;

export class ControlSocketError extends Error {
  readonly code = 'BGP_CONTROL_SOCKET';
}

/** True when something answers on `path` (a live agent); false for a leftover file. */
function inUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function serveControlSocket(path: string, handler: ControlHandler): Promise<net.Server> {
  mkdirSync(dirname(path), { recursive: true });
  if (existsSync(path)) {
    if (await inUse(path))
      throw new ControlSocketError(`control socket ${path}: another agent is answering on it`);
    // A socket file left by a process that died (SIGKILL): unix sockets are not removed on exit.
    rmSync(path, { force: true });
  }
  const server = net.createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('error', () => conn.destroy());
    conn.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > 64 * 1024) conn.destroy();
        return;
      }
      let reply: unknown;
      try {
        const req = JSON.parse(buf.slice(0, nl)) as ControlRequest;
        reply = { ok: true, ...(handler(req) as object) };
      } catch (err) {
        reply = { ok: false, error: (err as Error).message };
      }
      conn.end(`${JSON.stringify(reply)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

export async function closeControlSocket(server: net.Server, path: string): Promise<void> {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(path, { force: true });
}

/** Send one request and return the parsed reply (clients: `calico node status`, tests). */
export function queryControlSocket(
  path: string,
  request: ControlRequest,
  timeoutMs = 2000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new ControlSocketError(`control socket ${path}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(`${JSON.stringify(request)}\n`));
    s.on('data', (d: string) => (buf += d));
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(new ControlSocketError(`control socket ${path}: ${err.message}`));
    });
    s.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf));
      } catch {
        reject(new ControlSocketError(`control socket ${path}: malformed reply`));
      }
    });
  });
}
