/**
 * Calico-compatible block IPAM over a Datastore (libcalico-go lib/ipam, design/ipam/*.md).
 *
 * The allocation path per node: (1) this node's affine blocks, from a per-instance cache whose
 * every use is a compare-and-swap against the version cached, (2) claim a new block (pending
 * affinity → block create → confirmed), (3) borrow single addresses from other nodes' blocks when
 * strictAffinity is off. Requests for one node that arrive while a round is being written are
 * served together in the next round: one block write carries all their allocations, so a burst
 * of pod starts costs about one handle write per pod plus a shared block write.
 *
 * Nothing is handed out twice because every address changes hands only through a CAS write of its
 * block; handles are written after blocks and derived from them (handles.ts).
 */
import type { Datastore } from '@calico-ts/datastore';
import {
  addressOf,
  allocateFromHead,
  allocateOrdinal,
  allocationSequence,
  attributeAt,
  type BlockSpec,
  freeCount,
  hostAffinity,
  inUseCount,
  type OrdinalRelease,
  ordinalOf,
  ordinalsOfHandle,
  releaseOrdinals,
  stampWrite,
} from './allocation-block.ts';
import {
  claimBlock,
  confirmAffinity,
  type ReleaseAffinityOptions,
  releaseBlockAffinity,
} from './block-affinity.ts';
import { blocksInOrder, fnv1_32 } from './block-order.ts';
import { blockCount, blockOf, formatCidr, formatIp, type IpFamily, parseCidr, parseIp } from './cidr.ts';
import { type CheckOptions, type CheckReport, checkConsistency, repairHandles } from './consistency-check.ts';
import { IpamError } from './errors.ts';
import { GarbageCollector, type GcOptions, type GcReport } from './garbage-collector.ts';
import { syncHandle } from './handles.ts';
import {
  defaultSelectorMatcher,
  eligiblePools,
  type IntendedUse,
  type IpPool,
  poolOf,
  type SelectorMatcher,
} from './ip-pools.ts';
import { type BlockResource, type IpamConfig, IpamStore } from './ipam-store.ts';
import { defaultLogger, type Logger } from './logger.ts';

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

export interface AutoAssignArgs {
  /** IPv4 addresses wanted (default 0). */
  num4?: number;
  /** IPv6 addresses wanted (default 0). */
  num6?: number;
  /** Owner of the addresses, e.g. `k8s-pod-network.<containerID>` or `ipip-tunnel-addr-<node>`. */
  handleId: string;
  /** Stored with each allocation (Calico: node, pod, namespace, timestamp). */
  attrs?: Record<string, string>;
  node: string;
  /** Pools to use, by name or CIDR, in order; otherwise every Automatic pool that serves the node. */
  pools?: readonly string[];
  /** Which pools may serve the request (pool spec.allowedUses); default Workload. */
  intendedUse?: IntendedUse;
}

export interface AssignedAddress {
  address: string;
  family: IpFamily;
  /** The address with its block's prefix length, as Calico returns it (`10.244.3.5/26`). */
  cidr: string;
  block: string;
  pool: string;
  handleId: string;
  /** Pass back to releaseIPs so a late release cannot free the address after it was reused. */
  sequenceNumber: number;
}

export interface AutoAssignResult {
  ipv4: AssignedAddress[];
  ipv6: AssignedAddress[];
}

export interface AssignIpArgs {
  ip: string;
  handleId: string;
  attrs?: Record<string, string>;
  node: string;
}

export interface ReleaseRequest {
  address: string;
  /** Release only if the allocation still carries this sequence number (from AssignedAddress). */
  sequenceNumber?: number;
  /** Release only if the address belongs to this handle. */
  handleId?: string;
}

export interface ReleaseResult {
  released: string[];
  /** Addresses that were not allocated (already free, or in no block). */
  notAllocated: string[];
  /** Allocated, but not released: reallocated since (BadSequenceNumber) or another handle's. */
  rejected: { address: string; reason: 'BadSequenceNumber' | 'OtherHandle' }[];
}

