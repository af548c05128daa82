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
import type { Datastore } from '@calico-ts/datastore';
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
import { type ReleaseRequest, type ReleaseResult, releaseByHandle, releaseIPs } from './release.ts';
import { type PoolUtilization, utilization } from './utilization.ts';

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

  /** Releases every address of a handle (all-or-none per block) and deletes the handle. */
  releaseByHandle(handleId: string): Promise<string[]> {
    return releaseByHandle(this.#store, this.#cache, handleId);
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
