/**
 * The registry of resource kinds: API group and version, plural, scope, the names calicoctl
 * accepts for each, and where each is stored (Calico's etcd key layout). Schemas live in
 * `model/`; this file knows only identity and placement, so the key layout has one home.
 */
import { formatIp, parseIp } from './model/ip.ts';

export const CALICO_API_VERSION = 'projectcalico.org/v3';
export const K8S_NETWORKING_API_VERSION = 'networking.k8s.io/v1';

export interface KindInfo {
  readonly kind: string;
  readonly apiVersion: string;
  readonly plural: string;
  readonly namespaced: boolean;
  /** Lower-case spellings accepted on the command line (calicoctl's resourcemgr aliases). */
  readonly aliases: readonly string[];
  /** etcd key prefix under which every object of this kind lives (ends with '/'). */
  readonly keyPrefix: string;
}

const V3 = '/calico/resources/v3/projectcalico.org/';
const IPAM = '/calico/ipam/v2/';

function v3(kind: string, plural: string, namespaced: boolean, aliases: string[]): KindInfo {
  return {
    kind,
    apiVersion: CALICO_API_VERSION,
    plural,
    namespaced,
    aliases: [kind.toLowerCase(), plural, ...aliases],
    keyPrefix: `${V3}${plural}/`,
  };
}

export const KINDS = {
  IPPool: v3('IPPool', 'ippools', false, ['ipp', 'ipps', 'pool', 'pools']),
  BGPConfiguration: v3('BGPConfiguration', 'bgpconfigurations', false, ['bgpconfig', 'bgpconfigs']),
  BGPPeer: v3('BGPPeer', 'bgppeers', false, ['bgpp', 'bgpps', 'bp', 'bps']),
  BGPFilter: v3('BGPFilter', 'bgpfilters', false, ['bgpf', 'bgpfs']),
  Node: v3('Node', 'nodes', false, ['no', 'nos']),
  WorkloadEndpoint: v3('WorkloadEndpoint', 'workloadendpoints', true, ['wep', 'weps']),
  HostEndpoint: v3('HostEndpoint', 'hostendpoints', false, ['hep', 'heps']),
  NetworkPolicy: v3('NetworkPolicy', 'networkpolicies', true, [
    'netpol',
    'netpols',
    'np',
    'nps',
    'policy',
    'policies',
  ]),
  GlobalNetworkPolicy: v3('GlobalNetworkPolicy', 'globalnetworkpolicies', false, ['gnp', 'gnps']),
  StagedNetworkPolicy: v3('StagedNetworkPolicy', 'stagednetworkpolicies', true, ['snp', 'snps']),
  StagedGlobalNetworkPolicy: v3('StagedGlobalNetworkPolicy', 'stagedglobalnetworkpolicies', false, [
    'sgnp',
    'sgnps',
  ]),
  StagedKubernetesNetworkPolicy: v3(
    'StagedKubernetesNetworkPolicy',
    'stagedkubernetesnetworkpolicies',
    true,
    ['sknp', 'sknps'],
  ),
  NetworkSet: v3('NetworkSet', 'networksets', true, ['netset', 'netsets']),
  GlobalNetworkSet: v3('GlobalNetworkSet', 'globalnetworksets', false, ['gns', 'gnss']),
  Profile: v3('Profile', 'profiles', false, ['pro', 'pros']),
  Tier: v3('Tier', 'tiers', false, []),
  FelixConfiguration: v3('FelixConfiguration', 'felixconfigurations', false, ['felixconfig', 'felixconfigs']),
  IPAMConfiguration: v3('IPAMConfiguration', 'ipamconfigurations', false, ['ipamconfig', 'ipamconfigs']),
  KubeControllersConfiguration: v3('KubeControllersConfiguration', 'kubecontrollersconfigurations', false, [
    'kcc',
    'kccs',
  ]),
  ClusterInformation: v3('ClusterInformation', 'clusterinformations', false, ['clusterinfo', 'clusterinfos']),
  IPReservation: v3('IPReservation', 'ipreservations', false, ['ipr', 'iprs']),
  CalicoNodeStatus: v3('CalicoNodeStatus', 'caliconodestatuses', false, [
    'cns',
    'nodestatus',
    'nodestatuses',
  ]),
  // IPAM's own objects keep Calico's v2 IPAM key space (see keyFor below).
  IPAMBlock: {
    kind: 'IPAMBlock',
    apiVersion: CALICO_API_VERSION,
    plural: 'ipamblocks',
    namespaced: false,
    aliases: ['ipamblock', 'ipamblocks', 'block', 'blocks'],
    keyPrefix: `${IPAM}assignment/`,
  },
  BlockAffinity: {
    kind: 'BlockAffinity',
    apiVersion: CALICO_API_VERSION,
    plural: 'blockaffinities',
    namespaced: false,
    aliases: ['blockaffinity', 'blockaffinities', 'affinity', 'affinities'],
    keyPrefix: `${IPAM}host/`,
  },
  IPAMHandle: {
    kind: 'IPAMHandle',
    apiVersion: CALICO_API_VERSION,
    plural: 'ipamhandles',
    namespaced: false,
    aliases: ['ipamhandle', 'ipamhandles', 'handle', 'handles'],
    keyPrefix: `${IPAM}handle/`,
  },
  KubernetesNetworkPolicy: {
    kind: 'NetworkPolicy',
    apiVersion: K8S_NETWORKING_API_VERSION,
    plural: 'networkpolicies',
    namespaced: true,
    aliases: ['networkpolicy.networking.k8s.io', 'networkpolicies.networking.k8s.io', 'knp', 'knps'],
    keyPrefix: '/calico/resources/v3/networking.k8s.io/networkpolicies/',
  },
} as const satisfies Record<string, KindInfo>;

