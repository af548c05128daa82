/**
 * Calico-compatible block IPAM over a Datastore (libcalico-go lib/ipam, design/ipam/*.md): the
 * `Ipam` class is the package's one entry point and holds what an instance shares between its
 * operations (the datastore edge with its retry policy, the affine-block cache, the selector
 * matcher, the garbage collector's memory). The logic lives beside it: allocation.ts hands
 * addresses out, release.ts gives them back, block-affinity.ts claims and releases blocks,
 * lookup.ts answers who holds what, utilization.ts reports usage.
 *
 * Nothing is handed out twice because every address changes hands only through a CAS write of its
 * block; handles are written after blocks and derived from them (handles.ts).
 */
import { type Datastore, isDatastoreError } from '@calico-ts/datastore';
import { AffineBlockCache } from './affine-blocks.ts';
import {
  Allocator,
  type AssignedAddress,
  type AssignIpArgs,
  type AutoAssignArgs,
  type AutoAssignResult,
} from './allocation.ts';
import { type ReleaseAffinityOptions, releaseHostAffinities, releaseNodeAffinity } from './block-affinity.ts';
import { type CheckOptions, type CheckReport, checkConsistency, repairHandles } from './consistency-check.ts';
import { IpamError } from './errors.ts';
import { GarbageCollector, type GcOptions, type GcReport } from './garbage-collector.ts';
import { defaultSelectorMatcher, type SelectorMatcher } from './ip-pools.ts';
import { type IpamConfig, IpamStore } from './ipam-store.ts';
import { defaultLogger, type Logger } from './logger.ts';
import { type AssignmentAttributes, assignmentAttributes, ipsByHandle } from './lookup.ts';
import {
  type AddressUse,
  auditOwnership,
  type HandleRecord,
  type OwnershipAudit,
} from './ownership-audit.ts';
import {
  HandleReleaseRounds,
  type ReleaseRequest,
  type ReleaseResult,
  releaseByHandle,
  releaseIPs,
} from './release.ts';
import {
  type BlockUtilization,
  type BorrowedReport,
  blocksOutsidePools,
  borrowedAddresses,
  type PoolUtilization,
  utilization,
} from './utilization.ts';

/** An allocation to release only while it is still the leaked one a report saw. */
export interface LeakReleaseRequest {
  ip: string;
  /** Release only if the allocation still belongs to this handle. */
  handle?: string;
  /** Release only if the allocation still carries this sequence number. */
  sequenceNumber?: number;
}

export interface LeakReleaseResult {
  released: string[];
  /** Refused: a WorkloadEndpoint or Node uses the address now. */
  stillInUse: AddressUse[];
  /** Refused: allocated again since (other handle or sequence number). */
  changed: string[];
  /** Already free. */
  notAllocated: string[];
}

export interface HandleDeleteResult {
  deleted: string[];
  /** Left alone: gone already, changed since the report, or allocations refer to it now. */
  skipped: { id: string; reason: 'missing' | 'changed' | 'in use' }[];
}

export interface IpamOptions {
  logger?: Logger;
  /** Conflicts tolerated per operation (Calico: 100). */
  maxConflicts?: number;
  /** How long operations keep retrying while the datastore is unreachable (default 60 s). */
  unavailableTimeoutMs?: number;
  /** Evaluates pool nodeSelectors; defaults to the datastore package's selector engine. */
  selectorMatcher?: SelectorMatcher;
  now?: () => number;
  random?: () => number;
}

export class Ipam {
  readonly #store: IpamStore;
  readonly #cache = new AffineBlockCache();
  readonly #allocator: Allocator;
  readonly #gc: GarbageCollector;
  readonly #releases: HandleReleaseRounds;

