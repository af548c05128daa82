/**
 * Felix's syncer (calico-internals §1.3): one watch over the kinds Felix reads, list-then-watch,
 * relist whenever the watch cannot continue, and a status that goes waiting → resyncing →
 * in-sync. It delivers `{kind, key, value|null}` updates where null means deleted; consumers
 * must not rely on order or on a delete being final, and the syncer drops exact duplicates
 * (same key and resourceVersion) so replays after a relist cost nothing downstream.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { type AnyResource, type Datastore, type KindName, keyFor, type Watch } from '@calico-ts/datastore';
import { POLICY_KINDS } from './calc/active-rules.ts';
import { defaultLogger, type Logger } from './logger.ts';

export type SyncStatus = 'waiting' | 'resyncing' | 'in-sync';

export interface SyncerUpdate {
  kind: KindName;
  /** The datastore key (Calico's etcd layout), stable for the object's life. */
  key: string;
  value: AnyResource | null;
}

export interface SyncerCallbacks {
  onStatus(status: SyncStatus): void;
  onUpdates(updates: SyncerUpdate[]): void;
}

/**
 * The kinds Felix watches: its configuration, pools, nodes, endpoints, IPAM blocks, and the
 * policy kinds (policies, staged policies, tiers, profiles, network sets). Staged policies never
 * change connectivity; Felix only records what they would deny.
 */
export const FELIX_KINDS: readonly KindName[] = [
  'ClusterInformation',
  'FelixConfiguration',
  'IPPool',
  'Node',
  'WorkloadEndpoint',
  'HostEndpoint',
  'IPAMBlock',
  ...POLICY_KINDS,
];

export interface SyncerOptions {
  datastore: Datastore;
  callbacks: SyncerCallbacks;
  kinds?: readonly KindName[];
  logger?: Logger;
  /** Wait before listing again after a failure (libcalico-go ListRetryInterval = 1 s). */
  retryIntervalMs?: number;
}

export class Syncer {
  readonly #datastore: Datastore;
  readonly #callbacks: SyncerCallbacks;
  readonly #kinds: readonly KindName[];
  readonly #log: Logger;
  readonly #retryMs: number;
  /** key → kind and resourceVersion of what consumers have been told exists. */
  #known = new Map<string, { kind: KindName; rv: string | undefined }>();
  #status: SyncStatus | undefined;
  #stopped = false;
  #watch: Watch | undefined;
  #loop: Promise<void> | undefined;
  #stopSignal = new AbortController();
  /** Full relists after the first one (watch lost its place, or the store resynced us). */
  resyncCount = 0;

  constructor(options: SyncerOptions) {
    this.#datastore = options.datastore;
    this.#callbacks = options.callbacks;
    this.#kinds = options.kinds ?? FELIX_KINDS;
    this.#log = (options.logger ?? defaultLogger).child({ component: 'syncer' });
    this.#retryMs = options.retryIntervalMs ?? 1000;
  }

  get status(): SyncStatus | undefined {
    return this.#status;
  }

  start(): void {
    if (this.#loop) return;
    this.#setStatus('waiting');
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopSignal.abort();
    await this.#watch?.close();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let first = true;
    while (!this.#stopped) {
      try {
        if (!first) this.resyncCount++;
        first = false;
        this.#setStatus('resyncing');
        const revisions = await this.#listAll();
        if (this.#stopped) return;
        this.#setStatus('in-sync');
        await this.#follow(revisions);
        if (!this.#stopped) this.#log.warn('watch ended; listing again');
      } catch (err) {
        if (this.#stopped) return;
        this.#log.warn({ err }, 'datastore list/watch failed; retrying');
        try {
          await delay(this.#retryMs, undefined, { signal: this.#stopSignal.signal });
        } catch {
          return;
        }
      }
    }
  }

  /** Lists every kind and delivers the difference from what consumers know, as one batch. */
  async #listAll(): Promise<Map<KindName, number>> {
    const revisions = new Map<KindName, number>();
    const items: { kind: KindName; value: AnyResource }[] = [];
    for (const kind of this.#kinds) {
      const result = await this.#datastore.list(kind);
      revisions.set(kind, Number(result.revision));
      for (const value of result.items) items.push({ kind, value });
    }
    this.#deliverSnapshot(items);
    return revisions;
  }

  #deliverSnapshot(items: { kind: KindName; value: AnyResource }[]): void {
    const updates: SyncerUpdate[] = [];
    const present = new Set<string>();
    for (const { kind, value } of items) {
      const key = keyOf(kind, value);
      present.add(key);
      const u = this.#change(kind, key, value);
      if (u) updates.push(u);
    }
    for (const [key, { kind }] of this.#known) {
      if (!present.has(key) && this.#kinds.includes(kind)) {
        this.#known.delete(key);
        updates.push({ kind, key, value: null });
      }
    }
    if (updates.length > 0) this.#callbacks.onUpdates(updates);
  }

  /** The update to deliver for a new value, or undefined when consumers already have it. */
  #change(kind: KindName, key: string, value: AnyResource | null): SyncerUpdate | undefined {
    if (value === null) {
      return this.#known.delete(key) ? { kind, key, value: null } : undefined;
    }
    const rv = value.metadata.resourceVersion;
    const known = this.#known.get(key);
    if (known && rv !== undefined && known.rv === rv) return undefined;
    this.#known.set(key, { kind, rv });
    return { kind, key, value };
  }

  async #follow(revisions: Map<KindName, number>): Promise<void> {
    // One watch for every kind, from the oldest list revision; events a later list already
    // covered are skipped per kind, so nothing is lost and nothing is replayed.
    const from = Math.min(...revisions.values());
    const watch = this.#datastore.watch({ kinds: this.#kinds, revision: String(from) });
    this.#watch = watch;
    try {
      for await (const event of watch) {
        if (this.#stopped) return;
        switch (event.type) {
          case 'added':
          case 'modified':
          case 'deleted': {
            if (Number(event.revision) <= (revisions.get(event.kind) ?? 0)) continue;
            const resource = event.type === 'deleted' ? event.old : event.new;
            const key = keyOf(event.kind, resource);
            const u = this.#change(event.kind, key, event.type === 'deleted' ? null : event.new);
            if (u) this.#callbacks.onUpdates([u]);
            break;
          }
          case 'resync': {
            // The store could not replay from our revision: its items are the whole truth now.
            this.resyncCount++;
            this.#setStatus('resyncing');
            revisions = new Map(this.#kinds.map((k) => [k, Number(event.revision)]));
            this.#deliverSnapshot(
              event.items.flatMap((value) => {
                const kind = this.#kindOf(value);
                return kind ? [{ kind, value }] : [];
              }),
            );
            this.#setStatus('in-sync');
            break;
          }
          case 'bookmark':
            break;
          case 'status':
            if (event.state === 'disconnected')
              this.#log.warn({ error: event.error }, 'datastore disconnected');
            else this.#log.info('datastore connected');
            break;
        }
      }
    } finally {
      this.#watch = undefined;
      await watch.close();
    }
  }

  #kindOf(value: AnyResource): KindName | undefined {
    // Calico's resync items carry apiVersion/kind; the registry name equals `kind` for the
    // kinds Felix watches.
    return this.#kinds.find((k) => k === value.kind);
  }

  #setStatus(status: SyncStatus): void {
    if (this.#status === status) return;
    this.#status = status;
    this.#log.debug({ status }, 'sync status');
    this.#callbacks.onStatus(status);
  }
}

function keyOf(kind: KindName, value: AnyResource): string {
  return keyFor(kind, value.metadata.name, value.metadata.namespace);
}
