/**
 * Just enough address arithmetic for the calculation graph: parse IPv4/IPv6 CIDRs to bigints so
 * that containment ("which pool holds this block") and same-subnet tests are exact. Address
 * parsing and printing are the datastore's; this adds the calculation graph's CIDR view.
 */
import { formatIp, parseIp } from '@calico-ts/datastore';

export interface Cidr {
  readonly family: 4 | 6;
  /** Network address (host bits cleared). */
  readonly network: bigint;
  readonly prefixLength: number;
  /** Canonical text form, e.g. `10.65.0.0/26`. */
  readonly text: string;
}

export { formatIp, parseIp } from '@calico-ts/datastore';

/** Parses `a.b.c.d/n` (or a bare address, taken as a host route); host bits are cleared. */
export function parseCidr(text: string): Cidr | undefined {
  const [addr, len, extra] = text.split('/');
  if (addr === undefined || extra !== undefined) return undefined;
  const ip = parseIp(addr);
  if (!ip) return undefined;
  const bits = ip.family === 4 ? 32 : 128;
  const prefixLength = len === undefined ? bits : /^\d{1,3}$/.test(len) ? Number(len) : Number.NaN;
  if (!(prefixLength >= 0 && prefixLength <= bits)) return undefined;
  const hostBits = BigInt(bits - prefixLength);
  const network = (ip.value >> hostBits) << hostBits;
  return {
    family: ip.family,
    network,
    prefixLength,
    text: `${formatIp(ip.family, network)}/${prefixLength}`,
  };
}

/** True when `inner` lies wholly inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefixLength < outer.prefixLength) return false;
  const bits = BigInt((outer.family === 4 ? 32 : 128) - outer.prefixLength);
  return inner.network >> bits === outer.network >> bits;
}

/** True when address `ip` lies inside `net`. */
export function cidrContainsIp(net: Cidr, ip: string): boolean {
  const c = parseCidr(ip);
  return c !== undefined && cidrContains(net, c);
}

/** The address part of `a.b.c.d/n` (Node.spec.bgp.ipv4Address carries the subnet length). */
export function addressOf(text: string): string {
  return text.split('/')[0] ?? text;
}
