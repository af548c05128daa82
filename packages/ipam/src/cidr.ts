/**
 * IPv4/IPv6 addresses and CIDRs as bigints. IPAM needs only a little address arithmetic (block
 * of an address, n-th block of a pool, ordinal inside a block), and bigint keeps IPv6 exact.
 */
import {
  familyBits,
  formatIp as formatAddress,
  type IpFamily,
  parseIp as parseAddress,
} from '@calico-ts/datastore';
import { IpamError } from './errors.ts';

export { familyBits, type IpFamily };

export interface Cidr {
  family: IpFamily;
  /** First address of the network (host bits zero). */
  base: bigint;
  prefix: number;
}

const V4_MAX = (1n << 32n) - 1n;

/** Parses an address; undefined when it is neither dotted-quad IPv4 nor RFC 4291 IPv6 text. */
export function tryParseIp(text: string): { family: IpFamily; value: bigint } | undefined {
  return parseAddress(text);
}

export function parseIp(text: string): { family: IpFamily; value: bigint } {
  const ip = parseAddress(text);
  if (!ip) throw new IpamError('InvalidArgument', `${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
  return ip;
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run compressed). */
export function formatIp(value: bigint, family: IpFamily): string {
  if (family === 4 && (value < 0n || value > V4_MAX))
    throw new RangeError(`IPv4 value out of range: ${value}`);
  return formatAddress(family, value);
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
