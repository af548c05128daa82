/**
 * Who holds each allocated address (calicoctl `ipam check`): every allocation in the blocks is
 * matched against the addresses that WorkloadEndpoints and Node tunnel/WireGuard fields say they
 * use. An allocation nobody uses has leaked (its pod or node went away without a release); an
 * address in use inside an active pool without an allocation could be handed out twice. Pure over
 * the listed resources; `Ipam.auditOwnership()` reads them.
 */
import { cidrContainsIp, formatIp, parseCidrOrIp, parseIp, type ResourceOf } from '@calico-ts/datastore';
import { addressOf, allocationSequence } from './allocation-block.ts';
import type { IpPool } from './ip-pools.ts';
import type { BlockResource, HandleResource } from './ipam-store.ts';

/** The handle Calico reserves Windows' per-block addresses under; such allocations are in use. */
const WINDOWS_RESERVED_HANDLE = 'windows-reserved-ipam-handle';

/** One allocation as calicoctl's check report records it (same JSON field names). */
export interface AllocationRecord {
  ip: string;
  block: string;
  handle?: string;
  sequenceNumber?: number;
  pod?: string;
  namespace?: string;
  node?: string;
  type?: string;
  creationTimestamp?: string;
  /** Something (a WorkloadEndpoint, a Node's tunnel address) uses this address. */
  inUse: boolean;
  /** Allocated for a node other than the one the block is affine to. */
  borrowed?: boolean;
  /** What uses it: `Workload(<namespace>/<name>)`, `Node(<name>)`. */
  owners: string[];
}

/** A handle record, identified as calicoctl's report does (field names included). */
export interface HandleRecord {
  ID: string;
  UID?: string;
  Revision: string;
}

export interface AddressUse {
  ip: string;
  owners: string[];
}

export interface OwnershipAudit {
  /** Every allocation, by address (an address in two blocks appears twice). */
  allocations: Record<string, AllocationRecord[]>;
  /** Allocated but used by nothing. */
  leakedAddresses: AllocationRecord[];
  /** Used by a workload or node inside an enabled pool, but not allocated. */
  inUseWithoutAllocation: AddressUse[];
  /** Used by a workload or node outside every enabled pool (not Calico's to manage). */
  inUseOutsidePools: AddressUse[];
  /** Used by more than one owner. */
  multipleOwners: AddressUse[];
  /** Handle records no allocation refers to. */
  leakedHandles: HandleRecord[];
  /** Handle ids allocations refer to that have no handle record. */
  missingHandles: string[];
  /** Blocks affine to a node that has no Node resource. */
  blocksWithoutNode: { cidr: string; affinity: string }[];
  /** Leaked addresses, in-use addresses without allocation or outside pools, leaked handles, blocks without node. */
  problems: number;
  counts: {
    blocks: number;
    allocations: number;
    activePools: number;
    nodeTunnelAddresses: number;
    workloadAddresses: number;
    handles: number;
  };
}

export interface OwnershipInput {
  blocks: readonly BlockResource[];
  handles: readonly HandleResource[];
  pools: readonly IpPool[];
  nodes: readonly ResourceOf<'Node'>[];
  workloadEndpoints: readonly ResourceOf<'WorkloadEndpoint'>[];
}

/** The addresses a Node resource says it uses: tunnel and WireGuard interface addresses. */
export function nodeAddresses(node: ResourceOf<'Node'>): string[] {
  const s = node.spec;
  return [
    s.bgp?.ipv4IPIPTunnelAddr,
    s.ipv4VXLANTunnelAddr,
    s.ipv6VXLANTunnelAddr,
    s.wireguard?.interfaceIPv4Address,
    s.wireguard?.interfaceIPv6Address,
  ].flatMap((a) => (a ? [normalised(a)] : []));
}

/** The addresses a WorkloadEndpoint uses (its ipNetworks, without prefix lengths). */
export function workloadAddresses(wep: ResourceOf<'WorkloadEndpoint'>): string[] {
  return (wep.spec.ipNetworks ?? []).map(normalised);
}

function normalised(text: string): string {
  const parsed = parseCidrOrIp(text);
  return parsed ? formatIp(parsed.family, parsed.address) : text;
}

