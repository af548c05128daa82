/**
 * `calico cluster up | down | status | logs`, and the hidden `supervise` that `up` starts
 * detached: the life of a local cluster.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { callControl } from '@calico-ts/bgp';
import { EtcdDatastore, parseCidr } from '@calico-ts/datastore';
import {
  chooseUnderlay,
  hostIpv4Networks,
  isLabError,
  type LabEncapsulation,
  nodeProgram,
  parseBirdProtocols,
  removeLabCluster,
  signalIfSame,
  stillRunning,
  underlayAddressing,
  underlayConflict,
} from '@calico-ts/lab';
import type { ReflectorControlMethods, ReflectorStatus } from '@calico-ts/reflector';
import { tabwriterTable } from '@calico-ts/text-table';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { CliError } from '../cli-error.ts';
import { type ClusterRecord, clearCurrentCluster, clusterDir, readRecord } from '../cluster-context.ts';
import type { CommandContext } from '../command-context.ts';
import { clusterNameArg, nameOption, nodeOf, resolveClusterName, runningCluster } from './cluster-client.ts';
import { superviseCluster } from './cluster-supervisor.ts';
import { queryAgent } from './node-status.ts';

function intArg(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

interface UpFlags {
  name: string;
  nodes: number;
  encapsulation?: LabEncapsulation;
  backend?: 'vxlan' | 'bgp';
  pool: string;
  underlay?: string;
  pods: number;
  etcdPort: number;
  routeReflectors: number;
  dedicatedReflectors?: boolean;
  reflectorHoldTime?: number;
  tor: 'bird' | 'none';
  ipv6?: boolean;
  pool6: string;
  foreground?: boolean;
  check?: boolean;
}

/** Where `up` puts a `calico` launcher so that the commands it prints work when pasted. */
const LAUNCHER = '/usr/local/bin/calico';
const LAUNCHER_MARK = '# calico-ts launcher';

/** The argv that runs this CLI again (source with the source condition, or the built file). */
function cliArgv(): string[] {
  const here = fileURLToPath(import.meta.url);
  return nodeProgram(
    here.endsWith('.ts') ? fileURLToPath(new URL('../cli.ts', import.meta.url)) : (process.argv[1] ?? here),
  );
}

const quote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`);

/**
 * The command to print for running `calico`: `calico` when the launcher on PATH is ours (written
 * now if there is none), else the full argv.
 */
function calicoCommand(): string {
  const argv = cliArgv().map(quote).join(' ');
  try {
    if (!existsSync(LAUNCHER) || readFileSync(LAUNCHER, 'utf8').includes(LAUNCHER_MARK)) {
      writeFileSync(
        LAUNCHER,
        `#!/bin/sh\n${LAUNCHER_MARK} (written by "calico cluster up")\nexec ${argv} "$@"\n`,
      );
      chmodSync(LAUNCHER, 0o755);
    }
    if (readFileSync(LAUNCHER, 'utf8').includes(LAUNCHER_MARK)) return 'calico';
  } catch {
    // not writable: print the full command instead
  }
  return argv;
}

