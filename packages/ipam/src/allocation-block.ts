/**
 * Pure operations on one IPAM block in Calico's shape (libcalico-go `allocationBlock`): no I/O,
 * every function works on a spec the caller has cloned and will write back by compare-and-swap.
 *
 * Invariants kept here (and checked by the model's schema): every ordinal is either allocated
 * (`allocations[ord]` indexes `attributes`) or listed exactly once in `unallocated`; freed
 * ordinals go to the tail of `unallocated` so the most recently released address is reused last;
 * each allocation is stamped with the block's sequence number at the write that made it.
 */
import {
  cidrContainsIp,
  cidrSize,
  formatIp,
  type IPAMBlockSpec,
  type ParsedCidr,
  type ParsedIp,
} from '@calico-ts/datastore';
import { cidrFromText } from './cidr.ts';

export type BlockSpec = IPAMBlockSpec;
type Attribute = BlockSpec['attributes'][number];

/** Addresses in one block are capped by the model at 65536, so ordinals are plain numbers. */
export function blockOrdinals(cidr: ParsedCidr): number {
  return Number(cidrSize(cidr));
}

/**
 * A fresh block. The sequence number starts from the clock (in microseconds) rather than 0, as
 * Calico seeds it from the clock: a block deleted and re-created must not repeat sequence numbers,
 * or a stale release carrying an old number could free an address someone holds now.
 */
export function newBlockSpec(cidrText: string, affinity: string | undefined, nowMs: number): BlockSpec {
  const n = blockOrdinals(cidrFromText(cidrText));
  const spec: BlockSpec = {
    cidr: cidrText,
    strictAffinity: false,
    allocations: Array<number | null>(n).fill(null),
    unallocated: Array.from({ length: n }, (_, i) => i),
    attributes: [],
    sequenceNumber: Math.floor(nowMs * 1000),
    sequenceNumberForAllocation: {},
    deleted: false,
  };
  if (affinity !== undefined) {
    spec.affinity = affinity;
    spec.affinityClaimTime = new Date(nowMs).toISOString();
  }
  return spec;
}

export function hostAffinity(node: string): string {
  return `host:${node}`;
}

export function freeCount(spec: BlockSpec): number {
  return spec.unallocated.length;
}

export function inUseCount(spec: BlockSpec): number {
  return spec.allocations.length - spec.unallocated.length;
}

export function isEmpty(spec: BlockSpec): boolean {
  return spec.unallocated.length === spec.allocations.length;
}

export function addressOf(spec: BlockSpec, ordinal: number): string {
  const c = cidrFromText(spec.cidr);
  return formatIp(c.family, c.address + BigInt(ordinal));
}

/** The ordinal of an address in the block, or undefined when the block does not hold it. */
export function ordinalOf(spec: BlockSpec, ip: ParsedIp): number | undefined {
  const c = cidrFromText(spec.cidr);
  return cidrContainsIp(c, ip) ? Number(ip.value - c.address) : undefined;
}

function sameSecondary(
  a: Record<string, string> | undefined,
  b: Record<string, string> | undefined,
): boolean {
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => a?.[k] === b?.[k]);
}

/** Allocations with the same handle and attributes share one attributes entry (as in Calico). */
function attributeIndex(
  spec: BlockSpec,
  handleId: string | undefined,
  attrs: Record<string, string> | undefined,
): number {
  const secondary = attrs && Object.keys(attrs).length > 0 ? attrs : undefined;
  const i = spec.attributes.findIndex(
    (a) => a.handle_id === handleId && sameSecondary(a.secondary, secondary),
  );
  if (i >= 0) return i;
  const attr: Attribute = {};
  if (handleId !== undefined) attr.handle_id = handleId;
  if (secondary) attr.secondary = { ...secondary };
  spec.attributes.push(attr);
  return spec.attributes.length - 1;
}

/**
 * Takes up to `count` ordinals from the head of the free list for one handle and stamps them with
 * the block's current sequence number. The caller bumps the sequence number once per write
 * (`stampWrite`).
 */
export function allocateFromHead(
  spec: BlockSpec,
  count: number,
  handleId: string | undefined,
  attrs: Record<string, string> | undefined,
): number[] {
  const n = Math.min(count, spec.unallocated.length);
  if (n <= 0) return [];
  const ordinals = spec.unallocated.splice(0, n);
  const idx = attributeIndex(spec, handleId, attrs);
  spec.sequenceNumberForAllocation ??= {};
  const seq = spec.sequenceNumberForAllocation;
  for (const ord of ordinals) {
    spec.allocations[ord] = idx;
    seq[String(ord)] = spec.sequenceNumber;
  }
  return ordinals;
}

