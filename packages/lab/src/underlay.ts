/**
 * The lab underlay's IPv4 addressing, and choosing one that this machine does not use: the lab's
 * addresses live only inside its namespaces, but a lab subnet that is also the host's own (or one
 * the host routes) makes every address the lab prints ambiguous — "etcd at 192.0.2.1" would name
 * the host's real gateway. The checks are pure; `hostIpv4Networks` reads the host's view.
 */
import { execFileSync } from 'node:child_process';
import { LabError } from './errors.ts';

/** Documentation and benchmarking ranges (RFC 5737, RFC 2544) tried in this order. */
export const UNDERLAY_CANDIDATES: readonly string[] = [
  '198.51.100.0/24',
  '203.0.113.0/24',
  '192.0.2.0/24',
  '198.18.0.0/24',
  '198.18.1.0/24',
  '198.19.0.0/24',
];

/** Host i (1-based) is network + 10 + i; the gateway is network + 1. */
const FIRST_NODE_OFFSET = 10;

export interface UnderlayAddressing {
  /** Normalised `a.b.c.d/len`. */
  cidr: string;
  prefixLength: number;
  gateway: string;
  /** How many nodes fit. */
  maxNodes: number;
  nodeIpv4(index: number): string;
  /** Host k (1–9) that is not a node (e.g. a route reflector): between the gateway and node 1. */
  hostIpv4(k: number): string;
}

/** A host network that a candidate underlay collides with, and where the host has it. */
export interface HostNetwork {
  cidr: string;
  /** e.g. `address on eth0`, `route via 10.0.0.1 dev eth0`. */
  source: string;
}

function parseIpv4(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

const formatIpv4 = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** `[first, last]` address numbers of an IPv4 CIDR (or a bare address as /32); undefined if not one. */
export function ipv4Range(cidr: string): [number, number] | undefined {
  const [ip, len = '32'] = cidr.split('/');
  const base = parseIpv4(ip ?? '');
  const bits = Number(len);
  if (base === undefined || !/^\d{1,2}$/.test(len) || bits > 32) return undefined;
  const size = 2 ** (32 - bits);
  const first = Math.floor(base / size) * size;
  return [first, first + size - 1];
}

/** The addressing of an underlay CIDR, refused with the reason when it cannot hold a lab. */
export function underlayAddressing(cidr: string, nodes = 1): UnderlayAddressing {
  const range = ipv4Range(cidr);
  const prefixLength = Number(cidr.split('/')[1]);
  if (!range || !cidr.includes('/'))
    throw new LabError(
      'Invalid',
      `underlay ${JSON.stringify(cidr)}: expected an IPv4 CIDR such as 198.51.100.0/24`,
    );
  if (prefixLength < 8 || prefixLength > 27)
    throw new LabError(
      'Invalid',
      `underlay ${cidr}: expected a prefix length from /8 to /27, got /${prefixLength}`,
    );
  const [first, last] = range;
  const maxNodes = last - first - FIRST_NODE_OFFSET - 1;
  if (nodes > maxNodes)
    throw new LabError('Invalid', `underlay ${cidr} holds ${maxNodes} nodes; ${nodes} were asked for`);
  return {
    cidr: `${formatIpv4(first)}/${prefixLength}`,
    prefixLength,
    gateway: formatIpv4(first + 1),
    maxNodes,
    nodeIpv4: (i) => formatIpv4(first + FIRST_NODE_OFFSET + i),
    hostIpv4: (k) => {
      if (!Number.isInteger(k) || k < 1 || k >= FIRST_NODE_OFFSET)
        throw new LabError('Invalid', `underlay host ${k}: expected 1 to ${FIRST_NODE_OFFSET - 1}`);
      return formatIpv4(first + 1 + k);
    },
  };
}

/** The first host network `cidr` overlaps, if any (default routes do not count). */
export function underlayConflict(cidr: string, host: readonly HostNetwork[]): HostNetwork | undefined {
  const r = ipv4Range(cidr);
  if (!r) return undefined;
  return host.find((h) => {
    const hr = ipv4Range(h.cidr);
    return hr !== undefined && hr[1] - hr[0] < 2 ** 32 - 1 && hr[0] <= r[1] && r[0] <= hr[1];
  });
}

/** The first candidate no host network overlaps. */
export function chooseUnderlay(host: readonly HostNetwork[], candidates = UNDERLAY_CANDIDATES): string {
  const free = candidates.find((c) => underlayConflict(c, host) === undefined);
  if (!free)
    throw new LabError(
      'Invalid',
      `every lab underlay candidate (${candidates.join(', ')}) overlaps an address or route of this host; pass --underlay CIDR`,
    );
  return free;
}

/** This machine's own IPv4 addresses (as their networks) and routes, from `ip -j`. */
export function hostIpv4Networks(): HostNetwork[] {
  const out: HostNetwork[] = [];
  const json = (args: string[]): unknown[] =>
    JSON.parse(execFileSync('ip', ['-j', '-4', ...args], { encoding: 'utf8' }) || '[]') as unknown[];
  for (const link of json(['addr', 'show']) as {
    ifname: string;
    addr_info?: { local: string; prefixlen: number }[];
  }[]) {
    for (const a of link.addr_info ?? [])
      out.push({
        cidr: `${a.local}/${a.prefixlen}`,
        source: `address ${a.local}/${a.prefixlen} on ${link.ifname}`,
      });
  }
  for (const r of json(['route', 'show', 'table', 'all']) as {
    dst: string;
    gateway?: string;
    dev?: string;
  }[]) {
    if (r.gateway) out.push({ cidr: `${r.gateway}/32`, source: `gateway ${r.gateway} of route ${r.dst}` });
    if (r.dst === 'default' || r.dst === undefined) continue;
    out.push({
      cidr: r.dst.includes('/') ? r.dst : `${r.dst}/32`,
      source: `route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.dev ? ` dev ${r.dev}` : ''}`,
    });
  }
  return out;
}