function which(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** Refuses, with the package to install, what would fail half-way later. */
function checkPrerequisites(encapsulation: LabEncapsulation): void {
  if (process.getuid?.() !== 0)
    throw new CliError('calico cluster up needs root (it creates network namespaces); run it with sudo');
  for (const [tool, pkg] of [
    ['ip', 'iproute2'],
    ['etcd', 'etcd-server'],
    ['iptables', 'iptables'],
    ['ipset', 'ipset'],
  ] as const)
    if (!which(tool)) throw new CliError(`calico cluster up needs ${tool}: apt-get install ${pkg}`);
  if (
    encapsulation === 'ipip' &&
    !existsSync('/sys/module/ipip') &&
    spawnSync('modprobe', ['-n', 'ipip']).status !== 0
  )
    throw new CliError(
      '--encapsulation ipip: this kernel has no ipip module (not loaded, not available to modprobe); use none or vxlan',
    );
}

/** The underlay: --underlay when it overlaps nothing of this host, else the first free documentation range. */
function pickUnderlay(requested: string | undefined, nodes: number): string {
  const host = hostIpv4Networks();
  if (requested === undefined) return chooseUnderlay(host);
  let cidr: string;
  try {
    cidr = underlayAddressing(requested, nodes).cidr;
  } catch (err) {
    throw new CliError(`--underlay: ${(err as Error).message}`);
  }
  const conflict = underlayConflict(cidr, host);
  if (conflict)
    throw new CliError(
      `--underlay ${requested} overlaps this host's ${conflict.source}; pick a range the host does not use (e.g. ${chooseUnderlay(host)})`,
    );
  return cidr;
}

export function addLifecycleCommands(cluster: Command, ctx: CommandContext): void {
  const upOptions = (c: Command): Command =>
    c
      .addOption(
        new Option('--name <NAME>', 'cluster name, the prefix of every namespace')
          .default('calico')
          .argParser(clusterNameArg),
      )
      .addOption(new Option('--nodes <N>', 'number of nodes').default(3).argParser(intArg(1, 50)))
      .addOption(
        new Option(
          '--encapsulation <MODE>',
          'how pods on different nodes reach each other (none = BGP-routed)',
        ).choices(['none', 'vxlan', 'ipip']),
      )
      .addOption(
        new Option('--backend <MODE>', 'older name: bgp = --encapsulation none').choices(['vxlan', 'bgp']),
      )
      .addOption(
        new Option(
          '--route-reflectors <N>',
          'the first N nodes are BGP route reflectors and the node-to-node mesh is off (none or ipip only)',
        )
          .default(0)
          .argParser(intArg(0, 50)),
      )
      .addOption(
        new Option(
          '--dedicated-reflectors',
          'run the route reflectors as calico-reflector daemons on their own underlay hosts (<name>-rr<k>) instead of on the first nodes',
        ),
      )
      .addOption(
        new Option(
          '--reflector-hold-time <S>',
          'BGP hold time the dedicated reflectors offer (sessions use the smaller side; default 90)',
        ).argParser(intArg(3, 65535)),
      )
      .addOption(
        new Option(
          '--tor <ROUTER>',
          'a top-of-rack router in the underlay peering with every node over eBGP (bird: BIRD 2, AS 65001)',
        )
          .choices(['bird', 'none'])
          .default('none'),
      )
      .addOption(new Option('--pool <CIDR>', 'the IPv4 pod pool').default('10.244.0.0/16'))
      .addOption(new Option('--pool-cidr <CIDR>').hideHelp())
      .addOption(
        new Option(
          '--ipv6',
          'dual stack: an IPv6 underlay (2001:db8::/64), IPv6 node addresses, and pods with an address from --pool6 too',
        ),
      )
      .addOption(new Option('--pool6 <CIDR>', 'the IPv6 pod pool (with --ipv6)').default('fd00:10:244::/48'))
      .addOption(
        new Option(
          '--underlay <CIDR>',
          "the nodes' network (default: a documentation range this host does not use)",
        ),
      )
      .addOption(
        new Option('--pods <N>', 'demo pods per node in namespace default')
          .default(0)
          .argParser(intArg(0, 50)),
      )
      .addOption(
        new Option('--etcd-port <PORT>', 'loopback port relaying to the cluster etcd (0 = any)')
          .default(0)
          .argParser(intArg(0, 65535)),
      );

  upOptions(cluster.command('up'))
    .summary('Create a local cluster and leave it running (etcd, calico-node per node, CNI)')
    .option('--foreground', 'stay attached, print what happens, tear down on Ctrl-C')
    .option('--check', 'bring it up, then tear it down at once (exit 0 when it became ready)')
    .action(async (opts: UpFlags & { poolCidr?: string }) => {
      const out = (line: string) => ctx.io.stdout(`${line}\n`);
      const encapsulation: LabEncapsulation =
        opts.encapsulation ?? (opts.backend === 'bgp' ? 'none' : 'vxlan');
      const pool = opts.poolCidr ?? opts.pool;
      if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(pool) || parseCidrOrUndefined(pool) === undefined)
        throw new CliError(`--pool ${JSON.stringify(pool)}: expected an IPv4 CIDR such as 10.244.0.0/16`);
      checkRouteReflectors(opts, encapsulation);
      if (
        opts.ipv6 &&
        (!/^[0-9a-f:]+\/\d+$/i.test(opts.pool6) || parseCidrOrUndefined(opts.pool6) === undefined)
      )
        throw new CliError(
          `--pool6 ${JSON.stringify(opts.pool6)}: expected an IPv6 CIDR such as fd00:10:244::/48`,
        );
      if (opts.tor === 'bird' && encapsulation === 'vxlan')
        throw new CliError(
          '--tor bird: the top-of-rack router peers over BGP, which --encapsulation vxlan does not run; use --encapsulation none or ipip',
        );
      if (opts.ipv6 && opts.dedicatedReflectors)
        throw new CliError(
          '--ipv6 with --dedicated-reflectors: the dedicated reflectors peer over IPv4 only so far; use reflectors on nodes (without --dedicated-reflectors)',
        );
      if (opts.tor === 'bird' && !which('bird'))
        throw new CliError('--tor bird needs bird and birdc: apt-get install bird2');
      checkPrerequisites(encapsulation);
      const dir = clusterDir(opts.name, ctx.io.env as NodeJS.ProcessEnv);
      const existing = readRecord(opts.name, ctx.io.env as NodeJS.ProcessEnv);
      if (existing && stillRunning(existing.supervisor))
        throw new CliError(
          `cluster ${opts.name} is already running; "calico cluster down --name ${opts.name}" first`,
        );
      if (existsSync(dir))
        throw new CliError(
          `cluster ${opts.name} left state in ${dir}; remove it with "calico cluster down --name ${opts.name}"`,
        );
      const underlay = pickUnderlay(opts.underlay, opts.nodes);
      const calico = calicoCommand();
      const supervisorOptions = {
        name: opts.name,
        dir,
        nodes: opts.nodes,
        encapsulation,
        poolCidr: pool,
        underlay,
        etcdPort: opts.etcdPort,
        demoPods: opts.pods,
        makeCurrent: !opts.check,
        routeReflectors: opts.routeReflectors,
        reflectorForm: opts.dedicatedReflectors ? ('dedicated' as const) : ('nodes' as const),
        ...(opts.reflectorHoldTime !== undefined ? { reflectorHoldTime: opts.reflectorHoldTime } : {}),
        tor: opts.tor,
        ipv6PoolCidr: opts.ipv6 ? opts.pool6 : undefined,
      };
      out(
        `cluster ${opts.name}: ${opts.nodes} nodes, encapsulation ${encapsulation}${opts.routeReflectors > 0 ? `, ${opts.routeReflectors}${opts.dedicatedReflectors ? ' dedicated' : ''} route reflector${opts.routeReflectors > 1 ? 's' : ''}` : ''}, underlay ${underlay}, pool ${pool}${opts.ipv6 ? ` and ${opts.pool6}` : ''}`,
      );

      if (opts.foreground) {
        mkdirSync(dir, { recursive: true });
        let failed = false;
        await superviseCluster(
          {
            ...supervisorOptions,
            onReady: () => {
              const record = readRecord(opts.name, ctx.io.env as NodeJS.ProcessEnv);
              if (record)
                void summary(record).then((s) => {
                  out(s);
                  out(hints(record, calico, true));
                });
            },
          },
          out,
        ).catch((err: Error) => {
          failed = true;
          ctx.io.stderr(`${failureMessage(err)}\n`);
        });
        if (failed) throw new CliError(`cluster ${opts.name} could not be brought up`);
        return;
      }

      mkdirSync(dir, { recursive: true });
      const logFile = join(dir, 'supervisor.log');
      const fd = openSync(logFile, 'a');
      const [node, ...args] = cliArgv();
      const child = spawn(
        node!,
        [
          ...args,
          'cluster',
          'supervise',
          '--name',
          opts.name,
          '--nodes',
          String(opts.nodes),
          '--encapsulation',
          encapsulation,
          '--pool',
          pool,
          '--underlay',
          underlay,
          '--pods',
          String(opts.pods),
          '--etcd-port',
          String(opts.etcdPort),
          '--route-reflectors',
          String(opts.routeReflectors),
          ...(opts.dedicatedReflectors ? ['--dedicated-reflectors'] : []),
          '--tor',
          opts.tor,
          ...(opts.ipv6 ? ['--ipv6', '--pool6', opts.pool6] : []),
          ...(opts.reflectorHoldTime !== undefined
            ? ['--reflector-hold-time', String(opts.reflectorHoldTime)]
            : []),
          ...(opts.check ? ['--no-current'] : []),
        ],
        { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, ...ctx.io.env } },
      );
      closeSync(fd);
      child.unref();
      let exited = false;
      child.once('exit', () => (exited = true));
      const log = logTail(logFile);
      const tail = log.read;
      // Every calico-node starts at once: on a small machine more nodes take longer each.
      const deadline = Date.now() + 300_000 + 30_000 * opts.nodes;
      let record: ClusterRecord | undefined;
      try {
        for (;;) {
          for (const line of tail()) out(`  ${line}`);
          record = readRecord(opts.name, ctx.io.env as NodeJS.ProcessEnv);
          if (record?.phase === 'ready') break;
          if (exited || record?.phase === 'failed' || Date.now() > deadline) {
            if (!exited && record && record.phase !== 'failed') signalIfSame(record.supervisor, 'SIGTERM');
            // The supervisor removes what it made and exits; its last lines say why.
            const gone = Date.now() + 60_000;
            while (!exited && Date.now() < gone) await new Promise((r) => setTimeout(r, 100));
            for (const line of tail()) out(`  ${line}`);
            throw new CliError(
              `cluster ${opts.name} could not be brought up${record?.error ? `: ${record.error}` : ''}`,
            );
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      } finally {
        log.close();
      }
      out(await summary(record));
      if (opts.check) {
        await stopCluster(opts.name, ctx.io.env);
        out(`cluster ${opts.name} was ready and is removed again`);
        return;
      }
      out(hints(record, calico, false));
    });

  upOptions(cluster.command('supervise', { hidden: true }))
    .option('--no-current', 'do not make it the current cluster')
    .action(async (opts: UpFlags & { current: boolean }) => {
      const log = (line: string) => ctx.io.stdout(`${new Date().toISOString()} ${line}\n`);
      await superviseCluster(
        {
          name: opts.name,
          dir: clusterDir(opts.name, ctx.io.env as NodeJS.ProcessEnv),
          nodes: opts.nodes,
          encapsulation: opts.encapsulation ?? 'vxlan',
          poolCidr: opts.pool,
          underlay: opts.underlay ?? chooseUnderlay(hostIpv4Networks()),
          etcdPort: opts.etcdPort,
          demoPods: opts.pods,
          makeCurrent: opts.current,
          routeReflectors: opts.routeReflectors,
          reflectorForm: opts.dedicatedReflectors ? 'dedicated' : 'nodes',
          ...(opts.reflectorHoldTime !== undefined ? { reflectorHoldTime: opts.reflectorHoldTime } : {}),
          tor: opts.tor,
          ipv6PoolCidr: opts.ipv6 ? opts.pool6 : undefined,
        },
        log,
      ).catch((err: Error) => {
        throw new CliError(failureMessage(err));
      });
    });

  cluster
    .command('down')
    .summary('Stop a cluster and remove everything it made (namespaces, processes, files)')
    .addOption(nameOption())
    .action(async (opts: { name?: string }) => {
      const name = resolveClusterName(opts.name, ctx.io.env);
      const removed = await stopCluster(name, ctx.io.env);
      ctx.io.stdout(
        removed.length > 0
          ? `cluster ${name} removed (${removed.join(', ')})\n`
          : `no cluster named ${name}\n`,
      );
    });

  cluster
    .command('status')
    .summary('Nodes (address, calico-node pid, ready, restarts, BGP sessions) and etcd of a cluster')
    .addOption(nameOption())
    .addOption(
      new Option('-o, --output <FORMAT>', 'table or json').choices(['table', 'json']).default('table'),
    )
    .action(async (opts: { name?: string; output: string }) => {
      const record = runningCluster(opts.name, ctx.io.env);
      const status = await liveStatus(record);
      if (opts.output === 'json') {
        ctx.io.stdout(`${JSON.stringify(status, null, 2)}\n`);
        return;
      }
      ctx.io.stdout(await summary(record, status));
      if (record.events.length > 0)
        ctx.io.stdout(
          `\nRecent supervision events:\n${record.events
            .slice(-10)
            .map((e) => `  ${e}`)
            .join('\n')}\n`,
        );
    });

  cluster
    .command('logs')
    .summary("A node's calico-node log (or a dedicated reflector's, etcd's, or the supervisor's)")
    .argument('<NODE>', 'node name (n1 or <cluster>-n1), reflector (rr1), etcd, or supervisor')
    .addOption(nameOption())
    .option('--tail <LINES>', 'only the last LINES lines', intArg(1, 1_000_000))
    .action(async (ref: string, opts: { name?: string; tail?: number }) => {
      const record = runningCluster(opts.name, ctx.io.env);
      const file =
        ref === 'etcd'
          ? record.etcd.logFile
          : ref === 'supervisor'
            ? record.logFile
            : ((record.reflectors ?? []).find((r) => r.name === ref || r.name === `${record.name}-${ref}`)
                ?.logFile ?? nodeOf(record, ref).logFile);
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      ctx.io.stdout(
        opts.tail
          ? `${text
              .split('\n')
              .slice(-opts.tail - 1)
              .join('\n')}`
          : text,
      );
    });
}

/** Dedicated reflectors sit between the underlay's gateway (.1) and its first node (.11). */
const MAX_DEDICATED_REFLECTORS = 9;

/** Route reflectors are BGP speakers: only with BGP between the nodes, and at most one per node. */
function checkRouteReflectors(
  opts: Pick<UpFlags, 'routeReflectors' | 'nodes' | 'dedicatedReflectors' | 'reflectorHoldTime'>,
  encapsulation: LabEncapsulation,
): void {
  const { routeReflectors: count, nodes } = opts;
  if (count === 0) {
    if (opts.dedicatedReflectors)
      throw new CliError('--dedicated-reflectors: expected --route-reflectors N (1 to 9) as well');
    if (opts.reflectorHoldTime !== undefined)
      throw new CliError(
        `--reflector-hold-time ${opts.reflectorHoldTime}: expected --route-reflectors N --dedicated-reflectors as well`,
      );
    return;
  }
  if (encapsulation === 'vxlan')
    throw new CliError(
      `--route-reflectors ${count}: route reflectors need BGP between the nodes, which --encapsulation vxlan does not run; use --encapsulation none or ipip`,
    );
  if (opts.dedicatedReflectors) {
    if (count > MAX_DEDICATED_REFLECTORS)
      throw new CliError(
        `--route-reflectors ${count}: expected at most ${MAX_DEDICATED_REFLECTORS} dedicated reflectors (underlay hosts .2 to .10)`,
      );
    return;
  }
  if (opts.reflectorHoldTime !== undefined)
    throw new CliError(
      `--reflector-hold-time ${opts.reflectorHoldTime}: only dedicated reflectors take a hold time; add --dedicated-reflectors`,
    );
  if (count > nodes)
    throw new CliError(
      `--route-reflectors ${count}: expected at most the number of nodes (--nodes ${nodes})`,
    );
}

function parseCidrOrUndefined(cidr: string): unknown {
  try {
    return parseCidr(cidr);
  } catch {
    return undefined;
  }
}

function failureMessage(err: Error): string {
  if (isLabError(err, 'NeedsRoot')) return 'calico cluster up needs root (it creates network namespaces)';
  return err.message;
}

/**
 * New complete lines of a growing file since the last call. The file stays open once found, so the
 * last lines are still read after a failed supervisor has removed its directory.
 */
function logTail(file: string): { read: () => string[]; close: () => void } {
  let fd: number | undefined;
  let offset = 0;
  let partial = '';
  const close = (): void => {
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
  };
  const read = (): string[] => {
    if (fd === undefined) {
      if (!existsSync(file)) return [];
      fd = openSync(file, 'r');
    }
    const size = fstatSync(fd).size;
    if (size <= offset) return [];
    const buf = Buffer.alloc(size - offset);
    readSync(fd, buf, 0, buf.length, offset);
    offset = size;
    const lines = (partial + buf.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    // Lines are `<ISO time> <text>`: the time is for the log file, not for the person watching.
    return lines.map((l) => l.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z /, ''));
  };
  return { read, close };
}

export interface ClusterStatus {
  name: string;
  encapsulation: string;
  underlay: string;
  nodes: {
    name: string;
    address: string;
    pid: number | null;
    ready: boolean;
    restarts: number;
    lastExit: string | null;
    bgp: { established: number; peers: number } | null;
    /** Whether the node is a BGP route reflector (has a routeReflectorClusterID); null when the datastore does not answer. */
    routeReflector: boolean | null;
    /** The node's AS number (its own, else the cluster's default); null when the datastore does not answer. */
    asNumber: string | null;
    /** IPAM blocks affine to the node. */
    blocks: string[];
    cniConfDir: string;
  }[];
  /** The BIRD top-of-rack router: its sessions with the nodes and the prefixes it learned. */
  tor: {
    address: string;
    asNumber: number;
    pid: number | null;
    sessions: { established: number; peers: number };
    routes: string[];
  } | null;
  /** Dedicated route reflectors (calico-reflector); empty when the reflectors are nodes. */
  reflectors: {
    name: string;
    address: string;
    pid: number | null;
    ready: boolean;
    restarts: number;
    lastExit: string | null;
    bgp: { established: number; peers: number } | null;
  }[];
  etcd: {
    endpoint: string;
    localEndpoint: string;
    pid: number;
    healthy: boolean;
    restarts: number;
    lastExit: string | null;
  };
  cniBinDir: string;
  pods: number;
}

/** The record plus what is true right now: readiness, etcd's health, BGP sessions. */
async function liveStatus(record: ClusterRecord): Promise<ClusterStatus> {
  const ready = async (url: string): Promise<boolean> => {
    try {
      return (await fetch(url, { signal: AbortSignal.timeout(2000) })).status === 200;
    } catch {
      return false;
    }
  };
  const bgp = record.encapsulation !== 'vxlan';
  const ipam = await datastoreView(record);
  const nodes = await Promise.all(
    record.nodes.map(async (n) => {
      const peers = bgp ? await queryAgent(n.bgpSocket).catch(() => undefined) : undefined;
      return {
        name: n.name,
        address: n.address,
        pid: n.pid ?? null,
        ready: await ready(`${n.healthUrl}/readiness`),
        restarts: n.restarts,
        lastExit: n.lastExit ?? null,
        bgp: bgp
          ? {
              established: peers?.peers.filter((p) => p.state === 'up').length ?? 0,
              peers: peers?.peers.length ?? 0,
            }
          : null,
        asNumber: ipam?.asNumbers.get(n.name) ?? null,
        routeReflector: ipam ? ipam.reflectors.has(n.name) : null,
        blocks: ipam?.blocks.get(n.name) ?? [],
        cniConfDir: n.cniConfDir,
      };
    }),
  );
  const reflectors = await Promise.all(
    (record.reflectors ?? []).map(async (r) => {
      const st = await reflectorStatus(r.controlSocket);
      return {
        name: r.name,
        address: r.address,
        pid: r.pid ?? null,
        ready: st?.ready ?? false,
        restarts: r.restarts,
        lastExit: r.lastExit ?? null,
        bgp: st
          ? {
              established: st.peers.filter((p) => p.state === 'Established').length,
              peers: st.peers.length,
            }
          : null,
      };
    }),
  );
  const tor = record.tor ? await torStatus(record.tor) : null;
  return {
    name: record.name,
    encapsulation: record.encapsulation,
    underlay: record.underlay,
    nodes,
    tor,
    reflectors,
    etcd: {
      endpoint: record.etcd.endpoint,
      localEndpoint: record.etcd.localEndpoint,
      pid: record.etcd.pid,
      healthy: await ready(`${record.etcd.localEndpoint}/health`),
      restarts: record.etcd.restarts,
      lastExit: record.etcd.lastExit ?? null,
    },
    cniBinDir: record.cniBinDir,
    pods: record.pods.length,
  };
}

/** The ToR's sessions and learned prefixes, from birdc (empty when BIRD does not answer). */
async function torStatus(tor: NonNullable<ClusterRecord['tor']>): Promise<NonNullable<ClusterStatus['tor']>> {
  const birdc = (...args: string[]): Promise<string> =>
    new Promise((resolve) =>
      execFile('birdc', ['-s', tor.controlSocket, ...args], { timeout: 3000 }, (_e, out) =>
        resolve(out ?? ''),
      ),
    );
  const [protocols, routes] = await Promise.all([birdc('show', 'protocols'), birdc('show', 'route')]);
  const sessions = parseBirdProtocols(protocols);
  return {
    address: tor.address,
    asNumber: tor.asNumber,
    pid: tor.pid ?? null,
    sessions: {
      established: sessions.filter((p) => p.info.startsWith('Established')).length,
      peers: sessions.length,
    },
    routes: [...new Set([...routes.matchAll(/^([0-9a-f.:]+\/\d+)\s/gm)].map((m) => m[1]!))].sort(),
  };
}

/** A dedicated reflector's status socket answer, or undefined when it does not answer within 2 s. */
async function reflectorStatus(socket: string): Promise<ReflectorStatus | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      callControl<ReflectorControlMethods, 'status'>(socket, 'status', {}, { server: 'calico-reflector' }),
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), 2000);
      }),
    ]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** Each node's AS number and affine IPAM blocks, read from the cluster's etcd (undefined if it does not answer in time). */
