/** Usage per pool and block, as `calico ipam show` prints it. */
import { cidrSize } from '@calico-ts/datastore';
import { addressOf, freeCount, inUseCount } from './allocation-block.ts';
import { cidrFromText, firstIp } from './cidr.ts';
import { poolOf } from './ip-pools.ts';
import type { BlockResource, IpamStore } from './ipam-store.ts';

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

export async function utilization(store: IpamStore): Promise<PoolUtilization[]> {
  return (await usage(store)).pools;
}

/**
 * Blocks that lie in no current pool (their pool was deleted while they held addresses), which
 * `calico ipam show --show-blocks` lists after the pools.
 */
export async function blocksOutsidePools(store: IpamStore): Promise<BlockUtilization[]> {
  return (await usage(store)).outside;
}

async function usage(store: IpamStore): Promise<{ pools: PoolUtilization[]; outside: BlockUtilization[] }> {
  const [pools, blocks] = await store.retry('read pools and blocks', () =>
    Promise.all([store.listPools(), store.listBlocks()]),
  );
  const located = blocks
    .map((b) => ({ block: b, first: firstIp(cidrFromText(b.spec.cidr)) }))
    .sort((a, b) => (a.first.value < b.first.value ? -1 : a.first.value > b.first.value ? 1 : 0));
  const row = (b: BlockResource): BlockUtilization => ({
    cidr: b.spec.cidr,
    affinity: b.spec.affinity,
    capacity: b.spec.allocations.length,
    inUse: inUseCount(b.spec),
    free: freeCount(b.spec),
  });
  const outside = located.filter(({ first }) => !poolOf(pools, first)).map(({ block }) => row(block));
  return {
    outside,
    pools: pools.map((p) => {
      const mine = located.filter(({ first }) => poolOf([p], first)).map(({ block }) => row(block));
      return {
        name: p.name,
        cidr: p.cidrText,
        blockSize: p.blockSize,
        capacity: Number(cidrSize(p.cidr)),
        inUse: mine.reduce((n, b) => n + b.inUse, 0),
        blocks: mine,
      };
    }),
  };
}

/** An address allocated for a node other than the block's owner (calicoctl `ipam show --show-borrowed`). */
export interface BorrowedAddress {
  address: string;
  /** The node the allocation was made for (its `node` attribute). */
  borrowingNode: string;
  block: string;
  /** The node the block is affine to; empty for a block without affinity. */
  blockOwner: string;
  /** `pod` for a pod's address, else the allocation's `type` attribute (e.g. `vxlanTunnelAddress`). */
  type: string;
  /** `<namespace>/<pod>` for a pod's address. */
  allocatedTo: string;
}

export interface BorrowedReport {
  borrowed: BorrowedAddress[];
  /** Allocations without a `node` attribute, which cannot be told borrowed or not. */
  unclassified: number;
}

export async function borrowedAddresses(store: IpamStore): Promise<BorrowedReport> {
  const blocks = await store.retry('read blocks', () => store.listBlocks());
  const report: BorrowedReport = { borrowed: [], unclassified: 0 };
  for (const b of blocks) {
    const spec = b.spec;
    const owner = spec.affinity?.replace(/^host:/, '') ?? '';
    spec.allocations.forEach((idx, ord) => {
      if (idx === null) return;
      const extra = spec.attributes[idx]?.secondary ?? {};
      const node = extra['node'];
      if (!node) {
        report.unclassified++;
        return;
      }
      if (node === owner) return;
      const pod = extra['pod'];
      report.borrowed.push({
        address: addressOf(spec, ord),
        borrowingNode: node,
        block: spec.cidr,
        blockOwner: owner,
        type: pod ? 'pod' : (extra['type'] ?? ''),
        allocatedTo: pod ? `${extra['namespace'] ?? ''}/${pod}` : '',
      });
    });
  }
  return report;
}
