/**
 * The drop records over a unix socket, for `calico drops`: the same JSON-lines control protocol
 * as the BGP agent's socket (one request line `{"method": …, "params": {…}}`, one answer line
 * `{"ok": true, "result": …}` or `{"ok": false, "error": "…"}`). Methods: `drops` (records after
 * `since` or `afterSeq`, at most the last `limit`) and `metrics` (the Prometheus text of the drop counters).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { DropRecord, DropRecorder } from './drop-recorder.ts';

export const DEFAULT_DROP_LOG_SOCKET = '/var/run/calico/felix-drops.ctl';

export interface DropsResult {
  node: string;
  records: DropRecord[];
}

export interface DropLogServer {
  readonly path: string;
  close(): Promise<void>;
}

function answer(drops: DropRecorder, node: string, line: string): unknown {
  let req: { method?: unknown; params?: unknown };
  try {
    req = JSON.parse(line) as { method?: unknown; params?: unknown };
  } catch {
    return { ok: false, error: 'request is not JSON' };
  }
  const params = (typeof req.params === 'object' && req.params !== null ? req.params : {}) as Record<
    string,
    unknown
  >;
  if (req.method === 'drops') {
    const since = typeof params['since'] === 'string' ? params['since'] : undefined;
    const limit = typeof params['limit'] === 'number' ? params['limit'] : undefined;
    const afterSeq = typeof params['afterSeq'] === 'number' ? params['afterSeq'] : undefined;
    const result: DropsResult = { node, records: drops.records({ since, afterSeq, limit }) };
    return { ok: true, result };
  }
  if (req.method === 'metrics') return { ok: true, result: drops.metrics() };
  return { ok: false, error: `unknown method ${JSON.stringify(req.method)} (expected drops, metrics)` };
}

/** Whether a live process answers on the socket path. */
function inUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function serveDropLog(path: string, node: string, drops: DropRecorder): Promise<DropLogServer> {
  if (await inUse(path)) throw new Error(`drop log socket ${path} is in use by a running process`);
  mkdirSync(dirname(path), { recursive: true });
  rmSync(path, { force: true });
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() !== '') socket.write(`${JSON.stringify(answer(drops, node, line))}\n`);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return {
    path,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(path, { force: true });
    },
  };
}
