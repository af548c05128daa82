/**
 * BGPFilter rules (projectcalico.org/v3 bgpfilter.go) compiled into the speaker's Policy. confd
 * renders each filter as a BIRD function that accepts or rejects on the first matching rule and
 * otherwise falls through to Calico's own chain (bgp_processor.go buildImportFilter /
 * buildExportFilter); we build the same order: filter rules of every named filter, then the
 * chain, then the default.
 *
 * Our Policy is first-match without negation, so a `NotIn`/`NotEqual` rule is rewritten: for
 * prefixes inside its CIDR the rest of the chain applies (every later rule narrowed to that CIDR),
 * for the others the rule's action applies.
 */

import {
  type Policy,
  type PolicyMatch,
  type PolicyRule,
  type PrefixMatch,
  parsePrefix,
  prefixContains,
} from '@calico-ts/bgp';
import { asNumberValue, type BGPFilterRule } from '@calico-ts/datastore';

/** One rule before compilation: a positive match, or a negated prefix set (`notPrefixes`). */
export interface ChainRule {
  match?: PolicyMatch;
  notPrefixes?: PrefixMatch[];
  set?: PolicyRule['set'];
  action: 'accept' | 'reject';
}

export interface FilterContext {
  family: 4 | 6;
  /** The peer is in our AS (for `peerType`). */
  ibgp: boolean;
}

/** BIRD's int max: Calico's LOCAL_PREF for priority P is this minus P. */
export const PRIORITY_BASE = 2147483647;

const maxLen = (family: 4 | 6) => (family === 4 ? 32 : 128);

/** Convert one filter list (e.g. `importV4`) for a peer. */
export function convertFilterRules(rules: readonly BGPFilterRule[], ctx: FilterContext): ChainRule[] {
  const out: ChainRule[] = [];
  for (const r of rules) {
    // Per-peer conditions are decided now: the policy is compiled for one peer.
    if (r.peerType !== undefined && (r.peerType === 'iBGP') !== ctx.ibgp) continue;
    const rule: ChainRule = { action: r.action === 'Accept' ? 'accept' : 'reject' };
    const match: PolicyMatch = {};
    // BIRD `source ~ [ RTS_BGP ]`: learned from a peer, not originated here.
    if (r.source === 'RemotePeers') match.source = 'peer';
    // BIRD `ifname ~ "<glob>"`: routes taken from an interface (we originate none of those).
    if (r.interface !== undefined) match.interfaces = [r.interface];
    // Calico carries priority P as LOCAL_PREF 2^31-1-P (bgp_local_pref in the BIRD filter).
    if (r.priority !== undefined) match.localPref = PRIORITY_BASE - r.priority;
    const range = prefixRange(r, ctx.family);
    if (r.matchOperator === 'NotIn' || r.matchOperator === 'NotEqual') rule.notPrefixes = [range];
    else if (r.cidr !== undefined || r.prefixLength !== undefined) match.prefixes = [range];
    if (r.communities?.values?.length) match.communities = [...r.communities.values];
    // BIRD: bgp_path ~ [= a b c * =]; the path starts with these ASes.
    if (r.asPathPrefix?.length) match.asPathRegex = `^${r.asPathPrefix.map(asNumberValue).join(' ')}_`;
    if (Object.keys(match).length > 0) rule.match = match;
    const set: NonNullable<PolicyRule['set']> = {};
    for (const op of r.operations ?? []) {
      if (op.addCommunity) set.addCommunities = [...(set.addCommunities ?? []), op.addCommunity.value];
      else if (op.prependASPath) {
        // BIRD prepends op by op: a later operation's ASes end up in front of an earlier one's.
        set.prependAsPath = [...op.prependASPath.prefix.map(asNumberValue), ...(set.prependAsPath ?? [])];
      } else if (op.setPriority) {
        set.localPref = PRIORITY_BASE - op.setPriority.value;
      }
    }
    if (Object.keys(set).length > 0 && rule.action === 'accept') rule.set = set;
    out.push(rule);
  }
  return out;
}

