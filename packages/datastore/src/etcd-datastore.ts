/**
 * The etcd v3 backend. Objects are JSON under Calico's key layout (kinds.ts); an object's
 * resourceVersion is its key's mod revision; every conditional write is one etcd transaction,
 * following libcalico-go's etcdv3 backend: create compares Version(key) == 0, compare-and-swap
 * compares ModRevision(key) == resourceVersion.
 */
import type { ICompare, IKeyValue, ITxnResponse } from 'etcd3';
import type {
  AnyResource,
  Datastore,
  DeleteOptions,
  ListOptions,
  ListResult,
  Watch,
  WatchOptions,
} from './datastore.ts';
import { DatastoreError } from './errors.ts';
import { EtcdConnection, type EtcdDatastoreOptions } from './etcd-client.ts';
import { decodeResource, encodeResource, prefixRange } from './etcd-codec.ts';
import { etcdWatch } from './etcd-watch.ts';
import { KINDS, type KindInfo, type KindName, keyFor, prefixFor, refFromKey } from './kinds.ts';
import type { ResourceInput, ResourceOf } from './model/index.ts';
import { prepareWrite, readsPeers } from './write-path.ts';

export type { EtcdDatastoreOptions, EtcdTlsOptions } from './etcd-client.ts';

/** Read-modify-write attempts for update/apply without a resourceVersion before giving up. */
const WRITE_ATTEMPTS = 10;

/** Kinds whose object name is the last key segment, so a name prefix is a key prefix. */
function nameIsKeySuffix(kind: KindName): boolean {
  return kind !== 'IPAMBlock' && kind !== 'BlockAffinity';
}

export class EtcdDatastore implements Datastore {
  readonly #conn: EtcdConnection;
  #closed = false;

  constructor(options: EtcdDatastoreOptions) {
    this.#conn = new EtcdConnection(options);
  }

  /** The endpoints this datastore talks to (normalised). */
  get endpoints(): readonly string[] {
    return this.#conn.endpoints;
  }

  async get<K extends KindName>(kind: K, name: string, namespace?: string): Promise<ResourceOf<K>> {
    const key = keyFor(kind, name, namespace);
    const kv = await this.#getKv(key, `get ${kind}`);
    if (!kv) throw DatastoreError.notFound({ kind, name, namespace });
    return decodeResource(key, kv.value, kv.mod_revision) as ResourceOf<K>;
  }

  async list<K extends KindName>(kind: K, options: ListOptions = {}): Promise<ListResult<ResourceOf<K>>> {
    const info: KindInfo = KINDS[kind];
    let prefix = prefixFor(kind, options.namespace);
    const narrowByName = options.prefix && nameIsKeySuffix(kind) && (!info.namespaced || options.namespace);
    if (narrowByName) prefix += options.prefix;
    const { kvs, revision } = await this.#rangeAll(prefix, `list ${kind}`);
    const items: ResourceOf<K>[] = [];
    for (const kv of kvs) {
      const key = kv.key.toString('utf8');
      if (refFromKey(key)?.kind !== kind) continue;
      const value = decodeResource(key, kv.value, kv.mod_revision);
      if (options.prefix && !value.metadata.name.startsWith(options.prefix)) continue;
      items.push(value as ResourceOf<K>);
    }
    // Same order as the memory backend (namespace, then name); key order differs for IPAM kinds.
    items.sort(compareByName);
    return { items, revision };
  }

