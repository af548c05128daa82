import { hostname } from 'node:os';
import type { EncapsulationMode } from '@calico-ts/datastore';
import { IPTABLES_BACKENDS, type IptablesBackendSetting } from '@calico-ts/felix';

/**
 * calico-node's settings, from flags first, then the environment calico/node reads (NODENAME, IP,
 * IP6, IP_AUTODETECTION_METHOD, AS, CALICO_IPV4POOL_*, NO_DEFAULT_POOLS, CALICO_NETWORKING_BACKEND…),
 * then defaults. No hidden global state: everything a daemon does follows from this object.
 */
export type EncapMode = EncapsulationMode;

export interface PoolSettings {
  cidr: string;
  blockSize: number;
  ipipMode: EncapMode;
  vxlanMode: EncapMode;
  natOutgoing: boolean;
  nodeSelector: string;
  disableBGPExport: boolean;
}

export interface NodeConfig {
  nodeName: string;
  /** `autodetect`, a fixed address (CIDR or plain), or `none`. */
  ip: string;
  ip6: string;
  ipAutodetectionMethod: string;
  ip6AutodetectionMethod: string;
  asNumber: string | undefined;
  networkingBackend: 'bird' | 'vxlan' | 'none';
  noDefaultPools: boolean;
  ipv4Pool: PoolSettings | undefined;
  ipv6Pool: PoolSettings | undefined;
  clusterType: string;
  healthHost: string;
  healthPort: number;
  healthEnabled: boolean;
  /**
   * Liveness timeouts of the watched loops (ms), from FELIX_HEALTHTIMEOUTOVERRIDES
   * (`InternalDataplaneMainLoop=90s,BGPAgentApplyLoop=90s`, Calico's name=duration list).
   */
  healthTimeouts: HealthTimeouts;
  metricsHost: string;
  metricsPort: number;
  metricsEnabled: boolean;
  cniSocket: string;
  cniEnabled: boolean;
  felixEnabled: boolean;
  /**
   * Felix's iptables back end from FELIX_IPTABLESBACKEND (Legacy, NFT or Auto, any case); wins over
   * FelixConfiguration. Undefined: FelixConfiguration's, else Auto.
   */
  iptablesBackend: IptablesBackendSetting | undefined;
  logLevel: string;
  /** Where calico/node writes its node name for the CNI plugin (`/var/lib/calico/nodename`). */
  nodenameFile: string | undefined;
}

export interface HealthTimeouts {
  /** Felix's dataplane apply loop (Calico: InternalDataplaneMainLoop). */
  InternalDataplaneMainLoop: number;
  /** The BGP agent's apply round. */
  BGPAgentApplyLoop: number;
}

export const DEFAULT_HEALTH_TIMEOUTS: Readonly<HealthTimeouts> = {
  InternalDataplaneMainLoop: 90_000,
  BGPAgentApplyLoop: 90_000,
};

/** `name=duration,…` with durations as `250ms`, `30s` or `2m`. */
function healthTimeouts(value: string | undefined): HealthTimeouts {
  const out: HealthTimeouts = { ...DEFAULT_HEALTH_TIMEOUTS };
  if (value === undefined || value.trim() === '') return out;
  for (const item of value.split(',')) {
    const [name, duration] = item.split('=').map((x) => x.trim());
    if (name !== 'InternalDataplaneMainLoop' && name !== 'BGPAgentApplyLoop') {
      throw new ConfigError(
        `FELIX_HEALTHTIMEOUTOVERRIDES: ${JSON.stringify(name)} — expected InternalDataplaneMainLoop or BGPAgentApplyLoop`,
      );
    }
    const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(duration ?? '');
    if (!m) {
      throw new ConfigError(
        `FELIX_HEALTHTIMEOUTOVERRIDES: ${name}=${JSON.stringify(duration)} — expected a duration such as 500ms, 30s or 2m`,
      );
    }
    out[name] = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000);
  }
  return out;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Env = Readonly<Record<string, string | undefined>>;

function encap(value: string | undefined, name: string): EncapMode {
  const v = (value ?? '').trim();
  if (v === '' || /^(never|off|false)$/i.test(v)) return 'Never';
  if (/^always$/i.test(v)) return 'Always';
  if (/^cross-?subnet$/i.test(v)) return 'CrossSubnet';
  throw new ConfigError(`${name}: ${JSON.stringify(value)} — expected Never, Always or CrossSubnet`);
}

function bool(value: string | undefined, name: string, dflt: boolean): boolean {
  if (value === undefined || value === '') return dflt;
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off)$/i.test(value)) return false;
  throw new ConfigError(`${name}: ${JSON.stringify(value)} — expected true or false`);
}

