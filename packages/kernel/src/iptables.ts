/**
 * iptables as Felix drives it: we own every chain whose name starts with the owned prefix
 * (`cali-`) plus the hook rules we put into built-in chains; everything else is someone else's
 * and is never touched. A desired state is compared with `iptables-save` output and the
 * difference is written as ONE `iptables-restore --noflush` run per family (one transaction per
 * table). Rules are identified by a comment `cali:<16 chars>`, a hash of (chain, rule text,
 * occurrence), so a diff needs no parsing of the rule itself and an unchanged rule is never
 * rewritten. (Felix chains each hash to the previous rule's; we hash rules independently, which
 * is what lets an insertion leave the rules after it alone.)
 */
import { createHash } from 'node:crypto';
import { CommandError, KernelError } from './errors.ts';
import { logger } from './logger.ts';
import type { NetNamespace } from './namespace.ts';
import { execInNamespace } from './process.ts';

export type IptablesTableName = 'filter' | 'nat' | 'mangle' | 'raw';
export type IptablesBackend = 'nft' | 'legacy';

export interface IptablesHook {
  /** Built-in chain, e.g. 'FORWARD'. */
  chain: string;
  /** Rule text without '-A CHAIN', e.g. '-j cali-FORWARD'. */
  rule: string;
  /** 'insert' puts the hook at the top (Felix's default ChainInsertMode); 'append' at the end. */
  position?: 'insert' | 'append';
}

export interface DesiredTable {
  table: IptablesTableName;
  /** Owned chains and their rules in order; rule text as after '-A CHAIN' (e.g. '-i cali+ -j DROP'). */
  chains: Record<string, readonly string[]>;
  hooks?: readonly IptablesHook[];
}

export interface SavedRule {
  /** 'cali:<hash>' when the rule carries one of our comments. */
  hash: string | undefined;
  text: string;
}

export interface SavedTable {
  chains: Map<string, SavedRule[]>;
}

const hashPattern = /--comment "?(cali:[A-Za-z0-9_-]{16})"?/;

/** `cali:` + the first 16 chars of base64url(SHA-224(chain, rule, occurrence)). */
export function ruleHash(chain: string, rule: string, occurrence = 0): string {
  const digest = createHash('sha224').update(`${chain}\0${rule}\0${occurrence}`).digest('base64url');
  return `cali:${digest.slice(0, 16)}`;
}

/** Parse `iptables-save` output into tables → chains → rules (chain order as declared). */
export function parseIptablesSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let current: SavedTable | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      current = { chains: new Map() };
      tables.set(line.slice(1).trim(), current);
    } else if (!current || line.startsWith('#') || line === 'COMMIT') {
    } else if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0] as string;
      if (!current.chains.has(name)) current.chains.set(name, []);
    } else if (line.startsWith('-A ')) {
      const space = line.indexOf(' ', 3);
      const chain = line.slice(3, space < 0 ? undefined : space);
      const text = space < 0 ? '' : line.slice(space + 1);
      const rules = current.chains.get(chain) ?? [];
      current.chains.set(chain, rules);
      rules.push({ hash: hashPattern.exec(text)?.[1], text });
    }
  }
  return tables;
}

/** The rule as we write it: our comment first, then the rule. */
export function renderRule(hash: string, rule: string): string {
  return `-m comment --comment "${hash}"${rule ? ` ${rule}` : ''}`;
}

interface Keyed {
  hash: string;
  rule: string;
}

function keyRules(chain: string, rules: readonly string[]): Keyed[] {
  const seen = new Map<string, number>();
  return rules.map((rule) => {
    const n = seen.get(rule) ?? 0;
    seen.set(rule, n + 1);
    return { hash: ruleHash(chain, rule, n), rule };
  });
}

/**
 * Longest common subsequence of two hash lists; returns the kept indexes of `a`. Hashes are
 * unique within a desired chain (the occurrence number is hashed in), so the LCS is the longest
 * increasing run of desired positions along `a`: O(n log n) even for 100k-rule chains.
 */
function lcsKeep(a: readonly (string | undefined)[], b: readonly string[]): Set<number> {
  const pos = new Map(b.map((h, j) => [h, j]));
  const seen = new Set<string>();
  const is: number[] = [];
  const js: number[] = [];
  a.forEach((h, i) => {
    const j = h === undefined || seen.has(h) ? undefined : pos.get(h);
    if (j === undefined) return;
    seen.add(h as string);
    is.push(i);
    js.push(j);
  });
  // Patience sorting: tails[k] = index (into is/js) ending the best run of length k + 1.
  const tails: number[] = [];
  const prev = new Int32Array(js.length).fill(-1);
  for (let x = 0; x < js.length; x++) {
    const j = js[x] as number;
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((js[tails[mid] as number] as number) < j) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) prev[x] = tails[lo - 1] as number;
    tails[lo] = x;
  }
  const keep = new Set<number>();
  for (let x = tails.length ? (tails[tails.length - 1] as number) : -1; x >= 0; x = prev[x] as number) {
    keep.add(is[x] as number);
  }
  return keep;
}