/**
 * Our name for a kind. It equals the `kind` field except for networking.k8s.io/v1
 * NetworkPolicy, which shares its `kind` with Calico's and is told apart by apiVersion.
 */
export type KindName = keyof typeof KINDS;
export const KIND_NAMES = Object.keys(KINDS) as KindName[];

/** The registry key for an object's apiVersion and kind, or undefined when we don't know it. */
export function kindNameOf(apiVersion: string | undefined, kind: string | undefined): KindName | undefined {
  if (apiVersion === K8S_NETWORKING_API_VERSION && kind === 'NetworkPolicy') return 'KubernetesNetworkPolicy';
  if (apiVersion !== undefined && apiVersion !== CALICO_API_VERSION) return undefined;
  if (kind === undefined || kind === 'KubernetesNetworkPolicy') return undefined;
  return kind in KINDS ? (kind as KindName) : undefined;
}

/** Resolves a command-line spelling (`ipp`, `ippools`, `IPPool`, `gnp`…) to a kind. */
export function resolveKindAlias(spelling: string): KindName | undefined {
  const s = spelling.toLowerCase();
  for (const name of KIND_NAMES) {
    const info: KindInfo = KINDS[name];
    if (name.toLowerCase() === s || info.aliases.includes(s)) return name;
  }
  return undefined;
}

// --- IPAM names: reversible forms of block CIDRs ------------------------------------------------

/**
 * IPAM block names follow Calico's CRD naming (`10-0-0-0-26`). IPv6 blocks are written with all
 * eight groups (`fd00-0-0-0-0-0-0-0-122`) so that the name alone gives back the CIDR, which the key
 * layout needs. The family also shows in the prefix length: ≤ 32 for IPv4 blocks, ≥ 116 for IPv6.
 */
export function blockNameFromCidr(cidr: string): string {
  const [addr, len] = cidr.split('/');
  if (addr === undefined || len === undefined) throw new Error(`not a CIDR: ${cidr}`);
  if (!addr.includes(':')) return `${addr.replaceAll('.', '-')}-${len}`;
  return `${expandIPv6(addr).join('-')}-${len}`;
}

/** Inverse of blockNameFromCidr; undefined when `name` is not a block name. */
export function cidrFromBlockName(name: string): string | undefined {
  const parts = name.split('-');
  if (parts.length === 5 && parts.every((p) => /^\d{1,3}$/.test(p))) {
    return `${parts.slice(0, 4).join('.')}/${parts[4]}`;
  }
  if (
    parts.length === 9 &&
    parts.slice(0, 8).every((p) => /^[0-9a-f]{1,4}$/i.test(p)) &&
    /^\d+$/.test(parts[8]!)
  ) {
    return `${compressIPv6(parts.slice(0, 8))}/${parts[8]}`;
  }
  return undefined;
}

