/**
 * What the agent reads from the datastore, as plain objects, plus the small parsers the
 * calculation shares (addresses in CIDR form, Go duration strings, BGPConfiguration lookup).
 */

import { normalizeIp, type ParsedPrefix, parseIp, parsePrefix } from '@calico-ts/bgp';
import type { ResourceOf } from '@calico-ts/datastore';

export interface AgentSnapshot {
  nodes: readonly ResourceOf<'Node'>[];
  bgpConfigurations: readonly ResourceOf<'BGPConfiguration'>[];
  bgpPeers: readonly ResourceOf<'BGPPeer'>[];
  bgpFilters: readonly ResourceOf<'BGPFilter'>[];
  ipPools: readonly ResourceOf<'IPPool'>[];
  /** Every BlockAffinity (the calculation keeps this node's). */
  blockAffinities: readonly ResourceOf<'BlockAffinity'>[];
  /** Every WorkloadEndpoint (the calculation keeps this node's, for borrowed addresses). */
  workloadEndpoints: readonly ResourceOf<'WorkloadEndpoint'>[];
}

export const EMPTY_SNAPSHOT: AgentSnapshot = {
  nodes: [],
  bgpConfigurations: [],
  bgpPeers: [],
  bgpFilters: [],
  ipPools: [],
  blockAffinities: [],
  workloadEndpoints: [],
};

/** confd's defaults when BGPConfiguration `default` is absent (client.go default table). */
export const DEFAULT_AS_NUMBER = 64512;
export const DEFAULT_LISTEN_PORT = 179;
/** BIRD's `graceful restart time` default (seconds). */
export const DEFAULT_RESTART_TIME = 120;

/** `10.0.0.5/24` or `10.0.0.5` → `10.0.0.5` (Node addresses carry their subnet). */
export function addressOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const ip = value.split('/')[0]!;
  return parseIp(ip) ? normalizeIp(ip) : undefined;
}

/** `10.0.0.5/24` → the subnet 10.0.0.0/24 (for CrossSubnet decisions), if a length is given. */
export function subnetOf(value: string | undefined): ParsedPrefix | undefined {
  if (!value?.includes('/')) return undefined;
  const [ip, len] = value.split('/');
  const p = parseIp(ip!);
  if (!p) return undefined;
  const length = Number(len);
  const bytes = new Uint8Array(p.bytes);
  for (let bit = length; bit < bytes.length * 8; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { afi: p.afi, length, bytes };
}

/** A canonical prefix from a CIDR that may have host bits (e.g. a /32 network of an endpoint). */
export function canonicalPrefix(cidr: string): ParsedPrefix | undefined {
  const withLen = cidr.includes('/') ? cidr : `${cidr}/${cidr.includes(':') ? 128 : 32}`;
  return parsePrefix(withLen) ?? subnetOf(withLen);
}

const UNIT_SECONDS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** Go's time.ParseDuration for the forms the model accepts ("90s", "1m30s", "500ms", "0"). */
export function durationSeconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value === '0') return 0;
  let total = 0;
  let matched = '';
  for (const m of value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(m[1]) * UNIT_SECONDS[m[2]!]!;
    matched += m[0];
  }
  return matched === value.replace(/^-/, '') && matched !== '' ? total : undefined;
}

/** The cluster-wide and this node's BGPConfiguration (`default`, `node.<name>`). */
export function bgpConfigurations(
  snapshot: AgentSnapshot,
  nodeName: string,
): {
  global: ResourceOf<'BGPConfiguration'>['spec'] | undefined;
  node: ResourceOf<'BGPConfiguration'>['spec'] | undefined;
} {
  const byName = (n: string) => snapshot.bgpConfigurations.find((c) => c.metadata.name === n)?.spec;
  return { global: byName('default'), node: byName(`node.${nodeName}`) };
}
