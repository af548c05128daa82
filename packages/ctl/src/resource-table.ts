import type { AnyResource, KindName } from '@calico-ts/datastore';

/** What a table cell may need beyond the object itself (calicoctl's `config "asnumber"`). */
export interface TableContext {
  /** The cluster's default AS number (BGPConfiguration `default`, else 64512). */
  defaultAsNumber(): string;
}

type Cell = (r: AnyResource, ctx: TableContext) => string;

interface KindColumns {
  ps: string[];
  wide: string[];
  cells: Record<string, Cell>;
}

const spec = (r: AnyResource): Record<string, unknown> => (r.spec ?? {}) as Record<string, unknown>;
const text = (v: unknown): string => (v === undefined || v === null ? '' : String(v));
const field =
  (name: string): Cell =>
  (r) =>
    text(spec(r)[name]);
const joined =
  (name: string, max = 0): Cell =>
  (r) =>
    joinAndTruncate(spec(r)[name], max);
/** A boolean column prints `false` when unset, as Go's zero value does in calicoctl. */
const flag =
  (name: string): Cell =>
  (r) =>
    String(spec(r)[name] === true);

const NAME: Cell = (r) => r.metadata.name;
const NAMESPACE: Cell = (r) => r.metadata.namespace ?? '';

const POLICY: KindColumns = {
  ps: ['NAME', 'TIER'],
  wide: ['NAME', 'TIER', 'ORDER', 'SELECTOR'],
  cells: { NAME, TIER: field('tier'), ORDER: field('order'), SELECTOR: field('selector') },
};
const GLOBAL_POLICY: KindColumns = {
  ps: ['NAME'],
  wide: ['NAME', 'ORDER', 'SELECTOR'],
  cells: { NAME, ORDER: field('order'), SELECTOR: field('selector') },
};
const NAME_ONLY: KindColumns = { ps: ['NAME'], wide: ['NAME'], cells: { NAME } };

/**
 * calicoctl's default (`ps`) and `wide` columns for each kind (calicoctl/resourcemgr/*.go), and
 * how each cell is derived. Kinds calicoctl does not list print their name only.
 */
