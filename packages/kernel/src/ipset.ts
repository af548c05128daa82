/**
 * IP sets we own (names starting with `cali`), written with ONE `ipset restore` per apply.
 * Members change by add/del deltas; a set is only rebuilt when its type or family changes, and
 * then through a temporary set and `swap`, so iptables rules referencing it never see it empty
 * (Felix felix/ipsets/ipsets.go does the same).
 */
import { CommandError, KernelError } from './errors.ts';
import { bytesToIp, ipToBytes } from './ip-address.ts';
import { keptShell, type RestoreShell, runKept } from './iptables-restore-shell.ts';
import { logger } from './logger.ts';
import type { NetNamespace } from './namespace.ts';

export type IpsetType = 'hash:ip' | 'hash:net' | 'hash:ip,port';
export type IpsetFamily = 'inet' | 'inet6';

export interface IpsetSpec {
  name: string;
  type: IpsetType;
  family: IpsetFamily;
  members: Iterable<string>;
  /** Default 1048576 (Felix MaxIpsetSize). */
  maxelem?: number;
}

export interface IpsetState {
  name: string;
  type: string;
  family: string;
  maxelem: number;
  members: Set<string>;
}

/** ipset names are at most 31 characters (IPSET_MAXNAMELEN 32 with the NUL). */
const MAX_NAME = 31;
const DEFAULT_MAXELEM = 1048576;

/**
 * The form `ipset save` prints a member in, so desired and actual compare as strings:
 * canonical addresses, no /32 or /128 on nets, lower-case protocol.
 */
export function normaliseMember(type: IpsetType, member: string): string {
  const ip = (s: string) => bytesToIp(ipToBytes(s));
  switch (type) {
    case 'hash:ip':
      return ip(member);
    case 'hash:net': {
      const [addr = '', len] = member.split('/');
      const full = addr.includes(':') ? '128' : '32';
      return len === undefined || len === full ? ip(addr) : `${ip(addr)}/${len}`;
    }
    case 'hash:ip,port': {
      const comma = member.lastIndexOf(',');
      const addr = member.slice(0, comma);
      const [proto = 'tcp', port = ''] = member.slice(comma + 1).split(':');
      return `${ip(addr)},${proto.toLowerCase()}:${port}`;
    }
  }
}

/** Parse `ipset save` output, keeping only sets whose name starts with `prefix`. */
export function parseIpsetSave(text: string, prefix = 'cali'): Map<string, IpsetState> {
  const sets = new Map<string, IpsetState>();
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts[0] === 'create' && parts[1]?.startsWith(prefix)) {
      const opt = (k: string) => {
        const i = parts.indexOf(k);
        return i > 0 ? parts[i + 1] : undefined;
      };
      sets.set(parts[1], {
        name: parts[1],
        type: parts[2] ?? '',
        family: opt('family') ?? 'inet',
        maxelem: Number(opt('maxelem') ?? DEFAULT_MAXELEM),
        members: new Set(),
      });
    } else if (parts[0] === 'add' && parts[1] && parts[2]) {
      sets.get(parts[1])?.members.add(parts[2]);
    }
  }
  return sets;
}

const createLine = (name: string, spec: IpsetSpec): string =>
  `create ${name} ${spec.type} family ${spec.family} maxelem ${spec.maxelem ?? DEFAULT_MAXELEM}`;

/** Temporary set name used for rebuilds: `cali4t…`/`cali6t…` as Felix names them, truncated to 31. */
export function tempSetName(name: string, family: IpsetFamily): string {
  return `cali${family === 'inet' ? 4 : 6}t${name.replace(/^cali[46]?0?/, '')}`.slice(0, MAX_NAME);
}

export interface IpsetPlan {
  lines: string[];
  /** Owned sets present in the kernel but not desired; deleted only when asked (after iptables). */
  stale: string[];
}

/** Pure diff from current to desired; `removeStale` appends destroys of unwanted owned sets. */
export function planIpsets(
  desired: readonly IpsetSpec[],
  current: ReadonlyMap<string, IpsetState>,
  removeStale = false,
): IpsetPlan {
  const lines: string[] = [];
  const wanted = new Set<string>();
  for (const spec of desired) {
    if (spec.name.length > MAX_NAME) {
      throw new KernelError('Invalid', {
        operation: `planning ipset ${spec.name}: longer than ${MAX_NAME} characters`,
      });
    }
    wanted.add(spec.name);
    const members = new Set([...spec.members].map((m) => normaliseMember(spec.type, m)));
    const have = current.get(spec.name);
    if (!have) {
      lines.push(createLine(spec.name, spec));
      for (const m of members) lines.push(`add ${spec.name} ${m}`);
    } else if (have.family !== spec.family || have.type !== spec.type) {
      // swap needs the same family and type features (ip_set_core.c ip_set_swap, "their type
      // does not match"); otherwise the set has to go (which fails while iptables references it).
      lines.push(`destroy ${spec.name}`, createLine(spec.name, spec));
      for (const m of members) lines.push(`add ${spec.name} ${m}`);
    } else if (have.maxelem !== (spec.maxelem ?? DEFAULT_MAXELEM)) {
      // Parameters cannot change in place: fill a temporary set, swap, drop the old contents.
      const tmp = tempSetName(spec.name, spec.family);
      if (current.has(tmp)) lines.push(`destroy ${tmp}`);
      lines.push(createLine(tmp, spec));
      for (const m of members) lines.push(`add ${tmp} ${m}`);
      lines.push(`swap ${tmp} ${spec.name}`, `destroy ${tmp}`);
    } else {
      for (const m of have.members) if (!members.has(m)) lines.push(`del ${spec.name} ${m}`);
      for (const m of members) if (!have.members.has(m)) lines.push(`add ${spec.name} ${m}`);
    }
  }
  const stale = [...current.keys()].filter((n) => !wanted.has(n));
  if (removeStale) for (const n of stale) lines.push(`destroy ${n}`);
  return { lines, stale: removeStale ? [] : stale };
}

