/**
 * IP addresses and CIDRs as the model needs them: strict parsing (no leading zeros, no zones),
 * masking, canonical printing and overlap. Addresses are held as bigints so IPv4 and IPv6 share
 * one code path.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 4 | 6;

export interface ParsedIp {
  family: IpFamily;
  value: bigint;
}

export interface ParsedCidr {
  family: IpFamily;
  /** The address as written (host bits possibly set). */
  address: bigint;
  prefixLength: number;
}

export function familyBits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

export function parseIp(text: string): ParsedIp | undefined {
  // node:net accepts exactly dotted-quad IPv4 without leading zeros, like Go's net.ParseIP.
  if (isIPv4(text)) {
    let value = 0n;
    for (const part of text.split('.')) value = (value << 8n) | BigInt(Number(part));
    return { family: 4, value };
  }
  // Zone indices (`fe80::1%eth0`) are not addresses a resource can hold.
  if (isIPv6(text) && !text.includes('%')) return { family: 6, value: ipv6ToBigInt(text) };
  return undefined;
}

function ipv6ToBigInt(text: string): bigint {
  let s = text;
  // An embedded IPv4 tail (`::ffff:1.2.3.4`) stands for the last two groups.
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIp(tail);
    const n = v4 ? Number(v4.value) : 0;
    s = `${s.slice(0, lastColon + 1)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = rest ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(Number.parseInt(g, 16));
  return value;
}

export function formatIp(family: IpFamily, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => ((value >> shift) & 0xffn).toString()).join('.');
  }
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((value >> BigInt(i * 16)) & 0xffffn).toString(16));
  // RFC 5952 §4.2: compress the longest run (≥ 2) of zero groups, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Parses `addr/len`. A bare address is not a CIDR here; callers that accept one say so. */
export function parseCidr(text: string): ParsedCidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (!ip || !/^(0|[1-9]\d{0,2})$/.test(lenText)) return undefined;
  const prefixLength = Number(lenText);
  if (prefixLength > familyBits(ip.family)) return undefined;
  return { family: ip.family, address: ip.value, prefixLength };
}

/**
 * Parses `addr/len`, or a bare address as its full-length prefix (`10.0.0.5` → `10.0.0.5/32`),
 * as Calico's `cidr` validator and a workload's ipNetworks accept.
 */
export function parseCidrOrIp(text: string): ParsedCidr | undefined {
  const cidr = parseCidr(text);
  if (cidr) return cidr;
  const ip = parseIp(text);
  return ip ? { family: ip.family, address: ip.value, prefixLength: familyBits(ip.family) } : undefined;
}

function hostMask(family: IpFamily, prefixLength: number): bigint {
  return (1n << BigInt(familyBits(family) - prefixLength)) - 1n;
}

export function networkAddress(cidr: ParsedCidr): bigint {
  return cidr.address & ~hostMask(cidr.family, cidr.prefixLength);
}

export function isMasked(cidr: ParsedCidr): boolean {
  return (cidr.address & hostMask(cidr.family, cidr.prefixLength)) === 0n;
}

/** The same network with host bits cleared: `10.0.0.5/8` → `10.0.0.0/8`. */
export function maskedCidr(cidr: ParsedCidr): ParsedCidr {
  return { family: cidr.family, address: networkAddress(cidr), prefixLength: cidr.prefixLength };
}

/** Number of addresses the CIDR spans. */
export function cidrSize(cidr: ParsedCidr): bigint {
  return 1n << BigInt(familyBits(cidr.family) - cidr.prefixLength);
}

/** The CIDR in canonical form with host bits cleared: `10.0.0.5/8` → `10.0.0.0/8`. */
export function formatMaskedCidr(cidr: ParsedCidr): string {
  return `${formatIp(cidr.family, networkAddress(cidr))}/${cidr.prefixLength}`;
}

export function cidrsOverlap(a: ParsedCidr, b: ParsedCidr): boolean {
  if (a.family !== b.family) return false;
  const shorter = Math.min(a.prefixLength, b.prefixLength);
  const mask = ~hostMask(a.family, shorter);
  return (a.address & mask) === (b.address & mask);
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrContains(outer: ParsedCidr, inner: ParsedCidr): boolean {
  return (
    outer.family === inner.family && outer.prefixLength <= inner.prefixLength && cidrsOverlap(outer, inner)
  );
}

/** True when address `ip` lies inside `cidr`. */
export function cidrContainsIp(cidr: ParsedCidr, ip: ParsedIp): boolean {
  return (
    cidr.family === ip.family &&
    cidrsOverlap(cidr, { family: ip.family, address: ip.value, prefixLength: familyBits(ip.family) })
  );
}