export function auditOwnership(input: OwnershipInput): OwnershipAudit {
  const allocations = new Map<string, AllocationRecord[]>();
  const referencedHandles = new Set<string>();
  let allocationCount = 0;
  for (const b of input.blocks) {
    const spec = b.spec;
    const owner = /^host:(.+)$/.exec(spec.affinity ?? '')?.[1];
    spec.allocations.forEach((idx, ord) => {
      if (idx === null) return;
      allocationCount++;
      const ip = addressOf(spec, ord);
      const attr = spec.attributes[idx];
      const extra = attr?.secondary ?? {};
      const record: AllocationRecord = { ip, block: spec.cidr, inUse: false, owners: [] };
      const reserved = attr?.handle_id === WINDOWS_RESERVED_HANDLE;
      if (reserved) {
        record.inUse = true;
        record.owners.push('Reserved for Windows');
      } else if (attr?.handle_id) {
        record.handle = attr.handle_id;
        referencedHandles.add(attr.handle_id);
      }
      const seq = allocationSequence(spec, ord);
      if (seq !== undefined) record.sequenceNumber = seq;
      if (extra['pod']) record.pod = extra['pod'];
      if (extra['namespace']) record.namespace = extra['namespace'];
      if (extra['type']) record.type = extra['type'];
      if (extra['timestamp']) record.creationTimestamp = extra['timestamp'];
      const node = extra['node'] || owner;
      if (node) record.node = node;
      if ((node ?? '') !== (owner ?? '')) record.borrowed = true;
      allocations.set(ip, [...(allocations.get(ip) ?? []), record]);
    });
  }

  const uses = new Map<string, string[]>();
  const use = (ip: string, owner: string) => uses.set(ip, [...(uses.get(ip) ?? []), owner]);
  let nodeTunnelAddresses = 0;
  for (const n of input.nodes) {
    for (const ip of nodeAddresses(n)) {
      use(ip, `Node(${n.metadata.name})`);
      nodeTunnelAddresses++;
    }
  }
  let workloadAddressCount = 0;
  for (const w of input.workloadEndpoints) {
    for (const ip of workloadAddresses(w)) {
      use(ip, `Workload(${w.metadata.namespace}/${w.metadata.name})`);
      workloadAddressCount++;
    }
  }
  for (const [ip, owners] of uses) {
    for (const record of allocations.get(ip) ?? []) {
      record.inUse = true;
      record.owners.push(...owners);
    }
  }

  const activePools = input.pools.filter((p) => !p.disabled);
  const inUseWithoutAllocation: AddressUse[] = [];
  const inUseOutsidePools: AddressUse[] = [];
  const multipleOwners: AddressUse[] = [];
  for (const [ip, owners] of uses) {
    if (owners.length > 1) multipleOwners.push({ ip, owners });
    if (allocations.has(ip)) continue;
    const parsed = parseIp(ip);
    const inPool = parsed !== undefined && activePools.some((p) => cidrContainsIp(p.cidr, parsed));
    (inPool ? inUseWithoutAllocation : inUseOutsidePools).push({ ip, owners });
  }

  const leakedAddresses = [...allocations.values()].flat().filter((r) => !r.inUse);
  const handleIds = new Set(input.handles.map((h) => h.spec.handleID));
  const leakedHandles: HandleRecord[] = input.handles
    .filter((h) => !referencedHandles.has(h.spec.handleID))
    .map((h) => ({
      ID: h.spec.handleID,
      ...(h.metadata.uid ? { UID: h.metadata.uid } : {}),
      Revision: h.metadata.resourceVersion ?? '',
    }));
  const missingHandles = [...referencedHandles].filter((id) => !handleIds.has(id)).sort();
  const nodeNames = new Set(input.nodes.map((n) => n.metadata.name));
  const blocksWithoutNode = input.blocks.flatMap((b) => {
    const node = /^host:(.+)$/.exec(b.spec.affinity ?? '')?.[1];
    return node !== undefined && !nodeNames.has(node)
      ? [{ cidr: b.spec.cidr, affinity: b.spec.affinity! }]
      : [];
  });

  return {
    allocations: Object.fromEntries(allocations),
    leakedAddresses,
    inUseWithoutAllocation,
    inUseOutsidePools,
    multipleOwners,
    leakedHandles,
    missingHandles,
    blocksWithoutNode,
    problems:
      leakedAddresses.length +
      inUseWithoutAllocation.length +
      inUseOutsidePools.length +
      leakedHandles.length +
      blocksWithoutNode.length,
    counts: {
      blocks: input.blocks.length,
      allocations: allocationCount,
      activePools: activePools.length,
      nodeTunnelAddresses,
      workloadAddresses: workloadAddressCount,
      handles: input.handles.length,
    },
  };
}
