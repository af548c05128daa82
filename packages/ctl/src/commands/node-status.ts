import { ControlError, callControl } from '@calico-ts/bgp';
import {
  type AgentControlMethods,
  type AgentPeerStatus,
  DEFAULT_AGENT_CONTROL_SOCKET,
} from '@calico-ts/bgp-agent';
import {
  type CalicoNodeStatusPeer,
  type CalicoNodeStatusStatus,
  parseCalicoNodeStatusStatus,
} from '@calico-ts/datastore';
import { borderedTable } from '@calico-ts/text-table';
import { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { clusterNodeBgpSocket } from '../cluster-context.ts';
import type { CommandContext } from '../command-context.ts';

/** What the table shows of one session the BGP agent reports. */
export type NodeStatusPeer = Pick<
  AgentPeerStatus,
  'name' | 'address' | 'type' | 'family' | 'state' | 'since' | 'info'
>;

/**
 * calicoctl reads a session's type from its BIRD protocol name (`Mesh_…`, `Node_…`, `Global_…`);
 * other sessions (`Local_Workload_…`) are not listed.
 */
const PEER_TYPE_BY_NAME: Record<string, string> = {
  Global: 'global',
  Mesh: 'node-to-node mesh',
  Node: 'node specific',
};
export function peerTypeOf(name: string): string | undefined {
  const m = /^(Global|Node|Mesh)_(.+)$/.exec(name);
  return m ? PEER_TYPE_BY_NAME[m[1]!] : undefined;
}

/** BIRD's protocol time: the clock time today, the date before that. */
export function birdSince(iso: string, now = new Date()): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  const two = (n: number) => String(n).padStart(2, '0');
  const sameDay =
    t.getFullYear() === now.getFullYear() && t.getMonth() === now.getMonth() && t.getDate() === now.getDate();
  return sameDay
    ? `${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}`
    : `${t.getFullYear()}-${two(t.getMonth() + 1)}-${two(t.getDate())}`;
}

/** The whole `calicoctl node status` output for a running agent. */
export function renderNodeStatus(peers: readonly NodeStatusPeer[], now = new Date()): string {
  let out = 'Calico process is running.\n';
  for (const [family, label] of [
    ['ipv4', 'IPv4'],
    ['ipv6', 'IPv6'],
  ] as const) {
    out += `\n${label} BGP status\n`;
    const rows = peers
      .filter((p) => p.family === family && peerTypeOf(p.name) !== undefined)
      .map((p) => [p.address, peerTypeOf(p.name)!, p.state, birdSince(p.since, now), p.info]);
    out +=
      rows.length === 0
        ? `No ${label} peers found.\n`
        : borderedTable(['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE', 'INFO'], rows);
  }
  return out;
}

