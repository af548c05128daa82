/**
 * Connection to etcd for the etcd backend: turns our options (calicoctl's vocabulary) into an
 * `etcd3` client with bounded timeouts, and turns transport failures into DatastoreError
 * `Unavailable` naming the endpoints that were tried.
 */
import { readFileSync } from 'node:fs';
import { Etcd3, type IKeyValue, type IOptions, type IRangeResponse, isRecoverableError } from 'etcd3';
import pino, { type Logger } from 'pino';
import { DatastoreError } from './errors.ts';
import { prefixRange } from './etcd-codec.ts';

/** Keys per range request when listing; keeps each response far below gRPC's message limit. */
const LIST_PAGE_SIZE = 1000;

export interface EtcdTlsOptions {
  /** CA bundle that signed the etcd server certificate (PEM file). */
  caFile?: string;
  /** Client certificate for mutual TLS (PEM file). */
  certFile?: string;
  /** Key of the client certificate (PEM file). */
  keyFile?: string;
  /** The same three as inline PEM text (calicoctl's etcdCACert/etcdCert/etcdKey). */
  ca?: string;
  cert?: string;
  key?: string;
}

export interface EtcdDatastoreOptions {
  /** `http://host:2379` URLs, as an array or one comma-separated string (calicoctl's etcdEndpoints). */
  endpoints: string | readonly string[];
  tls?: EtcdTlsOptions;
  username?: string;
  password?: string;
  /**
   * How long a request may wait while no connection to etcd is established (first use, or after
   * a failure). Default 5 s.
   */
  dialTimeoutMs?: number;
  /** Deadline of each request on an established connection. Default 10 s. */
  requestTimeoutMs?: number;
  logger?: Logger;
}

