/**
 * The agent's watch loop: one datastore watch over the kinds the BGP calculation reads, folded
 * into a local copy (replaced in full on every resync), from which `snapshot()` takes the current
 * `AgentSnapshot`. It does no BGP work; it says when something changed.
 */
import type { AnyResource, Datastore, KindName, ResourceOf, Watch } from '@calico-ts/datastore';
import type { Logger } from 'pino';
import type { AgentSnapshot } from './snapshot.ts';

export const AGENT_KINDS = [
  'Node',
  'BGPConfiguration',
  'BGPPeer',
  'BGPFilter',
  'IPPool',
  'BlockAffinity',
  'WorkloadEndpoint',
] as const satisfies readonly KindName[];

export type AgentKind = (typeof AGENT_KINDS)[number];

type Store = { [K in AgentKind]: Map<string, ResourceOf<K>> };

function isAgentKind(kind: string): kind is AgentKind {
  return (AGENT_KINDS as readonly string[]).includes(kind);
}

/** Every agent kind's `kind` field is its kind name (none of them is a Kubernetes kind). */
function isOfKind<K extends AgentKind>(kind: K, r: AnyResource): r is ResourceOf<K> {
  return r.kind === kind;
}

const resourceKey = (r: AnyResource) => `${r.metadata.namespace ?? ''}/${r.metadata.name}`;

function emptyStore(): Store {
  return {
    Node: new Map(),
    BGPConfiguration: new Map(),
    BGPPeer: new Map(),
    BGPFilter: new Map(),
    IPPool: new Map(),
    BlockAffinity: new Map(),
    WorkloadEndpoint: new Map(),
  };
}

export class SnapshotWatch {
  readonly #datastore: Datastore;
  readonly #log: Logger;
  readonly #onChange: () => void;
  #store = emptyStore();
  #watch: Watch | undefined;
  #loop: Promise<void> | undefined;
  #synced = false;
  #connected = false;
  #closed = false;
  #lastError: string | undefined;
  #resolveFirstSync!: () => void;
  /** Resolves with the first complete listing. */
  readonly firstSync = new Promise<void>((r) => (this.#resolveFirstSync = r));

  constructor(options: { datastore: Datastore; logger: Logger; onChange: () => void }) {
    this.#datastore = options.datastore;
    this.#log = options.logger;
    this.#onChange = options.onChange;
  }

  /** True once the first listing arrived. */
  get synced(): boolean {
    return this.#synced;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Why the watch stopped, if it failed. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  start(): void {
    this.#watch = this.#datastore.watch({ kinds: AGENT_KINDS });
    this.#loop = this.#consume(this.#watch);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#watch?.close();
    await this.#loop?.catch(() => {});
  }

  snapshot(): AgentSnapshot {
    const s = this.#store;
    return {
      nodes: [...s.Node.values()],
      bgpConfigurations: [...s.BGPConfiguration.values()],
      bgpPeers: [...s.BGPPeer.values()],
      bgpFilters: [...s.BGPFilter.values()],
      ipPools: [...s.IPPool.values()],
      blockAffinities: [...s.BlockAffinity.values()],
      workloadEndpoints: [...s.WorkloadEndpoint.values()],
    };
  }

  async #consume(watch: Watch): Promise<void> {
    try {
      for await (const ev of watch) {
        if (ev.type === 'status') {
          this.#connected = ev.state === 'connected';
          if (ev.error) this.#log.warn({ error: ev.error }, `datastore ${ev.state}`);
          continue;
        }
        if (ev.type === 'bookmark') continue;
        if (ev.type === 'resync') {
          this.#store = emptyStore();
          for (const item of ev.items) this.#put(item);
          this.#connected = true;
          if (!this.#synced) {
            this.#synced = true;
            this.#log.info({ objects: ev.items.length }, 'datastore in sync');
          }
        } else if (ev.type === 'deleted') {
          if (isAgentKind(ev.kind)) this.#store[ev.kind].delete(resourceKey(ev.old));
        } else this.#put(ev.new);
        this.#onChange();
        if (ev.type === 'resync') this.#resolveFirstSync();
      }
    } catch (err) {
      if (!this.#closed) {
        this.#lastError = `datastore watch failed: ${(err as Error).message}`;
        this.#log.error({ err }, 'datastore watch failed');
      }
    }
  }

  #put(r: AnyResource): void {
    if (isAgentKind(r.kind)) this.#putKind(r.kind, r);
  }

  #putKind<K extends AgentKind>(kind: K, r: AnyResource): void {
    if (isOfKind(kind, r)) this.#store[kind].set(resourceKey(r), r);
  }
}