function expandIPv6(addr: string): string[] {
  const ip = parseIp(addr);
  if (ip?.family !== 6) throw new Error(`not an IPv6 address: ${addr}`);
  return Array.from({ length: 8 }, (_, i) => ((ip.value >> BigInt((7 - i) * 16)) & 0xffffn).toString(16));
}

function compressIPv6(groups: string[]): string {
  return formatIp(
    6,
    groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n),
  );
}

/** The CIDR as it appears inside an IPAM key: `10.0.0.0-26`, `fd00::-122` (Calico's layout). */
function cidrKeyPart(cidr: string): string {
  return cidr.replace('/', '-');
}

function familyDir(cidr: string): string {
  return cidr.includes(':') ? 'ipv6' : 'ipv4';
}

/**
 * Splits a BlockAffinity name `<node>-<block name>` into node and CIDR. The block name is the last
 * 5 (IPv4) or 9 (IPv6) dash-separated parts; the prefix length tells which.
 */
export function parseAffinityName(name: string): { node: string; cidr: string } | undefined {
  const parts = name.split('-');
  const len = Number(parts.at(-1));
  const n = len <= 32 ? 5 : 9;
  if (parts.length <= n) return undefined;
  const cidr = cidrFromBlockName(parts.slice(-n).join('-'));
  if (cidr === undefined) return undefined;
  return { node: parts.slice(0, -n).join('-'), cidr };
}

export function affinityName(node: string, cidr: string): string {
  return `${node}-${blockNameFromCidr(cidr)}`;
}

/**
 * The etcd key of one object. Throws DatastoreError-free plain errors only for names that cannot
 * exist (callers validate first).
 */
export function keyFor(kind: KindName, name: string, namespace?: string): string {
  const info: KindInfo = KINDS[kind];
  switch (kind) {
    case 'IPAMBlock': {
      const cidr = cidrFromBlockName(name);
      if (cidr === undefined) throw new Error(`IPAMBlock name ${JSON.stringify(name)} is not a block name`);
      return `${info.keyPrefix}${familyDir(cidr)}/block/${cidrKeyPart(cidr)}`;
    }
    case 'BlockAffinity': {
      const parsed = parseAffinityName(name);
      if (parsed === undefined)
        throw new Error(`BlockAffinity name ${JSON.stringify(name)} is not <node>-<block>`);
      return `${info.keyPrefix}${parsed.node}/${familyDir(parsed.cidr)}/block/${cidrKeyPart(parsed.cidr)}`;
    }
    default:
      if (info.namespaced) {
        if (!namespace) throw new Error(`${kind} ${name} needs a namespace`);
        return `${info.keyPrefix}${namespace}/${name}`;
      }
      return `${info.keyPrefix}${name}`;
  }
}

/** Inverse of keyFor: which object a key holds, or undefined for keys we don't own. */
export function refFromKey(key: string): { kind: KindName; name: string; namespace?: string } | undefined {
  for (const kind of KIND_NAMES) {
    const info: KindInfo = KINDS[kind];
    if (!key.startsWith(info.keyPrefix)) continue;
    const rest = key.slice(info.keyPrefix.length);
    switch (kind) {
      case 'IPAMBlock': {
        const m = /^ipv[46]\/block\/(.+)-(\d+)$/.exec(rest);
        if (!m) return undefined;
        return { kind, name: blockNameFromCidr(`${m[1]}/${m[2]}`) };
      }
      case 'BlockAffinity': {
        const m = /^(.+)\/ipv[46]\/block\/(.+)-(\d+)$/.exec(rest);
        if (!m) return undefined;
        return { kind, name: affinityName(m[1]!, `${m[2]}/${m[3]}`) };
      }
      default: {
        const parts = rest.split('/');
        if (info.namespaced) {
          if (parts.length !== 2) return undefined;
          return { kind, namespace: parts[0]!, name: parts[1]! };
        }
        if (parts.length !== 1) return undefined;
        return { kind, name: parts[0]! };
      }
    }
  }
  return undefined;
}

/** The key prefix to list or watch: one kind (optionally one namespace), or everything. */
export function prefixFor(kind: KindName, namespace?: string): string {
  const info: KindInfo = KINDS[kind];
  return info.namespaced && namespace ? `${info.keyPrefix}${namespace}/` : info.keyPrefix;
}