export const KIND_COLUMNS: Record<KindName, KindColumns> = {
  IPPool: {
    ps: ['NAME', 'CIDR', 'SELECTOR'],
    wide: ['NAME', 'CIDR', 'NAT', 'IPIPMODE', 'VXLANMODE', 'DISABLED', 'DISABLEBGPEXPORT', 'SELECTOR'],
    cells: {
      NAME,
      CIDR: field('cidr'),
      NAT: flag('natOutgoing'),
      IPIPMODE: (r) => text(spec(r)['ipipMode'] || 'Never'),
      VXLANMODE: (r) => text(spec(r)['vxlanMode'] || 'Never'),
      DISABLED: flag('disabled'),
      DISABLEBGPEXPORT: flag('disableBGPExport'),
      SELECTOR: field('nodeSelector'),
    },
  },
  BGPConfiguration: {
    ps: ['NAME', 'LOGSEVERITY', 'MESHENABLED', 'ASNUMBER'],
    wide: ['NAME', 'LOGSEVERITY', 'MESHENABLED', 'ASNUMBER'],
    cells: {
      NAME,
      LOGSEVERITY: field('logSeverityScreen'),
      MESHENABLED: (r) =>
        spec(r)['nodeToNodeMeshEnabled'] === undefined ? '-' : text(spec(r)['nodeToNodeMeshEnabled']),
      ASNUMBER: (r) => (spec(r)['asNumber'] ? text(spec(r)['asNumber']) : '-'),
    },
  },
  BGPPeer: {
    ps: ['NAME', 'PEERIP', 'NODE', 'ASN'],
    wide: ['NAME', 'PEERIP', 'NODE', 'ASN'],
    cells: {
      NAME,
      PEERIP: field('peerIP'),
      NODE: (r) => text(spec(r)['node'] || spec(r)['nodeSelector'] || '(global)'),
      ASN: field('asNumber'),
    },
  },
  BGPFilter: {
    ps: ['NAME', 'NUMEXPORT', 'NUMIMPORT'],
    wide: ['NAME', 'NUMEXPORT', 'NUMIMPORT'],
    cells: {
      NAME,
      NUMEXPORT: (r) => String(count(spec(r)['exportV4']) + count(spec(r)['exportV6'])),
      NUMIMPORT: (r) => String(count(spec(r)['importV4']) + count(spec(r)['importV6'])),
    },
  },
  Node: {
    ps: ['NAME'],
    wide: ['NAME', 'ASN', 'IPV4', 'IPV6'],
    cells: {
      NAME,
      ASN: (r, ctx) => {
        const bgp = spec(r)['bgp'] as Record<string, unknown> | undefined;
        if (!bgp) return '';
        return bgp['asNumber'] ? text(bgp['asNumber']) : `(${ctx.defaultAsNumber()})`;
      },
      IPV4: (r) => text((spec(r)['bgp'] as Record<string, unknown> | undefined)?.['ipv4Address']),
      IPV6: (r) => text((spec(r)['bgp'] as Record<string, unknown> | undefined)?.['ipv6Address']),
    },
  },
  WorkloadEndpoint: {
    ps: ['WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE'],
    wide: ['NAME', 'WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE', 'PROFILES', 'NATS'],
    cells: {
      NAME,
      WORKLOAD: (r) => text(spec(r)['workload'] || spec(r)['pod']),
      NODE: field('node'),
      NETWORKS: joined('ipNetworks'),
      INTERFACE: field('interfaceName'),
      PROFILES: joined('profiles'),
      NATS: (r) =>
        joinAndTruncate(
          ((spec(r)['ipNATs'] as { internalIP?: string; externalIP?: string }[] | undefined) ?? []).map(
            (n) => `${n.internalIP ?? ''}->${n.externalIP ?? ''}`,
          ),
          0,
        ),
    },
  },
  HostEndpoint: {
    ps: ['NAME', 'NODE'],
    wide: ['NAME', 'NODE', 'INTERFACE', 'IPS', 'PROFILES'],
    cells: {
      NAME,
      NODE: field('node'),
      INTERFACE: field('interfaceName'),
      IPS: joined('expectedIPs'),
      PROFILES: joined('profiles'),
    },
  },
  NetworkPolicy: POLICY,
  GlobalNetworkPolicy: GLOBAL_POLICY,
  StagedNetworkPolicy: POLICY,
  StagedGlobalNetworkPolicy: GLOBAL_POLICY,
  StagedKubernetesNetworkPolicy: NAME_ONLY,
  NetworkSet: { ps: ['NAME'], wide: ['NAME', 'NETS'], cells: { NAME, NETS: joined('nets', 80) } },
  GlobalNetworkSet: { ps: ['NAME'], wide: ['NAME', 'NETS'], cells: { NAME, NETS: joined('nets', 80) } },
  Profile: { ps: ['NAME'], wide: ['NAME', 'LABELS'], cells: { NAME, LABELS: joined('labelsToApply') } },
  Tier: { ps: ['NAME', 'ORDER'], wide: ['NAME', 'ORDER'], cells: { NAME, ORDER: field('order') } },
  FelixConfiguration: NAME_ONLY,
  IPAMConfiguration: NAME_ONLY,
  KubeControllersConfiguration: NAME_ONLY,
  ClusterInformation: {
    ps: ['NAME', 'CLUSTERGUID', 'CLUSTERTYPE', 'CALICOVERSION', 'DATASTOREREADY'],
    wide: ['NAME', 'CLUSTERGUID', 'CLUSTERTYPE', 'CALICOVERSION', 'DATASTOREREADY'],
    cells: {
      NAME,
      CLUSTERGUID: field('clusterGUID'),
      CLUSTERTYPE: field('clusterType'),
      CALICOVERSION: field('calicoVersion'),
      DATASTOREREADY: field('datastoreReady'),
    },
  },
  IPReservation: {
    ps: ['NAME'],
    wide: ['NAME', 'CIDRS'],
    cells: { NAME, CIDRS: joined('reservedCIDRs', 80) },
  },
  CalicoNodeStatus: NAME_ONLY,
  IPAMBlock: {
    ps: ['NAME', 'CIDR', 'AFFINITY'],
    wide: ['NAME', 'CIDR', 'AFFINITY'],
    cells: { NAME, CIDR: field('cidr'), AFFINITY: field('affinity') },
  },
  BlockAffinity: {
    ps: ['NAME', 'NODE', 'CIDR', 'STATE'],
    wide: ['NAME', 'NODE', 'CIDR', 'STATE'],
    cells: { NAME, NODE: field('node'), CIDR: field('cidr'), STATE: field('state') },
  },
  IPAMHandle: NAME_ONLY,
  KubernetesNetworkPolicy: NAME_ONLY,
};

/** The columns `get` prints: calicoctl's, with NAMESPACE first for namespaced kinds under -A. */
export function tableHeadings(kind: KindName, wide: boolean, withNamespace: boolean): string[] {
  const cols = wide ? KIND_COLUMNS[kind].wide : KIND_COLUMNS[kind].ps;
  return withNamespace ? ['NAMESPACE', ...cols] : cols;
}

/** Every column heading a kind's tables have (ps and wide), plus NAMESPACE. */
export function knownHeadings(kind: KindName): string[] {
  return [...new Set([...KIND_COLUMNS[kind].ps, ...KIND_COLUMNS[kind].wide, 'NAMESPACE'])];
}

export function tableRows(
  kind: KindName,
  headings: readonly string[],
  items: readonly AnyResource[],
  ctx: TableContext,
): string[][] {
  const cells: Record<string, Cell> = { ...KIND_COLUMNS[kind].cells, NAMESPACE };
  return items.map((r) => headings.map((h) => cells[h]!(r, ctx)));
}

function count(v: unknown): number {
  return Array.isArray(v) ? v.length : 0;
}

/** calicoctl's joinAndTruncate: comma-joined, maps as sorted `k=v`, cut to `max` with `...`. */
function joinAndTruncate(v: unknown, max: number): string {
  if (v === undefined || v === null) return '';
  const items =
    typeof v === 'object' && !Array.isArray(v)
      ? Object.entries(v as Record<string, unknown>)
          .map(([k, x]) => `${k}=${text(x)}`)
          .sort()
      : Array.isArray(v)
        ? v.map(text)
        : [text(v)];
  const s = items.join(',');
  return max > 0 && s.length > max ? `${s.slice(0, max - 3)}...` : s;
}