async function datastoreView(
  record: ClusterRecord,
): Promise<
  { asNumbers: Map<string, string>; blocks: Map<string, string[]>; reflectors: Set<string> } | undefined
> {
  const ds = new EtcdDatastore({ endpoints: [record.etcd.localEndpoint] });
  let timer: NodeJS.Timeout | undefined;
  try {
    const read = async () => {
      const [nodes, blocks, configs] = await Promise.all([
        ds.list('Node'),
        ds.list('IPAMBlock'),
        ds.list('BGPConfiguration'),
      ]);
      // Calico's default AS when neither the node nor BGPConfiguration default names one.
      const clusterAs = configs.items.find((c) => c.metadata.name === 'default')?.spec.asNumber ?? 64512;
      const asNumbers = new Map(
        nodes.items.map((n) => [n.metadata.name, String(n.spec.bgp?.asNumber ?? clusterAs)]),
      );
      const byNode = new Map<string, string[]>();
      for (const b of blocks.items) {
        const node = b.spec.affinity?.startsWith('host:') ? b.spec.affinity.slice(5) : undefined;
        if (node) byNode.set(node, [...(byNode.get(node) ?? []), b.spec.cidr]);
      }
      const reflectors = new Set(
        nodes.items.filter((n) => n.spec.bgp?.routeReflectorClusterID).map((n) => n.metadata.name),
      );
      return { asNumbers, blocks: byNode, reflectors };
    };
    return await Promise.race([
      read(),
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), 3000);
      }),
    ]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    await ds.close().catch(() => undefined);
  }
}

