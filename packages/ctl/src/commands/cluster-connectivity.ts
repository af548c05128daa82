/**
 * `calico cluster probe` and `calico cluster matrix`: whether pods reach each other, tried for
 * real from inside each pod's network namespace (one TCP connect, or one UDP request and answer,
 * to the listeners `pod add --serve` starts).
 */
import { type PodPort, parsePodPorts, probeFrom } from '@calico-ts/lab';
import { displayWidth } from '@calico-ts/text-table';
import { type Command, Option } from 'commander';
import { CliError } from '../cli-error.ts';
import type { ClusterPodRecord, ClusterRecord } from '../cluster-context.ts';
import type { CommandContext } from '../command-context.ts';
import { nameOption, podOf, runningCluster } from './cluster-client.ts';

/** `tcp/80`, `udp:53`, or a bare `80` (TCP). */
export function parsePort(spec: string): PodPort {
  const normalised = /^\d+$/.test(spec) ? `tcp:${spec}` : spec;
  try {
    const [port] = parsePodPorts(normalised);
    if (!port) throw new Error('empty');
    return port;
  } catch {
    throw new CliError(`port ${JSON.stringify(spec)}: expected tcp/PORT, udp/PORT or PORT (1–65535)`);
  }
}

const portLabel = (p: PodPort): string => `${p.protocol}/${p.port}`;
const podKey = (p: ClusterPodRecord): string => `${p.namespace}/${p.name}`;

/** A pod by NS/NAME, or a bare address as a destination. */
function destination(record: ClusterRecord, ref: string, family: 4 | 6): { label: string; ip: string } {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(ref) || (ref.includes(':') && !ref.includes('/')))
    return { label: ref, ip: ref };
  const p = podOf(record, ref);
  return { label: podKey(p), ip: podAddress(record, p, family) };
}

/** A pod's address of one family; IPv6 only in a dual-stack cluster (`up --ipv6`). */
function podAddress(record: ClusterRecord, p: ClusterPodRecord, family: 4 | 6): string {
  if (family === 4) return p.ip;
  if (p.ipv6) return p.ipv6;
  throw new CliError(
    `--family 6: pod ${podKey(p)} has no IPv6 address${record.ipv6PoolCidr ? '' : ` (cluster ${record.name} is IPv4 only; bring it up with --ipv6)`}`,
  );
}

function familyArg(v: string): 4 | 6 {
  if (v === '4') return 4;
  if (v === '6') return 6;
  throw new CliError(`--family ${JSON.stringify(v)}: expected 4 or 6`);
}

export interface Matrix {
  port: string;
  pods: string[];
  allowed: Record<string, Record<string, boolean>>;
}

/** Every pod to every other pod at once; cells that fail are tried again until `retryForMs` runs out. */
export async function connectivityMatrix(
  record: ClusterRecord,
  port: PodPort,
  timeoutMs: number,
  retryForMs: number,
  family: 4 | 6 = 4,
): Promise<Matrix> {
  const pods = [...record.pods].sort((a, b) => podKey(a).localeCompare(podKey(b)));
  const allowed: Record<string, Record<string, boolean>> = {};
  const cells: { from: ClusterPodRecord; to: ClusterPodRecord }[] = [];
  for (const from of pods) {
    allowed[podKey(from)] = {};
    for (const to of pods)
      if (to !== from) cells.push({ from, to: { ...to, ip: podAddress(record, to, family) } });
  }
  const deadline = Date.now() + retryForMs;
  let pending = cells;
  for (;;) {
    const results = await Promise.all(pending.map((c) => probeFrom(c.from.netns, c.to.ip, port, timeoutMs)));
    pending.forEach((c, i) => {
      allowed[podKey(c.from)]![podKey(c.to)] = results[i]!;
    });
    pending = pending.filter((_c, i) => !results[i]);
    if (pending.length === 0 || Date.now() >= deadline) break;
  }
  return { port: portLabel(port), pods: pods.map(podKey), allowed };
}

