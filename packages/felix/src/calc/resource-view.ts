/**
 * The calc graph's validation filter (Felix's `ValidationFilter`): turns a stored resource into
 * the few typed fields the graph needs, or undefined when the resource cannot be used — which the
 * graph treats exactly like a deletion, so a bad object never reaches the dataplane.
 */
import type { AnyResource } from '@calico-ts/datastore';
import type { EncapsulationMode } from '../config.ts';
import { addressOf, type Cidr, formatIp, parseCidr } from './cidr.ts';

export interface PoolView {
  name: string;
  cidr: Cidr;
  ipipMode: EncapsulationMode;
  vxlanMode: EncapsulationMode;
  natOutgoing: boolean;
  disabled: boolean;
}

export interface NodeView {
  name: string;
  /** Node IPv4 address without the prefix length. */
  ipv4Address: string | undefined;
  /** The node's IPv4 subnet (from `spec.bgp.ipv4Address`), for CrossSubnet decisions. */
  ipv4Subnet: Cidr | undefined;
  ipv6Address: string | undefined;
  asNumber: number | undefined;
  ipv4IPIPTunnelAddr: string | undefined;
  ipv4VXLANTunnelAddr: string | undefined;
  vxlanTunnelMACAddr: string | undefined;
}

export interface WorkloadEndpointView {
  /** `<namespace>/<name>`: the datastore identity, also our endpoint key. */
  key: string;
  node: string;
  orchestrator: string;
  workload: string;
  endpoint: string;
  interfaceName: string;
  mac: string | undefined;
  ipv4Nets: string[];
  ipv6Nets: string[];
  profiles: string[];
  labels: Record<string, string>;
}

export interface HostEndpointView {
  name: string;
  node: string;
  interfaceName: string | undefined;
  expectedIPs: string[];
  profiles: string[];
  labels: Record<string, string>;
}

export interface BlockView {
  cidr: Cidr;
  /** Node named by `affinity: host:<node>`; undefined for unaffine or non-host affinities. */
  affineNode: string | undefined;
  /** Allocated addresses whose `node` attribute differs from the affine node (borrowed IPs). */
  borrowed: { ip: string; node: string }[];
}

const MODES: readonly EncapsulationMode[] = ['Always', 'CrossSubnet', 'Never'];

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function labelsOf(r: AnyResource): Record<string, string> {
  return { ...(r.metadata.labels ?? {}) };
}

function spec(r: AnyResource): Record<string, unknown> {
  return (r.spec ?? {}) as Record<string, unknown>;
}

function mode(v: unknown): EncapsulationMode | undefined {
  if (v === undefined || v === null || v === '') return 'Never';
  if (typeof v !== 'string') return undefined;
  // Older IPPool spellings: `ipipMode: always` / `cross-subnet`.
  const norm = v.replace('-', '').toLowerCase();
  return MODES.find((m) => m.toLowerCase() === norm);
}

export function poolView(r: AnyResource): PoolView | undefined {
  const s = spec(r);
  const cidr = typeof s['cidr'] === 'string' ? parseCidr(s['cidr']) : undefined;
  const ipipMode = mode(s['ipipMode']);
  const vxlanMode = mode(s['vxlanMode']);
  if (!cidr || !ipipMode || !vxlanMode) return undefined;
  // Calico refuses pools with both encapsulations on; treat such an object as invalid.
  if (ipipMode !== 'Never' && vxlanMode !== 'Never') return undefined;
  return {
    name: r.metadata.name,
    cidr,
    ipipMode,
    vxlanMode,
    natOutgoing: s['natOutgoing'] === true,
    disabled: s['disabled'] === true,
  };
}

