/**
 * Felix's effective configuration: built-in defaults (Calico's `config_params.go` values, see
 * calico-internals §3.9–3.11), overlaid by the global FelixConfiguration `default`, then the
 * per-node `node.<name>`, then what the host process passes in. The calc graph computes it; the
 * dataplane only reads it.
 */
import { RouteProtocol, VXLAN_PORT, VXLAN_VNI, WORKLOAD_INTERFACE_PREFIX } from '@calico-ts/datastore';

export interface PortSpec {
  protocol: 'tcp' | 'udp' | 'sctp';
  port: number;
  /** Restricts the failsafe to a peer network (FelixConfiguration `net`). */
  net?: string;
}

export interface FelixConfig {
  /** Seconds between full route resyncs against the kernel; 0 disables. */
  routeRefreshInterval: number;
  /** Seconds between full iptables (and ipset) resyncs against the kernel; 0 disables. */
  iptablesRefreshInterval: number;
  ipsetsRefreshInterval: number;
  interfacePrefix: string;
  failsafeInboundHostPorts: PortSpec[];
  failsafeOutboundHostPorts: PortSpec[];
  defaultEndpointToHostAction: 'Drop' | 'Return' | 'Accept';
  iptablesFilterAllowAction: 'Accept' | 'Return';
  chainInsertMode: 'Insert' | 'Append';
  iptablesMarkMask: number;
  /** Linux route protocol for workload device routes and VXLAN routes (RouteProtocol.device). */
  deviceRouteProtocol: number;
  removeExternalRoutes: boolean;
  vxlanVNI: number;
  vxlanPort: number;
  /** 0 = underlay MTU minus the VXLAN overhead (ENCAPSULATION_OVERHEAD.vxlan). */
  vxlanMTU: number;
  ipipMTU: number;
  /** Derived from pools unless set explicitly (Felix: `VXLANEnabled`/`IpInIpEnabled` unset). */
  vxlanEnabled: boolean;
  ipipEnabled: boolean;
  natOutgoingAddress: string | undefined;
  allowVXLANPacketsFromWorkloads: boolean;
  allowIPIPPacketsFromWorkloads: boolean;
  disableConntrackInvalidCheck: boolean;
  ipv6Support: boolean;
  ipForwarding: 'Enabled' | 'Disabled';
  /** Underlay device override for VXLAN; otherwise the device holding the node IP. */
  vxlanParentInterface: string | undefined;
  /**
   * `dropLogs: Enabled|Disabled` (ours; Calico OSS renders NFLOG only for flow logs): an NFLOG
   * record before every policy drop, read by Felix (`Felix.drops()`, `calico drops`).
   */
  dropLogs: boolean;
  /**
   * `policyConntrackFlush: Enabled|Disabled` (ours; Calico leaves established flows running):
   * when a policy change newly denies a flow, its conntrack entries are deleted so it stops.
   */
  policyConntrackFlush: boolean;
  /**
   * Which iptables binaries Felix runs (`IptablesBackend`, env FELIX_IPTABLESBACKEND): `Legacy`,
   * `NFT`, or `Auto` to follow the back end that holds the host's rules. A configured back end
   * spawns no detection. Taken when Felix first touches iptables; a later change applies when
   * calico-node restarts.
   */
  iptablesBackend: IptablesBackendSetting;
  /**
   * `featureDetectOverride: "ChecksumOffloadBroken=true"` (Calico's knob): Felix turns tx
   * checksum offload off on the VXLAN device. False by default, unlike Calico (which turns it
   * off on every kernel for a MASQUERADE `--random-fully` checksum bug): with it off, TCP is
   * segmented before encapsulation and every MTU-sized packet is encapsulated on its own
   * (docs/benchmarks.md, calico-node, 2026-12-04 evening).
   */
  checksumOffloadBroken: boolean;
}

export const IPTABLES_BACKENDS = ['Legacy', 'NFT', 'Auto'] as const;
export type IptablesBackendSetting = (typeof IPTABLES_BACKENDS)[number];

