import type { KindName } from './kinds.ts';
import type { ResourceInput, ResourceOf } from './model/index.ts';

export interface ListOptions {
  /** Only this namespace (namespaced kinds); all namespaces when omitted. */
  namespace?: string;
  /** Only objects whose name starts with this. */
  prefix?: string;
}

export interface ListResult<T> {
  items: T[];
  /** The store revision the list was read at; pass it to watch() to continue from there. */
  revision: string;
}

export interface DeleteOptions {
  /** Compare-and-swap: delete only if the stored object still has this resourceVersion. */
  resourceVersion?: string;
}

export interface WatchOptions {
  /** Kinds to watch; every kind when omitted. */
  kinds?: readonly KindName[];
  namespace?: string;
  /**
   * Deliver every change made after this revision (as returned by list()). When omitted the watch
   * starts with a `resync` event holding the current state, then follows changes.
   */
  revision?: string;
}

export type AnyResource = ResourceOf<KindName>;

export type ChangeEvent =
  | { type: 'added'; kind: KindName; revision: string; new: AnyResource }
  | { type: 'modified'; kind: KindName; revision: string; old?: AnyResource; new: AnyResource }
  | { type: 'deleted'; kind: KindName; revision: string; old: AnyResource };

export type WatchEvent =
  | ChangeEvent
  /**
   * The watch could not continue from the last revision it delivered (compaction) or is starting
   * without one: it listed again. `events` tell what changed since the state the consumer has seen
   * (adds, modifications and deletions); `items` is the complete current state.
   */
  | { type: 'resync'; revision: string; events: ChangeEvent[]; items: AnyResource[] }
  /** The store has moved on to `revision` with nothing of interest to this watch. */
  | { type: 'bookmark'; revision: string }
  /** Connection state of the watch; while `disconnected` it keeps retrying. */
  | { type: 'status'; state: 'connected' | 'disconnected'; error?: string };

export interface Watch extends AsyncIterable<WatchEvent> {
  close(): Promise<void>;
}

/**
 * The one way every calico-ts component reads and writes state. Every write validates and
 * defaults the object first; an invalid one is refused with DatastoreError code `Invalid`.
 */
export interface Datastore {
  get<K extends KindName>(kind: K, name: string, namespace?: string): Promise<ResourceOf<K>>;
  list<K extends KindName>(kind: K, options?: ListOptions): Promise<ListResult<ResourceOf<K>>>;
  /** Fails with AlreadyExists if the object exists. */
  create<K extends KindName>(kind: K, resource: ResourceInput<K>): Promise<ResourceOf<K>>;
  /**
   * Replaces an existing object. With `metadata.resourceVersion` set it is compare-and-swap and
   * fails with Conflict if the stored version differs; fails with NotFound if absent.
   */
  update<K extends KindName>(kind: K, resource: ResourceInput<K>): Promise<ResourceOf<K>>;
  /** Creates or replaces, ignoring resourceVersion. */
  apply<K extends KindName>(kind: K, resource: ResourceInput<K>): Promise<ResourceOf<K>>;
  /** Returns the deleted object. NotFound if absent; Conflict if options.resourceVersion differs. */
  delete<K extends KindName>(
    kind: K,
    name: string,
    namespace?: string,
    options?: DeleteOptions,
  ): Promise<ResourceOf<K>>;
  watch(options?: WatchOptions): Watch;
  close(): Promise<void>;
}
