/**
 * The intent stream from the calculation graph to a dataplane, shaped after Felix's
 * `felixbackend.proto` messages. It is plain data: a dataplane (ours, or a recording sink in
 * tests) receives it in the order the EventSequencer guarantees.
 */
import type { EncapsulationMode, EncapsulationType } from '@calico-ts/datastore';
import type { FelixConfig } from '../config.ts';
import type { ParsedRule } from './policy/parsed-rule.ts';
import type { PolicyId } from './policy/policy-id.ts';

export type IpsetType = 'hash:net' | 'hash:ip' | 'hash:ip,port';

/** Felix's WorkloadEndpointID. */
export interface WorkloadEndpointId {
  orchestratorId: string;
  workloadId: string;
  endpointId: string;
}

/**
 * The policies of one tier that apply to an endpoint, in order, per direction, named by policy
 * key (`np/<ns>/<name>`, `gnp/<name>`, `knp/<ns>/<name>`).
 */
export interface TierInfo {
  name: string;
  ingressPolicies: string[];
  egressPolicies: string[];
  defaultAction: 'Deny' | 'Pass';
}

/**
 * A policy some local endpoint uses (Felix's ActivePolicyUpdate): what its `cali-pi-`/`cali-po-`
 * chains are rendered from.
 */
export interface ActivePolicy {
  id: PolicyId;
  /** policyIdString(id). */
  key: string;
  /** The name Calico shows (`knp.default.<name>` for a Kubernetes policy). */
  calicoName: string;
  rules: { ingress: ParsedRule[]; egress: ParsedRule[] };
  /**
   * Some local endpoint's staged view uses it: render its staged form (`cali-spi-`/`cali-spo-`)
   * too. A staged policy (kind `Staged…`) has only the staged form.
   */
  stagedView?: boolean;
}

/** A profile some local endpoint uses (ActiveProfileUpdate): its `cali-pri-`/`cali-pro-` chains. */
export interface ActiveProfile {
  name: string;
  rules: { ingress: ParsedRule[]; egress: ParsedRule[] };
  /** An endpoint with a staged view uses it: render `cali-spri-`/`cali-spro-` too. */
  stagedView?: boolean;
}

export interface WorkloadEndpoint {
  state: 'active' | 'down';
  /** Host-side interface (`cali…`). */
  name: string;
  mac: string | undefined;
  /** Profiles that exist, in the endpoint's order; a missing one contributes no rules. */
  profileIds: string[];
  ipv4Nets: string[];
  ipv6Nets: string[];
  tiers: TierInfo[];
  /**
   * The tiers as staged policies would make them (enforced policies replaced, removed or joined
   * by staged ones); present only when some staged policy changes this endpoint's tiers. The
   * dataplane evaluates them before the enforced stage and records what they would deny.
   */
  stagedTiers?: TierInfo[];
  labels: Record<string, string>;
}

/**
 * Felix's HostEndpoint message: the normal tiers (traffic to and from the host through the
 * interface), and the tier lists only host endpoints have — untracked (doNotTrack policies, raw
 * table), preDNAT (mangle, ingress only) and forward (applyOnForward policies, traffic the host
 * forwards through the interface).
 */
export interface HostEndpoint {
  name: string;
  /** The interface it governs; `*` for every host interface. */
  interfaceName: string | undefined;
  expectedIpv4Addrs: string[];
  expectedIpv6Addrs: string[];
  profileIds: string[];
  tiers: TierInfo[];
  untrackedTiers: TierInfo[];
  preDnatTiers: TierInfo[];
  forwardTiers: TierInfo[];
}

/** Which tunnel a route's traffic takes (the datastore's poolEncapsulation decides). */
export type PoolEncapsulation = EncapsulationType;

export interface IpamPool {
  cidr: string;
  masquerade: boolean;
  ipipMode: EncapsulationMode;
  vxlanMode: EncapsulationMode;
  disabled: boolean;
}

/**
 * One route the node needs. `localBlock`: an IPAM block affine to this node (the dataplane
 * programs a blackhole so unallocated addresses are not sent back out); `remoteBlock`: a block
 * affine to another node; `remoteWorkload`: a single address borrowed by another node;
 * `localWorkload`: an address of a workload here (the endpoint manager programs it from the
 * endpoint itself; the route is told so encapsulation managers never send it elsewhere).
 */
export interface RouteIntent {
  type: 'localBlock' | 'remoteBlock' | 'remoteWorkload' | 'localWorkload';
  dst: string;
  /** Encapsulation of the pool the destination belongs to; 'none' if in no pool. */
  ipPoolType: PoolEncapsulation;
  /** Whether traffic to this destination is encapsulated given the pool mode and subnets. */
  sameSubnet: boolean;
  natOutgoing: boolean;
  dstNodeName: string | undefined;
  dstNodeIp: string | undefined;
}

/** Felix's VXLANTunnelEndpointUpdate: one node's VTEP. */
export interface Vtep {
  node: string;
  mac: string;
  ipv4Addr: string;
  parentDeviceIp: string;
}

export interface HostMetadata {
  hostname: string;
  ipv4Addr: string | undefined;
  ipv4Subnet: string | undefined;
  ipv6Addr: string | undefined;
  asNumber: number | undefined;
  ipv4IPIPTunnelAddr: string | undefined;
}

export type DataplaneUpdate =
  | { type: 'configUpdate'; config: FelixConfig }
  | { type: 'inSync' }
  | { type: 'ipsetUpdate'; id: string; ipsetType: IpsetType; members: string[] }
  | { type: 'ipsetDeltaUpdate'; id: string; addedMembers: string[]; removedMembers: string[] }
  | { type: 'ipsetRemove'; id: string }
  | { type: 'activePolicyUpdate'; policy: ActivePolicy }
  | { type: 'activePolicyRemove'; key: string }
  | { type: 'activeProfileUpdate'; profile: ActiveProfile }
  | { type: 'activeProfileRemove'; name: string }
  | { type: 'workloadEndpointUpdate'; id: WorkloadEndpointId; key: string; endpoint: WorkloadEndpoint }
  | { type: 'workloadEndpointRemove'; id: WorkloadEndpointId; key: string }
  | { type: 'hostEndpointUpdate'; id: string; endpoint: HostEndpoint }
  | { type: 'hostEndpointRemove'; id: string }
  | { type: 'hostMetadataUpdate'; hostname: string; metadata: HostMetadata }
  | { type: 'hostMetadataRemove'; hostname: string }
  | { type: 'ipamPoolUpdate'; id: string; pool: IpamPool }
  | { type: 'ipamPoolRemove'; id: string }
  | { type: 'routeUpdate'; route: RouteIntent }
  | { type: 'routeRemove'; dst: string }
  | { type: 'vtepUpdate'; vtep: Vtep }
  | { type: 'vtepRemove'; node: string };

export type DataplaneUpdateType = DataplaneUpdate['type'];

/** Receives batches of intent, one batch per sequencer flush. */
export type DataplaneSink = (batch: DataplaneUpdate[]) => void;

/** Fixed IP set ids (name in the kernel = `cali40` + id, calico-internals §3.5). */
export const IPSET_ALL_POOLS = 'network-ip-pools';
export const IPSET_MASQ_POOLS = 'masq-ipam-pools';
export const IPSET_ALL_VXLAN_NET = 'all-vxlan-net';
export const IPSET_ALL_HOSTS_NET = 'all-hosts-net';
