import net from 'node:net';
import { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import type { CommandContext } from '../command-context.ts';

/** Where calico-node's BGP agent answers (its counterpart of BIRD's /var/run/calico/bird.ctl). */
export const DEFAULT_BGP_CONTROL_SOCKET = '/var/run/calico/bgp.ctl';

/** One session as the BGP agent reports it (@calico-ts/bgp/agent AgentPeerStatus). */
export interface NodeStatusPeer {
  address: string;
  type: string;
  family: 'ipv4' | 'ipv6';
  state: string;
  since: string;
  info: string;
}

/**
 * calicoctl's table (calicoctl/commands/node/status.go, tablewriter): `+`/`-`/`|` borders,
 * upper-case headers centred, cells left-aligned with one space of padding.
 */
export function borderedTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const centre = (s: string, w: number) => {
    const left = Math.floor((w - s.length) / 2);
    return `${' '.repeat(left)}${s}${' '.repeat(w - s.length - left)}`;
  };
  const line = (cells: readonly string[], pad: (s: string, w: number) => string) =>
    `| ${cells.map((c, i) => pad(c, widths[i]!)).join(' | ')} |`;
  return [
    rule,
    line(headers, centre),
    rule,
    ...rows.map((r) => line(r, (s, w) => s.padEnd(w))),
    rule,
    '',
  ].join('\n');
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
      .filter((p) => p.family === family)
      .map((p) => [p.address, p.type, p.state, birdSince(p.since, now), p.info]);
    out +=
      rows.length === 0
        ? `No ${label} peers found.\n`
        : borderedTable(['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE', 'INFO'], rows);
  }
  return out;
}

/**
 * Ask the agent: one JSON line `{"command":"status"}` out, one JSON line back (the agent's
 * control-socket protocol). undefined when nothing answers (calico-node not running).
 */
function queryAgent(path: string, timeoutMs = 2000): Promise<{ peers: NodeStatusPeer[] } | undefined> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    let buf = '';
    let connected = false;
    // calicoctl gives BIRD 2 s to answer.
    const timer = setTimeout(() => {
      s.destroy();
      reject(new CliError(`the BGP agent on ${path} did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => {
      connected = true;
      s.write('{"command":"status"}\n');
    });
    s.on('data', (d: string) => {
      buf += d;
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!connected) resolve(undefined);
      else reject(new CliError(`reading from the BGP agent on ${path}: ${err.message}`));
    });
    s.on('end', () => {
      clearTimeout(timer);
      try {
        const reply = JSON.parse(buf) as {
          ok: boolean;
          error?: string;
          status?: { peers: NodeStatusPeer[] };
        };
        if (!reply.ok || !reply.status)
          reject(new CliError(`the BGP agent on ${path}: ${reply.error ?? 'no status'}`));
        else resolve(reply.status);
      } catch {
        reject(new CliError(`the BGP agent on ${path} sent a malformed reply`));
      }
    });
  });
}

/** `calico node status`: the node's BGP sessions, as calicoctl prints them. */
export function nodeCommand(ctx: CommandContext): Command {
  const node = new Command('node').summary('Inspect this node’s calico-node');
  node
    .command('status')
    .summary('Show whether calico-node runs here and the state of its BGP sessions')
    .option('--control <SOCKET>', 'control socket of the BGP agent', DEFAULT_BGP_CONTROL_SOCKET)
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.io.stdout(s), writeErr: (s) => ctx.io.stderr(s) })
    .action(async (opts: { control: string }) => {
      const status = await queryAgent(opts.control);
      if (!status) {
        ctx.io.stdout('Calico process is not running.\n');
        throw new CliError(`no BGP agent answers on ${opts.control}`);
      }
      ctx.io.stdout(renderNodeStatus(status.peers));
    });
  return node;
}