function int(value: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (value === undefined || value === '') return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name}: ${JSON.stringify(value)} — expected an integer from ${min} to ${max}`);
  }
  return n;
}

function iptablesBackend(value: string | undefined): IptablesBackendSetting | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const found = IPTABLES_BACKENDS.find((b) => b.toLowerCase() === value.trim().toLowerCase());
  if (!found) {
    throw new ConfigError(
      `FELIX_IPTABLESBACKEND: ${JSON.stringify(value)} — expected ${IPTABLES_BACKENDS.slice(0, -1).join(', ')} or ${IPTABLES_BACKENDS.at(-1)}`,
    );
  }
  return found;
}

function pool(env: Env, v: 4 | 6): PoolSettings | undefined {
  const p = v === 4 ? 'CALICO_IPV4POOL_' : 'CALICO_IPV6POOL_';
  const cidr = env[`${p}CIDR`] ?? (v === 4 ? '192.168.0.0/16' : '');
  if (cidr === '' || cidr === 'none') return undefined;
  return {
    cidr,
    blockSize: int(
      env[`${p}BLOCK_SIZE`],
      `${p}BLOCK_SIZE`,
      v === 4 ? 26 : 122,
      v === 4 ? 20 : 116,
      v === 4 ? 32 : 128,
    ),
    ipipMode: v === 4 ? encap(env[`${p}IPIP`], `${p}IPIP`) : 'Never',
    vxlanMode: encap(env[`${p}VXLAN`], `${p}VXLAN`),
    natOutgoing: bool(env[`${p}NAT_OUTGOING`], `${p}NAT_OUTGOING`, v === 4),
    nodeSelector: env[`${p}NODE_SELECTOR`] || 'all()',
    disableBGPExport: bool(env[`${p}DISABLE_BGP_EXPORT`], `${p}DISABLE_BGP_EXPORT`, false),
  };
}

export function loadNodeConfig(flags: Partial<Record<string, string>>, env: Env = process.env): NodeConfig {
  const get = (flag: string, envName: string): string | undefined => flags[flag] ?? env[envName];
  const backend = (get('networking-backend', 'CALICO_NETWORKING_BACKEND') ?? 'bird').toLowerCase();
  if (backend !== 'bird' && backend !== 'vxlan' && backend !== 'none') {
    throw new ConfigError(
      `CALICO_NETWORKING_BACKEND: ${JSON.stringify(backend)} — expected bird, vxlan or none`,
    );
  }
  const ipv6Requested = (get('ip6', 'IP6') ?? 'none') !== 'none';
  return {
    nodeName: get('node-name', 'NODENAME') || env['HOSTNAME'] || hostname(),
    ip: get('ip', 'IP') ?? 'autodetect',
    ip6: get('ip6', 'IP6') ?? 'none',
    ipAutodetectionMethod: get('ip-autodetection-method', 'IP_AUTODETECTION_METHOD') ?? 'first-found',
    ip6AutodetectionMethod: get('ip6-autodetection-method', 'IP6_AUTODETECTION_METHOD') ?? 'first-found',
    asNumber: get('as', 'AS') || undefined,
    networkingBackend: backend,
    noDefaultPools: bool(get('no-default-pools', 'NO_DEFAULT_POOLS'), 'NO_DEFAULT_POOLS', false),
    ipv4Pool: pool(env, 4),
    ipv6Pool: ipv6Requested ? pool(env, 6) : undefined,
    clusterType: env['CLUSTER_TYPE'] ?? 'calico-ts,bgp',
    healthHost: get('health-host', 'FELIX_HEALTHHOST') ?? '0.0.0.0',
    healthPort: int(get('health-port', 'FELIX_HEALTHPORT'), 'FELIX_HEALTHPORT', 9099, 0, 65535),
    healthEnabled: bool(get('health-enabled', 'FELIX_HEALTHENABLED'), 'FELIX_HEALTHENABLED', true),
    healthTimeouts: healthTimeouts(env['FELIX_HEALTHTIMEOUTOVERRIDES']),
    metricsHost: get('metrics-host', 'FELIX_PROMETHEUSMETRICSHOST') ?? '0.0.0.0',
    metricsPort: int(
      get('metrics-port', 'FELIX_PROMETHEUSMETRICSPORT'),
      'FELIX_PROMETHEUSMETRICSPORT',
      9091,
      0,
      65535,
    ),
    metricsEnabled: bool(
      get('metrics-enabled', 'FELIX_PROMETHEUSMETRICSENABLED'),
      'FELIX_PROMETHEUSMETRICSENABLED',
      true,
    ),
    cniSocket: get('cni-socket', 'CALICO_CNI_AGENT_SOCKET') ?? '/var/run/calico/cni.sock',
    cniEnabled: bool(get('cni-enabled', 'CALICO_CNI_SERVER_ENABLED'), 'CALICO_CNI_SERVER_ENABLED', true),
    felixEnabled: bool(get('felix-enabled', 'CALICO_FELIX_ENABLED'), 'CALICO_FELIX_ENABLED', true),
    iptablesBackend: iptablesBackend(env['FELIX_IPTABLESBACKEND']),
    logLevel: (get('log-level', 'CALICO_LOG_LEVEL') ?? 'info').toLowerCase(),
    nodenameFile: get('nodename-file', 'CALICO_NODENAME_FILE'),
  };
}
