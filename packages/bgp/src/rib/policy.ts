/**
 * Import/export filters as data: ordered rules, first match decides. Matches on prefix lists
 * (CIDR with ge/le), communities, AS path (contains / a small regex dialect) and next hop;
 * actions accept, reject, or modify then accept.
 */
import type { PathAttributes } from '../wire/attributes.ts';
import { AsPathSegmentType } from '../wire/constants.ts';
import { type ParsedPrefix, parseIp, parsePrefix, prefixContains } from '../wire/prefix.ts';

export interface PrefixMatch {
  prefix: string;
  /** Match prefixes at least this long (default: the list entry's length). */
  ge?: number;
  /** Match prefixes at most this long (default: ge, or the entry's length when neither). */
  le?: number;
}

export interface PolicyMatch {
  prefixes?: PrefixMatch[];
  /** Any of these "asn:value" / "g:l1:l2" communities. */
  communities?: string[];
  /** Any of these AS numbers anywhere in the path. */
  asPathContains?: number[];
  /** A regex over the path as "65001 65002 {7 8}"; `_` matches a boundary as in router CLIs. */
  asPathRegex?: string;
  /** Next hop within any of these CIDRs. */
  nextHop?: string[];
  /** Where the route came from: a BGP peer, or originated here (BIRD's `source = RTS_BGP`). */
  source?: 'peer' | 'local';
  /** The route's interface matches any of these globs (`*` any run); routes without one never match. */
  interfaces?: string[];
  /** LOCAL_PREF equals this value. */
  localPref?: number;
}

/** What a policy may know about a route besides its attributes. */
export interface PolicyContext {
  source?: 'peer' | 'local';
  /** The interface a locally learned route came from. */
  interface?: string;
}

export interface PolicySet {
  localPref?: number;
  med?: number;
  addCommunities?: string[];
  /** Prepend `as` (default: our AS) `count` times. */
  prependAs?: { as?: number; count: number };
  /** Prepend these ASes: the path then starts with them in this order (`prependAs` copies in front). */
  prependAsPath?: number[];
  nextHop?: string;
}

export interface PolicyRule {
  match?: PolicyMatch;
  set?: PolicySet;
  action?: 'accept' | 'reject';
}

export interface Policy {
  rules: PolicyRule[];
  /** When no rule matches (default accept). */
  defaultAction?: 'accept' | 'reject';
}

export function parseCommunity(s: string): { standard?: number; large?: string } | undefined {
  const parts = s.split(':');
  if (parts.some((p) => !/^\d+$/.test(p))) return undefined;
  const n = parts.map(Number);
  if (n.length === 2 && n[0]! <= 0xffff && n[1]! <= 0xffff) return { standard: n[0]! * 65536 + n[1]! };
  if (n.length === 3 && n.every((x) => x <= 0xffffffff)) return { large: s };
  return undefined;
}

export function formatCommunity(c: number): string {
  return `${Math.floor(c / 65536)}:${c & 0xffff}`;
}

export function formatAsPath(path: PathAttributes['asPath']): string {
  return (path ?? [])
    .map((s) => {
      const inner = s.asns.join(' ');
      if (s.type === AsPathSegmentType.Set) return `{${inner}}`;
      if (s.type === AsPathSegmentType.ConfedSequence) return `(${inner})`;
      if (s.type === AsPathSegmentType.ConfedSet) return `[${inner}]`;
      return inner;
    })
    .join(' ');
}

interface CompiledMatch {
  prefixes?: { p: ParsedPrefix; ge: number; le: number }[];
  standard?: Set<number>;
  large?: Set<string>;
  asns?: Set<number>;
  regex?: RegExp;
  nextHops?: ParsedPrefix[];
  source?: 'peer' | 'local';
  interfaces?: RegExp[];
  localPref?: number;
}

export class PolicyError extends Error {
  readonly code = 'BGP_POLICY_INVALID';
}

/** Validate and pre-parse a policy once; apply() then runs per route. */
export class CompiledPolicy {
  readonly #rules: { m: CompiledMatch | undefined; set?: PolicySet; action: 'accept' | 'reject' }[];
  readonly #default: 'accept' | 'reject';

  constructor(policy: Policy | undefined) {
    this.#default = policy?.defaultAction ?? 'accept';
    this.#rules = (policy?.rules ?? []).map((r, i) => {
      const rule: { m: CompiledMatch | undefined; set?: PolicySet; action: 'accept' | 'reject' } = {
        m: r.match ? compileMatch(r.match, `rules[${i}].match`) : undefined,
        action: r.action ?? 'accept',
      };
      if (r.set) rule.set = r.set;
      return rule;
    });
  }

  /** True when no rule looks at the prefix, so results can be cached per attribute set. */
  get prefixIndependent(): boolean {
    return this.#rules.every((r) => r.m?.prefixes === undefined);
  }

  get empty(): boolean {
    return this.#rules.length === 0 && this.#default === 'accept';
  }

  /** The (possibly modified) attributes, or undefined when rejected. */
  apply<A extends PathAttributes>(
    prefix: string,
    attrs: A,
    localAs: number,
    context: PolicyContext = {},
  ): A | undefined {
    if (this.#rules.length === 0) return this.#default === 'accept' ? attrs : undefined;
    let parsed: ParsedPrefix | undefined;
    for (const r of this.#rules) {
      if (r.m) {
        if (r.m.prefixes && !parsed) parsed = parsePrefix(prefix);
        if (!matches(r.m, parsed, attrs, context)) continue;
      }
      if (r.action === 'reject') return undefined;
      return r.set ? applySet(attrs, r.set, localAs) : attrs;
    }
    return this.#default === 'accept' ? attrs : undefined;
  }
}

