/**
 * Just enough address arithmetic for the calculation graph: parse IPv4/IPv6 CIDRs to bigints so
 * that containment ("which pool holds this block") and same-subnet tests are exact.
 */
export interface Cidr {
  readonly family: 4 | 6;
  /** Network address (host bits cleared). */
  readonly network: bigint;
  readonly prefixLength: number;
  /** Canonical text form, e.g. `10.65.0.0/26`. */
  readonly text: string;
}

export function parseIp(text: string): { family: 4 | 6; value: bigint } | undefined {
  if (text.includes(':')) {
    const value = parseIPv6(text);
    return value === undefined ? undefined : { family: 6, value };
  }
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

function parseIPv6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  let value = 0n;
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
    value = (value << 16n) | BigInt(Number.parseInt(g, 16));
  }
  return value;
}

export function formatIp(family: 4 | 6, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join('.');
  }
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((value >> BigInt(i * 16)) & 0xffffn).toString(16));
  // RFC 5952 §4.2.3: compress the longest run of zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

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