  constructor(datastore: Datastore, options: IpamOptions = {}) {
    this.#store = new IpamStore(
      datastore,
      options.logger ?? defaultLogger,
      {
        maxConflicts: options.maxConflicts ?? 100,
        unavailableTimeoutMs: options.unavailableTimeoutMs ?? 60_000,
        random: options.random ?? Math.random,
      },
      options.now ?? Date.now,
    );
    this.#allocator = new Allocator(
      this.#store,
      this.#cache,
      options.selectorMatcher ?? defaultSelectorMatcher(),
    );
    this.#gc = new GarbageCollector(this.#store);
    this.#releases = new HandleReleaseRounds(this.#store, this.#cache);
  }

  /** Datastore writes this instance has issued (for benchmarks and tests of the write budget). */
  get writeCount(): number {
    return this.#store.writes;
  }

  // --- allocation --------------------------------------------------------------------------------

  /**
   * Allocates num4 IPv4 and num6 IPv6 addresses for a handle on a node, all or nothing: if either
   * family cannot be served in full, whatever was taken is released and the call fails
   * (NoFreeAddress, BlockLimitReached, NoUsablePool…).
   */
  autoAssign(args: AutoAssignArgs): Promise<AutoAssignResult> {
    return this.#allocator.autoAssign(args);
  }

  /** Allocates one specific address (e.g. a tunnel address chosen elsewhere). */
  assignIP(args: AssignIpArgs): Promise<AssignedAddress> {
    return this.#allocator.assignIP(args);
  }

  // --- release and lookups -----------------------------------------------------------------------

  /** Releases addresses; each block is written once (CAS), then the affected handles. */
  releaseIPs(ips: readonly (string | ReleaseRequest)[]): Promise<ReleaseResult> {
    return releaseIPs(this.#store, this.#cache, ips);
  }

  /**
   * Releases every address of a handle (all-or-none per block) and deletes the handle. Releases of
   * one block that overlap share its next write.
   */
  releaseByHandle(handleId: string): Promise<string[]> {
    return releaseByHandle(this.#store, this.#releases, handleId);
  }

  /** Addresses a handle holds. */
  ipsByHandle(handleId: string): Promise<string[]> {
    return ipsByHandle(this.#store, handleId);
  }

  /** Who holds an address; undefined when it is not allocated. */
  getAssignmentAttributes(address: string): Promise<AssignmentAttributes | undefined> {
    return assignmentAttributes(this.#store, address);
  }

  // --- affinities --------------------------------------------------------------------------------

  /** Releases a node's affinity to one block (deleted if empty, else kept without affinity). */
  releaseAffinity(block: string, node: string, options: ReleaseAffinityOptions = {}): Promise<void> {
    return releaseNodeAffinity(this.#store, this.#cache, block, node, options);
  }

  /**
   * Releases every affinity of a node (the node went away). With mustBeEmpty, blocks that still
   * have allocations are kept and listed in `kept`.
   */
  releaseHostAffinities(
    node: string,
    options: ReleaseAffinityOptions = {},
  ): Promise<{ released: string[]; kept: string[] }> {
    return releaseHostAffinities(this.#store, this.#cache, node, options);
  }

  // --- reporting, configuration, maintenance -----------------------------------------------------

  /** Usage per pool and block (`calico ipam show`). */
  getUtilization(): Promise<PoolUtilization[]> {
    return utilization(this.#store);
  }

  /** Blocks in no current pool (their pool was deleted while they held addresses). */
  getBlocksOutsidePools(): Promise<BlockUtilization[]> {
    return blocksOutsidePools(this.#store);
  }

  /** Addresses allocated for a node other than the block's owner (`calico ipam show --show-borrowed`). */
  getBorrowedAddresses(): Promise<BorrowedReport> {
    return borrowedAddresses(this.#store);
  }

  /**
   * Who uses each allocated address (`calico ipam check`): allocations matched against
   * WorkloadEndpoints and Node tunnel addresses; leaked addresses and handles, in-use addresses
   * without allocation, blocks affine to nodes that no longer exist.
   */
  async auditOwnership(): Promise<OwnershipAudit> {
    const ds = this.#store.ds;
    return this.#store.retry('read IPAM data, nodes and workload endpoints', async () => {
      const [blocks, handles, pools, nodes, weps] = await Promise.all([
        this.#store.listBlocks(),
        this.#store.listHandles(),
        this.#store.listPools(),
        ds.list('Node'),
        ds.list('WorkloadEndpoint'),
      ]);
      return auditOwnership({ blocks, handles, pools, nodes: nodes.items, workloadEndpoints: weps.items });
    });
  }

  /**
   * Releases allocations a report found leaked, re-checking each first: an address something uses
   * now is refused, and one allocated again since (other handle or sequence number) is left alone.
   */
  async releaseLeaked(requests: readonly LeakReleaseRequest[]): Promise<LeakReleaseResult> {
    const audit = await this.auditOwnership();
    const result: LeakReleaseResult = { released: [], stillInUse: [], changed: [], notAllocated: [] };
    const toRelease: ReleaseRequest[] = [];
    for (const r of requests) {
      const now = audit.allocations[r.ip];
      if (!now) {
        result.notAllocated.push(r.ip);
        continue;
      }
      const owners = now.flatMap((a) => a.owners);
      if (owners.length > 0) {
        result.stillInUse.push({ ip: r.ip, owners });
        continue;
      }
      toRelease.push({
        address: r.ip,
        ...(r.sequenceNumber === undefined ? {} : { sequenceNumber: r.sequenceNumber }),
        ...(r.handle === undefined ? {} : { handleId: r.handle }),
      });
    }
    if (toRelease.length > 0) {
      const released = await this.releaseIPs(toRelease);
      result.released.push(...released.released);
      result.notAllocated.push(...released.notAllocated);
      result.changed.push(...released.rejected.map((x) => x.address));
    }
    return result;
  }

  /**
   * Deletes handle records a report found without allocations, each only if it is unchanged since
   * (same resourceVersion) and no allocation refers to it now.
   */
  async deleteLeakedHandles(handles: readonly HandleRecord[]): Promise<HandleDeleteResult> {
    const result: HandleDeleteResult = { deleted: [], skipped: [] };
    const blocks = await this.#store.retry('read blocks', () => this.#store.listBlocks());
    const referenced = new Set<string>();
    for (const b of blocks) {
      for (const idx of b.spec.allocations) {
        const id = idx === null ? undefined : b.spec.attributes[idx]?.handle_id;
        if (id) referenced.add(id);
      }
    }
    for (const h of handles) {
      const stored = await this.#store.retry(`read handle ${h.ID}`, () => this.#store.getHandle(h.ID));
      if (!stored) result.skipped.push({ id: h.ID, reason: 'missing' });
      else if (stored.metadata.resourceVersion !== h.Revision)
        result.skipped.push({ id: h.ID, reason: 'changed' });
      else if (referenced.has(h.ID)) result.skipped.push({ id: h.ID, reason: 'in use' });
      else {
        try {
          await this.#store.softDeleteHandle(stored);
          result.deleted.push(h.ID);
        } catch (err) {
          if (!isDatastoreError(err, 'Conflict') && !isDatastoreError(err, 'NotFound')) throw err;
          result.skipped.push({ id: h.ID, reason: 'changed' });
        }
      }
    }
    return result;
  }

  async getConfig(): Promise<IpamConfig> {
    return this.#store.retry('read IPAM configuration', () => this.#store.getConfig());
  }

  /** Changes strictAffinity / maxBlocksPerHost / autoAllocateBlocks (compare-and-swap on the singleton). */
  async setConfig(change: Partial<IpamConfig>): Promise<IpamConfig> {
    if (
      change.maxBlocksPerHost !== undefined &&
      !(Number.isInteger(change.maxBlocksPerHost) && change.maxBlocksPerHost >= 0)
    ) {
      throw new IpamError(
        'InvalidArgument',
        `maxBlocksPerHost must be an integer ≥ 0 (0 = unlimited), got ${change.maxBlocksPerHost}`,
      );
    }
    return this.#store.retry('update IPAM configuration', async () => this.#store.updateConfig(change));
  }

  /**
   * Finds allocations whose handle has no live owner and releases them once they have been seen
   * dead for gracePeriodMs; releases empty blocks after a cool-down. State (first-seen times) is
   * kept in this instance, so run gc() periodically from one long-lived instance.
   */
  gc(options: GcOptions): Promise<GcReport> {
    return this.#gc.run(
      options,
      (requests) => this.releaseIPs(requests),
      (cidr) => this.#cache.forgetBlock(cidr),
    );
  }

  /**
   * Audits the IPAM data: leaked addresses, handles that disagree with blocks, affinities of
   * nodes that no longer exist, blocks without their affinity. With `repair`, rewrites handles
   * from the blocks (the blocks are the truth).
   */
  async check(options: CheckOptions = {}): Promise<CheckReport> {
    const report = await this.#store.retry('read IPAM data', async () => {
      const [blocks, affinities, handles, nodes] = await Promise.all([
        this.#store.listBlocks(),
        this.#store.listAffinities(),
        this.#store.listHandles(),
        options.checkNodes === false ? Promise.resolve(undefined) : this.#store.listNodeNames(),
      ]);
      return checkConsistency({ blocks, affinities, handles, nodes });
    });
    if (options.repair) await repairHandles(this.#store, report);
    return report;
  }
}