export interface IpsetsOptions {
  namespace?: NetNamespace | undefined;
  /** Default 'cali'. */
  ownedPrefix?: string;
  /**
   * Run `ipset restore` through a shell kept in the namespace (default true where /bin/bash
   * exists), as Iptables does, instead of a process started from ours each time.
   */
  restoreShell?: boolean;
}

export class Ipsets {
  readonly namespace: NetNamespace | undefined;
  readonly ownedPrefix: string;
  /** Our sets as our last successful restore (or read) left them: trusted until a refresh. */
  #state: Map<string, IpsetState> | undefined;
  #reads = 0;
  readonly #shell: RestoreShell | undefined;

  constructor(options: IpsetsOptions = {}) {
    this.namespace = options.namespace;
    this.ownedPrefix = options.ownedPrefix ?? 'cali';
    this.#shell = keptShell(this.namespace, options.restoreShell ?? true);
  }

  /** Ends the restore shell, if one runs (it also ends by itself when idle). */
  close(): void {
    this.#shell?.close();
  }

  /** How many times the sets were read back with `ipset save`. */
  get reads(): number {
    return this.#reads;
  }

  /** Forget the remembered state: the next apply reads the kernel first. */
  invalidate(): void {
    this.#state = undefined;
  }

  async read(): Promise<Map<string, IpsetState>> {
    this.#reads++;
    return parseIpsetSave(await this.#run(['save'], undefined, 'reading ipsets'), this.ownedPrefix);
  }

  /**
   * Bring the desired sets to their contents with one `ipset restore`; with removeStale, owned
   * sets not listed are destroyed too (do that after iptables no longer references them). The
   * diff is against what the last apply left (`ipset save` is read only the first time, with
   * `reread`, or after a restore failed, which is then planned and written once more).
   */
  async apply(
    desired: readonly IpsetSpec[],
    options: { removeStale?: boolean; reread?: boolean } = {},
  ): Promise<IpsetPlan> {
    for (const d of desired) {
      if (!d.name.startsWith(this.ownedPrefix)) {
        throw new KernelError('Invalid', {
          operation: `applying ipset ${d.name}: not under the owned prefix ${this.ownedPrefix}`,
        });
      }
    }
    if (options.reread) this.invalidate();
    const trusted = this.#state !== undefined;
    try {
      return await this.#apply(desired, options.removeStale ?? false);
    } catch (err) {
      this.invalidate();
      if (!(err instanceof CommandError) || !trusted) throw err;
      logger.warn(
        { ns: this.namespace?.name, err: err.message },
        'ipset restore failed against the remembered state; reading the sets back',
      );
      return await this.#apply(desired, options.removeStale ?? false);
    }
  }

  async #apply(desired: readonly IpsetSpec[], removeStale: boolean): Promise<IpsetPlan> {
    const current = this.#state ?? (await this.read());
    const plan = planIpsets(desired, current, removeStale);
    if (plan.lines.length > 0) {
      await this.#run(
        ['restore'],
        `${plan.lines.join('\n')}\n`,
        `applying ${plan.lines.length} ipset changes`,
      );
      logger.debug({ ns: this.namespace?.name, lines: plan.lines.length }, 'ipset batch applied');
    }
    const next = new Map(current);
    for (const spec of desired) {
      next.set(spec.name, {
        name: spec.name,
        type: spec.type,
        family: spec.family,
        maxelem: spec.maxelem ?? DEFAULT_MAXELEM,
        members: new Set([...spec.members].map((m) => normaliseMember(spec.type, m))),
      });
    }
    if (removeStale) {
      const wanted = new Set(desired.map((d) => d.name));
      for (const n of [...next.keys()]) if (!wanted.has(n)) next.delete(n);
    }
    this.#state = next;
    return plan;
  }

  /** Apply a known delta to one existing set without reading anything back. */
  async update(
    name: string,
    type: IpsetType,
    delta: { add?: Iterable<string>; del?: Iterable<string> },
  ): Promise<number> {
    const del = [...(delta.del ?? [])].map((m) => normaliseMember(type, m));
    const add = [...(delta.add ?? [])].map((m) => normaliseMember(type, m));
    const lines = [
      ...del.map((m) => `del ${name} ${m} -exist`),
      ...add.map((m) => `add ${name} ${m} -exist`),
    ];
    if (lines.length === 0) return 0;
    try {
      await this.#run(['restore'], `${lines.join('\n')}\n`, `updating ipset ${name}`);
    } catch (err) {
      this.invalidate();
      throw err;
    }
    const set = this.#state?.get(name);
    if (set) {
      for (const m of del) set.members.delete(m);
      for (const m of add) set.members.add(m);
    }
    return lines.length;
  }

  async destroy(name: string): Promise<void> {
    try {
      await this.#run(['destroy', name], undefined, `destroying ipset ${name}`);
    } catch (err) {
      this.invalidate();
      throw err;
    }
    this.#state?.delete(name);
  }

  async #run(args: string[], input: string | undefined, operation: string): Promise<string> {
    const r = await runKept(this.#shell, this.namespace, 'ipset', args, input);
    if (r.exitCode !== 0) {
      throw new CommandError('Ipset', {
        operation,
        namespace: this.namespace?.name,
        command: `ipset ${args.join(' ')}`,
        exitCode: r.exitCode,
        stderr: r.stderr,
      });
    }
    return r.stdout;
  }
}