export const DEFAULT_DIAL_TIMEOUT_MS = 5_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** Splits and normalises endpoints; a bare `host:port` gets the scheme TLS implies. */
export function parseEndpoints(endpoints: string | readonly string[], tls: boolean): string[] {
  const list = (typeof endpoints === 'string' ? endpoints.split(',') : [...endpoints])
    .map((e) => e.trim())
    .filter((e) => e.length > 0)
    .map((e) => (/^[a-z]+:\/\//i.test(e) ? e : `${tls ? 'https' : 'http'}://${e}`));
  if (list.length === 0) {
    throw new DatastoreError('Invalid', 'no etcd endpoints given: set etcdEndpoints or ETCD_ENDPOINTS');
  }
  for (const e of list) {
    if (!/^https?:\/\/[^/]+\/?$/i.test(e)) {
      throw new DatastoreError('Invalid', `etcd endpoint ${JSON.stringify(e)} is not http(s)://host:port`);
    }
  }
  return list;
}

type EtcdPolicy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/**
 * A policy that tries the call up to `attempts` times on transport errors and nothing else. The
 * library's default host policy is a circuit breaker that keeps failing for 5 s after etcd is back,
 * which would turn a short outage into a longer one; failover across endpoints comes from the
 * pool picking another host on each attempt.
 */
function retryPolicy(attempts: number): EtcdPolicy {
  const noEvent = () => ({ dispose: () => {} });
  const policy = {
    onSuccess: noEvent,
    onFailure: noEvent,
    async execute<T>(
      fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T,
      signal?: AbortSignal,
    ): Promise<T> {
      const ctx = { signal: signal ?? new AbortController().signal };
      for (let attempt = 1; ; attempt++) {
        try {
          return await fn(ctx);
        } catch (err) {
          if (attempt >= attempts || !(err instanceof Error) || !isRecoverableError(err)) throw err;
        }
      }
    },
  };
  return policy as unknown as EtcdPolicy;
}

function readPem(file: string | undefined, inline: string | undefined, what: string): Buffer | undefined {
  if (inline) return Buffer.from(inline);
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new DatastoreError(
      'Invalid',
      `cannot read etcd ${what} file ${file}: ${(err as Error).message}`,
      undefined,
      {
        cause: err,
      },
    );
  }
}

/** An etcd3 client plus what we need to report failures usefully. */
export class EtcdConnection {
  readonly client: Etcd3;
  readonly endpoints: readonly string[];
  readonly log: Logger;
  readonly #dialTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  /** False until a call succeeds, and again after a transport failure: then dialTimeout applies. */
  #connected = false;

  constructor(options: EtcdDatastoreOptions) {
    const tls = options.tls ?? {};
    const useTls = Boolean(tls.caFile || tls.certFile || tls.keyFile || tls.ca || tls.cert || tls.key);
    this.endpoints = parseEndpoints(options.endpoints, useTls);
    this.#dialTimeoutMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.log =
      options.logger ??
      pino(
        { name: 'calico-ts:datastore:etcd', level: process.env['CALICO_LOG_LEVEL'] ?? 'warn' },
        pino.destination(2),
      );
    const etcdOptions: IOptions = {
      hosts: [...this.endpoints],
      grpcOptions: {
        // Reconnect soon after etcd comes back instead of gRPC's default backoff of up to 2 min.
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
        // Each datastore gets its own connection, so separate clients really are separate.
        'grpc.use_local_subchannel_pool': 1,
        // Notice a silently dead peer on long-lived watch streams (etcd allows pings every 5 s).
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': this.#dialTimeoutMs,
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
      },
      defaultCallOptions: (ctx) =>
        ctx.isStream
          ? {}
          : { deadline: Date.now() + (this.#connected ? this.#requestTimeoutMs : this.#dialTimeoutMs) },
      faultHandling: {
        host: () => retryPolicy(1),
        global: retryPolicy(this.endpoints.length),
      },
    };
    if (useTls) {
      const ca = readPem(tls.caFile, tls.ca, 'CA certificate');
      const cert = readPem(tls.certFile, tls.cert, 'client certificate');
      const key = readPem(tls.keyFile, tls.key, 'client key');
      // gRPC falls back to the system roots when no CA is given.
      etcdOptions.credentials = {
        rootCertificate: ca as Buffer,
        ...(key ? { privateKey: key } : {}),
        ...(cert ? { certChain: cert } : {}),
      };
    }
    if (options.username) {
      etcdOptions.auth = { username: options.username, password: options.password ?? '' };
    }
    this.client = new Etcd3(etcdOptions);
  }

  /**
   * Runs one etcd call; transport and server failures become DatastoreError `Unavailable`
   * (the caller maps outcomes such as a failed compare itself).
   */
  async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn();
      this.#connected = true;
      return result;
    } catch (err) {
      if (err instanceof DatastoreError) throw err;
      if (err instanceof Error && isRecoverableError(err)) this.#connected = false;
      throw this.unavailable(err, what);
    }
  }

  /** The error a caller sees when etcd could not be used. */
  unavailable(err: unknown, what?: string): DatastoreError {
    const reason = describeEtcdError(err);
    const where = `${this.endpoints.join(',')}${what ? ` (${what})` : ''}`;
    // Something listens there but does not speak etcd's gRPC: reachable, just not etcd.
    const message = /Protocol error/i.test(reason)
      ? `${where} answered, but not as an etcd server does: ${reason}; check that the URL is etcd's client port`
      : `cannot reach etcd at ${where}: ${reason}`;
    return new DatastoreError('Unavailable', message, undefined, { cause: err });
  }

  /**
   * Every key under `prefix` at one revision, in pages so a large kind never exceeds a message
   * limit. A page that fails because its revision was compacted meanwhile restarts the list.
   */
  async rangeAll(prefix: string, what: string): Promise<{ kvs: IKeyValue[]; revision: string }> {
    const { start, end } = prefixRange(prefix);
    for (let attempt = 1; ; attempt++) {
      const kvs: IKeyValue[] = [];
      let revision: string | undefined;
      let from = start;
      try {
        for (;;) {
          const at = revision;
          const page: IRangeResponse = await this.call(what, () =>
            this.client.kv.range({
              key: from,
              range_end: end,
              limit: LIST_PAGE_SIZE,
              ...(at ? { revision: at } : {}),
            }),
          );
          revision ??= page.header.revision;
          kvs.push(...page.kvs);
          const last = page.kvs.at(-1);
          if (!page.more || !last) break;
          from = Buffer.concat([last.key, Buffer.from([0])]);
        }
        return { kvs, revision: revision ?? '0' };
      } catch (err) {
        const compacted = err instanceof DatastoreError && /compacted/.test(err.message);
        if (!compacted || attempt >= 3) throw err;
      }
    }
  }

  close(): void {
    this.client.close();
  }
}

/** A one-line reason from an etcd3/gRPC error, without the library's stack of wrappers. */
export function describeEtcdError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const name = err.constructor?.name ?? 'Error';
  // gRPC appends an empty "Resolution note:" and a timestamp to connection failures.
  const msg = err.message
    .replace(/\s+/g, ' ')
    .replace(/\s*Resolution note:.*$/, '')
    .replace(/ \(\d{4}-\d\d-\d\dT[^)]*\)/g, '')
    .trim()
    .replace(/\.$/, '');
  if (name === 'GRPCDeadlineExceededError') return `no answer within the deadline (${msg})`;
  if (name === 'EtcdAuthenticationFailedError')
    return `authentication failed (${msg}); check the etcd username/password`;
  if (name === 'EtcdPermissionDeniedError') return `permission denied (${msg}); check the etcd user's roles`;
  if (/user name is empty/.test(msg))
    return `etcd requires authentication (${msg}); set etcdUsername/etcdPassword`;
  return msg || name;
}
