/**
 * The control protocol of calico-bgpd and of the node's BGP agent (our counterpart of BIRD's
 * control socket, which `calicoctl node status` reads): JSON lines over a unix socket. Each request
 * is one line `{"method": "status", "params": {…}}`, each answer one line `{"ok": true, "result": …}`
 * or `{"ok": false, "error": "…"}`. A server declares its methods as a `ControlMethods` map, so
 * the server's handlers and the client's calls are typed by the same declaration.
 */
import { rmSync } from 'node:fs';
import type { RouteEntry, SpeakerStatus } from '../speaker/types.ts';
import { type JsonLinesFailure, listenJsonLines, requestJsonLine } from './json-lines-socket.ts';

export interface ControlRequest<Method extends string = string, Params = Record<string, unknown>> {
  method: Method;
  params?: Params;
}

export type ControlResponse<Result = unknown> = { ok: true; result: Result } | { ok: false; error: string };

/** What a server answers: method name → its params and its result. */
export type ControlMethods = Record<string, { params: object; result: unknown }>;

export type ControlHandlers<M extends ControlMethods> = {
  [K in keyof M]: (params: Partial<M[K]['params']>) => M[K]['result'] | Promise<M[K]['result']>;
};

/** Why a control request failed; `unreachable` means nothing listens on the socket. */
export type ControlFailure = JsonLinesFailure | 'refused' | 'in-use';

export class ControlError extends Error {
  readonly code = 'BGP_CONTROL';
  readonly failure: ControlFailure;
  readonly path: string;
  /** The underlying reason: the socket error, or the server's `error` for `refused`. */
  readonly detail: string;
  constructor(failure: ControlFailure, path: string, detail: string, message: string) {
    super(message);
    this.failure = failure;
    this.path = path;
    this.detail = detail;
  }
}

/** calico-bgpd's socket when `--control` is not given. */
export const DEFAULT_BGPD_CONTROL_SOCKET = '/run/calico-bgpd.sock';

/** `routes` parameters: one prefix, or the best paths only. */
export interface RoutesQuery {
  prefix?: string;
  bestOnly?: boolean;
}

/** What a `reload` changed; `restartNeeded` names settings that apply only after a restart. */
export interface ReloadResult {
  added: string[];
  removed: string[];
  updated: string[];
  restartNeeded: string[];
}

/** calico-bgpd's methods. */
export interface BgpdControlMethods extends ControlMethods {
  status: { params: Record<string, never>; result: SpeakerStatus };
  routes: { params: RoutesQuery; result: RouteEntry[] };
  reload: { params: Record<string, never>; result: ReloadResult };
}

export interface ControlServer {
  readonly path: string;
  /** Stop answering and remove the socket file. */
  close(): Promise<void>;
}

export interface ServeControlOptions {
  /** Who answers, for the error when another live process holds the socket (e.g. "calico-bgpd"). */
  name?: string;
}

export async function serveControl<M extends ControlMethods>(
  path: string,
  handlers: ControlHandlers<M>,
  options: ServeControlOptions = {},
): Promise<ControlServer> {
  const methods = Object.keys(handlers);
  const server = await listenJsonLines(path, {
    answer: async (request): Promise<ControlResponse> => {
      const req = request as Partial<ControlRequest> | null;
      if (typeof req?.method !== 'string') throw new Error('request needs a "method" string');
      if (!Object.hasOwn(handlers, req.method)) {
        throw new Error(`unknown method "${req.method}" (expected ${methods.join(', ')})`);
      }
      const params = typeof req.params === 'object' && req.params !== null ? req.params : {};
      return { ok: true, result: await handlers[req.method]!(params) };
    },
    answerError: (err): ControlResponse => ({ ok: false, error: err.message }),
    inUseError: (p) =>
      new ControlError(
        'in-use',
        p,
        'another process answers on it',
        `control socket ${p} is in use by a running ${options.name ?? 'process'}`,
      ),
  });
  return {
    path,
    close: async () => {
      await server.close();
      rmSync(path, { force: true });
    },
  };
}

export interface CallControlOptions {
  /** Default 10 s. */
  timeoutMs?: number;
  /** Who should answer, for error messages (e.g. "calico-bgpd"). */
  server?: string;
}

/** One request and its answer over a control socket; a failure is a `ControlError`. */
export async function callControl<
  M extends ControlMethods = ControlMethods,
  K extends keyof M & string = string,
>(
  path: string,
  method: K,
  params: M[K]['params'] = {} as M[K]['params'],
  options: CallControlOptions = {},
): Promise<M[K]['result']> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const who = options.server ? `${options.server} at ${path}` : path;
  const request: ControlRequest = { method, params: params as Record<string, unknown> };
  const reply = (await requestJsonLine(path, request, {
    timeoutMs,
    error: (failure, detail) => {
      const message =
        failure === 'unreachable'
          ? `cannot reach ${who}: ${detail}`
          : failure === 'timeout'
            ? `no answer from ${who} within ${timeoutMs} ms`
            : failure === 'malformed'
              ? `malformed answer from ${who}`
              : `reading from ${who}: ${detail}`;
      return new ControlError(failure, path, detail, message);
    },
  })) as ControlResponse<M[K]['result']> | null;
  if (reply?.ok === true) return reply.result;
  if (reply?.ok === false) {
    const error = typeof reply.error === 'string' ? reply.error : 'request failed';
    throw new ControlError('refused', path, error, error);
  }
  throw new ControlError('malformed', path, 'no "ok" field', `malformed answer from ${who}`);
}