async function summary(record: ClusterRecord, given?: ClusterStatus): Promise<string> {
  const s = given ?? (await liveStatus(record));
  const reflectors = [
    ...s.nodes.filter((n) => n.routeReflector).map((n) => n.name),
    ...s.reflectors.map((r) => r.name),
  ].join(', ');
  const rows = [
    ['NODE', 'ADDRESS', 'PID', 'READY', 'RESTARTS', 'AS', 'BGP SESSIONS', 'BLOCKS', 'ROLE'],
    ...s.nodes.map((n) => [
      n.name,
      n.address,
      n.pid === null ? '-' : String(n.pid),
      n.ready ? 'yes' : 'no',
      String(n.restarts),
      n.asNumber ?? '?',
      n.bgp ? `${n.bgp.established}/${n.bgp.peers} Established` : '- (vxlan)',
      n.blocks.join(',') || '-',
      n.routeReflector ? 'route reflector' : '-',
    ]),
    ...s.reflectors.map((r) => [
      r.name,
      r.address,
      r.pid === null ? '-' : String(r.pid),
      r.ready ? 'yes' : 'no',
      String(r.restarts),
      s.nodes[0]?.asNumber ?? '?',
      r.bgp ? `${r.bgp.established}/${r.bgp.peers} Established` : '?',
      '-',
      'dedicated route reflector',
    ]),
    ...(s.tor
      ? [
          [
            'top-of-rack',
            s.tor.address,
            s.tor.pid === null ? '-' : String(s.tor.pid),
            s.tor.sessions.established > 0 ? 'yes' : 'no',
            '0',
            String(s.tor.asNumber),
            `${s.tor.sessions.established}/${s.tor.sessions.peers} Established`,
            `${s.tor.routes.length} learned`,
            'BIRD ToR (eBGP)',
          ],
        ]
      : []),
  ];
  return (
    `\nCluster ${s.name} (encapsulation ${s.encapsulation}${reflectors ? `, route reflectors ${reflectors}` : ''}, underlay ${s.underlay}, ${s.pods} pods)\n` +
    tabwriterTable(rows) +
    `etcd: ${s.etcd.healthy ? 'healthy' : 'UNHEALTHY'}, pid ${s.etcd.pid}, ${s.etcd.restarts} restarts, ` +
    `${s.etcd.endpoint} in the lab, ${s.etcd.localEndpoint} from this host\n`
  );
}

