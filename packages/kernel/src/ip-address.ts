/**
 * Address text ↔ network-order bytes, which is all netlink, ipset and socket options need. The
 * address model (parsing, CIDR arithmetic, canonical text) is @calico-ts/datastore's `parseIp` /
 * `parseCidr`; this package depends on no workspace package, so it keeps only this byte encoding
 * and does not export it.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { KernelError } from './errors.ts';

export type IpFamily = 4 | 6;

export interface Prefix {
  family: IpFamily;
  address: string;
  bytes: Buffer;
  length: number;
}

function invalid(what: string, value: string): KernelError {
  return new KernelError('Invalid', { operation: `parsing ${what} "${value}"` });
}

export function ipFamily(ip: string): IpFamily {
  if (isIPv4(ip)) return 4;
  if (isIPv6(ip)) return 6;
  throw invalid('IP address', ip);
}

export function ipToBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw invalid('IP address', ip);
  let text = ip;
  const tail: number[] = [];
  // A dotted-quad tail (::ffff:192.0.2.1) is the last 32 bits.
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1] && dotted[2]) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted[2].split('.').map(Number);
    tail.push((a << 8) | b, (c << 8) | d);
    text = dotted[1].endsWith('::') ? dotted[1] : dotted[1].slice(0, -1);
  }
  const words = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((w) => Number.parseInt(w, 16));
  let all: number[];
  const gap = text.indexOf('::');
  if (gap >= 0) {
    const head = words(text.slice(0, gap));
    const rest = words(text.slice(gap + 2));
    const fill = 8 - head.length - rest.length - tail.length;
    all = [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail];
  } else {
    all = [...words(text), ...tail];
  }
  const out = Buffer.alloc(16);
  all.forEach((w, i) => {
    out.writeUInt16BE(w, i * 2);
  });
  return out;
}

export function bytesToIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw invalid('address bytes of length', String(bytes.length));
  const b = Buffer.from(bytes);
  const words = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  // RFC 5952 §5: IPv4-mapped addresses keep the dotted quad.
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${Array.from(b.subarray(12)).join('.')}`;
  }
  // RFC 5952 §4.2: compress the longest run (≥ 2) of zero words, the first one on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Parse 'a.b.c.d/len', an address (host prefix), or 'default' (with the family given). */
export function parsePrefix(text: string, defaultFamily: IpFamily = 4): Prefix {
  if (text === 'default') {
    const address = defaultFamily === 4 ? '0.0.0.0' : '::';
    return { family: defaultFamily, address, bytes: ipToBytes(address), length: 0 };
  }
  const [address = '', len] = text.split('/');
  const family = ipFamily(address);
  const max = family === 4 ? 32 : 128;
  const length = len === undefined ? max : Number(len);
  if (!Number.isInteger(length) || length < 0 || length > max || (len !== undefined && !/^\d+$/.test(len))) {
    throw invalid('prefix', text);
  }
  return { family, address, bytes: ipToBytes(address), length };
}

export function formatPrefix(bytes: Uint8Array, length: number): string {
  return `${bytesToIp(bytes)}/${length}`;
}

export function macToBytes(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw invalid('MAC address', mac);
  return Buffer.from(parts.map((p) => Number.parseInt(p, 16)));
}

export function bytesToMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}
