/**
 * `calico node diags`: one tarball with what a person needs to debug a node — calico-node's
 * logs, the dataplane (links, addresses, routes of every table, rules, neighbours, FDB,
 * iptables and ipsets), the BGP agent's sessions, and the datastore's view of the node (its Node
 * resource, block affinities and workload endpoints). A part that cannot be collected is recorded
 * with the reason instead of failing the whole collection.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_AGENT_CONTROL_SOCKET } from '@calico-ts/bgp-agent';
import { Command } from 'commander';
import { stringify } from 'yaml';
import { CliError, userMessage } from '../cli-error.ts';
import type { CommandContext } from '../command-context.ts';
import { queryAgent, renderNodeStatus } from './node-status.ts';

const run = promisify(execFile);

/** The dataplane state collected, each as `file: command`; the Debian package names the tool. */
const DATAPLANE: readonly { file: string; argv: readonly string[]; pkg: string }[] = [
  { file: 'links.txt', argv: ['ip', '-d', 'link', 'show'], pkg: 'iproute2' },
  { file: 'addresses.txt', argv: ['ip', 'addr', 'show'], pkg: 'iproute2' },
  { file: 'routes-ipv4.txt', argv: ['ip', '-4', 'route', 'show', 'table', 'all'], pkg: 'iproute2' },
  { file: 'routes-ipv6.txt', argv: ['ip', '-6', 'route', 'show', 'table', 'all'], pkg: 'iproute2' },
  { file: 'rules.txt', argv: ['ip', 'rule', 'show'], pkg: 'iproute2' },
  { file: 'neighbours.txt', argv: ['ip', 'neigh', 'show'], pkg: 'iproute2' },
  { file: 'fdb.txt', argv: ['bridge', 'fdb', 'show'], pkg: 'iproute2' },
  { file: 'iptables-save.txt', argv: ['iptables-save', '-c'], pkg: 'iptables' },
  { file: 'ip6tables-save.txt', argv: ['ip6tables-save', '-c'], pkg: 'iptables' },
  { file: 'ipset.txt', argv: ['ipset', 'list'], pkg: 'ipset' },
];

interface DiagsOptions {
  logDir: string;
  output?: string;
  node?: string;
  netns?: string;
  control: string;
}

/** Runs a collection command (inside `netns` when given); its output, or why there is none. */
async function capture(argv: readonly string[], netns: string | undefined, pkg: string): Promise<string> {
  const full = netns ? ['ip', 'netns', 'exec', netns, ...argv] : [...argv];
  try {
    const { stdout, stderr } = await run(full[0]!, full.slice(1), { maxBuffer: 256 * 1024 * 1024 });
    return stderr ? `${stdout}\n# stderr:\n${stderr}` : stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') return `# ${argv[0]} is not installed (Debian package: ${pkg})\n`;
    return `# ${full.join(' ')} failed: ${(e.stderr || e.message).trim()}\n`;
  }
}

async function datastoreView(ctx: CommandContext, node: string): Promise<string> {
  try {
    const ds = await ctx.datastore();
    const docs: unknown[] = [];
    try {
      docs.push(await ds.get('Node', node));
    } catch (err) {
      docs.push({ error: `Node ${node}: ${userMessage(err)}` });
    }
    const affinities = (await ds.list('BlockAffinity')).items.filter((a) => a.spec.node === node);
    const endpoints = (await ds.list('WorkloadEndpoint')).items.filter((w) => w.spec.node === node);
    docs.push(...affinities, ...endpoints);
    return docs.map((d) => stringify(d)).join('---\n');
  } catch (err) {
    return `# the datastore could not be read: ${userMessage(err)}\n`;
  }
}

async function bgpStatus(control: string): Promise<string> {
  try {
    const status = await queryAgent(control);
    return status
      ? renderNodeStatus(status.peers)
      : `Calico process is not running (nothing answers on ${control}).\n`;
  } catch (err) {
    return `# ${userMessage(err)}\n`;
  }
}

export function nodeDiagsCommand(ctx: CommandContext): Command {
  return new Command('diags')
    .summary('Collect logs, dataplane state, BGP status and the datastore’s view of this node into a tarball')
    .option('--log-dir <DIR>', 'calico-node’s log directory', '/var/log/calico')
    .option('--output <FILE>', 'where to write the tarball (default ./calico-diags-<node>-<time>.tar.gz)')
    .option('--node <NAME>', 'the node’s name in the datastore (default: this host’s name)')
    .option('--netns <NAME>', 'collect the dataplane inside this network namespace (a lab node)')
    .option('--control <SOCKET>', 'control socket of the BGP agent', DEFAULT_AGENT_CONTROL_SOCKET)
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.io.stdout(s), writeErr: (s) => ctx.io.stderr(s) })
    .action(async (opts: DiagsOptions) => {
      const node = opts.node ?? hostname();
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const name = `calico-diags-${node}-${stamp}`;
      const output = resolve(ctx.io.cwd, opts.output ?? `${name}.tar.gz`);
      const work = await mkdtemp(join(tmpdir(), 'calico-diags-'));
      const root = join(work, name);
      try {
        await mkdir(root, { recursive: true });
        ctx.io.stdout(
          `Collecting diagnostics for node ${node}${opts.netns ? ` (namespace ${opts.netns})` : ''}...\n`,
        );
        await Promise.all(
          DATAPLANE.map(async (d) => writeFile(join(root, d.file), await capture(d.argv, opts.netns, d.pkg))),
        );
        await writeFile(join(root, 'bgp-status.txt'), await bgpStatus(opts.control));
        await writeFile(join(root, 'datastore.yaml'), await datastoreView(ctx, node));
        const logs = join(root, 'logs');
        if (
          await stat(opts.logDir)
            .then((s) => s.isDirectory())
            .catch(() => false)
        ) {
          await cp(opts.logDir, logs, { recursive: true });
        } else {
          await mkdir(logs);
          await writeFile(join(logs, 'MISSING.txt'), `no log directory at ${opts.logDir}\n`);
        }
        try {
          await run('tar', ['-czf', output, '-C', work, name]);
        } catch (err) {
          throw new CliError(
            `could not write ${output}: ${((err as { stderr?: string }).stderr || (err as Error).message).trim()}`,
          );
        }
        ctx.io.stdout(`Diags saved to ${output}\n`);
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    });
}