  async create<K extends KindName>(kind: K, resource: ResourceInput<K>): Promise<ResourceOf<K>> {
    for (let attempt = 1; ; attempt++) {
      const peers = await this.#peers(kind, `create ${kind}`);
      const { key, value } = prepareWrite(kind, resource, undefined, peers.items);
      const keyBuf = Buffer.from(key);
      const res = await this.#txn(`create ${kind}`, {
        compare: [{ key: keyBuf, target: 'Version', result: 'Equal', version: 0 }, ...peers.unchanged],
        success: [{ request_put: { key: keyBuf, value: encodeResource(value) } }],
        failure: [{ request_range: { key: keyBuf } }],
      });
      if (res.succeeded) return stamped(value, res.header.revision) as ResourceOf<K>;
      const ref = { kind, name: value.metadata.name, namespace: value.metadata.namespace };
      // The key exists, or (for kinds that read peers) a peer changed since they were read.
      if (res.responses[0]?.response_range?.kvs[0] || peers.unchanged.length === 0) {
        throw DatastoreError.alreadyExists(ref);
      }
      if (attempt >= WRITE_ATTEMPTS) {
        throw new DatastoreError(
          'Conflict',
          `${kind} objects kept changing under create (${WRITE_ATTEMPTS} attempts); retry`,
          ref,
        );
      }
    }
  }

  async update<K extends KindName>(kind: K, resource: ResourceInput<K>): Promise<ResourceOf<K>> {
    const name = resource.metadata?.name;
    const namespace = resource.metadata?.namespace;
    const ref = { kind, name, namespace };
    const key = keyFor(kind, name, namespace);
    const want = resource.metadata.resourceVersion;
    if (
      want !== undefined &&
      !readsPeers(kind) &&
      resource.metadata.uid &&
      resource.metadata.creationTimestamp
    ) {
      // Compare-and-swap of an object as it was read: the transaction's comparison on the mod
      // revision is the whole precondition, and the server-owned metadata travels with it, so
      // the write needs no read of its own.
      const { value } = prepareWrite(kind, resource, undefined);
      const next = await this.#casPut(key, want, value, `update ${kind}`);
      if (next.ok) return stamped(value, next.revision) as ResourceOf<K>;
      if (!next.current) throw DatastoreError.notFound(ref);
      throw DatastoreError.conflict(ref, want, next.current.mod_revision);
    }
    let current = await this.#getKv(key, `update ${kind}`);
    for (let attempt = 1; ; attempt++) {
      if (!current) throw DatastoreError.notFound(ref);
      if (want !== undefined && want !== current.mod_revision) {
        throw DatastoreError.conflict(ref, want, current.mod_revision);
      }
      const peers = await this.#peers(kind, `update ${kind}`);
      const existing = decodeResource(key, current.value, current.mod_revision);
      const { value } = prepareWrite(kind, resource, existing, peers.items);
      const next = await this.#casPut(key, current.mod_revision, value, `update ${kind}`, peers.unchanged);
      if (next.ok) return stamped(value, next.revision) as ResourceOf<K>;
      if (want !== undefined && attempt >= WRITE_ATTEMPTS && next.current) {
        throw DatastoreError.conflict(ref, want, next.current.mod_revision);
      }
      current = next.current;
      if (want === undefined && attempt >= WRITE_ATTEMPTS && current) {
        throw DatastoreError.conflict(ref, current.mod_revision, current.mod_revision);
      }
    }
  }

  async apply<K extends KindName>(kind: K, resource: ResourceInput<K>): Promise<ResourceOf<K>> {
    const key = keyFor(kind, resource.metadata?.name, resource.metadata?.namespace);
    let current = await this.#getKv(key, `apply ${kind}`);
    for (let attempt = 1; ; attempt++) {
      const peers = await this.#peers(kind, `apply ${kind}`);
      const existing = current ? decodeResource(key, current.value, current.mod_revision) : undefined;
      const { value } = prepareWrite(kind, resource, existing, peers.items);
      const next = await this.#casPut(key, current?.mod_revision, value, `apply ${kind}`, peers.unchanged);
      if (next.ok) return stamped(value, next.revision) as ResourceOf<K>;
      if (attempt >= WRITE_ATTEMPTS) {
        const ref = { kind, name: value.metadata.name, namespace: value.metadata.namespace };
        throw new DatastoreError(
          'Conflict',
          `${kind} ${value.metadata.name} kept changing under apply (${WRITE_ATTEMPTS} attempts); retry`,
          ref,
        );
      }
      current = next.current;
    }
  }

  async delete<K extends KindName>(
    kind: K,
    name: string,
    namespace?: string,
    options: DeleteOptions = {},
  ): Promise<ResourceOf<K>> {
    const ref = { kind, name, namespace };
    const key = keyFor(kind, name, namespace);
    const keyBuf = Buffer.from(key);
    const want = options.resourceVersion;
    if (want === undefined) {
      const res = await this.#conn.call(`delete ${kind}`, () =>
        this.#conn.client.kv.deleteRange({ key: keyBuf, prev_kv: true }),
      );
      const prev = res.prev_kvs[0];
      if (!prev) throw DatastoreError.notFound(ref);
      return decodeResource(key, prev.value, prev.mod_revision) as ResourceOf<K>;
    }
    const res = await this.#txn(`delete ${kind}`, {
      compare: [{ key: keyBuf, target: 'Mod', result: 'Equal', mod_revision: want }],
      success: [{ request_delete_range: { key: keyBuf, prev_kv: true } }],
      failure: [{ request_range: { key: keyBuf } }],
    });
    if (!res.succeeded) {
      const current = res.responses[0]?.response_range?.kvs[0];
      if (!current) throw DatastoreError.notFound(ref);
      throw DatastoreError.conflict(ref, want, current.mod_revision);
    }
    const prev = res.responses[0]?.response_delete_range?.prev_kvs[0];
    if (!prev) throw DatastoreError.notFound(ref);
    return decodeResource(key, prev.value, prev.mod_revision) as ResourceOf<K>;
  }

  watch(options: WatchOptions = {}): Watch {
    if (this.#closed) throw new DatastoreError('Unavailable', 'this etcd datastore is closed');
    return etcdWatch(this.#conn, options);
  }

  /** Compacts etcd's history up to `revision` (physical: returns once the space is reclaimed). */
  async compact(revision: string): Promise<void> {
    await this.#conn.call('compact', () => this.#conn.client.kv.compact({ revision, physical: true }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }

  async #getKv(key: string, what: string): Promise<IKeyValue | undefined> {
    const res = await this.#conn.call(what, () => this.#conn.client.kv.range({ key: Buffer.from(key) }));
    return res.kvs[0];
  }

  #rangeAll(prefix: string, what: string): Promise<{ kvs: IKeyValue[]; revision: string }> {
    return this.#conn.rangeAll(prefix, what);
  }

  /**
   * The stored objects a write of `kind` is checked against (none unless `readsPeers`), and the
   * transaction comparison that holds while none of them has changed since: no key under the
   * kind's prefix modified after the revision they were read at.
   */
  async #peers(kind: KindName, what: string): Promise<{ items: AnyResource[]; unchanged: ICompare[] }> {
    if (!readsPeers(kind)) return { items: [], unchanged: [] };
    const prefix = prefixFor(kind);
    const { kvs, revision } = await this.#rangeAll(prefix, what);
    const items: AnyResource[] = [];
    for (const kv of kvs) {
      const key = kv.key.toString('utf8');
      if (refFromKey(key)?.kind === kind) items.push(decodeResource(key, kv.value, kv.mod_revision));
    }
    const { start, end } = prefixRange(prefix);
    const next = String(BigInt(revision) + 1n);
    return {
      items,
      unchanged: [{ key: start, range_end: end, target: 'Mod', result: 'Less', mod_revision: next }],
    };
  }

  /** Puts `value` if the key's mod revision is still `modRevision` (absent when undefined). */
  async #casPut(
    key: string,
    modRevision: string | undefined,
    value: AnyResource,
    what: string,
    alsoUnchanged: readonly ICompare[] = [],
  ): Promise<{ ok: true; revision: string } | { ok: false; current: IKeyValue | undefined }> {
    const keyBuf = Buffer.from(key);
    const res = await this.#txn(what, {
      compare: [
        modRevision === undefined
          ? { key: keyBuf, target: 'Version', result: 'Equal', version: 0 }
          : { key: keyBuf, target: 'Mod', result: 'Equal', mod_revision: modRevision },
        ...alsoUnchanged,
      ],
      success: [{ request_put: { key: keyBuf, value: encodeResource(value) } }],
      failure: [{ request_range: { key: keyBuf } }],
    });
    if (res.succeeded) return { ok: true, revision: res.header.revision };
    return { ok: false, current: res.responses[0]?.response_range?.kvs[0] };
  }

  #txn(what: string, req: Parameters<EtcdConnection['client']['kv']['txn']>[0]): Promise<ITxnResponse> {
    return this.#conn.call(what, () => this.#conn.client.kv.txn(req));
  }
}

function stamped(value: AnyResource, revision: string): AnyResource {
  value.metadata.resourceVersion = revision;
  return value;
}

function compareByName(a: AnyResource, b: AnyResource): number {
  const ka = `${a.metadata.namespace ?? ''}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace ?? ''}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