export interface AssignmentAttributes {
  address: string;
  block: string;
  handleId: string | undefined;
  attrs: Record<string, string>;
  sequenceNumber: number | undefined;
  /** The node the block is affine to, if any. */
  blockAffinity: string | undefined;
}

export interface BlockUtilization {
  cidr: string;
  /** `host:<node>`, or undefined for a block nobody is affine to. */
  affinity: string | undefined;
  capacity: number;
  inUse: number;
  free: number;
}

export interface PoolUtilization {
  name: string;
  cidr: string;
  blockSize: number;
  capacity: number;
  inUse: number;
  blocks: BlockUtilization[];
}

/** One autoAssign waiting for its node's next round. */
interface PendingRequest {
  args: AutoAssignArgs;
  need: Record<IpFamily, number>;
  got: Record<IpFamily, AssignedAddress[]>;
  /** Blocks written for this request, for the handle write. */
  touched: Map<string, BlockSpec>;
  failure: IpamError | Error | undefined;
  resolve: (r: AutoAssignResult) => void;
  reject: (e: unknown) => void;
}

/** What the instance knows about one node: its affine blocks and the queue of waiting requests. */
interface NodeState {
  /** Affine blocks by CIDR; undefined until first loaded. Never trusted: every write is CAS. */
  affine: Map<string, BlockResource> | undefined;
  queue: PendingRequest[];
  running: boolean;
}

export class Ipam {
  readonly #store: IpamStore;
  readonly #log: Logger;
  readonly #matcher: SelectorMatcher;
  readonly #nodes = new Map<string, NodeState>();
  readonly #gc: GarbageCollector;

