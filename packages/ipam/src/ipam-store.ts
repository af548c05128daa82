/**
 * IPAM's edge to the Datastore: typed reads and compare-and-swap writes of blocks, affinities and
 * handles, Calico's soft delete, and the retry loop every read-modify-write runs in.
 */
import {
  affinityName,
  blockNameFromCidr,
  CALICO_API_VERSION,
  type Datastore,
  isDatastoreError,
  type ResourceOf,
} from '@calico-ts/datastore';
import type { BlockSpec } from './allocation-block.ts';
import { IpamError } from './errors.ts';
import { type IpPool, poolFromResource } from './ip-pools.ts';
import type { Logger } from './logger.ts';

export type BlockResource = ResourceOf<'IPAMBlock'>;
export type AffinityResource = ResourceOf<'BlockAffinity'>;
export type HandleResource = ResourceOf<'IPAMHandle'>;
/** The kinds IPAM deletes in two steps (mark, then delete that version). */
type SoftDeleted = 'IPAMBlock' | 'BlockAffinity' | 'IPAMHandle';

export interface IpamConfig {
  /** Only allocate from blocks affine to the node: never borrow. */
  strictAffinity: boolean;
  /** Blocks one node may hold per IP family; 0 = unlimited. */
  maxBlocksPerHost: number;
  /** Claim new blocks when the node's blocks are full. */
  autoAllocateBlocks: boolean;
}

export const DEFAULT_IPAM_CONFIG: IpamConfig = {
  strictAffinity: false,
  maxBlocksPerHost: 0,
  autoAllocateBlocks: true,
};

export interface RetryPolicy {
  /** Conflicts tolerated per operation before giving up (Calico: datastoreRetries = 100). */
  maxConflicts: number;
  /** How long an operation keeps retrying while the datastore is unreachable. */
  unavailableTimeoutMs: number;
  random: () => number;
}

