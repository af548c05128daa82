/**
 * The control socket: a unix socket speaking JSON lines. Each request is one line
 * `{"method": "status" | "routes" | "reload", "params"?: {...}}`, each answer one line
 * `{"ok": true, "result": …}` or `{"ok": false, "error": "…"}`.
 */
import { existsSync, unlinkSync } from 'node:fs';
import net from 'node:net';

export type ControlHandler = (method: string, params: Record<string, unknown>) => Promise<unknown> | unknown;

export const DEFAULT_CONTROL_SOCKET = '/run/calico-bgpd.sock';

export async function serveControl(path: string, handler: ControlHandler): Promise<net.Server> {
  // A socket file left by a crashed daemon would make listen() fail with EADDRINUSE.
  if (existsSync(path)) {
    const live = await new Promise<boolean>((resolve) => {
      const c = net.connect(path, () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (live) throw new Error(`control socket ${path} is in use by a running daemon`);
    unlinkSync(path);
  }
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => {});
    sock.on('data', async (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let reply: unknown;
        try {
          const req = JSON.parse(line) as { method?: unknown; params?: unknown };
          if (typeof req.method !== 'string') throw new Error('request needs a "method" string');
          reply = {
            ok: true,
            result: await handler(req.method, (req.params ?? {}) as Record<string, unknown>),
          };
        } catch (e) {
          reply = { ok: false, error: (e as Error).message };
        }
        sock.write(`${JSON.stringify(reply)}\n`);
      }
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

export class ControlError extends Error {
  readonly code = 'BGPD_CONTROL';
}

/** One request/answer over the control socket. */
export function callControl(
  path: string,
  method: string,
  params: Record<string, unknown> = {},
  timeoutMs = 10_000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new ControlError(`no answer from ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify({ method, params })}\n`));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(new ControlError(`cannot reach calico-bgpd at ${path}: ${e.message}`));
    });
    sock.on('data', (d: string) => {
      // Look for the end of the line only in the new chunk: answers can be megabytes.
      const at = d.indexOf('\n');
      buf += d;
      if (at < 0) return;
      const nl = buf.length - d.length + at;
      clearTimeout(timer);
      sock.end();
      const reply = JSON.parse(buf.slice(0, nl)) as { ok: boolean; result?: unknown; error?: string };
      if (reply.ok) resolve(reply.result);
      else reject(new ControlError(reply.error ?? 'request failed'));
    });
  });
}