/** The grid a person reads at a glance: sources down, destinations across, ✓ or ✗ (red on a terminal). */
export function renderMatrix(m: Matrix, color: boolean): string {
  const red = (s: string) => (color ? `\x1b[1;31m${s}\x1b[0m` : s);
  const green = (s: string) => (color ? `\x1b[32m${s}\x1b[0m` : s);
  const rowHead = Math.max(4, ...m.pods.map((p) => displayWidth(p)));
  const pad = (s: string, w: number) => s + ' '.repeat(Math.max(0, w - displayWidth(s)));
  const widths = m.pods.map((p) => Math.max(3, displayWidth(p)));
  let out = `${pad(`${m.port}  from ↓ to →`, rowHead)}  ${m.pods.map((p, i) => pad(p, widths[i]!)).join('  ')}\n`;
  let denied = 0;
  let total = 0;
  for (const from of m.pods) {
    const cells = m.pods.map((to, i) => {
      if (to === from) return pad('·', widths[i]!);
      total++;
      const ok = m.allowed[from]?.[to] === true;
      if (!ok) denied++;
      return ok ? green(pad('✓', widths[i]!)) : red(pad('✗', widths[i]!));
    });
    out += `${pad(from, Math.max(rowHead, displayWidth(`${m.port}  from ↓ to →`)))}  ${cells.join('  ')}\n`;
  }
  out += `${total - denied}/${total} allowed${denied > 0 ? `, ${denied} denied` : ''}\n`;
  return out;
}

export function addConnectivityCommands(cluster: Command, ctx: CommandContext): void {
  cluster
    .command('probe')
    .summary('One TCP connect or UDP request/answer from a pod to a pod; exit 0 when answered')
    .argument('<FROM>', 'source pod NS/NAME')
    .argument('<TO>', 'destination pod NS/NAME or an address')
    .argument('[PORT]', 'tcp/80, udp/53 or 80', 'tcp/80')
    .option('--timeout <MS>', 'how long one attempt waits', '1000')
    .addOption(
      new Option('--until <RESULT>', 'try again until the answer is this (or --wait runs out)').choices([
        'allowed',
        'denied',
      ]),
    )
    .option('--wait <SECONDS>', 'with --until: how long to keep trying', '20')
    .option('--family <4|6>', "which of a pod's addresses to reach (6: dual-stack clusters)", '4')
    .addOption(nameOption())
    .action(
      async (
        fromRef: string,
        toRef: string,
        portSpec: string,
        opts: { timeout: string; until?: 'allowed' | 'denied'; wait: string; family: string; name?: string },
      ) => {
        const record = runningCluster(opts.name, ctx.io.env);
        const from = podOf(record, fromRef);
        const to = destination(record, toRef, familyArg(opts.family));
        const port = parsePort(portSpec);
        const timeoutMs = Number(opts.timeout);
        const deadline = Date.now() + Number(opts.wait) * 1000;
        let ok = await probeFrom(from.netns, to.ip, port, timeoutMs);
        if (opts.until)
          while ((ok ? 'allowed' : 'denied') !== opts.until && Date.now() < deadline)
            ok = await probeFrom(from.netns, to.ip, port, timeoutMs);
        const what = `${podKey(from)} → ${to.label} (${to.ip}) ${portLabel(port)}`;
        if (opts.until) {
          const reached = (ok ? 'allowed' : 'denied') === opts.until;
          ctx.io.stdout(`${what}: ${ok ? 'allowed' : 'denied'}\n`);
          if (!reached) throw new CliError(`${what} was not ${opts.until} within ${opts.wait} s`);
          return;
        }
        ctx.io.stdout(`${what}: ${ok ? 'allowed' : 'no answer'}\n`);
        if (!ok)
          throw new CliError(`no answer from ${to.label} on ${portLabel(port)} within ${timeoutMs} ms`);
      },
    );

  cluster
    .command('matrix')
    .summary('Every pod to every pod at once: a grid of ✓ and ✗')
    .option('--port <PORT>', 'tcp/80, udp/53 …', 'tcp/80')
    .addOption(
      new Option('-o, --output <FORMAT>', 'table or json').choices(['table', 'json']).default('table'),
    )
    .option('--timeout <MS>', 'how long each probe waits', '1000')
    .option('--retry-for <SECONDS>', 'try failed cells again for this long (pods just added)', '0')
    .option('--family <4|6>', "which of the pods' addresses to reach (6: dual-stack clusters)", '4')
    .addOption(nameOption())
    .action(
      async (opts: {
        port: string;
        output: string;
        timeout: string;
        retryFor: string;
        family: string;
        name?: string;
      }) => {
        const record = runningCluster(opts.name, ctx.io.env);
        if (record.pods.length < 2)
          throw new CliError(
            `cluster ${record.name} has ${record.pods.length} pods; a matrix needs at least 2`,
          );
        const m = await connectivityMatrix(
          record,
          parsePort(opts.port),
          Number(opts.timeout),
          Number(opts.retryFor) * 1000,
          familyArg(opts.family),
        );
        ctx.io.stdout(
          opts.output === 'json'
            ? `${JSON.stringify(m, null, 2)}\n`
            : renderMatrix(m, process.stdout.isTTY === true && ctx.io.env['NO_COLOR'] === undefined),
        );
      },
    );
}