/** What a retried attempt knows about the previous one. */
export interface Attempt {
  /** 0 for the first try. */
  n: number;
  /**
   * The previous attempt's write may or may not have been applied (the datastore went away
   * mid-request): the attempt must re-read and recognise its own write before writing again.
   */
  ambiguous: boolean;
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class IpamStore {
  readonly ds: Datastore;
  readonly log: Logger;
  readonly policy: RetryPolicy;
  readonly now: () => number;
  /** Writes issued (successful or not); the benchmark reports writes per allocation. */
  writes = 0;

  constructor(ds: Datastore, log: Logger, policy: RetryPolicy, now: () => number) {
    this.ds = ds;
    this.log = log;
    this.policy = policy;
    this.now = now;
  }

  /**
   * Runs a read-compute-write attempt until it succeeds. A Conflict means someone wrote first:
   * back off with jitter (so racing writers spread out) and recompute from a fresh read; never
   * overwrite. Unavailable retries until the deadline, telling the next attempt that its
   * predecessor's write is of unknown outcome.
   */
  async retry<T>(what: string, attempt: (a: Attempt) => Promise<T>): Promise<T> {
    let conflicts = 0;
    let unavailableSince: number | undefined;
    let ambiguous = false;
    for (let n = 0; ; n++) {
      try {
        return await attempt({ n, ambiguous });
      } catch (err) {
        if (isDatastoreError(err, 'Conflict') || isDatastoreError(err, 'AlreadyExists')) {
          // AlreadyExists comes from creates that lost a race (or guessed wrong that the object
          // was new): like a conflict, the next attempt re-reads.
          conflicts++;
          if (conflicts > this.policy.maxConflicts) {
            throw new IpamError(
              'TooManyConflicts',
              `${what}: gave up after ${conflicts} compare-and-swap conflicts; another writer keeps changing the same objects — retry the request`,
              { cause: err },
            );
          }
          ambiguous = false;
          await wait(this.policy.random() * Math.min(2 ** Math.min(conflicts, 6), 50));
          continue;
        }
        if (isDatastoreError(err, 'Unavailable')) {
          unavailableSince ??= this.now();
          const waited = this.now() - unavailableSince;
          if (waited > this.policy.unavailableTimeoutMs) {
            throw new IpamError(
              'DatastoreUnavailable',
              `${what}: datastore unreachable for ${Math.round(waited / 1000)} s (${(err as Error).message}); check that etcd is running and reachable`,
              { cause: err },
            );
          }
          this.log.debug({ what, err: (err as Error).message }, 'datastore unavailable, retrying');
          ambiguous = true;
          await wait(Math.min(50 * 2 ** Math.min(n, 5), 1000) * (0.5 + this.policy.random() / 2));
          continue;
        }
        throw err;
      }
    }
  }

  // --- reads -----------------------------------------------------------------------------------

  /** The block, or undefined when absent or soft-deleted (whose deletion this finishes). */
  async getBlock(cidr: string): Promise<BlockResource | undefined> {
    const r = await this.#getOrUndefined('IPAMBlock', blockNameFromCidr(cidr));
    return r && (await this.#liveOrFinishDelete('IPAMBlock', r));
  }

  async listBlocks(): Promise<BlockResource[]> {
    const { items } = await this.ds.list('IPAMBlock');
    return items.filter((b) => !b.spec.deleted);
  }

  async getAffinity(node: string, cidr: string): Promise<AffinityResource | undefined> {
    const r = await this.#getOrUndefined('BlockAffinity', affinityName(node, cidr));
    return r && (await this.#liveOrFinishDelete('BlockAffinity', r));
  }

  /** Affinities, optionally of one node (names start with the node, but so do longer node names). */
  async listAffinities(node?: string): Promise<AffinityResource[]> {
    const { items } = await this.ds.list('BlockAffinity', node === undefined ? {} : { prefix: `${node}-` });
    return items.filter((a) => !a.spec.deleted && (node === undefined || a.spec.node === node));
  }

  async getHandle(handleId: string): Promise<HandleResource | undefined> {
    const r = await this.#getOrUndefined('IPAMHandle', handleId);
    return r && (await this.#liveOrFinishDelete('IPAMHandle', r));
  }

  async listHandles(): Promise<HandleResource[]> {
    const { items } = await this.ds.list('IPAMHandle');
    return items.filter((h) => !h.spec.deleted);
  }

  async listPools(): Promise<IpPool[]> {
    const { items } = await this.ds.list('IPPool');
    return items.map(poolFromResource);
  }

  async getConfig(): Promise<IpamConfig> {
    const r = await this.#getOrUndefined('IPAMConfiguration', 'default');
    if (!r) return { ...DEFAULT_IPAM_CONFIG };
    return {
      strictAffinity: r.spec.strictAffinity ?? false,
      maxBlocksPerHost: r.spec.maxBlocksPerHost ?? 0,
      autoAllocateBlocks: r.spec.autoAllocateBlocks ?? true,
    };
  }

  async nodeLabels(node: string): Promise<Record<string, string>> {
    const r = await this.#getOrUndefined('Node', node);
    if (!r) {
      throw new IpamError(
        'NodeNotFound',
        `node ${node} has no Node resource, but a pool's nodeSelector needs its labels; create the Node (calico node start does) or use pools without nodeSelector`,
      );
    }
    return r.metadata.labels ?? {};
  }

  async nodeExists(node: string): Promise<boolean> {
    return (await this.#getOrUndefined('Node', node)) !== undefined;
  }

  async listNodeNames(): Promise<Set<string>> {
    const { items } = await this.ds.list('Node');
    return new Set(items.map((n) => n.metadata.name));
  }

  // --- writes ----------------------------------------------------------------------------------

  async createBlock(spec: BlockSpec): Promise<BlockResource> {
    this.writes++;
    return this.ds.create('IPAMBlock', {
      apiVersion: CALICO_API_VERSION,
      kind: 'IPAMBlock',
      metadata: { name: blockNameFromCidr(spec.cidr) },
      spec,
    });
  }

  /** Compare-and-swap: fails with Conflict unless the stored block is still `block`'s version. */
  async updateBlock(block: BlockResource, spec: BlockSpec): Promise<BlockResource> {
    this.writes++;
    return this.ds.update('IPAMBlock', { ...block, spec });
  }

  async createAffinity(
    node: string,
    cidr: string,
    state: AffinityResource['spec']['state'],
  ): Promise<AffinityResource> {
    this.writes++;
    return this.ds.create('BlockAffinity', {
      apiVersion: CALICO_API_VERSION,
      kind: 'BlockAffinity',
      metadata: { name: affinityName(node, cidr) },
      spec: { state, node, type: 'host', cidr, deleted: false },
    });
  }

  async updateAffinity(
    a: AffinityResource,
    state: AffinityResource['spec']['state'],
  ): Promise<AffinityResource> {
    this.writes++;
    return this.ds.update('BlockAffinity', { ...a, spec: { ...a.spec, state } });
  }

  async createHandle(handleId: string, blocks: Record<string, number>): Promise<HandleResource> {
    this.writes++;
    return this.ds.create('IPAMHandle', {
      apiVersion: CALICO_API_VERSION,
      kind: 'IPAMHandle',
      metadata: { name: handleId },
      spec: { handleID: handleId, block: blocks, deleted: false },
    });
  }

  async updateHandle(h: HandleResource, blocks: Record<string, number>): Promise<HandleResource> {
    this.writes++;
    return this.ds.update('IPAMHandle', { ...h, spec: { ...h.spec, block: blocks } });
  }

  /** Read-modify-write of the `default` IPAMConfiguration (create if absent, else CAS update). */
  async updateConfig(change: Partial<IpamConfig>): Promise<IpamConfig> {
    const current = await this.#getOrUndefined('IPAMConfiguration', 'default');
    const next = { ...(await this.getConfig()), ...change };
    this.writes++;
    if (!current) {
      await this.ds.create('IPAMConfiguration', {
        apiVersion: CALICO_API_VERSION,
        kind: 'IPAMConfiguration',
        metadata: { name: 'default' },
        spec: next,
      });
    } else {
      await this.ds.update('IPAMConfiguration', { ...current, spec: { ...current.spec, ...next } });
    }
    return next;
  }

  /**
   * Calico's soft delete (design/ipam/ipam-datastore.md): mark `deleted` by compare-and-swap, then
   * delete that exact version. A reader that meets a marked object treats it as absent and may
   * finish the delete, so a crash between the two steps leaves nothing half-alive. Throws Conflict
   * when the block changed since it was read.
   */
  async softDeleteBlock(b: BlockResource): Promise<void> {
    this.writes++;
    const marked = await this.ds.update('IPAMBlock', { ...b, spec: { ...b.spec, deleted: true } });
    await this.#finishDelete('IPAMBlock', marked.metadata);
  }

  /** Soft delete of a BlockAffinity (see softDeleteBlock). */
  async softDeleteAffinity(a: AffinityResource): Promise<void> {
    this.writes++;
    const marked = await this.ds.update('BlockAffinity', { ...a, spec: { ...a.spec, deleted: true } });
    await this.#finishDelete('BlockAffinity', marked.metadata);
  }

  /**
   * Deletes an IPAMHandle that holds no address any more, in one compare-and-swap: Conflict when it
   * changed since it was read, NotFound when it is gone. A handle is one key, so a conditional
   * delete cannot leave it half deleted; the two steps of a soft delete would only add a write.
   */
  async deleteHandle(h: HandleResource): Promise<void> {
    this.writes++;
    await this.ds.delete('IPAMHandle', h.metadata.name, undefined, {
      resourceVersion: h.metadata.resourceVersion!,
    });
  }

  /** Soft delete of an IPAMHandle (see softDeleteBlock). */
  async softDeleteHandle(h: HandleResource): Promise<void> {
    this.writes++;
    const marked = await this.ds.update('IPAMHandle', { ...h, spec: { ...h.spec, deleted: true } });
    await this.#finishDelete('IPAMHandle', marked.metadata);
  }

  async #finishDelete(
    kind: SoftDeleted,
    metadata: { name: string; resourceVersion?: string },
  ): Promise<void> {
    this.writes++;
    try {
      await this.ds.delete(kind, metadata.name, undefined, {
        resourceVersion: metadata.resourceVersion!,
      });
    } catch (err) {
      // Someone else finished it (NotFound) or it was already re-created (Conflict): either way done.
      if (!isDatastoreError(err, 'NotFound') && !isDatastoreError(err, 'Conflict')) throw err;
    }
  }

  async #liveOrFinishDelete<K extends SoftDeleted>(
    kind: K,
    r: ResourceOf<K>,
  ): Promise<ResourceOf<K> | undefined> {
    if (!r.spec.deleted) return r;
    await this.#finishDelete(kind, r.metadata);
    return undefined;
  }

  async #getOrUndefined<
    K extends 'IPAMBlock' | 'BlockAffinity' | 'IPAMHandle' | 'IPAMConfiguration' | 'Node',
  >(kind: K, name: string): Promise<ResourceOf<K> | undefined> {
    try {
      return await this.ds.get(kind, name);
    } catch (err) {
      if (isDatastoreError(err, 'NotFound')) return undefined;
      throw err;
    }
  }
}