export const DEFAULT_FAILSAFE_INBOUND: readonly PortSpec[] = [
  { protocol: 'tcp', port: 22 },
  { protocol: 'udp', port: 68 },
  { protocol: 'tcp', port: 179 },
  { protocol: 'tcp', port: 2379 },
  { protocol: 'tcp', port: 2380 },
  { protocol: 'tcp', port: 5473 },
  { protocol: 'tcp', port: 6443 },
  { protocol: 'tcp', port: 6666 },
  { protocol: 'tcp', port: 6667 },
];

export const DEFAULT_FAILSAFE_OUTBOUND: readonly PortSpec[] = [
  { protocol: 'udp', port: 53 },
  { protocol: 'udp', port: 67 },
  { protocol: 'tcp', port: 179 },
  { protocol: 'tcp', port: 2379 },
  { protocol: 'tcp', port: 2380 },
  { protocol: 'tcp', port: 5473 },
  { protocol: 'tcp', port: 6443 },
  { protocol: 'tcp', port: 6666 },
  { protocol: 'tcp', port: 6667 },
];

export function defaultFelixConfig(): FelixConfig {
  return {
    routeRefreshInterval: 90,
    iptablesRefreshInterval: 180,
    ipsetsRefreshInterval: 90,
    interfacePrefix: WORKLOAD_INTERFACE_PREFIX,
    failsafeInboundHostPorts: DEFAULT_FAILSAFE_INBOUND.map((p) => ({ ...p })),
    failsafeOutboundHostPorts: DEFAULT_FAILSAFE_OUTBOUND.map((p) => ({ ...p })),
    defaultEndpointToHostAction: 'Drop',
    iptablesFilterAllowAction: 'Accept',
    chainInsertMode: 'Insert',
    iptablesMarkMask: 0xffff0000,
    deviceRouteProtocol: RouteProtocol.device,
    removeExternalRoutes: true,
    vxlanVNI: VXLAN_VNI,
    vxlanPort: VXLAN_PORT,
    vxlanMTU: 0,
    ipipMTU: 0,
    vxlanEnabled: false,
    ipipEnabled: false,
    natOutgoingAddress: undefined,
    allowVXLANPacketsFromWorkloads: false,
    allowIPIPPacketsFromWorkloads: false,
    disableConntrackInvalidCheck: false,
    ipv6Support: true,
    ipForwarding: 'Enabled',
    vxlanParentInterface: undefined,
    dropLogs: true,
    policyConntrackFlush: false,
    iptablesBackend: 'Auto',
    checksumOffloadBroken: false,
  };
}

/** Configuration a host may fix regardless of the datastore (Felix's env/config-file layer). */
export type FelixConfigOverrides = Partial<FelixConfig>;

/**
 * Parses a Kubernetes-style duration (`90s`, `1m30s`, `500ms`, `2h`) or a bare number of
 * seconds. Undefined when it is neither.
 */
