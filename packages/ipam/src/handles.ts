/**
 * IPAMHandle bookkeeping. A handle records how many addresses it holds in each block; the blocks
 * are the truth. Blocks are always written first, then the handle is set to the count the block
 * now shows, not incremented: so a handle write replayed after a lost answer, or raced by another
 * writer of the same handle, converges on the right number instead of double counting.
 */
import { type BlockSpec, countsByHandle } from './allocation-block.ts';
import type { HandleResource, IpamStore } from './ipam-store.ts';

/**
 * Makes handle `handleId` agree with the given blocks. `known` holds block specs just written by
 * the caller, and `stored` the handle as the caller read it (`null`: it read none); both are used
 * on the first try only, to save reads. On a conflict every block and the handle are read again.
 */
export async function syncHandle(
  store: IpamStore,
  handleId: string,
  known: ReadonlyMap<string, BlockSpec | undefined>,
  stored?: HandleResource | null,
): Promise<void> {
  await store.retry(`update handle ${handleId}`, async (a) => {
    const counts = new Map<string, number>();
    for (const [cidr, spec] of known) {
      const current = a.n === 0 && spec ? spec : (await store.getBlock(cidr))?.spec;
      counts.set(cidr, current ? (countsByHandle(current).get(handleId) ?? 0) : 0);
    }
    // A new pod's handle does not exist yet: try the create first and save a read (and a NotFound)
    // on the hot path; AlreadyExists brings us back here to read and update it.
    // (Only with something to record: releasing a handle that holds nothing must not create it.)
    if (a.n === 0 && stored === undefined && counts.size > 0 && [...counts.values()].every((n) => n > 0)) {
      await store.createHandle(handleId, Object.fromEntries(counts));
      return;
    }
    const handle =
      a.n === 0 && stored !== undefined ? (stored ?? undefined) : await store.getHandle(handleId);
    const blocks: Record<string, number> = { ...(handle?.spec.block ?? {}) };
    for (const [cidr, n] of counts) {
      if (n > 0) blocks[cidr] = n;
      else delete blocks[cidr];
    }
    await writeHandle(store, handleId, handle, blocks);
  });
}

async function writeHandle(
  store: IpamStore,
  handleId: string,
  handle: HandleResource | undefined,
  blocks: Record<string, number>,
): Promise<void> {
  const empty = Object.keys(blocks).length === 0;
  if (!handle) {
    if (empty) return;
    // AlreadyExists (created concurrently) is retried by store.retry against the stored handle.
    await store.createHandle(handleId, blocks);
    return;
  }
  if (empty) {
    await store.deleteHandle(handle);
    return;
  }
  if (sameCounts(handle.spec.block, blocks)) return;
  await store.updateHandle(handle, blocks);
}

function sameCounts(a: Record<string, number>, b: Record<string, number>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
