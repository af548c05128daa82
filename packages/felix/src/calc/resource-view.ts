/**
 * What the calc graph keeps of each stored resource: the few fields it needs, read from the typed
 * model (the datastore validated and defaulted every object on write). A resource the graph
 * cannot use (an address that does not parse, a deleted block, an endpoint without node or
 * interface) gives undefined, which the graph treats exactly like a deletion, so it never reaches
 * the dataplane.
 */
import {
  type EncapsulationMode,
  familyBits,
  formatIp,
  formatMaskedCidr,
  type IPPoolEncapsulation,
  type IpFamily,
  maskedCidr,
  type ParsedCidr,
  parseCidr,
  parseCidrOrIp,
  parseIp,
  poolEncapsulation,
  type ResourceOf,
} from '@calico-ts/datastore';

export interface PoolView {
  name: string;
  /** The pool's network (host bits clear) and its canonical text. */
  cidr: ParsedCidr;
  cidrText: string;
  encapsulation: IPPoolEncapsulation;
  ipipMode: EncapsulationMode;
  vxlanMode: EncapsulationMode;
  natOutgoing: boolean;
  disabled: boolean;
}

export interface NodeView {
  name: string;
  /** Node IPv4 address without the prefix length. */
  ipv4Address: string | undefined;
  /** The node's IPv4 subnet (from `spec.bgp.ipv4Address`, host bits clear), for CrossSubnet decisions. */
  ipv4Subnet: ParsedCidr | undefined;
  ipv6Address: string | undefined;
  asNumber: number | undefined;
  ipv4IPIPTunnelAddr: string | undefined;
  ipv4VXLANTunnelAddr: string | undefined;
  vxlanTunnelMACAddr: string | undefined;
}

export interface WorkloadEndpointView {
  /** `<namespace>/<name>`: the datastore identity, also our endpoint key. */
  key: string;
  namespace: string;
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
  serviceAccount: string | undefined;
  /** Named ports the workload declares (for named-port IP sets). */
  ports: { name: string; protocol: string | number; port: number }[];
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
  /** The block's network and its canonical text. */
  cidr: ParsedCidr;
  cidrText: string;
  /** Node named by `affinity: host:<node>`; undefined for unaffine or non-host affinities. */
  affineNode: string | undefined;
  /** Allocated addresses (as /32 or /128) whose `node` attribute differs from the affine node. */
  borrowed: { dst: string; node: string }[];
}

/** Empty strings mean "not set", as in Calico's Go structs. */
function nonEmpty(v: string | undefined): string | undefined {
  return v === '' ? undefined : v;
}

export function poolView(r: ResourceOf<'IPPool'>): PoolView | undefined {
  const parsed = parseCidr(r.spec.cidr);
  if (!parsed) return undefined;
  const cidr = maskedCidr(parsed);
  return {
    name: r.metadata.name,
    cidr,
    cidrText: formatMaskedCidr(cidr),
    encapsulation: poolEncapsulation(r.spec),
    ipipMode: r.spec.ipipMode,
    vxlanMode: r.spec.vxlanMode,
    natOutgoing: r.spec.natOutgoing,
    disabled: r.spec.disabled,
  };
}

export function nodeView(r: ResourceOf<'Node'>): NodeView {
  const { spec } = r;
  const v4 = nonEmpty(spec.bgp?.ipv4Address) ?? firstAddress(spec.addresses, 4);
  const v6 = nonEmpty(spec.bgp?.ipv6Address) ?? firstAddress(spec.addresses, 6);
  const subnet = v4 === undefined ? undefined : parseCidr(v4);
  const asn = Number(spec.bgp?.asNumber);
  return {
    name: r.metadata.name,
    ipv4Address: addressOf(v4),
    ipv4Subnet: subnet && maskedCidr(subnet),
    ipv6Address: addressOf(v6),
    asNumber: Number.isInteger(asn) ? asn : undefined,
    ipv4IPIPTunnelAddr: nonEmpty(spec.bgp?.ipv4IPIPTunnelAddr),
    ipv4VXLANTunnelAddr: nonEmpty(spec.ipv4VXLANTunnelAddr),
    vxlanTunnelMACAddr: nonEmpty(spec.vxlanTunnelMACAddr),
  };
}

