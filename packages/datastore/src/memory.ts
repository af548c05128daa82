import type {
  AnyResource,
  ChangeEvent,
  Datastore,
  DeleteOptions,
  ListOptions,
  ListResult,
  Watch,
  WatchEvent,
  WatchOptions,
} from './datastore.ts';
import { DatastoreError } from './errors.ts';
import { EventQueue } from './event-queue.ts';
import { KIND_NAMES, type KindName, keyFor, prefixFor, refFromKey } from './kinds.ts';
import type { ResourceInput, ResourceOf } from './model/index.ts';
import { diffStates, prepareWrite, readsPeers } from './write-path.ts';

interface Entry {
  kind: KindName;
  value: AnyResource;
}

interface LoggedChange {
  key: string;
  event: ChangeEvent;
}

/**
 * An in-process Datastore with the same semantics as the etcd backend: one global revision,
 * compare-and-swap updates and deletes, and watches that resume from a revision. For unit tests
 * and for library users who need no persistence. `compact()` drops history the way etcd does, so
 * watch resync paths can be exercised without etcd.
 */
export class MemoryDatastore implements Datastore {
  #entries = new Map<string, Entry>();
  #revision = 0;
  #log: LoggedChange[] = [];
  #compacted = 0;
  #watchers = new Set<(c: LoggedChange) => void>();

