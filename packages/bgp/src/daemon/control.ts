/**
 * The control socket: a unix socket speaking JSON lines. Each request is one line
 * `{"method": "status" | "routes" | "reload", "params"?: {...}}`, each answer one line
 * `{"ok": true, "result": …}` or `{"ok": false, "error": "…"}`.
 */
import type net from 'node:net';
import { listenJsonLines, requestJsonLine } from './json-lines-socket.ts';

export type ControlHandler = (method: string, params: Record<string, unknown>) => Promise<unknown> | unknown;

export const DEFAULT_CONTROL_SOCKET = '/run/calico-bgpd.sock';

export function serveControl(path: string, handler: ControlHandler): Promise<net.Server> {
  return listenJsonLines(path, {
    answer: async (request) => {
      const req = request as { method?: unknown; params?: unknown };
      if (typeof req?.method !== 'string') throw new Error('request needs a "method" string');
      return { ok: true, result: await handler(req.method, (req.params ?? {}) as Record<string, unknown>) };
    },
    answerError: (err) => ({ ok: false, error: err.message }),
    inUseError: (p) => new Error(`control socket ${p} is in use by a running daemon`),
  });
}

export class ControlError extends Error {
  readonly code = 'BGPD_CONTROL';
}

/** One request/answer over the control socket. */
export async function callControl(
  path: string,
  method: string,
  params: Record<string, unknown> = {},
  timeoutMs = 10_000,
): Promise<unknown> {
  const reply = (await requestJsonLine(
    path,
    { method, params },
    { timeoutMs, peer: 'calico-bgpd', error: (m) => new ControlError(m) },
  )) as { ok: boolean; result?: unknown; error?: string };
  if (!reply.ok) throw new ControlError(reply.error ?? 'request failed');
  return reply.result;
}
