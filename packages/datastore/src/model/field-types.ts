/**
 * Field schemas shared by several kinds: addresses, CIDRs, selectors, AS numbers, labels.
 * Each carries its own check, so a bad value is reported at its own path even when other fields
 * are wrong too.
 */
import { z } from 'zod';
import {
  formatMaskedCidr,
  type IpFamily,
  isMasked,
  type ParsedCidr,
  parseCidr,
  parseCidrOrIp,
  parseIp,
} from './ip.ts';
import { labelKeyProblem, labelValueProblem } from './names.ts';

/** A string that must pass `problem` (which returns a message, or undefined when fine). */
export function checkedString(problem: (value: string) => string | undefined) {
  return z.string().superRefine((value, ctx) => {
    const message = problem(value);
    if (message !== undefined) ctx.addIssue({ code: 'custom', input: value, message });
  });
}

function familyWord(family: IpFamily | undefined): string {
  return family === 4 ? 'an IPv4' : family === 6 ? 'an IPv6' : 'an IP';
}

export function ipProblem(value: string, family?: IpFamily): string | undefined {
  const ip = parseIp(value);
  if (!ip) return `expected ${familyWord(family)} address`;
  if (family !== undefined && ip.family !== family) return `expected ${familyWord(family)} address`;
  return undefined;
}

export interface CidrRules {
  family?: IpFamily;
  /** Host bits must be zero (Calico's `net` validator). */
  masked?: boolean;
  /** A bare address is accepted as a full-length prefix (Calico's `cidr`/`cidrs` validators). */
  allowBareIp?: boolean;
}

export function cidrProblem(value: string, rules: CidrRules = {}): string | undefined {
  const cidr: ParsedCidr | undefined = rules.allowBareIp ? parseCidrOrIp(value) : parseCidr(value);
  const example = rules.family === 6 ? 'fd00::/64' : '10.0.0.0/16';
  if (!cidr) {
    return `expected ${rules.family ? `${familyWord(rules.family)} ` : 'a '}CIDR such as ${example}${rules.allowBareIp ? ' (or a single address)' : ''}`;
  }
  if (rules.family !== undefined && cidr.family !== rules.family)
    return `expected ${familyWord(rules.family)} CIDR`;
  if (rules.masked && !isMasked(cidr)) {
    return `CIDR is not masked (host bits set): expected ${formatMaskedCidr(cidr)}`;
  }
  return undefined;
}

export const ipString = (family?: IpFamily) => checkedString((v) => ipProblem(v, family));
export const cidrString = (rules: CidrRules = {}) => checkedString((v) => cidrProblem(v, rules));

/** `ip`, `ip:port` or `[ipv6]:port` (BGPPeer.peerIP, Calico's IP:port validator). */
export function ipPortProblem(value: string): string | undefined {
  if (parseIp(value)) return undefined;
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(value);
  const v4 = /^([0-9.]+):(\d+)$/.exec(value);
  const m = v6 ?? v4;
  const expected = 'expected an IP address, "<ipv4>:<port>" or "[<ipv6>]:<port>"';
  if (!m) return expected;
  const ip = parseIp(m[1]!);
  if (!ip || ip.family !== (v6 ? 6 : 4)) return expected;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return 'port must be 1–65535';
  return undefined;
}

const ASN_MAX = 4294967295;

/**
 * A 4-byte AS number: a plain integer or asdot `<high>.<low>` (RFC 5396), as Calico's
 * numorstring.ASNumber accepts. Stored as written.
 */
export function asNumberProblem(value: unknown): string | undefined {
  const expected = 'expected an AS number 1–4294967295 (or dotted "<0–65535>.<0–65535>")';
  if (typeof value === 'number') {
    return Number.isInteger(value) && value >= 1 && value <= ASN_MAX ? undefined : expected;
  }
  if (typeof value === 'string') {
    const dotted = /^(\d{1,5})\.(\d{1,5})$/.exec(value);
    if (dotted) {
      const hi = Number(dotted[1]);
      const lo = Number(dotted[2]);
      return hi <= 65535 && lo <= 65535 && hi * 65536 + lo >= 1 ? undefined : expected;
    }
    if (/^\d+$/.test(value)) return asNumberProblem(Number(value));
  }
  return expected;
}

/** The numeric value of an AS number field that passed asNumberProblem. */
export function asNumberValue(value: number | string): number {
  if (typeof value === 'number') return value;
  const dotted = /^(\d+)\.(\d+)$/.exec(value);
  return dotted ? Number(dotted[1]) * 65536 + Number(dotted[2]) : Number(value);
}

export const asNumber = () =>
  z.union([z.number(), z.string()], { error: 'expected an AS number' }).superRefine((value, ctx) => {
    const message = asNumberProblem(value);
    if (message !== undefined) ctx.addIssue({ code: 'custom', input: value, message });
  });

/** Kubernetes label map: every key and value checked, each problem at its own key. */
export const labelMap = () =>
  z.record(z.string(), z.string()).superRefine((labels, ctx) => {
    for (const [key, value] of Object.entries(labels)) {
      const keyMsg = labelKeyProblem(key);
      if (keyMsg)
        ctx.addIssue({ code: 'custom', path: [key], input: key, message: `invalid label ${keyMsg}` });
      const valueMsg = labelValueProblem(value);
      if (valueMsg) ctx.addIssue({ code: 'custom', path: [key], input: value, message: valueMsg });
    }
  });

/** A Go duration string as Calico's metav1.Duration fields take (`90s`, `1m30s`, `500ms`, `0`). */
export function durationProblem(value: string): string | undefined {
  return /^-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$|^0$/.test(value)
    ? undefined
    : 'expected a duration such as "30s", "5m" or "1h30m"';
}

export const durationString = () => checkedString(durationProblem);

/** Shared secret reference (BGPPeer.password, BGPConfiguration.nodeMeshPassword). */
export const secretKeyRef = () =>
  z.strictObject({
    secretKeyRef: z
      .strictObject({
        name: z.string().min(1),
        key: z.string().min(1),
        optional: z.boolean().optional(),
      })
      .optional(),
  });
