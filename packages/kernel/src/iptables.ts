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
import { keptShell, type RestoreShell, runKept } from './iptables-restore-shell.ts';
import { logger } from './logger.ts';
import type { NetNamespace } from './namespace.ts';
import { type CommandResult, execInNamespace } from './process.ts';

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
  /**
   * Hook rules in built-in chains. In a partial apply, undefined leaves the hooks as they are;
   * otherwise it means none.
   */
  hooks?: readonly IptablesHook[];
  /** Partial apply only: owned chains to delete (all other unlisted chains are left alone). */
  remove?: readonly string[];
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

/** Edit script turning the `current` rules of one chain into `desired` (rule numbers are 1-based). */
function chainEdits(
  chain: string,
  current: readonly (string | undefined)[],
  desired: readonly Keyed[],
): string[] {
  const keep = lcsKeep(
    current,
    desired.map((d) => d.hash),
  );
  const out: string[] = [];
  // Deletes bottom-up so earlier rule numbers stay valid.
  for (let i = current.length - 1; i >= 0; i--) if (!keep.has(i)) out.push(`-D ${chain} ${i + 1}`);
  // What remains is the kept subsequence in desired order; insert each missing rule at its final
  // position, top-down, so every rule above it is already in place.
  const kept = new Set([...keep].map((i) => current[i]));
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
 * One owned chain as we believe the kernel holds it: the rule hashes in order, and the rule
 * texts when we wrote them ourselves (so an unchanged chain is recognised without hashing).
 */
interface ChainState {
  hashes: readonly (string | undefined)[];
  rules?: readonly string[];
}

function sameRules(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkChainNames(desired: DesiredTable, ownedPrefix: string): void {
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
}

interface OwnedPlan {
  declare: string[];
  edits: string[];
  removals: string[];
  /** Each owned chain's state once the lines are applied; null: the chain is gone. */
  next: Map<string, ChainState | null>;
}

/**
 * The owned-chain part of a plan against what we believe is in the kernel. `partial`: chains not
 * listed stay as they are and only `desired.remove` goes; otherwise every owned chain not listed
 * is removed.
 */
function planOwned(
  desired: DesiredTable,
  have: ReadonlyMap<string, ChainState>,
  partial: boolean,
): OwnedPlan {
  const out: OwnedPlan = { declare: [], edits: [], removals: [], next: new Map() };
  for (const [name, rules] of Object.entries(desired.chains)) {
    const cur = have.get(name);
    // In --noflush mode a ':chain' line flushes an existing chain, so declare only new ones.
    if (!cur) out.declare.push(`:${name} - [0:0]`);
    else if (cur.rules && sameRules(cur.rules, rules)) continue;
    const keyed = keyRules(name, rules);
    const edits = chainEdits(name, cur?.hashes ?? [], keyed);
    out.edits.push(...edits);
    out.next.set(name, { hashes: keyed.map((k) => k.hash), rules: [...rules] });
  }
  const stale = partial
    ? (desired.remove ?? []).filter((n) => have.has(n) && !(n in desired.chains))
    : [...have.keys()].filter((n) => !(n in desired.chains));
  for (const name of stale) {
    // Flush every stale chain before deleting any, since they may reference each other.
    out.removals.unshift(`-F ${name}`);
    out.removals.push(`-X ${name}`);
    out.next.set(name, null);
  }
  return out;
}

/** Hook rules in built-in chains, planned against the table as read (positions are the kernel's). */
function planHooks(
  hooks: readonly IptablesHook[],
  have: ReadonlyMap<string, SavedRule[]>,
  ownedPrefix: string,
): string[] {
  const edits: string[] = [];
  // One hash per (chain, rule); grouped by built-in chain.
  const hooksByChain = new Map<string, { hash: string; hook: IptablesHook }[]>();
  for (const hook of hooks) {
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
  for (const [chain, list] of hooksByChain) {
    const present = new Set((have.get(chain) ?? []).map((r) => r.hash));
    const missing = list.filter((h) => !present.has(h.hash));
    // Inserted hooks in reverse so that, all at position 1, they end up in the given order.
    const inserts = missing.filter((h) => (h.hook.position ?? 'insert') === 'insert').reverse();
    for (const h of inserts) edits.push(`-I ${chain} 1 ${renderRule(h.hash, h.hook.rule)}`);
    for (const h of missing.filter((m) => m.hook.position === 'append')) {
      edits.push(`-A ${chain} ${renderRule(h.hash, h.hook.rule)}`);
    }
  }
  return edits;
}

/** The owned chains of a table as read, by hash. */
function ownedState(current: SavedTable | undefined, ownedPrefix: string): Map<string, ChainState> {
  const out = new Map<string, ChainState>();
  for (const [name, rules] of current?.chains ?? []) {
    if (name.startsWith(ownedPrefix)) out.set(name, { hashes: rules.map((r) => r.hash) });
  }
  return out;
}

/** What the hooks of a table are, as one comparable string. */
function hooksKey(hooks: readonly IptablesHook[] | undefined): string {
  return (hooks ?? []).map((h) => `${h.chain}\0${h.position ?? 'insert'}\0${h.rule}`).join('\n');
}

/**
 * Pure diff of one table against `iptables-save` output. Owned chains: created if missing, edited
 * rule by rule, flushed and deleted when no longer desired. Built-in chains: only rules carrying
 * our hash are touched; a present hook stays where it is.
 */
export function planTable(
  desired: DesiredTable,
  current: SavedTable | undefined,
  ownedPrefix = 'cali-',
): TablePlan {
  checkChainNames(desired, ownedPrefix);
  const owned = planOwned(desired, ownedState(current, ownedPrefix), false);
  const hooks = planHooks(desired.hooks ?? [], current?.chains ?? new Map(), ownedPrefix);
  return { table: desired.table, lines: [...owned.declare, ...owned.edits, ...hooks, ...owned.removals] };
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
  /**
   * Back end; 'auto' (the default) detects it on first use (see detectIptablesBackendWithSave),
   * a configured one runs no detection.
   */
  backend?: IptablesBackend | 'auto';
  ownedPrefix?: string;
  /** Seconds iptables-restore waits for the xtables lock (legacy) before failing. */
  lockWaitSeconds?: number;
  /**
   * Run restores through one shell kept in the namespace (iptables-restore-shell.ts) instead of a
   * new process from ours each time (inputs up to 16 KiB, which per-change deltas are); default
   * true where /bin/bash exists. A shell that ends mid-restore fails that restore like a failed
   * command (the next one starts a new shell).
   */
  restoreShell?: boolean;
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

/** What the back-end detection found, with the chosen back end's `iptables-save` output. */
export interface BackendDetection {
  backend: IptablesBackend;
  /**
   * The whole `<family>-<backend>-save` output read during detection (undefined when that save
   * failed): a fresh read of every table, so the first read after detecting needs no process.
   */
  save: string | undefined;
}

/**
 * Which back end the host's rules live in, as kube-proxy and Felix decide it: the one holding
 * more rules wins (legacy and nft rules both take effect, so follow what is already there);
 * with no rules anywhere (or as many in both), what the `iptables` command itself is
 * (`(nf_tables)` / `(legacy)`), asked only then.
 */
export async function detectIptablesBackendWithSave(
  namespace?: NetNamespace,
  family: 4 | 6 = 4,
): Promise<BackendDetection> {
  const [nft, legacy] = await Promise.all([
    execInNamespace(namespace, binary(family, 'nft', 'save')).catch(() => undefined),
    execInNamespace(namespace, binary(family, 'legacy', 'save')).catch(() => undefined),
  ]);
  const nftSave = nft?.exitCode === 0 ? nft.stdout : undefined;
  const legacySave = legacy?.exitCode === 0 ? legacy.stdout : undefined;
  const nftRules = nftSave === undefined ? 0 : countRules(nftSave);
  const legacyRules = legacySave === undefined ? 0 : countRules(legacySave);
  if (legacyRules > nftRules) return { backend: 'legacy', save: legacySave };
  if (nftRules > legacyRules) return { backend: 'nft', save: nftSave };
  const version = await execInNamespace(namespace, family === 4 ? 'iptables' : 'ip6tables', [
    '--version',
  ]).catch(() => undefined);
  return /\(legacy\)/.test(version?.stdout ?? '')
    ? { backend: 'legacy', save: legacySave }
    : { backend: 'nft', save: nftSave };
}

/** The back end alone (see detectIptablesBackendWithSave). */
export async function detectIptablesBackend(
  namespace?: NetNamespace,
  family: 4 | 6 = 4,
): Promise<IptablesBackend> {
  return (await detectIptablesBackendWithSave(namespace, family)).backend;
}

/** One table as we last left it: its owned chains, and its hooks when we made them present. */
interface TableState {
  chains: Map<string, ChainState>;
  /** hooksKey of the hooks known present; undefined when not known (read again before changing). */
  hooks: string | undefined;
}

export interface ApplyOptions {
  /**
   * Read the kernel's tables first instead of trusting the remembered state (Felix's periodic
   * refresh): anything that drifted is repaired.
   */
  reread?: boolean;
  /** Only the listed chains (and `remove`, and hooks when given) change; other owned chains stay. */
  partial?: boolean;
}

export class Iptables {
  readonly family: 4 | 6;
  readonly namespace: NetNamespace | undefined;
  readonly ownedPrefix: string;
  readonly lockWaitSeconds: number;
  #backend: IptablesBackend | undefined;
  #detection: Promise<BackendDetection> | undefined;
  #detections = 0;
  /** A command has been chosen with the back end (from here on it stays). */
  #backendUsed = false;
  #saves = 0;
  /** What each table holds after our last successful restore (or read): trusted until a refresh. */
  #state = new Map<IptablesTableName, TableState>();
  #reads = 0;
  #restores = 0;
  readonly #shell: RestoreShell | undefined;

  constructor(options: IptablesOptions = {}) {
    this.family = options.family ?? 4;
    this.namespace = options.namespace;
    this.ownedPrefix = options.ownedPrefix ?? 'cali-';
    this.lockWaitSeconds = options.lockWaitSeconds ?? 10;
    this.#backend = options.backend === 'auto' ? undefined : options.backend;
    this.#shell = keptShell(this.namespace, options.restoreShell ?? true);
  }

  /** Ends the restore shell, if one runs (it also ends by itself when idle). */
  close(): void {
    this.#shell?.close();
  }

  /** How many times the tables were read back with iptables-save (by apply, plan or read). */
  get reads(): number {
    return this.#reads;
  }

  /** How many back-end detections ran (0 with a configured back end). */
  get detections(): number {
    return this.#detections;
  }

  /**
   * How many iptables-save processes read() started itself; a read served by the detection's own
   * save output starts none.
   */
  get saves(): number {
    return this.#saves;
  }

  /** How many iptables-restore runs apply made (including failed ones). */
  get restores(): number {
    return this.#restores;
  }

  /** Forget the remembered state: the next apply reads the kernel first. */
  invalidate(tables?: readonly IptablesTableName[]): void {
    if (!tables) this.#state.clear();
    else for (const t of tables) this.#state.delete(t);
  }

  /** The back end in use, detected on first use unless configured. */
  async backend(): Promise<IptablesBackend> {
    this.#backendUsed = true;
    return this.#backend ?? (await this.#detect()).backend;
  }

  /**
   * Configures the back end. Before first use this decides which binaries run (no detection for
   * 'nft' or 'legacy'); once the back end is in use a different one is not taken (our chains live
   * in the first one) and false is returned: it applies when the process starts again, as a change
   * of Felix's IptablesBackend restarts Felix in Calico. 'auto' keeps whatever is in use.
   */
  setBackend(backend: IptablesBackend | 'auto'): boolean {
    if (backend === 'auto' || backend === this.#backend) return true;
    if (this.#backendUsed) return false;
    this.#backend = backend;
    return true;
  }

  #detect(): Promise<BackendDetection> {
    if (!this.#detection) {
      this.#detections++;
      this.#detection = detectIptablesBackendWithSave(this.namespace, this.family).then((d) => {
        this.#backend ??= d.backend;
        return d;
      });
      // A failed detection may be tried again.
      this.#detection.catch(() => {
        this.#detection = undefined;
      });
    }
    return this.#detection;
  }

  /** Current contents of the given tables (all tables when omitted). */
  async read(tables?: readonly IptablesTableName[]): Promise<Map<string, SavedTable>> {
    if (this.#backend === undefined) {
      this.#backendUsed = true;
      // The detection reads every table of both back ends anyway: its save of the chosen one,
      // taken after this read began, is this read.
      const detected = await this.#detect();
      if (detected.save !== undefined) {
        this.#reads++;
        const all = parseIptablesSave(detected.save);
        for (const t of tables ?? []) if (!all.has(t)) all.set(t, { chains: new Map() });
        if (!tables) return all;
        return new Map(tables.map((t) => [t, all.get(t) as SavedTable]));
      }
    }
    const bin = binary(this.family, await this.backend(), 'save');
    this.#reads++;
    this.#saves++;
    if (tables && tables.length === 1) {
      return parseIptablesSave(
        await this.#run(bin, ['-t', tables[0] as string], undefined, `reading table ${tables[0]}`),
      );
    }
    const all = parseIptablesSave(await this.#run(bin, [], undefined, 'reading tables'));
    if (tables) for (const t of tables) if (!all.has(t)) all.set(t, { chains: new Map() });
    return all;
  }

  /**
   * The rules of one chain as `iptables -S CHAIN` prints them, without the leading `-A CHAIN `;
   * undefined when the chain does not exist. Reads that chain only (a cheap existence and
   * length check, not a read-back of the table).
   */
  async listChain(table: IptablesTableName, chain: string): Promise<string[] | undefined> {
    const bin = binary(this.family, await this.backend(), '');
    const args = [`--wait=${this.lockWaitSeconds}`, '-t', table, '-S', chain];
    // Through the kept shell when there is one: Felix lists a dozen chains every few seconds, and
    // each process started from calico-node itself is a fork of its whole address space that
    // holds up its event loop (and every CNI request waiting on it). The shell's output merges
    // stdout and stderr; only `-A` lines are taken from it.
    const r: CommandResult =
      (this.#shell && (await this.#shell.run(bin, args, '').catch(() => undefined))) ||
      (await execInNamespace(this.namespace, bin, args));
    if (r.exitCode !== 0) {
      // iptables-nft 1.8.9 reports a missing chain as "incompatible" (legacy: "No chain").
      if (/No chain|does not exist|is incompatible/i.test(r.stderr)) return undefined;
      throw new CommandError('Iptables', {
        operation: `listing chain ${chain} of table ${table}`,
        namespace: this.namespace?.name,
        command: `${bin} ${args.join(' ')}`,
        exitCode: r.exitCode,
        stderr: r.stderr,
      });
    }
    const prefix = `-A ${chain} `;
    return r.stdout
      .split('\n')
      .filter((l) => l.startsWith(prefix))
      .map((l) => l.slice(prefix.length));
  }

  /** Compute the change from what is in the kernel (read now); no writes. */
  async plan(desired: readonly DesiredTable[]): Promise<TablePlan[]> {
    const current = await this.read(desired.map((d) => d.table));
    return desired.map((d) => planTable(d, current.get(d.table), this.ownedPrefix));
  }

  /**
   * Bring the owned chains and hooks of these tables to `desired` with one iptables-restore. The
   * kernel is read (iptables-save) only for a table we hold no state for, whose hooks change, or
   * with `reread`; otherwise the diff is against what our last restore left, and only chains whose
   * rules differ are hashed and written. A restore that fails against the remembered state means
   * the kernel drifted: the tables are read back and the change is planned and written once more.
   */
  async apply(desired: readonly DesiredTable[], options: ApplyOptions = {}): Promise<ApplyResult> {
    for (const d of desired) checkChainNames(d, this.ownedPrefix);
    if (options.reread) this.invalidate(desired.map((d) => d.table));
    const partial = options.partial ?? false;
    try {
      return await this.#apply(desired, partial);
    } catch (err) {
      const trusted = desired.some((d) => this.#state.has(d.table));
      this.invalidate(desired.map((d) => d.table));
      if (!(err instanceof CommandError) || !trusted) throw err;
      logger.warn(
        { ns: this.namespace?.name, family: this.family, err: err.message },
        'iptables restore failed against the remembered state; reading the tables back',
      );
      return await this.#apply(desired, partial);
    }
  }

  async #apply(desired: readonly DesiredTable[], partial: boolean): Promise<ApplyResult> {
    const toRead = desired.filter((d) => {
      const state = this.#state.get(d.table);
      if (!state) return true;
      if (partial && d.hooks === undefined) return false;
      return state.hooks !== hooksKey(d.hooks);
    });
    const saved = toRead.length > 0 ? await this.read(toRead.map((d) => d.table)) : undefined;
    const plans: TablePlan[] = [];
    const outcomes: {
      table: IptablesTableName;
      owned: OwnedPlan;
      hooks: string | undefined;
      base: TableState;
    }[] = [];
    for (const d of desired) {
      const current = saved?.get(d.table);
      const base: TableState =
        current !== undefined || !this.#state.has(d.table)
          ? { chains: ownedState(current, this.ownedPrefix), hooks: undefined }
          : (this.#state.get(d.table) as TableState);
      const owned = planOwned(d, base.chains, partial);
      let hookLines: string[] = [];
      let hooks = base.hooks;
      if (current !== undefined && !(partial && d.hooks === undefined)) {
        hookLines = planHooks(d.hooks ?? [], current.chains, this.ownedPrefix);
        hooks = hooksKey(d.hooks);
      }
      plans.push({
        table: d.table,
        lines: [...owned.declare, ...owned.edits, ...hookLines, ...owned.removals],
      });
      outcomes.push({ table: d.table, owned, hooks, base });
    }
    const input = renderRestore(plans);
    const lines = plans.reduce((n, p) => n + p.lines.length, 0);
    if (lines > 0) {
      const bin = binary(this.family, await this.backend(), 'restore');
      this.#restores++;
      await this.#run(
        bin,
        ['--noflush', `--wait=${this.lockWaitSeconds}`],
        input,
        `applying ${lines} iptables changes`,
      );
      logger.debug({ ns: this.namespace?.name, family: this.family, lines }, 'iptables batch applied');
    }
    for (const o of outcomes) {
      for (const [name, next] of o.owned.next) {
        if (next) o.base.chains.set(name, next);
        else o.base.chains.delete(name);
      }
      o.base.hooks = o.hooks;
      this.#state.set(o.table, o.base);
    }
    return lines === 0 ? { lines: 0, input: '' } : { lines, input };
  }

  /** Write a raw restore input (used by benchmarks and tests to seed foreign rules). */
  async restore(input: string, options: { noflush?: boolean } = {}): Promise<void> {
    const bin = binary(this.family, await this.backend(), 'restore');
    const args = [...(options.noflush === false ? [] : ['--noflush']), `--wait=${this.lockWaitSeconds}`];
    await this.#run(bin, args, input, 'restoring iptables input');
  }

  async #run(bin: string, args: string[], input: string | undefined, operation: string): Promise<string> {
    const r = await runKept(this.#shell, this.namespace, bin, args, input);
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
