/**
 * `calico drops`: the packets policy dropped on a node (or that a staged policy would have), as
 * Felix records them from its NFLOG groups: time, source and destination (workload or address),
 * protocol and port, direction, tier, policy, rule index and verdict. Read from each calico-node's
 * drop-log socket (`felix-drops.ctl` beside its BGP status socket; in a local cluster each node
 * has its own).
 */
import { dirname, join } from 'node:path';
import { ControlError, callControl } from '@calico-ts/bgp';
import { DEFAULT_DROP_LOG_SOCKET, type DropRecord, type DropsResult } from '@calico-ts/felix';
import { Command, Option } from 'commander';
import { CliError } from '../cli-error.ts';
import { clusterNodeBgpSocket, currentCluster, readRecord } from '../cluster-context.ts';
import type { CommandContext } from '../command-context.ts';

type DropMethods = {
  drops: { params: { afterSeq?: number; limit?: number }; result: DropsResult };
};

const VERDICT_TEXT: Readonly<Record<DropRecord['verdict'], string>> = {
  rule: 'denied by rule',
  endOfTier: 'end of tier',
  noProfile: 'no profile',
};

function peer(ip: string, port: number | undefined, ep: DropRecord['src']): string {
  const where = port === undefined ? ip : ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
  return ep ? `${ep.namespace}/${ep.workload} (${where})` : where;
}

/** The policy or profile and rule that decided, as a user names them. */
export function decidedBy(r: DropRecord): string {
  if (r.verdict === 'noProfile') return '-';
  if (r.verdict === 'endOfTier') return '-';
  const owner = r.policy ?? (r.profile ? `profile ${r.profile}` : '?');
  return `${owner} rule ${r.ruleIndex}`;
}

/** One line per record, columns aligned (the header first). */
export function renderDrops(records: readonly DropRecord[], header = true): string {
  const rows = records.map((r) => [
    r.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    r.node,
    r.direction,
    peer(r.srcIp, r.srcPort, r.src),
    peer(r.dstIp, r.dstPort, r.dst),
    r.icmpType === undefined ? r.protocol : `${r.protocol} ${r.icmpType}/${r.icmpCode}`,
    `${r.staged ? 'staged: would be ' : ''}${VERDICT_TEXT[r.verdict]}`,
    r.tier ?? '-',
    decidedBy(r),
  ]);
  const head = ['TIME', 'NODE', 'DIRECTION', 'SOURCE', 'DESTINATION', 'PROTO', 'VERDICT', 'TIER', 'POLICY'];
  const all = header ? [head, ...rows] : rows;
  if (all.length === 0) return '';
  const widths = head.map((_, i) =>
    Math.max(...(header ? all : [head, ...rows]).map((row) => row[i]!.length)),
  );
  return `${all
    .map((row) =>
      row
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

/** Which records to show: staged would-drops only, real drops only, or both (neither flag). */
export function selectRecords(
  records: readonly DropRecord[],
  only: { staged?: boolean | undefined; enforced?: boolean | undefined },
): DropRecord[] {
  if (only.staged && !only.enforced) return records.filter((r) => r.staged);
  if (only.enforced && !only.staged) return records.filter((r) => !r.staged);
  return [...records];
}

/** The drop-log socket of each node asked for: one node, every node of the local cluster, or this host's. */
export function dropSockets(
  node: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): { node: string; socket: string }[] {
  const beside = (bgpSocket: string) => join(dirname(bgpSocket), 'felix-drops.ctl');
  if (node !== undefined) return [{ node, socket: beside(clusterNodeBgpSocket(node, env)) }];
  const name = currentCluster(env);
  const record = name ? readRecord(name, env as NodeJS.ProcessEnv) : undefined;
  if (record) return record.nodes.map((n) => ({ node: n.name, socket: beside(n.bgpSocket) }));
  return [{ node: 'this host', socket: env['CALICO_FELIX_DROPS_SOCKET'] ?? DEFAULT_DROP_LOG_SOCKET }];
}

async function query(socket: string, node: string, afterSeq: number | undefined, limit: number | undefined) {
  try {
    return await callControl<DropMethods, 'drops'>(
      socket,
      'drops',
      { ...(afterSeq !== undefined ? { afterSeq } : {}), ...(limit !== undefined ? { limit } : {}) },
      { timeoutMs: 3000, server: `calico-node of ${node}` },
    );
  } catch (err) {
    if (err instanceof ControlError && err.failure === 'unreachable')
      throw new CliError(`node ${node}: no calico-node answers on ${socket} (is it running, with Felix?)`);
    throw new CliError(`node ${node}: reading drop records from ${socket}: ${(err as Error).message}`);
  }
}

const FOLLOW_INTERVAL_MS = 500;

export function dropsCommand(ctx: CommandContext): Command {
  return new Command('drops')
    .summary('Show packets that policy dropped, naming the policy and rule')
    .option('--node <NODE>', 'a node of the current local cluster (default: every node, or this host)')
    .option('--control <SOCKET>', "calico-node's drop-log socket (instead of --node)")
    .option('--follow', 'keep printing new records as they come (Ctrl-C stops)')
    .option('--staged', 'only what staged policies would have dropped (the packets went on)')
    .option('--enforced', 'only packets enforced policy really dropped')
    .option(
      '--limit <N>',
      'at most the last N records per node (before --staged or --enforced picks)',
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) throw new CliError(`--limit: "${v}" is not a positive integer`);
        return n;
      },
    )
    .addOption(
      new Option('-o, --output <FORMAT>', 'table, or json (one object per line)')
        .choices(['table', 'json'])
        .default('table'),
    )
    .action(
      async (opts: {
        node?: string;
        control?: string;
        follow?: boolean;
        staged?: boolean;
        enforced?: boolean;
        limit?: number;
        output: 'table' | 'json';
      }) => {
        if (opts.node !== undefined && opts.control !== undefined)
          throw new CliError('give --node or --control, not both');
        if (opts.staged && opts.enforced) throw new CliError('give --staged or --enforced, not both');
        let targets: { node: string; socket: string }[];
        try {
          targets = opts.control
            ? [{ node: opts.control, socket: opts.control }]
            : dropSockets(opts.node, ctx.io.env);
        } catch (err) {
          throw new CliError((err as Error).message);
        }
        const print = (records: DropRecord[], header: boolean) => {
          if (opts.output === 'json') for (const r of records) ctx.io.stdout(`${JSON.stringify(r)}\n`);
          else ctx.io.stdout(renderDrops(records, header));
        };
        const last = new Map<string, number>();
        const all: DropRecord[] = [];
        for (const t of targets) {
          const res = await query(t.socket, t.node, undefined, opts.limit);
          all.push(...selectRecords(res.records, opts));
          last.set(t.socket, res.records.at(-1)?.seq ?? 0);
        }
        all.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
        if (all.length === 0 && !opts.follow && opts.output === 'table') ctx.io.stdout('No drop records.\n');
        else print(all, true);
        if (!opts.follow) return;
        for (;;) {
          await new Promise((resolve) => setTimeout(resolve, FOLLOW_INTERVAL_MS));
          const fresh: DropRecord[] = [];
          for (const t of targets) {
            const res = await query(t.socket, t.node, last.get(t.socket), undefined);
            if (res.records.length > 0) last.set(t.socket, res.records.at(-1)!.seq);
            fresh.push(...selectRecords(res.records, opts));
          }
          fresh.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
          if (fresh.length > 0) print(fresh, false);
        }
      },
    );
}
