/**
 * A watch on etcd that consumers can trust across outages: it keeps the revision of the last
 * change it delivered and, after any stream failure, re-opens the etcd watch from the revision
 * after it, so nothing is missed or repeated. When that revision has been compacted it lists
 * again and hands over the difference from what it had delivered (a `resync`), as Calico's
 * watchercache does (relist on compaction).
 *
 * We drive etcd's Watch stream ourselves instead of using etcd3's Watcher: the library resumes
 * from the stream header's revision, which during catch-up is the store's current revision, not
 * the last event sent, so a disconnect there can skip events.
 */
import type { IEvent, IWatchResponse } from 'etcd3';
import type { AnyResource, ChangeEvent, Watch, WatchEvent, WatchOptions } from './datastore.ts';
import { describeEtcdError, type EtcdConnection } from './etcd-client.ts';
import { commonPrefix, decodeResource, prefixRange } from './etcd-codec.ts';
import { EventQueue } from './event-queue.ts';
import { KIND_NAMES, KINDS, type KindName, prefixFor, refFromKey } from './kinds.ts';
import { diffStates } from './write-path.ts';

/** What a watch remembers of each object it delivered: enough to diff and to report `old`. */
interface SeenEntry {
  kind: KindName;
  resourceVersion: string;
  /** The stored JSON, kept as text: far smaller than the parsed object, parsed only on resync. */
  json: string;
}

const INITIAL_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2_000;

class CompactedError extends Error {
  readonly compactRevision: string;
  constructor(compactRevision: string) {
    super(`revision compacted (etcd history now starts after ${compactRevision})`);
    this.compactRevision = compactRevision;
  }
}

type Stream = Awaited<ReturnType<EtcdConnection['client']['watchClient']['watch']>>;

export function etcdWatch(conn: EtcdConnection, options: WatchOptions): Watch {
  const w = new EtcdWatch(conn, options);
  void w.run();
  return {
    [Symbol.asyncIterator]: () => w.queue[Symbol.asyncIterator](),
    close: () => w.close(),
  };
}

class EtcdWatch {
  readonly queue: EventQueue<WatchEvent>;
  readonly #conn: EtcdConnection;
  readonly #kinds: ReadonlySet<KindName>;
  readonly #prefixes: readonly string[];
  readonly #range: { start: Buffer; end: Buffer };
  /** Last revision whose changes have all been delivered; undefined until the first resync. */
  #lastRevision: number | undefined;
  #needResync: boolean;
  readonly #seen = new Map<string, SeenEntry>();
  #closed = false;
  #state: 'unknown' | 'connected' | 'disconnected' = 'unknown';
  #stream: Stream | undefined;
  #wake: (() => void) | undefined;
  #backoffMs = INITIAL_BACKOFF_MS;

  constructor(conn: EtcdConnection, options: WatchOptions) {
    this.#conn = conn;
    this.#kinds = new Set(options.kinds ?? KIND_NAMES);
    this.#prefixes = [...this.#kinds].map((k) => prefixFor(k, options.namespace));
    this.#range = prefixRange(commonPrefix(this.#prefixes));
    this.#needResync = options.revision === undefined;
    this.#lastRevision = options.revision === undefined ? undefined : Number(options.revision);
    this.queue = new EventQueue<WatchEvent>(() => void this.close());
  }

