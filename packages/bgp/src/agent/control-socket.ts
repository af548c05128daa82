/**
 * The agent's control socket (our counterpart of BIRD's /var/run/calico/bird.ctl, which
 * `calicoctl node status` reads): a unix stream socket; the client writes one JSON line
 * `{"command":"status"}` and reads one JSON line back, `{"ok":true,"status":{…}}` or
 * `{"ok":false,"error":"…"}`; then the server closes the connection.
 */
import { rmSync } from 'node:fs';
import type net from 'node:net';
import { listenJsonLines, requestJsonLine } from '../daemon/json-lines-socket.ts';

export const DEFAULT_CONTROL_SOCKET = '/var/run/calico/bgp.ctl';

export interface ControlRequest {
  command: string;
}

export type ControlHandler = (request: ControlRequest) => unknown;

export class ControlSocketError extends Error {
  readonly code = 'BGP_CONTROL_SOCKET';
}

export function serveControlSocket(path: string, handler: ControlHandler): Promise<net.Server> {
  return listenJsonLines(path, {
    answer: (request) => ({ ok: true, ...(handler(request as ControlRequest) as object) }),
    answerError: (err) => ({ ok: false, error: err.message }),
    oneShot: true,
    inUseError: (p) => new ControlSocketError(`control socket ${p}: another agent is answering on it`),
  });
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
  return requestJsonLine(path, request, {
    timeoutMs,
    error: (m) => new ControlSocketError(`control socket ${m}`),
  });
}