export function parseDurationSeconds(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value !== 'string' || value === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001, us: 1e-6, µs: 1e-6, ns: 1e-9 };
  let total = 0;
  let rest = value;
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * unit[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** `tcp:22`, `udp:68` or objects `{protocol, port, net}` (FelixConfiguration's ProtoPort). */
function parsePorts(value: unknown): PortSpec[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const out: PortSpec[] = [];
  for (const item of value) {
    if (typeof item === 'string') {
      const m = /^(tcp|udp|sctp):(\d+)$/i.exec(item);
      if (!m) return undefined;
      out.push({ protocol: m[1]!.toLowerCase() as PortSpec['protocol'], port: Number(m[2]) });
    } else if (item && typeof item === 'object') {
      const o = item as Record<string, unknown>;
      const protocol = String(o['protocol'] ?? 'tcp').toLowerCase();
      const port = Number(o['port']);
      if (!['tcp', 'udp', 'sctp'].includes(protocol) || !Number.isInteger(port)) return undefined;
      const spec: PortSpec = { protocol: protocol as PortSpec['protocol'], port };
      if (typeof o['net'] === 'string' && o['net']) spec.net = o['net'];
      out.push(spec);
    } else {
      return undefined;
    }
  }
  return out;
}

function oneOf<T extends string>(value: unknown, options: readonly T[]): T | undefined {
  if (typeof value !== 'string') return undefined;
  return options.find((o) => o.toLowerCase() === value.toLowerCase());
}

function integer(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(value)) return Number(value);
  return undefined;
}

/**
 * One feature of Calico's `featureDetectOverride` (`"Name=true,Other=false"`): true or false
 * when it names `feature`, undefined otherwise (detection, here the default, decides).
 */
export function featureOverride(value: unknown, feature: string): boolean | undefined {
  if (typeof value !== 'string') return undefined;
  for (const item of value.split(',')) {
    const [name, v] = item.split('=').map((x) => x.trim());
    if (name === feature && (v === 'true' || v === 'false')) return v === 'true';
  }
  return undefined;
}

function bool(value: unknown): boolean | undefined {
  return typeof value === 'boolean' ? value : undefined;
}

/**
 * The fields of one FelixConfiguration spec that Felix understands, as a partial config.
 * Unknown or ill-typed fields are ignored (Felix logs and keeps the lower layer's value).
 */
export function configFromSpec(spec: Record<string, unknown> | undefined): FelixConfigOverrides {
  if (!spec) return {};
  const out: FelixConfigOverrides = {};
  const set = <K extends keyof FelixConfig>(key: K, value: FelixConfig[K] | undefined): void => {
    if (value !== undefined) out[key] = value;
  };
  set('routeRefreshInterval', parseDurationSeconds(spec['routeRefreshInterval']));
  set('iptablesRefreshInterval', parseDurationSeconds(spec['iptablesRefreshInterval']));
  set('ipsetsRefreshInterval', parseDurationSeconds(spec['ipsetsRefreshInterval']));
  if (typeof spec['interfacePrefix'] === 'string' && spec['interfacePrefix']) {
    out.interfacePrefix = spec['interfacePrefix'];
  }
  set('failsafeInboundHostPorts', parsePorts(spec['failsafeInboundHostPorts']));
  set('failsafeOutboundHostPorts', parsePorts(spec['failsafeOutboundHostPorts']));
  set(
    'defaultEndpointToHostAction',
    oneOf(spec['defaultEndpointToHostAction'], ['Drop', 'Return', 'Accept']),
  );
  set('iptablesFilterAllowAction', oneOf(spec['iptablesFilterAllowAction'], ['Accept', 'Return']));
  set('chainInsertMode', oneOf(spec['chainInsertMode'], ['Insert', 'Append']));
  set('iptablesMarkMask', integer(spec['iptablesMarkMask']));
  set('deviceRouteProtocol', integer(spec['deviceRouteProtocol']));
  set('removeExternalRoutes', bool(spec['removeExternalRoutes']));
  set('vxlanVNI', integer(spec['vxlanVNI']));
  set('vxlanPort', integer(spec['vxlanPort']));
  set('vxlanMTU', integer(spec['vxlanMTU']));
  set('ipipMTU', integer(spec['ipipMTU']));
  set('vxlanEnabled', bool(spec['vxlanEnabled']));
  set('ipipEnabled', bool(spec['ipipEnabled']));
  if (typeof spec['natOutgoingAddress'] === 'string' && spec['natOutgoingAddress']) {
    out.natOutgoingAddress = spec['natOutgoingAddress'];
  }
  set('allowVXLANPacketsFromWorkloads', bool(spec['allowVXLANPacketsFromWorkloads']));
  set('allowIPIPPacketsFromWorkloads', bool(spec['allowIPIPPacketsFromWorkloads']));
  set('disableConntrackInvalidCheck', bool(spec['disableConntrackInvalidCheck']));
  set('ipv6Support', bool(spec['ipv6Support']));
  set('ipForwarding', oneOf(spec['ipForwarding'], ['Enabled', 'Disabled']));
  const enabled = (v: unknown) => {
    const o = oneOf(v, ['Enabled', 'Disabled']);
    return o === undefined ? undefined : o === 'Enabled';
  };
  set('dropLogs', enabled(spec['dropLogs']));
  set('policyConntrackFlush', enabled(spec['policyConntrackFlush']));
  set('iptablesBackend', oneOf(spec['iptablesBackend'], IPTABLES_BACKENDS));
  set('checksumOffloadBroken', featureOverride(spec['featureDetectOverride'], 'ChecksumOffloadBroken'));
  return out;
}