/** Allocates one specific ordinal; false when it is already in use. */
export function allocateOrdinal(
  spec: BlockSpec,
  ordinal: number,
  handleId: string | undefined,
  attrs: Record<string, string> | undefined,
): boolean {
  const at = spec.unallocated.indexOf(ordinal);
  if (at < 0) return false;
  spec.unallocated.splice(at, 1);
  spec.allocations[ordinal] = attributeIndex(spec, handleId, attrs);
  spec.sequenceNumberForAllocation ??= {};
  spec.sequenceNumberForAllocation[String(ordinal)] = spec.sequenceNumber;
  return true;
}

/** Every write bumps the block's sequence number, so allocations made by later writes differ. */
export function stampWrite(spec: BlockSpec): void {
  spec.sequenceNumber += 1;
}

export function attributeAt(spec: BlockSpec, ordinal: number): Attribute | undefined {
  const idx = spec.allocations[ordinal];
  return idx === null || idx === undefined ? undefined : spec.attributes[idx];
}

export function allocationSequence(spec: BlockSpec, ordinal: number): number | undefined {
  return spec.sequenceNumberForAllocation?.[String(ordinal)];
}

export interface OrdinalRelease {
  ordinal: number;
  /** Release only if the allocation still carries this sequence number (ABA protection). */
  sequenceNumber?: number;
  /** Release only if the allocation belongs to this handle. */
  handleId?: string;
}

export interface BlockReleaseOutcome {
  released: number[];
  /** Handle of each released ordinal (undefined for an allocation that had none). */
  handles: Map<number, string | undefined>;
  notAllocated: number[];
  badSequence: number[];
  otherHandle: number[];
}

/** Frees ordinals (tail of the free list, FIFO reuse) and drops attributes nothing refers to any more. */
export function releaseOrdinals(spec: BlockSpec, releases: readonly OrdinalRelease[]): BlockReleaseOutcome {
  const out: BlockReleaseOutcome = {
    released: [],
    handles: new Map(),
    notAllocated: [],
    badSequence: [],
    otherHandle: [],
  };
  for (const r of releases) {
    const attr = attributeAt(spec, r.ordinal);
    if (attr === undefined || out.handles.has(r.ordinal)) {
      out.notAllocated.push(r.ordinal);
      continue;
    }
    if (r.sequenceNumber !== undefined && allocationSequence(spec, r.ordinal) !== r.sequenceNumber) {
      out.badSequence.push(r.ordinal);
      continue;
    }
    if (r.handleId !== undefined && attr.handle_id !== r.handleId) {
      out.otherHandle.push(r.ordinal);
      continue;
    }
    spec.allocations[r.ordinal] = null;
    spec.unallocated.push(r.ordinal);
    delete spec.sequenceNumberForAllocation?.[String(r.ordinal)];
    out.released.push(r.ordinal);
    out.handles.set(r.ordinal, attr.handle_id);
  }
  if (out.released.length > 0) pruneAttributes(spec);
  return out;
}

function pruneAttributes(spec: BlockSpec): void {
  const used = new Set<number>();
  for (const a of spec.allocations) if (a !== null) used.add(a);
  if (used.size === spec.attributes.length) return;
  const renumber = new Map<number, number>();
  const kept: Attribute[] = [];
  spec.attributes.forEach((a, i) => {
    if (!used.has(i)) return;
    renumber.set(i, kept.length);
    kept.push(a);
  });
  spec.attributes = kept;
  spec.allocations = spec.allocations.map((a) => (a === null ? null : renumber.get(a)!));
}

/** Ordinals held by a handle. */
export function ordinalsOfHandle(spec: BlockSpec, handleId: string): number[] {
  const out: number[] = [];
  spec.allocations.forEach((a, ord) => {
    if (a !== null && spec.attributes[a]?.handle_id === handleId) out.push(ord);
  });
  return out;
}

/** Addresses per handle in the block; allocations without a handle are counted under `undefined`. */
export function countsByHandle(spec: BlockSpec): Map<string | undefined, number> {
  const counts = new Map<string | undefined, number>();
  for (const a of spec.allocations) {
    if (a === null) continue;
    const h = spec.attributes[a]?.handle_id;
    counts.set(h, (counts.get(h) ?? 0) + 1);
  }
  return counts;
}
