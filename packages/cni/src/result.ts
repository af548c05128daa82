import { type CniVersion, compareVersions } from './versions.ts';

/** CNI SPEC §"Success": results in the 1.x shape; renderResult() turns them into older versions. */
export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface CniIpConfig {
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

/** Renders a result for the version the runtime speaks. */
export function renderResult(result: CniResult, version: CniVersion): Record<string, unknown> {
  const v1 = compareVersions(version, '1.0.0') >= 0;
  const v11 = compareVersions(version, '1.1.0') >= 0;
  const out: Record<string, unknown> = { cniVersion: version };
  if (result.interfaces) {
    out['interfaces'] = result.interfaces.map((i) => {
      const r: Record<string, unknown> = { name: i.name };
      if (i.mac) r['mac'] = i.mac;
      // CNI SPEC 1.1 added `mtu` to interfaces.
      if (v11 && i.mtu !== undefined) r['mtu'] = i.mtu;
      if (i.sandbox) r['sandbox'] = i.sandbox;
      return r;
    });
  }
  if (result.ips) {
    out['ips'] = result.ips.map((ip) => {
      const r: Record<string, unknown> = {};
      // CNI SPEC 0.3.x/0.4.0 carry the address family as `version`; 1.0 dropped it.
      if (!v1) r['version'] = ip.address.includes(':') ? '6' : '4';
      if (ip.interface !== undefined) r['interface'] = ip.interface;
      r['address'] = ip.address;
      if (ip.gateway) r['gateway'] = ip.gateway;
      return r;
    });
  }
  if (result.routes) {
    out['routes'] = result.routes.map((rt) => {
      const r: Record<string, unknown> = { dst: rt.dst };
      if (rt.gw) r['gw'] = rt.gw;
      if (v11) {
        for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const)
          if (rt[k] !== undefined) r[k] = rt[k];
      }
      return r;
    });
  }
  out['dns'] = result.dns ?? {};
  return out;
}

/** Reads a prevResult of any supported version into the 1.x shape (drops `version` from ips). */
export function parseResult(raw: unknown): CniResult | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const result: CniResult = { cniVersion: typeof r['cniVersion'] === 'string' ? r['cniVersion'] : '1.0.0' };
  if (Array.isArray(r['interfaces'])) result.interfaces = r['interfaces'] as CniInterface[];
  if (Array.isArray(r['ips'])) {
    result.ips = (r['ips'] as Record<string, unknown>[]).map((ip) => {
      const { version: _v, ...rest } = ip;
      return rest as unknown as CniIpConfig;
    });
  }
  if (Array.isArray(r['routes'])) result.routes = r['routes'] as CniRoute[];
  if (typeof r['dns'] === 'object' && r['dns'] !== null) result.dns = r['dns'] as CniDns;
  return result;
}