/** Edit script turning `current` rules of one chain into `desired` (rule numbers are 1-based). */
function chainEdits(chain: string, current: readonly SavedRule[], desired: readonly Keyed[]): string[] {
  const keep = lcsKeep(
    current.map((r) => r.hash),
    desired.map((d) => d.hash),
  );
  const out: string[] = [];
  // Deletes bottom-up so earlier rule numbers stay valid.
  for (let i = current.length - 1; i >= 0; i--) if (!keep.has(i)) out.push(`-D ${chain} ${i + 1}`);
  // What remains is the kept subsequence in desired order; insert each missing rule at its final
  // position, top-down, so every rule above it is already in place.
  const kept = new Set([...keep].map((i) => current[i]?.hash));
  desired.forEach((d, j) => {
    if (!kept.has(d.hash)) out.push(`-I ${chain} ${j + 1} ${renderRule(d.hash, d.rule)}`);
  });
  return out;
}

export interface TablePlan {
  table: IptablesTableName;
  /** restore lines between '*table' and 'COMMIT'; empty when nothing changes. */
  lines: string[];
}

/**
 * Pure diff of one table. Owned chains: created if missing, edited rule by rule, flushed and
 * deleted when no longer desired. Built-in chains: only rules carrying our hash are touched;
 * a present hook stays where it is.
 */
export function planTable(
  desired: DesiredTable,
  current: SavedTable | undefined,
  ownedPrefix = 'cali-',
): TablePlan {
  const have = current?.chains ?? new Map<string, SavedRule[]>();
  for (const name of Object.keys(desired.chains)) {
    if (!name.startsWith(ownedPrefix)) {
      throw new KernelError('Invalid', {
        operation: `planning iptables table ${desired.table}: chain ${name} does not start with the owned prefix ${ownedPrefix}`,
      });
    }
    if (name.length > 28) {
      throw new KernelError('Invalid', {
        operation: `planning iptables chain ${name}: longer than 28 characters`,
      });
    }
  }
  const declare: string[] = [];
  const edits: string[] = [];
  const removals: string[] = [];

  for (const [name, rules] of Object.entries(desired.chains)) {
    // In --noflush mode a ':chain' line flushes an existing chain, so declare only new ones.
    if (!have.has(name)) declare.push(`:${name} - [0:0]`);
    edits.push(...chainEdits(name, have.get(name) ?? [], keyRules(name, rules)));
  }

  // Hooks: one hash per (chain, rule); grouped by built-in chain.
  const hooksByChain = new Map<string, { hash: string; hook: IptablesHook }[]>();
  for (const hook of desired.hooks ?? []) {
    const list = hooksByChain.get(hook.chain) ?? [];
    list.push({
      hash: ruleHash(hook.chain, hook.rule, list.filter((h) => h.hook.rule === hook.rule).length),
      hook,
    });
    hooksByChain.set(hook.chain, list);
  }
  for (const [chain, rules] of have) {
    if (chain.startsWith(ownedPrefix)) continue;
    const wanted = new Set((hooksByChain.get(chain) ?? []).map((h) => h.hash));
    for (let i = rules.length - 1; i >= 0; i--) {
      const h = rules[i]?.hash;
      if (h && !wanted.has(h)) edits.push(`-D ${chain} ${i + 1}`);
    }
  }
  for (const [chain, hooks] of hooksByChain) {
    const present = new Set((have.get(chain) ?? []).map((r) => r.hash));
    const missing = hooks.filter((h) => !present.has(h.hash));
    // Inserted hooks in reverse so that, all at position 1, they end up in the given order.
    const inserts = missing.filter((h) => (h.hook.position ?? 'insert') === 'insert').reverse();
    for (const h of inserts) edits.push(`-I ${chain} 1 ${renderRule(h.hash, h.hook.rule)}`);
    for (const h of missing.filter((m) => m.hook.position === 'append')) {
      edits.push(`-A ${chain} ${renderRule(h.hash, h.hook.rule)}`);
    }
  }

  for (const name of have.keys()) {
    if (name.startsWith(ownedPrefix) && !(name in desired.chains)) {
      // Flush every stale chain before deleting any, since they may reference each other.
      removals.unshift(`-F ${name}`);
      removals.push(`-X ${name}`);
    }
  }
  return { table: desired.table, lines: [...declare, ...edits, ...removals] };
}

/** One restore input covering several tables; tables without changes are left out entirely. */
export function renderRestore(plans: readonly TablePlan[]): string {
  return plans
    .filter((p) => p.lines.length > 0)
    .map((p) => `*${p.table}\n${p.lines.join('\n')}\nCOMMIT\n`)
    .join('');
}

// ---------------------------------------------------------------------------------------------
// the shell: binaries, backend detection, one restore per apply

export interface IptablesOptions {
  family?: 4 | 6;
  /** Namespace to work in; our own when omitted. */
  namespace?: NetNamespace | undefined;
  /** Back end; 'auto' detects it (see detectIptablesBackend). */
  backend?: IptablesBackend | 'auto';
  ownedPrefix?: string;
  /** Seconds iptables-restore waits for the xtables lock (legacy) before failing. */
  lockWaitSeconds?: number;
}

