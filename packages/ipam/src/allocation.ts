/**
 * Handing out addresses (libcalico-go ipam `AutoAssign` / `AssignIP`). Per node, in order:
 * (1) the node's affine blocks, from the instance's cache whose every use is a compare-and-swap
 * against the version cached, (2) claim a new block (pending affinity → block create →
 * confirmed), (3) borrow single addresses from other nodes' blocks when strictAffinity is off.
 *
 * Requests for one node that arrive while a round is being written are served together in the
 * next round: one block write carries all their allocations, so a burst of pod starts costs about
 * one handle write per pod plus a shared block write. Handles are written after their blocks.
 */
import { formatIp, formatMaskedCidr, type IpFamily, type ParsedIp } from '@calico-ts/datastore';
import type { AffineBlockCache } from './affine-blocks.ts';
import {
  addressOf,
  allocateFromHead,
  allocateOrdinal,
  allocationSequence,
  attributeAt,
  type BlockSpec,
  freeCount,
  hostAffinity,
  ordinalOf,
  stampWrite,
} from './allocation-block.ts';
import { claimBlock, claimNextBlock, loadAffineBlocks } from './block-affinity.ts';
import { fnv1_32 } from './block-order.ts';
import { blockCount, blockOf, cidrFromText, firstIp, ipFromText } from './cidr.ts';
import { IpamError } from './errors.ts';
import { syncHandle } from './handles.ts';
import { eligiblePools, type IntendedUse, type IpPool, poolOf, type SelectorMatcher } from './ip-pools.ts';
import type { BlockResource, IpamConfig, IpamStore } from './ipam-store.ts';
import { releaseIPs } from './release.ts';

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

/** The requests waiting for one node's next round. */
interface NodeQueue {
  waiting: PendingRequest[];
  running: boolean;
}

export class Allocator {
  readonly #store: IpamStore;
  readonly #cache: AffineBlockCache;
  readonly #matcher: SelectorMatcher;
  readonly #queues = new Map<string, NodeQueue>();

