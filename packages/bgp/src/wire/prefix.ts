/**
 * Addresses and prefixes as canonical strings ("10.0.0.0/24", "2001:db8::/64") plus the RFC 4271
 * §4.3 / RFC 4760 §5 NLRI encoding (length octet + minimal prefix octets, RFC 7911 §3 path id).
 */
import { BgpError } from './bgp-error.ts';
import { Afi, ErrorCode, UpdateSubcode } from './constants.ts';

export interface Nlri {
  prefix: string;
  /** RFC 7911 path identifier; 0 when ADD-PATH is not in use. */
  pathId: number;
}

export interface ParsedPrefix {
  afi: Afi;
  length: number;
  bytes: Uint8Array;
}

export function parseIpv4(s: string): Uint8Array | undefined {
  // Hand-rolled: this runs for every prefix packed into an UPDATE.
  const out = new Uint8Array(4);
  let octet = 0;
  let digits = 0;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || octet > 2) return undefined;
      out[octet++] = n;
      n = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 3) return undefined;
      n = n * 10 + (c - 48);
      digits++;
      if (n > 255) return undefined;
    } else return undefined;
  }
  if (digits === 0 || octet !== 3) return undefined;
  out[3] = n;
  return out;
}

export function formatIpv4(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

export function parseIpv6(s: string): Uint8Array | undefined {
  let text = s;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    const v4 = parseIpv4(text.slice(lastColon + 1));
    if (!v4) return undefined;
    const hi = ((v4[0]! << 8) | v4[1]!).toString(16);
    const lo = ((v4[2]! << 8) | v4[3]!).toString(16);
    text = `${text.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = parseGroups(halves[0]!);
  const rest = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!head || !rest) return undefined;
  const groups = [...head];
  const explicit = head.length + rest.length;
  if (halves.length === 2) {
    if (explicit > 7) return undefined;
    for (let i = 0; i < 8 - explicit; i++) groups.push(0);
  } else if (explicit !== 8) return undefined;
  groups.push(...rest);
  if (groups.length !== 8) return undefined;
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[i * 2] = groups[i]! >> 8;
    out[i * 2 + 1] = groups[i]! & 0xff;
  }
  return out;
}

/** RFC 5952 canonical text: lowercase, longest run of ≥2 zero groups compressed. */
export function formatIpv6(b: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + i * 2]! << 8) | b[off + i * 2 + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

export function parseIp(s: string): { afi: Afi; bytes: Uint8Array } | undefined {
  if (s.includes(':')) {
    const bytes = parseIpv6(s);
    return bytes ? { afi: Afi.Ipv6, bytes } : undefined;
  }
  const bytes = parseIpv4(s);
  return bytes ? { afi: Afi.Ipv4, bytes } : undefined;
}

/** Strip the "::ffff:" of an IPv4-mapped IPv6 address (how a dual-stack listener reports peers). */
export function normalizeIp(s: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  if (m) return m[1]!;
  const p = parseIp(s);
  if (!p) return s;
  return p.afi === Afi.Ipv4 ? formatIpv4(p.bytes) : formatIpv6(p.bytes);
}

export function parsePrefix(s: string): ParsedPrefix | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(s.slice(0, slash));
  if (!ip) return undefined;
  let length = 0;
  const lenDigits = s.length - slash - 1;
  if (lenDigits < 1 || lenDigits > 3) return undefined;
  for (let i = slash + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
    length = length * 10 + (c - 48);
  }
  if (length > ip.bytes.length * 8) return undefined;
  // Host bits must be zero for a canonical prefix.
  const bytes = ip.bytes;
  for (let bit = length; bit < bytes.length * 8; bit++) {
    if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) return undefined;
  }
  return { afi: ip.afi, length, bytes };
}

export function formatPrefix(afi: number, bytes: Uint8Array, length: number): string {
  return `${afi === Afi.Ipv4 ? formatIpv4(bytes) : formatIpv6(bytes)}/${length}`;
}

export function prefixAfi(prefix: string): Afi {
  return prefix.includes(':') ? Afi.Ipv6 : Afi.Ipv4;
}

function invalidNetwork(msg: string): BgpError {
  return new BgpError(
    'BGP_UPDATE_INVALID_NETWORK_FIELD',
    ErrorCode.Update,
    UpdateSubcode.InvalidNetworkField,
    msg,
  );
}

/**
 * Decode a run of NLRI (RFC 4271 §4.3). A bad length or an overrun is a session reset
 * (RFC 7606 §5.3), signalled as Invalid Network Field.
 */
export function decodeNlri(
  buf: Uint8Array,
  start: number,
  end: number,
  afi: number,
  addPath: boolean,
): Nlri[] {
  const maxLen = afi === Afi.Ipv4 ? 32 : 128;
  const out: Nlri[] = [];
  let p = start;
  while (p < end) {
    let pathId = 0;
    if (addPath) {
      if (p + 4 > end) throw invalidNetwork('NLRI path identifier overruns the field');
      pathId = ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
      p += 4;
    }
    const length = buf[p]!;
    if (p >= end) throw invalidNetwork('NLRI length octet missing');
    if (length > maxLen) throw invalidNetwork(`NLRI prefix length ${length} exceeds ${maxLen}`);
    const n = (length + 7) >> 3;
    if (p + 1 + n > end) throw invalidNetwork(`NLRI /${length} overruns the field`);
    let prefix: string;
    if (afi === Afi.Ipv4) {
      let addr = 0;
      for (let i = 0; i < n; i++) addr |= buf[p + 1 + i]! << (24 - 8 * i);
      // Trailing bits beyond the length are ignored (RFC 4271 §4.3), so mask them.
      if (length < 32) addr &= ~(0xffffffff >>> length);
      prefix = ipv4PrefixText(addr >>> 0, length);
    } else {
      const bytes = new Uint8Array(16);
      bytes.set(buf.subarray(p + 1, p + 1 + n));
      if (length % 8 !== 0) bytes[n - 1] = bytes[n - 1]! & (0xff << (8 - (length % 8)));
      prefix = `${formatIpv6(bytes)}/${length}`;
    }
    out.push({ prefix, pathId });
    p += 1 + n;
  }
  return out;
}

const TEXT = new Uint8Array(24);
// Buffer's latin1 slice makes a flat one-byte string several times faster than TextDecoder.
const TEXT_BUFFER = Buffer.from(TEXT.buffer, TEXT.byteOffset, TEXT.length);

function putDecimal(n: number, at: number): number {
  let p = at;
  if (n >= 100) TEXT[p++] = 48 + Math.floor(n / 100);
  if (n >= 10) TEXT[p++] = 48 + (Math.floor(n / 10) % 10);
  TEXT[p++] = 48 + (n % 10);
  return p;
}

/**
 * "a.b.c.d/len" as one flat string: template literals would build a rope of nine pieces per
 * prefix, which costs several hundred bytes each across a 100k-route table.
 */
function ipv4PrefixText(addr: number, length: number): string {
  let p = putDecimal(addr >>> 24, 0);
  TEXT[p++] = 46;
  p = putDecimal((addr >>> 16) & 255, p);
  TEXT[p++] = 46;
  p = putDecimal((addr >>> 8) & 255, p);
  TEXT[p++] = 46;
  p = putDecimal(addr & 255, p);
  TEXT[p++] = 47;
  p = putDecimal(length, p);
  return TEXT_BUFFER.toString('latin1', 0, p);
}

/**
 * Write "a.b.c.d/len" as an NLRI (length octet, then the significant octets) at `off`, without
 * allocating: the send path encodes every advertised prefix through here. Returns the offset after
 * it, or -1 when `s` is not a canonical IPv4 prefix (the caller falls back to `parsePrefix`).
 */
export function writeIpv4PrefixNlri(s: string, out: Uint8Array, off: number): number {
  let addr = 0;
  let octet = 0;
  let digits = 0;
  let n = 0;
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 3) return -1;
      n = n * 10 + (c - 48);
      digits++;
      if (n > 255) return -1;
    } else if (c === 46 || c === 47) {
      if (digits === 0 || (c === 46) !== octet < 3) return -1;
      addr = addr * 256 + n;
      octet++;
      n = 0;
      digits = 0;
      if (c === 47) break;
    } else return -1;
  }
  if (octet !== 4 || i === s.length) return -1;
  let length = 0;
  const lenDigits = s.length - i - 1;
  if (lenDigits < 1 || lenDigits > 2) return -1;
  for (i++; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    length = length * 10 + (c - 48);
  }
  if (length > 32) return -1;
  // Host bits must be zero for a canonical prefix.
  if (length < 32 && addr % 2 ** (32 - length) !== 0) return -1;
  let p = off;
  out[p++] = length;
  const bytes = (length + 7) >> 3;
  for (let b = 0; b < bytes; b++) out[p++] = (addr >>> (24 - 8 * b)) & 0xff;
  return p;
}

/** Encoded size of one NLRI. */
export function nlriSize(prefix: ParsedPrefix, addPath: boolean): number {
  return (addPath ? 4 : 0) + 1 + ((prefix.length + 7) >> 3);
}

export function writeNlri(
  out: Uint8Array,
  off: number,
  prefix: ParsedPrefix,
  pathId: number,
  addPath: boolean,
): number {
  let p = off;
  if (addPath) {
    out[p++] = pathId >>> 24;
    out[p++] = (pathId >>> 16) & 0xff;
    out[p++] = (pathId >>> 8) & 0xff;
    out[p++] = pathId & 0xff;
  }
  out[p++] = prefix.length;
  const n = (prefix.length + 7) >> 3;
  const b = prefix.bytes;
  for (let i = 0; i < n; i++) out[p + i] = b[i]!;
  return p + n;
}

/** Does `prefix` fall inside `container` (both canonical, same family)? */
export function prefixContains(container: ParsedPrefix, prefix: ParsedPrefix): boolean {
  if (container.afi !== prefix.afi || prefix.length < container.length) return false;
  const full = container.length >> 3;
  for (let i = 0; i < full; i++) if (container.bytes[i] !== prefix.bytes[i]) return false;
  const rem = container.length & 7;
  if (rem === 0) return true;
  const mask = 0xff << (8 - rem);
  return (container.bytes[full]! & mask) === (prefix.bytes[full]! & mask);
}
