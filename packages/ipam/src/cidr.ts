/**
 * IPAM's address arithmetic on the datastore's address model (`ParsedIp`, `ParsedCidr`, bigints
 * so IPv6 stays exact): text from callers parsed with IpamError failures, the block that holds an
 * address, and a pool's blocks by index. CIDRs made here are masked (host bits zero), so a CIDR's
 * `address` is its first address.
 */
import {
  familyBits,
  formatMaskedCidr,
  maskedCidr,
  networkAddress,
  type ParsedCidr,
  type ParsedIp,
  parseCidr,
  parseIp,
} from '@calico-ts/datastore';
import { IpamError } from './errors.ts';

/** Parses an address; InvalidArgument when it is neither dotted-quad IPv4 nor RFC 4291 IPv6 text. */
export function ipFromText(text: string): ParsedIp {
  const ip = parseIp(text);
  if (!ip) throw new IpamError('InvalidArgument', `${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
  return ip;
}

/**
 * Parses `address/prefix-length` with host bits cleared; with `requireMasked`, host bits set are
 * refused instead. InvalidArgument when the text is not a CIDR.
 */
export function cidrFromText(text: string, options: { requireMasked?: boolean } = {}): ParsedCidr {
  const parsed = parseCidr(text);
  if (!parsed) {
    throw new IpamError('InvalidArgument', `${JSON.stringify(text)} is not a CIDR (address/prefix-length)`);
  }
  const cidr = maskedCidr(parsed);
  if (options.requireMasked && cidr.address !== parsed.address) {
    throw new IpamError('InvalidArgument', `${text} has host bits set: expected ${formatMaskedCidr(cidr)}`);
  }
  return cidr;
}

/** The first address of a CIDR (its network address, as CIDRs here are masked). */
export function firstIp(cidr: ParsedCidr): ParsedIp {
  return { family: cidr.family, value: networkAddress(cidr) };
}

/** The /blockSize block holding `ip`. */
export function blockOf(ip: ParsedIp, blockSize: number): ParsedCidr {
  return maskedCidr({ family: ip.family, address: ip.value, prefixLength: blockSize });
}

/** How many /blockSize blocks the pool holds. */
export function blockCount(pool: ParsedCidr, blockSize: number): bigint {
  return 1n << BigInt(blockSize - pool.prefixLength);
}

/** The index-th /blockSize block of the pool (0-based). */
export function nthBlock(pool: ParsedCidr, blockSize: number, index: bigint): ParsedCidr {
  const step = 1n << BigInt(familyBits(pool.family) - blockSize);
  return { family: pool.family, address: networkAddress(pool) + index * step, prefixLength: blockSize };
}
