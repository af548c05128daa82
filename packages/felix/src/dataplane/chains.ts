/**
 * iptables rules as data. Managers describe chains; the dataplane hands whole tables to the
 * kernel layer, which diffs against iptables-save and applies one iptables-restore per table.
 * Each rule carries Felix's `cali:<hash>` comment (calico-internals §3.3): a hash chained over
 * the chain name, the previous rule's hash and the rule text, so a hand-edited or reordered
 * rule no longer matches and is rewritten.
 */
import { createHash } from 'node:crypto';

export type TableName = 'raw' | 'mangle' | 'nat' | 'filter';
export const TABLES: readonly TableName[] = ['raw', 'mangle', 'nat', 'filter'];

export interface Rule {
  /** Match part, e.g. `-i cali+ -m conntrack --ctstate INVALID`. */
  match?: string;
  /** Target part, e.g. `-j ACCEPT`, `-g cali-wl-to-host`. */
  action: string;
  /** Human comment, kept in the kernel next to the hash comment. */
  comment?: string;
}

export interface Chain {
  name: string;
  rules: Rule[];
}

/** Rules Felix places in a kernel-owned chain (INPUT, FORWARD…) to reach its own. */
export interface Hook {
  chain: string;
  rules: Rule[];
  /** Insert at the top (Felix's ChainInsertMode=Insert) or append at the end. */
  position: 'insert' | 'append';
}

/** iptables chain names are at most 28 characters (Felix iptables/table.go MaxChainNameLength). */
export const MAX_CHAIN_NAME = 28;

export function ruleHashes(chainName: string, rules: readonly Rule[]): string[] {
  let prev = '';
  return rules.map((r) => {
    const h = createHash('sha224').update(chainName).update(prev).update(ruleText(r)).digest('base64url');
    prev = h.slice(0, 16);
    return prev;
  });
}

function ruleText(r: Rule): string {
  return [r.match ?? '', r.comment ? `--comment "${r.comment}"` : '', r.action].join(' ');
}

/**
 * The rule as iptables-restore arguments (without `-A <chain>`): our hash comment first, so a
 * reader can find Felix's rules without parsing matches.
 */
export function renderRule(rule: Rule, hash: string): string {
  const parts = [`-m comment --comment "cali:${hash}"`];
  if (rule.comment) parts.push(`-m comment --comment "${rule.comment}"`);
  if (rule.match) parts.push(rule.match);
  parts.push(rule.action);
  return parts.join(' ');
}

export function renderChain(chain: Chain): string[] {
  const hashes = ruleHashes(chain.name, chain.rules);
  return chain.rules.map((r, i) => renderRule(r, hashes[i]!));
}
