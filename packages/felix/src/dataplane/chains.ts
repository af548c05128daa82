/**
 * iptables rules as data. Managers describe chains; the dataplane hands whole tables to the
 * kernel layer, which adds the `cali:<hash>` comment to each rule, diffs against iptables-save
 * and applies the difference with one iptables-restore.
 */
export type TableName = 'raw' | 'mangle' | 'nat' | 'filter';
export const TABLES: readonly TableName[] = ['raw', 'mangle', 'nat', 'filter'];

export interface Rule {
  /** Match part, e.g. `-i cali+ -m conntrack --ctstate INVALID`. */
  match?: string;
  /** Target part, e.g. `-j ACCEPT`, `-g cali-wl-to-host`. */
  action: string;
  /** Human comment, kept in the kernel with the rule (Felix's rule comments). */
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

/** The rule as iptables-restore arguments, without `-A <chain>` and without our hash comment. */
export function renderRule(rule: Rule): string {
  const parts: string[] = [];
  if (rule.comment) parts.push(`-m comment --comment "${rule.comment}"`);
  if (rule.match) parts.push(rule.match);
  parts.push(rule.action);
  return parts.join(' ');
}