export function nodeView(r: AnyResource): NodeView {
  const s = spec(r);
  const bgp = (s['bgp'] ?? {}) as Record<string, unknown>;
  const v4 = str(bgp['ipv4Address']) ?? firstAddress(s['addresses'], 4);
  const v6 = str(bgp['ipv6Address']) ?? firstAddress(s['addresses'], 6);
  const asn = Number(bgp['asNumber']);
  return {
    name: r.metadata.name,
    ipv4Address: v4 ? addressOf(v4) : undefined,
    ipv4Subnet: v4?.includes('/') ? parseCidr(v4) : undefined,
    ipv6Address: v6 ? addressOf(v6) : undefined,
    asNumber: Number.isInteger(asn) ? asn : undefined,
    ipv4IPIPTunnelAddr: str(bgp['ipv4IPIPTunnelAddr']),
    ipv4VXLANTunnelAddr: str(s['ipv4VXLANTunnelAddr']),
    vxlanTunnelMACAddr: str(s['vxlanTunnelMACAddr']),
  };
}

function firstAddress(addresses: unknown, family: 4 | 6): string | undefined {
  if (!Array.isArray(addresses)) return undefined;
  for (const a of addresses) {
    const addr = str((a as Record<string, unknown> | null)?.['address']);
    if (addr && addr.includes(':') === (family === 6)) return addr;
  }
  return undefined;
}

export function workloadEndpointView(r: AnyResource): WorkloadEndpointView | undefined {
  const s = spec(r);
  const node = str(s['node']);
  const interfaceName = str(s['interfaceName']);
  if (!node || !interfaceName) return undefined;
  const nets = strings(s['ipNetworks']).map((n) => parseCidr(n));
  if (nets.some((n) => n === undefined)) return undefined;
  const ns = r.metadata.namespace ?? 'default';
  return {
    key: `${ns}/${r.metadata.name}`,
    node,
    orchestrator: str(s['orchestrator']) ?? 'k8s',
    workload: str(s['workload']) ?? str(s['pod']) ?? r.metadata.name,
    endpoint: str(s['endpoint']) ?? 'eth0',
    interfaceName,
    mac: str(s['mac'])?.toLowerCase(),
    ipv4Nets: nets.filter((n) => n!.family === 4).map((n) => n!.text),
    ipv6Nets: nets.filter((n) => n!.family === 6).map((n) => n!.text),
    profiles: strings(s['profiles']),
    labels: labelsOf(r),
  };
}

export function hostEndpointView(r: AnyResource): HostEndpointView | undefined {
  const s = spec(r);
  const node = str(s['node']);
  if (!node) return undefined;
  return {
    name: r.metadata.name,
    node,
    interfaceName: str(s['interfaceName']),
    expectedIPs: strings(s['expectedIPs']),
    profiles: strings(s['profiles']),
    labels: labelsOf(r),
  };
}

export function blockView(r: AnyResource): BlockView | undefined {
  const s = spec(r);
  const cidr = typeof s['cidr'] === 'string' ? parseCidr(s['cidr']) : undefined;
  if (!cidr || s['deleted'] === true) return undefined;
  const affinity = str(s['affinity']);
  const affineNode = affinity?.startsWith('host:') ? affinity.slice('host:'.length) : undefined;
  return { cidr, affineNode, borrowed: borrowedAddresses(cidr, affineNode, s) };
}

/**
 * IPAM records which node an address was handed to in the allocation's attributes
 * (`secondary.node`); an address used on a node other than the block's owner is "borrowed" and
 * needs its own /32 route towards that node.
 */
function borrowedAddresses(
  cidr: Cidr,
  affineNode: string | undefined,
  s: Record<string, unknown>,
): { ip: string; node: string }[] {
  const allocations = s['allocations'];
  const attributes = s['attributes'];
  if (!Array.isArray(allocations) || !Array.isArray(attributes)) return [];
  const out: { ip: string; node: string }[] = [];
  allocations.forEach((attrIndex, ordinal) => {
    if (typeof attrIndex !== 'number') return;
    const attr = attributes[attrIndex] as Record<string, unknown> | undefined;
    const secondary = (attr?.['secondary'] ?? attr?.['attrSecondary']) as Record<string, unknown> | undefined;
    const node = str(secondary?.['node']);
    if (!node || node === affineNode) return;
    out.push({ ip: addressAt(cidr, ordinal), node });
  });
  return out;
}

function addressAt(cidr: Cidr, ordinal: number): string {
  return formatIp(cidr.family, cidr.network + BigInt(ordinal));
}