function compileMatch(m: PolicyMatch, path: string): CompiledMatch {
  const out: CompiledMatch = {};
  if (m.prefixes) {
    out.prefixes = m.prefixes.map((x, i) => {
      const p = parsePrefix(x.prefix);
      if (!p) throw new PolicyError(`${path}.prefixes[${i}].prefix: "${x.prefix}" is not a CIDR prefix`);
      const max = p.afi === 1 ? 32 : 128;
      const ge = x.ge ?? p.length;
      const le = x.le ?? (x.ge !== undefined ? max : p.length);
      if (ge < p.length || le < ge || le > max) {
        throw new PolicyError(
          `${path}.prefixes[${i}]: need ${p.length} ≤ ge ≤ le ≤ ${max}, got ge=${ge} le=${le}`,
        );
      }
      return { p, ge, le };
    });
  }
  if (m.communities) {
    out.standard = new Set();
    out.large = new Set();
    m.communities.forEach((c, i) => {
      const parsed = parseCommunity(c);
      if (!parsed) throw new PolicyError(`${path}.communities[${i}]: "${c}" is not "asn:value" or "g:l1:l2"`);
      if (parsed.standard !== undefined) out.standard!.add(parsed.standard);
      else out.large!.add(parsed.large!);
    });
  }
  if (m.asPathContains) out.asns = new Set(m.asPathContains);
  if (m.asPathRegex !== undefined) {
    try {
      out.regex = new RegExp(m.asPathRegex.replaceAll('_', '(?:^|[ {}()\\[\\]]|$)'));
    } catch {
      throw new PolicyError(`${path}.asPathRegex: "${m.asPathRegex}" is not a valid expression`);
    }
  }
  if (m.nextHop) {
    out.nextHops = m.nextHop.map((n, i) => {
      const p = parsePrefix(n.includes('/') ? n : `${n}/${n.includes(':') ? 128 : 32}`);
      if (!p) throw new PolicyError(`${path}.nextHop[${i}]: "${n}" is not an address or CIDR`);
      return p;
    });
  }
  if (m.source !== undefined) out.source = m.source;
  if (m.interfaces)
    out.interfaces = m.interfaces.map(
      (g) => new RegExp(`^${g.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*')}$`),
    );
  if (m.localPref !== undefined) out.localPref = m.localPref;
  return out;
}

function matches(
  m: CompiledMatch,
  prefix: ParsedPrefix | undefined,
  a: PathAttributes & { nextHop?: string },
  context: PolicyContext,
): boolean {
  if (m.source !== undefined && context.source !== m.source) return false;
  if (m.interfaces) {
    const name = context.interface;
    if (name === undefined || !m.interfaces.some((g) => g.test(name))) return false;
  }
  if (m.localPref !== undefined && a.localPref !== m.localPref) return false;
  if (m.prefixes) {
    if (!prefix) return false;
    if (
      !m.prefixes.some((x) => prefix.length >= x.ge && prefix.length <= x.le && prefixContains(x.p, prefix))
    )
      return false;
  }
  if (m.standard || m.large) {
    const hit =
      (a.communities ?? []).some((c) => m.standard!.has(c)) ||
      (a.largeCommunities ?? []).some((c) => m.large!.has(c));
    if (!hit) return false;
  }
  if (m.asns && !(a.asPath ?? []).some((s) => s.asns.some((x) => m.asns!.has(x)))) return false;
  if (m.regex && !m.regex.test(formatAsPath(a.asPath))) return false;
  if (m.nextHops) {
    const ip = a.nextHop ? parseIp(a.nextHop) : undefined;
    if (!ip) return false;
    const host: ParsedPrefix = { afi: ip.afi, length: ip.bytes.length * 8, bytes: ip.bytes };
    if (!m.nextHops.some((n) => prefixContains(n, host))) return false;
  }
  return true;
}

function applySet<A extends PathAttributes>(a: A, s: PolicySet, localAs: number): A {
  const out: A & { nextHop?: string } = { ...a };
  if (s.localPref !== undefined) out.localPref = s.localPref;
  if (s.med !== undefined) out.med = s.med;
  if (s.nextHop !== undefined) out.nextHop = s.nextHop;
  if (s.addCommunities?.length) {
    const std = new Set(a.communities ?? []);
    const large = new Set(a.largeCommunities ?? []);
    for (const c of s.addCommunities) {
      const p = parseCommunity(c);
      if (p?.standard !== undefined) std.add(p.standard);
      else if (p?.large) large.add(p.large);
    }
    if (std.size) out.communities = [...std];
    if (large.size) out.largeCommunities = [...large];
  }
  const add: number[] = [...(s.prependAsPath ?? [])];
  if (s.prependAs && s.prependAs.count > 0) {
    const as = s.prependAs.as ?? localAs;
    add.unshift(...Array.from({ length: s.prependAs.count }, () => as));
  }
  if (add.length > 0) {
    const path = a.asPath ?? [];
    const first = path[0];
    out.asPath =
      first?.type === AsPathSegmentType.Sequence && first.asns.length + add.length <= 255
        ? [{ type: AsPathSegmentType.Sequence, asns: [...add, ...first.asns] }, ...path.slice(1)]
        : [{ type: AsPathSegmentType.Sequence, asns: add }, ...path];
  }
  return out;
}