  async run(): Promise<void> {
    while (!this.#closed) {
      try {
        if (this.#needResync) await this.#resync();
        await this.#follow();
      } catch (err) {
        if (this.#closed) break;
        if (err instanceof CompactedError) {
          this.#conn.log.info(
            { lastRevision: this.#lastRevision, err: err.message },
            'watch fell behind compaction; relisting',
          );
          this.#needResync = true;
          continue;
        }
        this.#setState('disconnected', err);
        await this.#pause(this.#backoffMs);
        this.#backoffMs = Math.min(this.#backoffMs * 2, MAX_BACKOFF_MS);
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    const s = this.#stream;
    this.#stream = undefined;
    // The stream's handlers see #closed and stay quiet; its 'error' listener stays attached, so
    // the cancellation error is not unhandled.
    s?.cancel();
    this.queue.close();
  }

  #wanted(key: string): KindName | undefined {
    const ref = refFromKey(key);
    if (ref === undefined || !this.#kinds.has(ref.kind)) return undefined;
    return this.#prefixes.some((p) => key.startsWith(p)) ? ref.kind : undefined;
  }

  #setState(state: 'connected' | 'disconnected', err?: unknown): void {
    if (state === 'connected') this.#backoffMs = INITIAL_BACKOFF_MS;
    if (this.#state === state) return;
    const previous = this.#state;
    this.#state = state;
    if (state === 'disconnected') {
      const error = describeEtcdError(err instanceof Error && err.cause ? err.cause : err);
      this.#conn.log.warn({ endpoints: this.#conn.endpoints, error }, 'etcd watch disconnected; retrying');
      this.queue.push({
        type: 'status',
        state,
        error: `cannot reach etcd at ${this.#conn.endpoints.join(',')}: ${error}`,
      });
    } else if (previous === 'disconnected') {
      this.#conn.log.warn({ endpoints: this.#conn.endpoints }, 'etcd watch reconnected');
      this.queue.push({ type: 'status', state });
    }
  }

  /** Lists the watched range and delivers the difference from what this watch has delivered. */
  async #resync(): Promise<void> {
    const { kvs, revision } = await this.#conn.rangeAll(commonPrefix(this.#prefixes), 'watch resync');
    if (this.#closed) return;
    this.#setState('connected');
    const now = new Map<string, { kind: KindName; value: AnyResource }>();
    const texts = new Map<string, string>();
    for (const kv of kvs) {
      const key = kv.key.toString('utf8');
      const kind = this.#wanted(key);
      if (!kind) continue;
      const json = kv.value.toString('utf8');
      const value = this.#decode(key, json, kv.mod_revision);
      if (!value) continue;
      now.set(key, { kind, value });
      texts.set(key, json);
    }
    const seen = new Map<string, AnyResource>();
    for (const [key, e] of this.#seen) {
      const value = this.#decode(key, e.json, e.resourceVersion);
      if (value) seen.set(key, value);
    }
    const events = diffStates(seen, now, revision);
    this.#seen.clear();
    for (const [key, { kind, value }] of now) {
      this.#seen.set(key, { kind, resourceVersion: value.metadata.resourceVersion!, json: texts.get(key)! });
    }
    this.#lastRevision = Number(revision);
    this.#needResync = false;
    this.queue.push({ type: 'resync', revision, events, items: [...now.values()].map((e) => e.value) });
  }

  /** Follows etcd's watch stream from the revision after the last delivered one until it fails. */
  async #follow(): Promise<void> {
    const stream = await this.#conn.client.watchClient.watch();
    if (this.#closed) {
      stream.on('error', () => {});
      stream.cancel();
      return;
    }
    this.#stream = stream;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err: unknown): void => {
        if (settled) return;
        settled = true;
        if (this.#stream === stream) this.#stream = undefined;
        stream.cancel();
        if (this.#closed) resolve();
        else reject(err);
      };
      stream.on('data', (res: IWatchResponse) => {
        if (settled || this.#closed) return;
        try {
          this.#onResponse(res);
        } catch (err) {
          finish(err);
        }
      });
      stream.on('error', (err: unknown) => finish(err));
      stream.on('end', () => finish(new Error('etcd ended the watch stream')));
      stream.write({
        create_request: {
          key: this.#range.start,
          range_end: this.#range.end,
          start_revision: (this.#lastRevision ?? 0) + 1,
          prev_kv: true,
          progress_notify: true,
        },
      });
    });
  }

  #onResponse(res: IWatchResponse): void {
    if (this.#closed) return;
    if (res.compact_revision && res.compact_revision !== '0') throw new CompactedError(res.compact_revision);
    if (res.canceled) throw new Error(`etcd cancelled the watch: ${res.cancel_reason || 'no reason given'}`);
    if (res.created) {
      this.#setState('connected');
      return;
    }
    if (res.events.length === 0) {
      // A progress notification: etcd sends these only to watchers that are caught up, so every
      // change up to the header revision has been delivered.
      const rev = Number(res.header.revision);
      if (rev > (this.#lastRevision ?? 0)) {
        this.#lastRevision = rev;
        this.queue.push({ type: 'bookmark', revision: res.header.revision });
      }
      return;
    }
    let delivered = 0;
    for (const ev of res.events) {
      const rev = Number(ev.kv.mod_revision);
      // etcd never repeats a revision on one watch; this guards the resume boundary.
      if (this.#lastRevision !== undefined && rev <= this.#lastRevision) continue;
      const change = this.#toChange(ev);
      if (change) {
        this.queue.push(change);
        delivered++;
      }
      this.#lastRevision = rev;
    }
    if (delivered === 0 && this.#lastRevision !== undefined) {
      this.queue.push({ type: 'bookmark', revision: String(this.#lastRevision) });
    }
  }

  #toChange(ev: IEvent): ChangeEvent | undefined {
    const key = ev.kv.key.toString('utf8');
    const kind = this.#wanted(key);
    if (!kind) return undefined;
    const revision = ev.kv.mod_revision;
    const prev = ev.prev_kv?.key?.length ? ev.prev_kv : undefined;
    const seen = this.#seen.get(key);
    const old = prev
      ? this.#decode(key, prev.value, prev.mod_revision)
      : seen
        ? this.#decode(key, seen.json, seen.resourceVersion)
        : undefined;
    if (ev.type === 'Delete') {
      this.#seen.delete(key);
      return { type: 'deleted', kind, revision, old: old ?? stub(kind, key, revision) };
    }
    const json = ev.kv.value.toString('utf8');
    const value = this.#decode(key, json, revision);
    if (!value) return undefined;
    this.#seen.set(key, { kind, resourceVersion: revision, json });
    if (ev.kv.version === '1') return { type: 'added', kind, revision, new: value };
    return old
      ? { type: 'modified', kind, revision, old, new: value }
      : { type: 'modified', kind, revision, new: value };
  }

  #decode(key: string, value: Buffer | string, revision: string): AnyResource | undefined {
    try {
      return decodeResource(key, value, revision);
    } catch (err) {
      this.#conn.log.warn({ key, err: (err as Error).message }, 'skipping a value that is not a resource');
      return undefined;
    }
  }

  /** Waits `ms` before the next attempt; close() cuts it short. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.#wake = undefined;
        resolve();
      }
      this.#wake = done;
    });
  }
}

/** The deleted object when etcd no longer has its last value: identity only. */
function stub(kind: KindName, key: string, revision: string): AnyResource {
  const ref = refFromKey(key);
  const info = KINDS[kind];
  return {
    apiVersion: info.apiVersion,
    kind: info.kind,
    metadata: {
      name: ref?.name ?? key,
      ...(ref?.namespace ? { namespace: ref.namespace } : {}),
      resourceVersion: revision,
    },
  } as AnyResource;
}
