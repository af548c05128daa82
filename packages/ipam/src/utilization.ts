/** Usage per pool and block, as `calico ipam show` prints it. */
import { cidrSize } from '@calico-ts/datastore';
import { freeCount, inUseCount } from './allocation-block.ts';
import { cidrFromText, firstIp } from './cidr.ts';
import { poolOf } from './ip-pools.ts';
import type { IpamStore } from './ipam-store.ts';

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
  const [pools, blocks] = await store.retry('read pools and blocks', () =>
    Promise.all([store.listPools(), store.listBlocks()]),
  );
  return pools.map((p) => {
    const mine = blocks
      .map((b) => ({ block: b, first: firstIp(cidrFromText(b.spec.cidr)) }))
      .filter(({ first }) => poolOf([p], first))
      .sort((a, b) => (a.first.value < b.first.value ? -1 : 1))
      .map(({ block: b }) => ({
        cidr: b.spec.cidr,
        affinity: b.spec.affinity,
        capacity: b.spec.allocations.length,
        inUse: inUseCount(b.spec),
        free: freeCount(b.spec),
      }));
    return {
      name: p.name,
      cidr: p.cidrText,
      blockSize: p.blockSize,
      capacity: Number(cidrSize(p.cidr)),
      inUse: mine.reduce((n, b) => n + b.inUse, 0),
      blocks: mine,
    };
  });
}
