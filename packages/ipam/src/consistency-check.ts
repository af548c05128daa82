/**
 * The IPAM audit behind `calico ipam check` and the tests: a pure function over blocks,
 * affinities, handles and node names that lists every inconsistency, plus the one repair that is
 * always safe (handles rewritten from blocks, since blocks are the truth).
 */
import { addressOf, countsByHandle } from './allocation-block.ts';
import { syncHandle } from './handles.ts';
import type { AffinityResource, BlockResource, HandleResource, IpamStore } from './ipam-store.ts';

export interface CheckOptions {
  /** Report affinities of nodes without a Node resource (default true). */
  checkNodes?: boolean;
  /** Rewrite mismatched or missing handles from the blocks. */
  repair?: boolean;
}

export interface CheckReport {
  /** True when every list below is empty. */
  ok: boolean;
  blocks: number;
  allocations: number;
  handles: number;
  affinities: number;
  /** Allocations nobody can release by handle: no handle id, or the handle record is missing. */
  leakedAddresses: {
    address: string;
    block: string;
    handleId?: string;
    reason: 'no handle id' | 'handle record missing';
  }[];
  /** Handles whose per-block count differs from what the block shows. */
  orphanedHandles: { handleId: string; block: string; recorded: number; actual: number }[];
  /** Affinities whose node has no Node resource. */
  affinitiesWithoutNode: { node: string; cidr: string }[];
  /** Blocks affine to a node that holds no BlockAffinity for them. */
  blocksWithoutAffinity: { cidr: string; affinity: string }[];
  /** Confirmed affinities whose block is missing or affine to someone else. */
  affinitiesWithoutBlock: { node: string; cidr: string }[];
  /** Affinities stuck in pending / pendingDeletion (a claim or release that did not finish). */
  unsettledAffinities: { node: string; cidr: string; state: string }[];
  /** Blocks breaking the allocation invariants. */
  invalidBlocks: { cidr: string; problem: string }[];
}

export function checkConsistency(input: {
  blocks: readonly BlockResource[];
  affinities: readonly AffinityResource[];
  handles: readonly HandleResource[];
  /** Node names; undefined skips the node check. */
  nodes: ReadonlySet<string> | undefined;
}): CheckReport {
  const report: CheckReport = {
    ok: true,
    blocks: input.blocks.length,
    allocations: 0,
    handles: input.handles.length,
    affinities: input.affinities.length,
    leakedAddresses: [],
    orphanedHandles: [],
    affinitiesWithoutNode: [],
    blocksWithoutAffinity: [],
    affinitiesWithoutBlock: [],
    unsettledAffinities: [],
    invalidBlocks: [],
  };
  const handles = new Map(input.handles.map((h) => [h.spec.handleID, h]));
  const blocks = new Map(input.blocks.map((b) => [b.spec.cidr, b]));
  const affinityKey = (node: string, cidr: string) => `${node}\u0000${cidr}`;
  const affinities = new Map(input.affinities.map((a) => [affinityKey(a.spec.node, a.spec.cidr), a]));

  for (const b of input.blocks) {
    const spec = b.spec;
    const problem = blockProblem(b);
    if (problem) report.invalidBlocks.push({ cidr: spec.cidr, problem });
    spec.allocations.forEach((idx, ord) => {
      if (idx === null) return;
      report.allocations++;
      const handleId = spec.attributes[idx]?.handle_id;
      if (handleId === undefined) {
        report.leakedAddresses.push({
          address: addressOf(spec, ord),
          block: spec.cidr,
          reason: 'no handle id',
        });
      } else if (!handles.has(handleId)) {
        report.leakedAddresses.push({
          address: addressOf(spec, ord),
          block: spec.cidr,
          handleId,
          reason: 'handle record missing',
        });
      }
    });
    for (const [handleId, actual] of countsByHandle(spec)) {
      const h = handleId === undefined ? undefined : handles.get(handleId);
      if (h && (h.spec.block[spec.cidr] ?? 0) !== actual) {
        report.orphanedHandles.push({
          handleId: handleId!,
          block: spec.cidr,
          recorded: h.spec.block[spec.cidr] ?? 0,
          actual,
        });
      }
    }
    const m = /^host:(.+)$/.exec(spec.affinity ?? '');
    if (m && !affinities.has(affinityKey(m[1]!, spec.cidr))) {
      report.blocksWithoutAffinity.push({ cidr: spec.cidr, affinity: spec.affinity! });
    }
  }
  for (const h of input.handles) {
    for (const [cidr, recorded] of Object.entries(h.spec.block)) {
      const b = blocks.get(cidr);
      const actual = b ? (countsByHandle(b.spec).get(h.spec.handleID) ?? 0) : 0;
      if (actual === 0 && recorded !== 0)
        report.orphanedHandles.push({ handleId: h.spec.handleID, block: cidr, recorded, actual });
    }
  }
  for (const a of input.affinities) {
    const { node, cidr, state } = a.spec;
    if (input.nodes && !input.nodes.has(node)) report.affinitiesWithoutNode.push({ node, cidr });
    if (state !== 'confirmed') {
      report.unsettledAffinities.push({ node, cidr, state });
      continue;
    }
    if (blocks.get(cidr)?.spec.affinity !== `host:${node}`)
      report.affinitiesWithoutBlock.push({ node, cidr });
  }
  report.ok =
    report.leakedAddresses.length +
      report.orphanedHandles.length +
      report.affinitiesWithoutNode.length +
      report.blocksWithoutAffinity.length +
      report.affinitiesWithoutBlock.length +
      report.unsettledAffinities.length +
      report.invalidBlocks.length ===
    0;
  return report;
}

function blockProblem(b: BlockResource): string | undefined {
  const { allocations, unallocated, attributes } = b.spec;
  const free = new Set<number>();
  for (const ord of unallocated) {
    if (free.has(ord)) return `ordinal ${ord} listed twice in unallocated`;
    if (allocations[ord] !== null) return `ordinal ${ord} is both allocated and unallocated`;
    free.add(ord);
  }
  for (let ord = 0; ord < allocations.length; ord++) {
    const idx = allocations[ord];
    if (idx === null) {
      if (!free.has(ord)) return `ordinal ${ord} is neither allocated nor unallocated`;
    } else if (idx === undefined || idx >= attributes.length) {
      return `ordinal ${ord} refers to missing attributes[${idx}]`;
    }
  }
  return undefined;
}

/** Rewrites every handle the report found wrong or missing from the blocks' current contents. */
export async function repairHandles(store: IpamStore, report: CheckReport): Promise<void> {
  const work = new Map<string, Set<string>>();
  const add = (h: string, cidr: string) => work.set(h, (work.get(h) ?? new Set()).add(cidr));
  for (const o of report.orphanedHandles) add(o.handleId, o.block);
  for (const l of report.leakedAddresses) if (l.handleId) add(l.handleId, l.block);
  for (const [handleId, cidrs] of work) {
    await syncHandle(store, handleId, new Map([...cidrs].map((c) => [c, undefined])));
  }
}