  constructor(datastore: Datastore, options: IpamOptions = {}) {
    this.#log = options.logger ?? defaultLogger;
    this.#store = new IpamStore(
      datastore,
      this.#log,
      {
        maxConflicts: options.maxConflicts ?? 100,
        unavailableTimeoutMs: options.unavailableTimeoutMs ?? 60_000,
        random: options.random ?? Math.random,
      },
      options.now ?? Date.now,
    );
    this.#matcher = options.selectorMatcher ?? defaultSelectorMatcher();
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
    const num4 = args.num4 ?? 0;
    const num6 = args.num6 ?? 0;
    if (!Number.isInteger(num4) || !Number.isInteger(num6) || num4 < 0 || num6 < 0 || num4 + num6 === 0) {
      return Promise.reject(
        new IpamError(
          'InvalidArgument',
          `autoAssign needs num4 and/or num6 as non-negative integers, at least one > 0 (got ${num4}, ${num6})`,
        ),
      );
    }
    if (!args.handleId)
      return Promise.reject(new IpamError('InvalidArgument', 'autoAssign needs a handleId'));
    if (!args.node) return Promise.reject(new IpamError('InvalidArgument', 'autoAssign needs a node'));
    return new Promise((resolve, reject) => {
      const state = this.#nodeState(args.node);
      state.queue.push({
        args,
        need: { 4: num4, 6: num6 },
        got: { 4: [], 6: [] },
        touched: new Map(),
        failure: undefined,
        resolve,
        reject,
      });
      if (!state.running) void this.#drain(args.node, state);
    });
  }

  #nodeState(node: string): NodeState {
    let s = this.#nodes.get(node);
    if (!s) {
      s = { affine: undefined, queue: [], running: false };
      this.#nodes.set(node, s);
    }
    return s;
  }

  async #drain(node: string, state: NodeState): Promise<void> {
    state.running = true;
    try {
      while (state.queue.length > 0) {
        const batch = state.queue.splice(0);
        await this.#serveRound(node, state, batch);
      }
    } finally {
      state.running = false;
    }
  }

  /** One round: serve every waiting request of the node; never throws (each request settles). */
  async #serveRound(node: string, state: NodeState, batch: PendingRequest[]): Promise<void> {
    try {
      const [config, pools] = await this.#store.retry('read IPAM configuration and pools', () =>
        Promise.all([this.#store.getConfig(), this.#store.listPools()]),
      );
      let labels: Promise<Record<string, string>> | undefined;
      const nodeLabels = () => {
        labels ??= this.#store.retry(`read node ${node}`, () => this.#store.nodeLabels(node));
        return labels;
      };
      for (const family of [4, 6] as const) {
        // Requests naming the same pools for the same use share eligibility and one walk of blocks.
        const groups = new Map<string, PendingRequest[]>();
        for (const r of batch) {
          if (r.need[family] === 0 || r.failure) continue;
          const key = `${r.args.intendedUse ?? 'Workload'}|${(r.args.pools ?? []).join(',')}`;
          groups.set(key, [...(groups.get(key) ?? []), r]);
        }
        for (const group of groups.values()) {
          const first = group[0]!;
          try {
            const eligible = await eligiblePools(
              pools,
              { family, intendedUse: first.args.intendedUse ?? 'Workload', requested: first.args.pools },
              node,
              nodeLabels,
              this.#matcher,
            );
            await this.#allocate(node, state, family, eligible, config, group);
          } catch (err) {
            for (const r of group) r.failure ??= err as Error;
          }
        }
      }
    } catch (err) {
      for (const r of batch) r.failure ??= err as Error;
    }
    await Promise.all(batch.map((r) => this.#finish(r)));
  }

  /** Writes the request's handle, or undoes a partial allocation; then settles the request. */
  async #finish(r: PendingRequest): Promise<void> {
    try {
      if (!r.failure) {
        await syncHandle(this.#store, r.args.handleId, r.touched);
        r.resolve({ ipv4: r.got[4], ipv6: r.got[6] });
        return;
      }
      const taken = [...r.got[4], ...r.got[6]];
      if (taken.length > 0) {
        this.#log.info({ handle: r.args.handleId, count: taken.length }, 'releasing partial allocation');
        await this.releaseIPs(
          taken.map((a) => ({ address: a.address, sequenceNumber: a.sequenceNumber, handleId: a.handleId })),
        );
      }
      r.reject(r.failure);
    } catch (err) {
      r.reject(err);
    }
  }

  async #allocate(
    node: string,
    state: NodeState,
    family: IpFamily,
    pools: IpPool[],
    config: IpamConfig,
    requests: PendingRequest[],
  ): Promise<void> {
    const open = () => requests.filter((r) => r.need[family] > 0);
    const inPools = (cidr: string) => pools.find((p) => poolOf([p], family, parseCidr(cidr).base));

    const fromAffine = async () => {
      const affine = [...(state.affine?.values() ?? [])]
        .filter((b) => inPools(b.spec.cidr))
        .sort((a, b) => poolRank(pools, a, family) - poolRank(pools, b, family));
      for (const b of affine) {
        if (open().length === 0) return;
        if (freeCount(b.spec) === 0) continue;
        await this.#allocateInBlock(node, state, b, pools, open(), family, true);
      }
    };

    // 1. This node's blocks, from the cache (loaded on first use).
    let freshlyLoaded = false;
    if (state.affine === undefined) {
      await this.#loadAffine(node, state);
      freshlyLoaded = true;
    }
    await fromAffine();
    if (open().length === 0) return;
    // The cache may be behind (another instance of this node released addresses or claimed a
    // block): look again before claiming more.
    if (!freshlyLoaded) {
      await this.#loadAffine(node, state);
      await fromAffine();
      if (open().length === 0) return;
    }

    // 2. Claim new blocks.
    let limitHit = false;
    let claimable = true;
    if (config.autoAllocateBlocks) {
      while (open().length > 0) {
        const held = [...(state.affine?.values() ?? [])].filter(
          (b) => parseCidr(b.spec.cidr).family === family,
        ).length;
        if (config.maxBlocksPerHost > 0 && held >= config.maxBlocksPerHost) {
          limitHit = true;
          break;
        }
        const block = await this.#claimNext(node, pools);
        if (!block) {
          claimable = false;
          break;
        }
        state.affine?.set(block.spec.cidr, block);
        await this.#allocateInBlock(node, state, block, pools, open(), family, true);
      }
    }

    // 3. Borrow from other nodes' blocks.
    if (open().length > 0 && !config.strictAffinity) {
      const blocks = (
        await this.#store.retry('list blocks to borrow from', () => this.#store.listBlocks())
      ).filter(
        (b) => b.spec.affinity !== hostAffinity(node) && freeCount(b.spec) > 0 && inPools(b.spec.cidr),
      );
      // Start at a node-specific point so borrowers spread over the blocks.
      const start = blocks.length > 0 ? fnv1_32(node) % blocks.length : 0;
      for (let i = 0; i < blocks.length && open().length > 0; i++) {
        await this.#allocateInBlock(
          node,
          state,
          blocks[(start + i) % blocks.length]!,
          pools,
          open(),
          family,
          false,
        );
      }
    }

    if (open().length === 0) return;
    const err = await this.#shortfallError(node, family, pools, config, limitHit, claimable);
    for (const r of open()) r.failure ??= err;
  }

  async #shortfallError(
    node: string,
    family: IpFamily,
    pools: IpPool[],
    config: IpamConfig,
    limitHit: boolean,
    claimable: boolean,
  ): Promise<IpamError> {
    const blocks = await this.#store.listBlocks().catch(() => []);
    const describe = pools
      .map((p) => {
        const claimed = blocks.filter((b) => poolOf([p], family, parseCidr(b.spec.cidr).base)).length;
        return `${p.cidrText}: ${claimed} of ${blockCount(p.cidr, p.blockSize)} blocks claimed`;
      })
      .join('; ');
    const pool =
      pools.length === 1 ? `pool ${pools[0]!.cidrText}` : `pools ${pools.map((p) => p.cidrText).join(', ')}`;
    const borrowing = config.strictAffinity
      ? 'borrowing disabled (strictAffinity)'
      : 'no free address to borrow in other nodes\u2019 blocks';
    if (limitHit) {
      return new IpamError(
        'BlockLimitReached',
        `no free address in ${pool} for node ${node}: the node holds maxBlocksPerHost=${config.maxBlocksPerHost} IPv${family} blocks and they are full, ${borrowing}; raise maxBlocksPerHost or release addresses`,
      );
    }
    const claims = !config.autoAllocateBlocks
      ? 'claiming blocks disabled (autoAllocateBlocks: false)'
      : claimable
        ? 'claiming stopped'
        : describe;
    return new IpamError(
      'NoFreeAddress',
      `no free address in ${pool} for node ${node}: ${claims}, ${borrowing}; add an IP pool or release addresses`,
    );
  }

  /** (Re)loads the node's affine blocks: its confirmed affinities and their blocks. */
  async #loadAffine(node: string, state: NodeState): Promise<void> {
    const affinities = await this.#store.retry(`list affinities of ${node}`, () =>
      this.#store.listAffinities(node),
    );
    const mine = hostAffinity(node);
    const loaded = new Map<string, BlockResource>();
    await Promise.all(
      affinities.map(async (a) => {
        if (a.spec.state === 'pendingDeletion') return;
        const block = await this.#store.retry(`read block ${a.spec.cidr}`, () =>
          this.#store.getBlock(a.spec.cidr),
        );
        if (block?.spec.affinity !== mine) return;
        // A pending affinity whose block is ours is a claim that died before confirming: finish it.
        if (a.spec.state === 'pending') await confirmAffinity(this.#store, a);
        loaded.set(block.spec.cidr, block);
      }),
    );
    state.affine = loaded;
  }

  /** The next block this node may claim in the pools (in its own random order), claimed; or undefined. */
  async #claimNext(node: string, pools: IpPool[]): Promise<BlockResource | undefined> {
    const existing = new Set(
      (await this.#store.retry('list blocks', () => this.#store.listBlocks())).map((b) => b.spec.cidr),
    );
    for (const pool of pools) {
      for (const c of blocksInOrder(pool.cidr, pool.blockSize, node)) {
        const cidr = formatCidr(c);
        if (existing.has(cidr)) continue;
        const block = await claimBlock(this.#store, node, cidr);
        if (block) return block;
        existing.add(cidr);
      }
    }
    return undefined;
  }

  /**
   * Gives the open requests as many addresses from one block as it has, in one CAS write.
   * With `affine`, the block must still be this node's (else it leaves the cache).
   */
  async #allocateInBlock(
    node: string,
    state: NodeState,
    cached: BlockResource,
    pools: IpPool[],
    requests: PendingRequest[],
    family: IpFamily,
    affine: boolean,
  ): Promise<void> {
    const cidr = cached.spec.cidr;
    const mine = hostAffinity(node);
    let plan: { request: PendingRequest; ordinals: number[] }[] = [];
    let planSeq = -1;
    const written = await this.#store.retry(`allocate in block ${cidr}`, async (a) => {
      const current = a.n === 0 ? cached : await this.#store.getBlock(cidr);
      // After a lost answer, our write may have landed: recognise it by handle and sequence number.
      if (a.ambiguous && current && plan.length > 0 && planApplied(current.spec, plan, planSeq))
        return current;
      if (!current || (affine && current.spec.affinity !== mine)) {
        state.affine?.delete(cidr);
        plan = [];
        return undefined;
      }
      const spec = structuredClone(current.spec);
      plan = [];
      for (const r of requests) {
        const ordinals = allocateFromHead(spec, r.need[family], r.args.handleId, r.args.attrs);
        if (ordinals.length > 0) plan.push({ request: r, ordinals });
      }
      if (plan.length === 0) {
        if (affine) state.affine?.set(cidr, current);
        return undefined;
      }
      planSeq = current.spec.sequenceNumber;
      stampWrite(spec);
      return this.#store.updateBlock(current, spec);
    });
    if (!written || plan.length === 0) return;
    if (affine || written.spec.affinity === mine) state.affine?.set(cidr, written);
    const pool = poolOf(pools, family, parseCidr(cidr).base)!;
    const prefix = parseCidr(cidr).prefix;
    for (const { request, ordinals } of plan) {
      request.need[family] -= ordinals.length;
      request.touched.set(cidr, written.spec);
      for (const ord of ordinals) {
        const address = addressOf(written.spec, ord);
        request.got[family].push({
          address,
          family,
          cidr: `${address}/${prefix}`,
          block: cidr,
          pool: pool.name,
          handleId: request.args.handleId,
          sequenceNumber: planSeq,
        });
      }
    }
    // Touched blocks of earlier rounds for the same request must carry the latest spec too.
    for (const r of requests) if (r.touched.has(cidr)) r.touched.set(cidr, written.spec);
  }

  /** Allocates one specific address (e.g. a tunnel address chosen elsewhere). */
  async assignIP(args: AssignIpArgs): Promise<AssignedAddress> {
    const ip = parseIp(args.ip);
    const pools = await this.#store.retry('list pools', () => this.#store.listPools());
    const pool = poolOf(pools, ip.family, ip.value);
    if (!pool) {
      throw new IpamError(
        'AddressNotInPool',
        `${args.ip} is in no IP pool; create a pool containing it first`,
      );
    }
    const config = await this.#store.retry('read IPAM configuration', () => this.#store.getConfig());
    const cidr = formatCidr(blockOf(ip.family, ip.value, pool.blockSize));
    const mine = hostAffinity(args.node);
    let planSeq = -1;
    const written = await this.#store.retry(`assign ${args.ip}`, async (a) => {
      let block = await this.#store.getBlock(cidr);
      if (block && a.ambiguous && planSeq >= 0) {
        const ord = ordinalOf(block.spec, ip.family, ip.value)!;
        if (
          attributeAt(block.spec, ord)?.handle_id === args.handleId &&
          allocationSequence(block.spec, ord) === planSeq
        ) {
          return block;
        }
      }
      if (!block) {
        block = await claimBlock(this.#store, args.node, cidr);
        if (!block) block = await this.#store.getBlock(cidr); // claimed by another node just now
        if (!block)
          throw new IpamError(
            'TooManyConflicts',
            `assign ${args.ip}: block ${cidr} keeps disappearing; retry`,
          );
        if (block.spec.affinity === mine) this.#nodeState(args.node).affine?.set(cidr, block);
      }
      if (config.strictAffinity && block.spec.affinity !== mine) {
        throw new IpamError(
          'NotAffine',
          `${args.ip} is in block ${cidr} affine to ${block.spec.affinity ?? 'no node'}, and strictAffinity forbids node ${args.node} to use it; assign it on that node or turn strictAffinity off`,
        );
      }
      const spec = structuredClone(block.spec);
      const ord = ordinalOf(spec, ip.family, ip.value)!;
      if (!allocateOrdinal(spec, ord, args.handleId, args.attrs)) {
        const holder = attributeAt(spec, ord)?.handle_id;
        throw new IpamError(
          'AddressInUse',
          `${args.ip} is already allocated (handle ${holder ?? 'none'}); release it first or pick another address`,
        );
      }
      planSeq = block.spec.sequenceNumber;
      stampWrite(spec);
      return this.#store.updateBlock(block, spec);
    });
    if (written.spec.affinity === mine) this.#nodeState(args.node).affine?.set(cidr, written);
    await syncHandle(this.#store, args.handleId, new Map([[cidr, written.spec]]));
    const address = formatIp(ip.value, ip.family);
    return {
      address,
      family: ip.family,
      cidr: `${address}/${pool.blockSize}`,
      block: cidr,
      pool: pool.name,
      handleId: args.handleId,
      sequenceNumber: planSeq,
    };
  }

  // --- release -----------------------------------------------------------------------------------

  /** Releases addresses; each block is written once (CAS), then the affected handles. */
  async releaseIPs(ips: readonly (string | ReleaseRequest)[]): Promise<ReleaseResult> {
    const result: ReleaseResult = { released: [], notAllocated: [], rejected: [] };
    const requests = ips.map((x) => (typeof x === 'string' ? { address: x } : x));
    const byBlock = await this.#locateBlocks(requests.map((r) => r.address));
    const handleBlocks = new Map<string, Map<string, BlockSpec>>();
    for (const r of requests) if (!byBlock.has(r.address)) result.notAllocated.push(r.address);
    const perBlock = new Map<string, ReleaseRequest[]>();
    for (const r of requests) {
      const cidr = byBlock.get(r.address);
      if (cidr) perBlock.set(cidr, [...(perBlock.get(cidr) ?? []), r]);
    }
    await Promise.all(
      [...perBlock].map(async ([cidr, reqs]) => {
        const outcome = await this.#releaseInBlock(cidr, reqs);
        result.released.push(...outcome.released);
        result.notAllocated.push(...outcome.notAllocated);
        result.rejected.push(...outcome.rejected);
        for (const h of outcome.handles) {
          if (h === undefined) continue;
          const m = handleBlocks.get(h) ?? new Map<string, BlockSpec>();
          if (outcome.spec) m.set(cidr, outcome.spec);
          handleBlocks.set(h, m);
        }
      }),
    );
    await Promise.all([...handleBlocks].map(([h, blocks]) => syncHandle(this.#store, h, blocks)));
    return result;
  }

  async #releaseInBlock(
    cidr: string,
    requests: readonly ReleaseRequest[],
  ): Promise<ReleaseResult & { handles: Set<string | undefined>; spec: BlockSpec | undefined }> {
    const ords = new Map<number, ReleaseRequest>();
    let pinned: OrdinalRelease[] | undefined;
    let lastOutcome: ReturnType<typeof releaseOrdinals> | undefined;
    let spec: BlockSpec | undefined;
    await this.#store.retry(`release addresses in ${cidr}`, async (a) => {
      const block = await this.#store.getBlock(cidr);
      if (!block) {
        lastOutcome = undefined;
        return;
      }
      if (!pinned) {
        // Pin each release to the allocation seen now (its sequence number), so a retry after a
        // lost answer cannot free the address if it was released and handed out again meanwhile.
        pinned = requests.map((r) => {
          const ip = parseIp(r.address);
          const ordinal = ordinalOf(block.spec, ip.family, ip.value)!;
          ords.set(ordinal, r);
          const seq = r.sequenceNumber ?? allocationSequence(block.spec, ordinal);
          return {
            ordinal,
            ...(seq === undefined ? {} : { sequenceNumber: seq }),
            ...(r.handleId === undefined ? {} : { handleId: r.handleId }),
          };
        });
      }
      const next = structuredClone(block.spec);
      const outcome = releaseOrdinals(next, pinned);
      if (a.ambiguous && lastOutcome && outcome.released.length === 0) {
        // Our previous write landed: keep its outcome.
        spec = block.spec;
        return;
      }
      lastOutcome = outcome;
      spec = block.spec;
      if (outcome.released.length === 0) return;
      stampWrite(next);
      const written = await this.#store.updateBlock(block, next);
      spec = written.spec;
      // Keep the affine-block cache current so the next allocation's CAS does not fail on it.
      for (const s of this.#nodes.values()) if (s.affine?.has(cidr)) s.affine.set(cidr, written);
    });
    const addr = (o: number) => ords.get(o)!.address;
    const o = lastOutcome;
    if (!o) {
      return {
        released: [],
        notAllocated: requests.map((r) => r.address),
        rejected: [],
        handles: new Set(),
        spec,
      };
    }
    return {
      released: o.released.map(addr),
      notAllocated: o.notAllocated.map(addr),
      rejected: [
        ...o.badSequence.map((x) => ({ address: addr(x), reason: 'BadSequenceNumber' as const })),
        ...o.otherHandle.map((x) => ({ address: addr(x), reason: 'OtherHandle' as const })),
      ],
      handles: new Set(o.handles.values()),
      spec,
    };
  }

  /** Block CIDR of each address that lies in an existing block. */
  async #locateBlocks(addresses: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const pools = await this.#store.retry('list pools', () => this.#store.listPools());
    let blocks: BlockResource[] | undefined;
    for (const address of addresses) {
      const ip = parseIp(address);
      const pool = poolOf(pools, ip.family, ip.value);
      if (pool) {
        out.set(address, formatCidr(blockOf(ip.family, ip.value, pool.blockSize)));
        continue;
      }
      // The pool may be gone while its blocks remain: find the block itself.
      blocks ??= await this.#store.retry('list blocks', () => this.#store.listBlocks());
      const b = blocks.find((x) => ordinalOf(x.spec, ip.family, ip.value) !== undefined);
      if (b) out.set(address, b.spec.cidr);
    }
    return out;
  }

  /** Releases every address of a handle (all-or-none per block) and deletes the handle. */
  async releaseByHandle(handleId: string): Promise<string[]> {
    const cidrs = await this.#blocksOfHandle(handleId);
    const released: string[] = [];
    const touched = new Map<string, BlockSpec | undefined>();
    await Promise.all(
      cidrs.map(async (cidr) => {
        const block = await this.#store.retry(`read block ${cidr}`, () => this.#store.getBlock(cidr));
        if (!block) {
          touched.set(cidr, undefined);
          return;
        }
        const addrs = ordinalsOfHandle(block.spec, handleId).map((o) => ({
          address: addressOf(block.spec, o),
          handleId,
        }));
        if (addrs.length === 0) {
          touched.set(cidr, undefined);
          return;
        }
        const outcome = await this.#releaseInBlock(cidr, addrs);
        released.push(...outcome.released);
        touched.set(cidr, outcome.spec);
      }),
    );
    await syncHandle(this.#store, handleId, touched);
    return released;
  }

  /** Blocks a handle is recorded in; a missing handle means scanning blocks (an allocation whose handle write was lost). */
  async #blocksOfHandle(handleId: string): Promise<string[]> {
    const handle = await this.#store.retry(`read handle ${handleId}`, () => this.#store.getHandle(handleId));
    if (handle) return Object.keys(handle.spec.block);
    const blocks = await this.#store.retry('list blocks', () => this.#store.listBlocks());
    return blocks.filter((b) => ordinalsOfHandle(b.spec, handleId).length > 0).map((b) => b.spec.cidr);
  }

  /** Addresses a handle holds. */
  async ipsByHandle(handleId: string): Promise<string[]> {
    const cidrs = await this.#blocksOfHandle(handleId);
    const out: string[] = [];
    for (const cidr of cidrs) {
      const block = await this.#store.retry(`read block ${cidr}`, () => this.#store.getBlock(cidr));
      if (block) out.push(...ordinalsOfHandle(block.spec, handleId).map((o) => addressOf(block.spec, o)));
    }
    return out;
  }

  /** Who holds an address; undefined when it is not allocated. */
  async getAssignmentAttributes(address: string): Promise<AssignmentAttributes | undefined> {
    const ip = parseIp(address);
    const cidr = (await this.#locateBlocks([address])).get(address);
    if (!cidr) return undefined;
    const block = await this.#store.retry(`read block ${cidr}`, () => this.#store.getBlock(cidr));
    if (!block) return undefined;
    const ord = ordinalOf(block.spec, ip.family, ip.value)!;
    const attr = attributeAt(block.spec, ord);
    if (!attr) return undefined;
    return {
      address: addressOf(block.spec, ord),
      block: cidr,
      handleId: attr.handle_id,
      attrs: { ...(attr.secondary ?? {}) },
      sequenceNumber: allocationSequence(block.spec, ord),
      blockAffinity: block.spec.affinity,
    };
  }

  // --- affinities --------------------------------------------------------------------------------

  /** Releases a node's affinity to one block (deleted if empty, else kept without affinity). */
  async releaseAffinity(block: string, node: string, options: ReleaseAffinityOptions = {}): Promise<void> {
    const cidr = formatCidr(parseCidr(block, { requireMasked: true }));
    try {
      await releaseBlockAffinity(this.#store, node, cidr, options);
    } finally {
      this.#nodes.get(node)?.affine?.delete(cidr);
    }
  }

  /**
   * Releases every affinity of a node (the node went away). With mustBeEmpty, blocks that still
   * have allocations are kept and listed in `kept`.
   */
  async releaseHostAffinities(
    node: string,
    options: ReleaseAffinityOptions = {},
  ): Promise<{ released: string[]; kept: string[] }> {
    const affinities = await this.#store.retry(`list affinities of ${node}`, () =>
      this.#store.listAffinities(node),
    );
    const released: string[] = [];
    const kept: string[] = [];
    for (const a of affinities) {
      try {
        await this.releaseAffinity(a.spec.cidr, node, options);
        released.push(a.spec.cidr);
      } catch (err) {
        if (!(err instanceof IpamError && err.code === 'BlockNotEmpty')) throw err;
        kept.push(a.spec.cidr);
      }
    }
    this.#nodes.delete(node);
    return { released, kept };
  }

  // --- reporting, configuration, maintenance -----------------------------------------------------

  /** Usage per pool and block (`calico ipam show`). */
  async getUtilization(): Promise<PoolUtilization[]> {
    const [pools, blocks] = await this.#store.retry('read pools and blocks', () =>
      Promise.all([this.#store.listPools(), this.#store.listBlocks()]),
    );
    return pools.map((p) => {
      const mine = blocks
        .filter((b) => poolOf([p], p.cidr.family, parseCidr(b.spec.cidr).base))
        .map((b) => ({
          cidr: b.spec.cidr,
          affinity: b.spec.affinity,
          capacity: b.spec.allocations.length,
          inUse: inUseCount(b.spec),
          free: freeCount(b.spec),
        }))
        .sort((a, b) => (parseCidr(a.cidr).base < parseCidr(b.cidr).base ? -1 : 1));
      return {
        name: p.name,
        cidr: p.cidrText,
        blockSize: p.blockSize,
        capacity: Number(1n << BigInt((p.cidr.family === 4 ? 32 : 128) - p.cidr.prefix)),
        inUse: mine.reduce((n, b) => n + b.inUse, 0),
        blocks: mine,
      };
    });
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
      (cidr) => {
        for (const s of this.#nodes.values()) s.affine?.delete(cidr);
      },
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

function poolRank(pools: IpPool[], b: BlockResource, family: IpFamily): number {
  const base = parseCidr(b.spec.cidr).base;
  const i = pools.findIndex((p) => poolOf([p], family, base));
  return i < 0 ? pools.length : i;
}

function planApplied(
  spec: BlockSpec,
  plan: { request: PendingRequest; ordinals: number[] }[],
  seq: number,
): boolean {
  return plan.every(({ request, ordinals }) =>
    ordinals.every(
      (o) => attributeAt(spec, o)?.handle_id === request.args.handleId && allocationSequence(spec, o) === seq,
    ),
  );
}
