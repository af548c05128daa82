/**
 * IPv4/IPv6 addresses and CIDRs as bigints. IPAM needs only a little address arithmetic (block
 * of an address, n-th block of a pool, ordinal inside a block), and bigint keeps IPv6 exact.
 */
import { IpamError } from './errors.ts';

export type IpFamily = 4 | 6;

export interface Cidr {
  family: IpFamily;
  /** First address of the network (host bits zero). */
  base: bigint;
  prefix: number;
}

const V4_MAX = (1n << 32n) - 1n;

export function familyBits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

/** Parses an address; undefined when it is neither dotted-quad IPv4 nor RFC 4291 IPv6 text. */
export function tryParseIp(text: string): { family: IpFamily; value: bigint } | undefined {
  if (text.includes(':')) return tryParseIpv6(text);
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    value = (value << 8n) | BigInt(n);
  }
  return { family: 4, value };
}

function tryParseIpv6(text: string): { family: IpFamily; value: bigint } | undefined {
  let s = text;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4tail) {
    const v4 = tryParseIp(v4tail[1]!);
    if (v4?.family !== 4) return undefined;
    s = `${s.slice(0, -v4tail[1]!.length)}${(v4.value >> 16n).toString(16)}:${(v4.value & 0xffffn).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  let value = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    value = (value << 16n) | BigInt(Number.parseInt(g, 16));
  }
  return { family: 6, value };
}

export function parseIp(text: string): { family: IpFamily; value: bigint } {
  const ip = tryParseIp(text);
  if (!ip) throw new IpamError('InvalidArgument', `${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
  return ip;
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run compressed). */
export function formatIp(value: bigint, family: IpFamily): string {
  if (family === 4) {
    if (value < 0n || value > V4_MAX) throw new RangeError(`IPv4 value out of range: ${value}`);
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
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

/** Canonical form of an address string (so `fd00:0::1` and `fd00::1` compare equal). */
export function canonicalIp(text: string): string {
  const ip = parseIp(text);
  return formatIp(ip.value, ip.family);
}

export function parseCidr(text: string, options: { requireMasked?: boolean } = {}): Cidr {
  const [addr, len, extra] = text.split('/');
  const ip = addr === undefined ? undefined : tryParseIp(addr);
  const prefix = len !== undefined && /^\d{1,3}$/.test(len) ? Number(len) : Number.NaN;
  if (!ip || extra !== undefined || !(prefix >= 0 && prefix <= familyBits(ip.family))) {
    throw new IpamError('InvalidArgument', `${JSON.stringify(text)} is not a CIDR (address/prefix-length)`);
  }
  const base = ip.value & prefixMask(ip.family, prefix);
  if (options.requireMasked && base !== ip.value) {
    throw new IpamError(
      'InvalidArgument',
      `${text} has host bits set: expected ${formatIp(base, ip.family)}/${prefix}`,
    );
  }
  return { family: ip.family, base, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base, c.family)}/${c.prefix}`;
}

function prefixMask(family: IpFamily, prefix: number): bigint {
  const bits = familyBits(family);
  const all = (1n << BigInt(bits)) - 1n;
  return (all >> BigInt(bits - prefix)) << BigInt(bits - prefix);
}

/** Number of addresses in the CIDR. */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(familyBits(c.family) - c.prefix);
}

export function cidrContains(c: Cidr, family: IpFamily, value: bigint): boolean {
  return family === c.family && value >= c.base && value < c.base + cidrSize(c);
}

/** True when `inner` lies entirely within `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return (
    inner.family === outer.family &&
    inner.prefix >= outer.prefix &&
    cidrContains(outer, inner.family, inner.base)
  );
}

/** The /blockSize block of `pool` holding `value`. */
export function blockOf(family: IpFamily, value: bigint, blockSize: number): Cidr {
  return { family, base: value & prefixMask(family, blockSize), prefix: blockSize };
}

/** How many /blockSize blocks the pool holds. */
export function blockCount(pool: Cidr, blockSize: number): bigint {
  return 1n << BigInt(blockSize - pool.prefix);
}

/** The index-th /blockSize block of the pool (0-based). */
export function nthBlock(pool: Cidr, blockSize: number, index: bigint): Cidr {
  const step = 1n << BigInt(familyBits(pool.family) - blockSize);
  return { family: pool.family, base: pool.base + index * step, prefix: blockSize };
}