/** The address of `a.b.c.d/n` or of a bare address, in canonical text. */
function addressOf(text: string | undefined): string | undefined {
  const c = text === undefined ? undefined : parseCidrOrIp(text);
  return c && formatIp(c.family, c.address);
}

function firstAddress(
  addresses: ResourceOf<'Node'>['spec']['addresses'],
  family: IpFamily,
): string | undefined {
  return addresses?.find((a) => parseCidrOrIp(a.address)?.family === family)?.address;
}

export function workloadEndpointView(r: ResourceOf<'WorkloadEndpoint'>): WorkloadEndpointView | undefined {
  const { spec } = r;
  const node = nonEmpty(spec.node);
  const interfaceName = nonEmpty(spec.interfaceName);
  if (!node || !interfaceName) return undefined;
  const nets: ParsedCidr[] = [];
  for (const text of spec.ipNetworks ?? []) {
    const net = parseCidrOrIp(text);
    if (!net) return undefined;
    nets.push(maskedCidr(net));
  }
  const ns = r.metadata.namespace ?? 'default';
  return {
    key: `${ns}/${r.metadata.name}`,
    namespace: ns,
    node,
    orchestrator: nonEmpty(spec.orchestrator) ?? 'k8s',
    workload: nonEmpty(spec.workload) ?? nonEmpty(spec.pod) ?? r.metadata.name,
    endpoint: nonEmpty(spec.endpoint) ?? 'eth0',
    interfaceName,
    mac: nonEmpty(spec.mac)?.toLowerCase(),
    ipv4Nets: nets.filter((n) => n.family === 4).map(formatMaskedCidr),
    ipv6Nets: nets.filter((n) => n.family === 6).map(formatMaskedCidr),
    profiles: [...(spec.profiles ?? [])],
    labels: { ...(r.metadata.labels ?? {}) },
    serviceAccount: nonEmpty(spec.serviceAccountName),
    ports: (spec.ports ?? []).map((p) => ({ name: p.name, protocol: p.protocol, port: p.port })),
  };
}

export function hostEndpointView(r: ResourceOf<'HostEndpoint'>): HostEndpointView | undefined {
  const { spec } = r;
  const node = nonEmpty(spec.node);
  if (!node) return undefined;
  return {
    name: r.metadata.name,
    node,
    interfaceName: nonEmpty(spec.interfaceName),
    expectedIPs: [...(spec.expectedIPs ?? [])],
    profiles: [...(spec.profiles ?? [])],
    labels: { ...(r.metadata.labels ?? {}) },
  };
}

export function blockView(r: ResourceOf<'IPAMBlock'>): BlockView | undefined {
  const parsed = parseCidr(r.spec.cidr);
  if (!parsed || r.spec.deleted) return undefined;
  const cidr = maskedCidr(parsed);
  const affinity = nonEmpty(r.spec.affinity);
  const affineNode = affinity?.startsWith('host:') ? affinity.slice('host:'.length) : undefined;
  return {
    cidr,
    cidrText: formatMaskedCidr(cidr),
    affineNode,
    borrowed: borrowedAddresses(r, cidr, affineNode),
  };
}

/**
 * IPAM records which node an address was handed to in the allocation's attributes
 * (`secondary.node`); an address used on a node other than the block's owner is "borrowed" and
 * needs its own host route towards that node.
 */
function borrowedAddresses(
  r: ResourceOf<'IPAMBlock'>,
  cidr: ParsedCidr,
  affineNode: string | undefined,
): { dst: string; node: string }[] {
  const out: { dst: string; node: string }[] = [];
  r.spec.allocations.forEach((attrIndex, ordinal) => {
    if (attrIndex === null) return;
    const node = nonEmpty(r.spec.attributes[attrIndex]?.secondary?.['node']);
    if (!node || node === affineNode) return;
    const address = formatIp(cidr.family, cidr.address + BigInt(ordinal));
    out.push({ dst: `${address}/${familyBits(cidr.family)}`, node });
  });
  return out;
}

/** The family of an address written in a resource, or undefined when it is not one. */
export function ipFamilyOf(text: string): IpFamily | undefined {
  return parseIp(text)?.family;
}