/** The sessions as BIRD's `show protocols` lists them: its protocol names, for runbooks that use them. */
export function renderProtocols(peers: readonly NodeStatusPeer[], now = new Date()): string {
  const rows = [
    ['name', 'proto', 'table', 'state', 'since', 'info'],
    ...[...peers]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((p) => [p.name, 'BGP', 'master', p.state, birdSince(p.since, now), p.info]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join(' ')
      .trimEnd();
  return `${rows.map(line).join('\n')}\n`;
}

/** What `--all` shows of one node: its CalicoNodeStatus, or why it cannot be read. */
export interface NodeStatusReport {
  node: string;
  status: CalicoNodeStatusStatus | undefined;
  problems: string[];
}

const PEER_TYPE_NAMES: Record<CalicoNodeStatusPeer['type'], string> = {
  NodeMesh: 'node-to-node mesh',
  NodePeer: 'node specific',
  GlobalPeer: 'global',
};

function age(iso: string, now: Date): string {
  const ms = now.getTime() - new Date(iso).getTime();
  if (Number.isNaN(ms)) return iso;
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
}

/**
 * `calico node status --all`: every node's sessions as it last wrote them to its CalicoNodeStatus,
 * with how long ago, and for a session not Established the reason it gave.
 */
export function renderAllNodeStatus(reports: readonly NodeStatusReport[], now = new Date()): string {
  if (reports.length === 0) return 'No node has written its BGP status (CalicoNodeStatus) yet.\n';
  let out = '';
  for (const r of [...reports].sort((a, b) => a.node.localeCompare(b.node))) {
    const st = r.status;
    if (!st) {
      out += `Node ${r.node}: no readable status (${r.problems.join('; ')})\n\n`;
      continue;
    }
    const agent = st.agent?.birdV4?.state ?? 'unknown';
    out += `Node ${r.node} (BGP agent ${agent}, updated ${age(st.lastUpdated, now)})\n`;
    const peers = [...(st.bgp?.peersV4 ?? []), ...(st.bgp?.peersV6 ?? [])];
    if (peers.length === 0) {
      out += 'No BGP peers.\n\n';
      continue;
    }
    const rows = peers.map((p) => [
      p.peerIP,
      PEER_TYPE_NAMES[p.type],
      p.state === 'Established' ? 'up' : 'start',
      birdSince(p.since, now),
      p.state === 'Established' || !p.reason ? p.state : `${p.state}: ${p.reason}`,
    ]);
    out += `${borderedTable(['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE', 'INFO'], rows)}\n`;
  }
  return out;
}

/** calicoctl gives BIRD 2 s to answer. */
const AGENT_TIMEOUT_MS = 2000;

/**
 * Ask the agent for its status over its control socket. undefined when nothing answers there
 * (calico-node not running).
 */
export async function queryAgent(path: string): Promise<{ peers: NodeStatusPeer[] } | undefined> {
  try {
    return await callControl<AgentControlMethods, 'status'>(
      path,
      'status',
      {},
      { timeoutMs: AGENT_TIMEOUT_MS },
    );
  } catch (err) {
    if (!(err instanceof ControlError)) throw err;
    switch (err.failure) {
      case 'unreachable':
        return undefined;
      case 'timeout':
        throw new CliError(`the BGP agent on ${path} did not answer within ${AGENT_TIMEOUT_MS / 1000} s`);
      case 'malformed':
        throw new CliError(`the BGP agent on ${path} sent a malformed reply`);
      case 'refused':
        throw new CliError(`the BGP agent on ${path}: ${err.detail}`);
      default:
        throw new CliError(`reading from the BGP agent on ${path}: ${err.detail}`);
    }
  }
}

/** `calico node status`: the node's BGP sessions, as calicoctl prints them. */
export function nodeStatusCommand(ctx: CommandContext): Command {
  return new Command('status')
    .summary('Show whether calico-node runs here and the state of its BGP sessions')
    .argument('[NODE]', 'a node of the current local cluster (calico cluster up), e.g. calico-n1')
    .option('--control <SOCKET>', 'control socket of the BGP agent', DEFAULT_AGENT_CONTROL_SOCKET)
    .option(
      '--protocols',
      'list the sessions by BIRD protocol name, as `birdcl show protocols` (Mesh_…, Node_…, Global_…)',
    )
    .option(
      '--all',
      "every node's sessions, from the CalicoNodeStatus each node writes to the datastore (any host)",
    )
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.io.stdout(s), writeErr: (s) => ctx.io.stderr(s) })
    .action(async (node: string | undefined, opts: { control: string; all?: boolean }) => {
      if (opts.all === true) {
        if (node !== undefined) throw new CliError('--all reads every node; give no NODE with it');
        const ds = await ctx.datastore();
        const { items } = await ds.list('CalicoNodeStatus');
        const reports = items.map((r): NodeStatusReport => {
          const parsed = parseCalicoNodeStatusStatus(r.status);
          return {
            node: r.spec.node ?? r.metadata.name,
            status: parsed.ok ? parsed.status : undefined,
            problems: parsed.ok ? [] : parsed.problems,
          };
        });
        ctx.io.stdout(renderAllNodeStatus(reports));
        return;
      }
      if (node !== undefined) {
        try {
          opts.control = clusterNodeBgpSocket(node, ctx.io.env);
        } catch (err) {
          throw new CliError((err as Error).message);
        }
      }
      const status = await queryAgent(opts.control);
      if (!status) {
        ctx.io.stdout('Calico process is not running.\n');
        throw new CliError(`no BGP agent answers on ${opts.control}`);
      }
      const byName = (opts as { protocols?: boolean }).protocols === true;
      ctx.io.stdout(byName ? renderProtocols(status.peers) : renderNodeStatus(status.peers));
    });
}