  get revision(): string {
    return String(this.#revision);
  }

  /** Forgets history up to and including `revision` (like etcd compaction). */
  compact(revision: string = this.revision): void {
    const r = Number(revision);
    this.#compacted = Math.max(this.#compacted, r);
    this.#log = this.#log.filter((c) => Number(c.event.revision) > r);
  }

  async get<K extends KindName>(kind: K, name: string, namespace?: string): Promise<ResourceOf<K>> {
    const e = this.#entries.get(keyFor(kind, name, namespace));
    if (!e) throw DatastoreError.notFound({ kind, name, namespace });
    return structuredClone(e.value) as ResourceOf<K>;
  }

  async list<K extends KindName>(kind: K, options: ListOptions = {}): Promise<ListResult<ResourceOf<K>>> {
    const prefix = prefixFor(kind, options.namespace);
    const items: ResourceOf<K>[] = [];
    for (const [key, e] of this.#entries) {
      if (e.kind !== kind || !key.startsWith(prefix)) continue;
      if (options.prefix && !e.value.metadata.name.startsWith(options.prefix)) continue;
      items.push(structuredClone(e.value) as ResourceOf<K>);
    }
    items.sort(compareByKey);
    return { items, revision: this.revision };
  }

  async create<K extends KindName>(kind: K, resource: ResourceInput<K>): Promise<ResourceOf<K>> {
    const { key, value } = prepareWrite(kind, resource, undefined, this.#peers(kind));
    if (this.#entries.has(key)) {
      throw DatastoreError.alreadyExists({
        kind,
        name: value.metadata.name,
        namespace: value.metadata.namespace,
      });
    }
    return this.#store(kind, key, value as AnyResource, undefined) as ResourceOf<K>;
  }

  async update<K extends KindName>(kind: K, resource: ResourceInput<K>): Promise<ResourceOf<K>> {
    const ref = { kind, name: resource.metadata?.name, namespace: resource.metadata?.namespace };
    const existing = this.#entries.get(keyFor(kind, ref.name, ref.namespace));
    if (!existing) throw DatastoreError.notFound(ref);
    const want = resource.metadata.resourceVersion;
    if (want !== undefined && want !== existing.value.metadata.resourceVersion) {
      throw DatastoreError.conflict(ref, want, existing.value.metadata.resourceVersion);
    }
    const { key, value } = prepareWrite(kind, resource, existing.value, this.#peers(kind));
    return this.#store(kind, key, value as AnyResource, existing.value) as ResourceOf<K>;
  }

  async apply<K extends KindName>(kind: K, resource: ResourceInput<K>): Promise<ResourceOf<K>> {
    const existing = this.#entries.get(keyFor(kind, resource.metadata?.name, resource.metadata?.namespace));
    const { key, value } = prepareWrite(kind, resource, existing?.value, this.#peers(kind));
    return this.#store(kind, key, value as AnyResource, existing?.value) as ResourceOf<K>;
  }

  async delete<K extends KindName>(
    kind: K,
    name: string,
    namespace?: string,
    options: DeleteOptions = {},
  ): Promise<ResourceOf<K>> {
    const key = keyFor(kind, name, namespace);
    const existing = this.#entries.get(key);
    if (!existing) throw DatastoreError.notFound({ kind, name, namespace });
    if (
      options.resourceVersion !== undefined &&
      options.resourceVersion !== existing.value.metadata.resourceVersion
    ) {
      throw DatastoreError.conflict(
        { kind, name, namespace },
        options.resourceVersion,
        existing.value.metadata.resourceVersion,
      );
    }
    this.#entries.delete(key);
    this.#revision++;
    this.#publish({ key, event: { type: 'deleted', kind, revision: this.revision, old: existing.value } });
    return structuredClone(existing.value) as ResourceOf<K>;
  }

  watch(options: WatchOptions = {}): Watch {
    const kinds = new Set<KindName>(options.kinds ?? KIND_NAMES);
    const prefixes = [...kinds].map((k) => prefixFor(k, options.namespace));
    const wanted = (key: string): boolean => {
      const ref = refFromKey(key);
      return ref !== undefined && kinds.has(ref.kind) && prefixes.some((p) => key.startsWith(p));
    };
    const seen = new Map<string, AnyResource>();
    const deliver = (c: LoggedChange): void => {
      if (!wanted(c.key)) return;
      if (c.event.type === 'deleted') seen.delete(c.key);
      else seen.set(c.key, c.event.new);
      queue.push(structuredClone(c.event));
    };
    const queue = new EventQueue<WatchEvent>(() => this.#watchers.delete(deliver));

    const from = options.revision === undefined ? undefined : Number(options.revision);
    if (from === undefined || from < this.#compacted) {
      // Nothing to resume from: hand over the current state as a resync.
      const now = new Map<string, Entry>();
      for (const [key, e] of this.#entries) if (wanted(key)) now.set(key, e);
      const events = diffStates(seen, now, this.revision);
      for (const [key, e] of now) seen.set(key, e.value);
      queue.push(
        structuredClone({
          type: 'resync',
          revision: this.revision,
          events,
          items: [...now.values()].map((e) => e.value),
        }),
      );
    } else {
      for (const c of this.#log) if (Number(c.event.revision) > from) deliver(c);
    }
    this.#watchers.add(deliver);
    return {
      [Symbol.asyncIterator]: () => queue[Symbol.asyncIterator](),
      close: async () => {
        this.#watchers.delete(deliver);
        queue.close();
      },
    };
  }

  async close(): Promise<void> {
    this.#watchers.clear();
  }

  /** Every stored object of `kind`, for the write rules that compare against them. */
  #peers(kind: KindName): AnyResource[] {
    if (!readsPeers(kind)) return [];
    const out: AnyResource[] = [];
    for (const e of this.#entries.values()) if (e.kind === kind) out.push(e.value);
    return out;
  }

  #store(kind: KindName, key: string, value: AnyResource, old: AnyResource | undefined): AnyResource {
    this.#revision++;
    value.metadata.resourceVersion = this.revision;
    this.#entries.set(key, { kind, value });
    const event: ChangeEvent = old
      ? { type: 'modified', kind, revision: this.revision, old, new: value }
      : { type: 'added', kind, revision: this.revision, new: value };
    this.#publish({ key, event });
    return structuredClone(value);
  }

  #publish(change: LoggedChange): void {
    this.#log.push(change);
    for (const w of this.#watchers) w(change);
  }
}

function compareByKey(a: AnyResource, b: AnyResource): number {
  const ka = `${a.metadata.namespace ?? ''}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace ?? ''}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