  constructor(store: IpamStore, cache: AffineBlockCache, matcher: SelectorMatcher) {
    this.#store = store;
    this.#cache = cache;
    this.#matcher = matcher;
  }

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
      const queue = this.#queueOf(args.node);
      queue.waiting.push({
        args,
        need: { 4: num4, 6: num6 },
        got: { 4: [], 6: [] },
        touched: new Map(),
        failure: undefined,
        resolve,
        reject,
      });
      if (!queue.running) void this.#drain(args.node, queue);
    });
  }

  #queueOf(node: string): NodeQueue {
    let q = this.#queues.get(node);
    if (!q) {
      q = { waiting: [], running: false };
      this.#queues.set(node, q);
    }
    return q;
  }

  async #drain(node: string, queue: NodeQueue): Promise<void> {
    queue.running = true;
    try {
      while (queue.waiting.length > 0) {
        const batch = queue.waiting.splice(0);
        await this.#serveRound(node, batch);
      }
    } finally {
      queue.running = false;
    }
  }

  /** One round: serve every waiting request of the node; never throws (each request settles). */
  async #serveRound(node: string, batch: PendingRequest[]): Promise<void> {
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
            await this.#allocate(node, family, eligible, config, group);
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
        this.#store.log.info(
          { handle: r.args.handleId, count: taken.length },
          'releasing partial allocation',
        );
        await releaseIPs(
          this.#store,
          this.#cache,
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
    family: IpFamily,
    pools: IpPool[],
    config: IpamConfig,
    requests: PendingRequest[],
  ): Promise<void> {
    const open = () => requests.filter((r) => r.need[family] > 0);
    const inPools = (cidr: string) => poolOf(pools, firstIp(cidrFromText(cidr)));

    const fromAffine = async () => {
      const affine = [...(this.#cache.of(node)?.values() ?? [])]
        .filter((b) => inPools(b.spec.cidr))
        .sort((a, b) => poolRank(pools, a) - poolRank(pools, b));
      for (const b of affine) {
        if (open().length === 0) return;
        if (freeCount(b.spec) === 0) continue;
        await this.#allocateInBlock(node, b, pools, open(), family, true);
      }
    };

    // 1. This node's blocks, from the cache (loaded on first use).
    let freshlyLoaded = false;
    if (this.#cache.of(node) === undefined) {
      this.#cache.load(node, await loadAffineBlocks(this.#store, node));
      freshlyLoaded = true;
    }
    await fromAffine();
    if (open().length === 0) return;
    // The cache may be behind (another instance of this node released addresses or claimed a
    // block): look again before claiming more.
    if (!freshlyLoaded) {
      this.#cache.load(node, await loadAffineBlocks(this.#store, node));
      await fromAffine();
      if (open().length === 0) return;
    }

    // 2. Claim new blocks.
    let limitHit = false;
    let claimable = true;
    if (config.autoAllocateBlocks) {
      while (open().length > 0) {
        const held = [...(this.#cache.of(node)?.values() ?? [])].filter(
          (b) => cidrFromText(b.spec.cidr).family === family,
        ).length;
        if (config.maxBlocksPerHost > 0 && held >= config.maxBlocksPerHost) {
          limitHit = true;
          break;
        }
        const block = await claimNextBlock(this.#store, node, pools);
        if (!block) {
          claimable = false;
          break;
        }
        this.#cache.set(node, block);
        await this.#allocateInBlock(node, block, pools, open(), family, true);
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
        await this.#allocateInBlock(node, blocks[(start + i) % blocks.length]!, pools, open(), family, false);
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
        const claimed = blocks.filter((b) => poolOf([p], firstIp(cidrFromText(b.spec.cidr)))).length;
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

  /**
   * Gives the open requests as many addresses from one block as it has, in one CAS write.
   * With `affine`, the block must still be this node's (else it leaves the cache).
   */
  async #allocateInBlock(
    node: string,
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
        this.#cache.delete(node, cidr);
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
        if (affine) this.#cache.set(node, current);
        return undefined;
      }
      planSeq = current.spec.sequenceNumber;
      stampWrite(spec);
      return this.#store.updateBlock(current, spec);
    });
    if (!written || plan.length === 0) return;
    if (affine || written.spec.affinity === mine) this.#cache.set(node, written);
    const blockCidr = cidrFromText(cidr);
    const pool = poolOf(pools, firstIp(blockCidr))!;
    for (const { request, ordinals } of plan) {
      request.need[family] -= ordinals.length;
      request.touched.set(cidr, written.spec);
      for (const ord of ordinals) {
        const address = addressOf(written.spec, ord);
        request.got[family].push({
          address,
          family,
          cidr: `${address}/${blockCidr.prefixLength}`,
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
    const ip = ipFromText(args.ip);
    const pools = await this.#store.retry('list pools', () => this.#store.listPools());
    const pool = poolOf(pools, ip);
    if (!pool) {
      throw new IpamError(
        'AddressNotInPool',
        `${args.ip} is in no IP pool; create a pool containing it first`,
      );
    }
    const config = await this.#store.retry('read IPAM configuration', () => this.#store.getConfig());
    const cidr = formatMaskedCidr(blockOf(ip, pool.blockSize));
    const mine = hostAffinity(args.node);
    let planSeq = -1;
    const written = await this.#store.retry(`assign ${args.ip}`, async (a) => {
      let block = await this.#store.getBlock(cidr);
      if (block && a.ambiguous && planSeq >= 0) {
        const ord = ordinalOf(block.spec, ip)!;
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
        if (block.spec.affinity === mine) this.#cache.set(args.node, block);
      }
      if (config.strictAffinity && block.spec.affinity !== mine) {
        throw new IpamError(
          'NotAffine',
          `${args.ip} is in block ${cidr} affine to ${block.spec.affinity ?? 'no node'}, and strictAffinity forbids node ${args.node} to use it; assign it on that node or turn strictAffinity off`,
        );
      }
      const spec = structuredClone(block.spec);
      const ord = ordinalOf(spec, ip)!;
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
    if (written.spec.affinity === mine) this.#cache.set(args.node, written);
    await syncHandle(this.#store, args.handleId, new Map([[cidr, written.spec]]));
    const address = formatIp(ip.family, ip.value);
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
}

/** Position of the block's pool in the caller's pool order (blocks of earlier pools first). */
function poolRank(pools: IpPool[], b: BlockResource): number {
  const first: ParsedIp = firstIp(cidrFromText(b.spec.cidr));
  const i = pools.findIndex((p) => poolOf([p], first));
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