export interface ApplyResult {
  /** Restore lines written (0 when already in the desired state: no restore was run). */
  lines: number;
  input: string;
}

function binary(family: 4 | 6, backend: IptablesBackend, tool: 'save' | 'restore' | ''): string {
  const base = family === 4 ? 'iptables' : 'ip6tables';
  return `${base}-${backend}${tool ? `-${tool}` : ''}`;
}

const countRules = (save: string): number => save.split('\n').filter((l) => l.startsWith('-A ')).length;

/**
 * Which back end the host's rules live in, as kube-proxy and Felix decide it: the one holding
 * more rules wins (legacy and nft rules both take effect, so follow what is already there);
 * with no rules anywhere, what the `iptables` command itself is (`(nf_tables)` / `(legacy)`).
 */
export async function detectIptablesBackend(
  namespace?: NetNamespace,
  family: 4 | 6 = 4,
): Promise<IptablesBackend> {
  const [nft, legacy, version] = await Promise.all([
    execInNamespace(namespace, binary(family, 'nft', 'save')).catch(() => undefined),
    execInNamespace(namespace, binary(family, 'legacy', 'save')).catch(() => undefined),
    execInNamespace(namespace, family === 4 ? 'iptables' : 'ip6tables', ['--version']).catch(() => undefined),
  ]);
  const nftRules = nft?.exitCode === 0 ? countRules(nft.stdout) : 0;
  const legacyRules = legacy?.exitCode === 0 ? countRules(legacy.stdout) : 0;
  if (legacyRules > nftRules) return 'legacy';
  if (nftRules > legacyRules) return 'nft';
  return /\(legacy\)/.test(version?.stdout ?? '') ? 'legacy' : 'nft';
}

export class Iptables {
  readonly family: 4 | 6;
  readonly namespace: NetNamespace | undefined;
  readonly ownedPrefix: string;
  readonly lockWaitSeconds: number;
  #backend: IptablesBackend | undefined;

  constructor(options: IptablesOptions = {}) {
    this.family = options.family ?? 4;
    this.namespace = options.namespace;
    this.ownedPrefix = options.ownedPrefix ?? 'cali-';
    this.lockWaitSeconds = options.lockWaitSeconds ?? 10;
    this.#backend = options.backend === 'auto' ? undefined : options.backend;
  }

  async backend(): Promise<IptablesBackend> {
    this.#backend ??= await detectIptablesBackend(this.namespace, this.family);
    return this.#backend;
  }

  /** Current contents of the given tables (all tables when omitted). */
  async read(tables?: readonly IptablesTableName[]): Promise<Map<string, SavedTable>> {
    const bin = binary(this.family, await this.backend(), 'save');
    if (tables && tables.length === 1) {
      return parseIptablesSave(
        await this.#run(bin, ['-t', tables[0] as string], undefined, `reading table ${tables[0]}`),
      );
    }
    const all = parseIptablesSave(await this.#run(bin, [], undefined, 'reading tables'));
    if (tables) for (const t of tables) if (!all.has(t)) all.set(t, { chains: new Map() });
    return all;
  }

  /** Compute the change from what is in the kernel; no writes. */
  async plan(desired: readonly DesiredTable[]): Promise<TablePlan[]> {
    const current = await this.read(desired.map((d) => d.table));
    return desired.map((d) => planTable(d, current.get(d.table), this.ownedPrefix));
  }

  /** Bring the owned chains and hooks of these tables to `desired` with one iptables-restore. */
  async apply(desired: readonly DesiredTable[]): Promise<ApplyResult> {
    const plans = await this.plan(desired);
    const input = renderRestore(plans);
    const lines = plans.reduce((n, p) => n + p.lines.length, 0);
    if (lines === 0) return { lines: 0, input: '' };
    const bin = binary(this.family, await this.backend(), 'restore');
    await this.#run(
      bin,
      ['--noflush', `--wait=${this.lockWaitSeconds}`],
      input,
      `applying ${lines} iptables changes`,
    );
    logger.debug({ ns: this.namespace?.name, family: this.family, lines }, 'iptables batch applied');
    return { lines, input };
  }

  /** Write a raw restore input (used by benchmarks and tests to seed foreign rules). */
  async restore(input: string, options: { noflush?: boolean } = {}): Promise<void> {
    const bin = binary(this.family, await this.backend(), 'restore');
    const args = [...(options.noflush === false ? [] : ['--noflush']), `--wait=${this.lockWaitSeconds}`];
    await this.#run(bin, args, input, 'restoring iptables input');
  }

  async #run(bin: string, args: string[], input: string | undefined, operation: string): Promise<string> {
    const r = await execInNamespace(this.namespace, bin, args, input === undefined ? {} : { input });
    if (r.exitCode !== 0) {
      throw new CommandError('Iptables', {
        operation,
        namespace: this.namespace?.name,
        command: `${bin} ${args.join(' ')}`,
        exitCode: r.exitCode,
        stderr: r.stderr,
      });
    }
    return r.stdout;
  }
}