/** BIRD's `net ~ [cidr{min,max}]` / `net = cidr` as a prefix-list entry. */
function prefixRange(r: BGPFilterRule, family: 4 | 6): PrefixMatch {
  const cidr = r.cidr ?? (family === 4 ? '0.0.0.0/0' : '::/0');
  const len = Number(cidr.split('/')[1]);
  if (r.matchOperator === 'Equal' || r.matchOperator === 'NotEqual') return { prefix: cidr };
  const min = Math.max(r.prefixLength?.min ?? len, len);
  const max = r.prefixLength?.max ?? maxLen(family);
  return { prefix: cidr, ge: min, le: max };
}

/** The intersection of two prefix ranges, or undefined when nothing is in both. */
export function intersectRange(a: PrefixMatch, b: PrefixMatch): PrefixMatch | undefined {
  const pa = parsePrefix(a.prefix);
  const pb = parsePrefix(b.prefix);
  if (!pa || !pb || pa.afi !== pb.afi) return undefined;
  const [outer, inner, innerMatch] = prefixContains(pa, pb)
    ? [a, pb, b]
    : prefixContains(pb, pa)
      ? [b, pa, a]
      : [];
  if (!outer || !inner || !innerMatch) return undefined;
  const range = (m: PrefixMatch, own: number) => {
    const ge = m.ge ?? own;
    return { ge, le: m.le ?? (m.ge !== undefined ? (pa.afi === 1 ? 32 : 128) : own) };
  };
  const ra = range(a, parsePrefix(a.prefix)!.length);
  const rb = range(b, parsePrefix(b.prefix)!.length);
  const ge = Math.max(ra.ge, rb.ge, inner.length);
  const le = Math.min(ra.le, rb.le);
  if (ge > le) return undefined;
  return { prefix: innerMatch.prefix, ge, le };
}

/** Narrow a positive rule to prefixes inside `within`; undefined when nothing remains. */
function narrow(rule: PolicyRule, within: PrefixMatch[]): PolicyRule | undefined {
  const own = rule.match?.prefixes;
  const prefixes: PrefixMatch[] = [];
  for (const w of within) {
    if (!own) prefixes.push(w);
    else
      for (const p of own) {
        const x = intersectRange(p, w);
        if (x) prefixes.push(x);
      }
  }
  if (prefixes.length === 0) return undefined;
  return { ...rule, match: { ...rule.match, prefixes } };
}

/** First-match chain with negations → plain Policy (see the file comment). */
export function compileChain(chain: readonly ChainRule[], defaultAction: 'accept' | 'reject'): Policy {
  const compile = (i: number): PolicyRule[] => {
    if (i >= chain.length) return [{ action: defaultAction }];
    const r = chain[i]!;
    const positive: PolicyRule = { action: r.action };
    if (r.match) positive.match = r.match;
    if (r.set) positive.set = r.set;
    if (!r.notPrefixes) return [positive, ...compile(i + 1)];
    // Inside the negated set: the rest of the chain decides. Outside: this rule (if its other
    // conditions hold), else the rest of the chain as well.
    const rest = compile(i + 1);
    const inside = rest.map((x) => narrow(x, r.notPrefixes!)).filter((x): x is PolicyRule => x !== undefined);
    if (r.match && Object.keys(r.match).length > 0) {
      // Other conditions too: a route outside the set that fails them still falls through.
      return [...inside, positive, ...rest];
    }
    return [...inside, positive];
  };
  const rules = compile(0);
  // The trailing catch-all is the default action.
  const last = rules.at(-1);
  if (last && !last.match && !last.set) {
    rules.pop();
    return { rules, defaultAction: last.action ?? 'accept' };
  }
  return { rules, defaultAction };
}