function hints(record: ClusterRecord, calico: string, foreground: boolean): string {
  const node = record.nodes[0]?.name ?? `${record.name}-n1`;
  return [
    '',
    `Cluster "${record.name}" is running${foreground ? ' (Ctrl-C tears it down)' : ' in the background'} and is the current cluster: these reach it from any shell.`,
    `  ${calico} get nodes`,
    `  ${calico} node status ${node}`,
    `  ${calico} cluster namespace add demo --labels team=a`,
    `  ${calico} cluster pod add n1 demo/web --labels app=web --serve tcp:80,udp:53`,
    `  ${calico} cluster matrix`,
    `  ${calico} cluster status`,
    `  ${calico} cluster down`,
    '',
  ].join('\n');
}

/**
 * Stops a cluster's supervisor (which removes everything it made) and then removes whatever is
 * left — namespaces, still-running recorded processes (only while they are the processes started),
 * the state directory. Returns what it removed; empty when there was no such cluster.
 */
export async function stopCluster(
  name: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<string[]> {
  const dir = clusterDir(name, env as NodeJS.ProcessEnv);
  const record = readRecord(name, env as NodeJS.ProcessEnv);
  const removed: string[] = [];
  if (record && signalIfSame(record.supervisor, 'SIGTERM')) {
    removed.push(`supervisor ${record.supervisor.pid}`);
    const deadline = Date.now() + 60_000;
    while (stillRunning(record.supervisor) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    signalIfSame(record.supervisor, 'SIGKILL');
  }
  // What a supervisor that died (or was killed) could not remove.
  if (record)
    for (const p of [
      { pid: record.etcd.pid, start: record.etcd.start },
      ...record.nodes.map((n) => ({ pid: n.pid ?? -1, start: n.start })),
      ...(record.reflectors ?? []).map((r) => ({ pid: r.pid ?? -1, start: r.start })),
      ...(record.tor?.pid && record.tor.start !== undefined
        ? [{ pid: record.tor.pid, start: record.tor.start }]
        : []),
    ])
      if (signalIfSame(p, 'SIGKILL')) removed.push(`process ${p.pid}`);
  const existed = existsSync(dir);
  removed.push(...(await removeLabCluster(name, dir)));
  if (existed) removed.push(dir);
  rmSync(dir, { recursive: true, force: true });
  clearCurrentCluster(name, env as NodeJS.ProcessEnv);
  return removed;
}
