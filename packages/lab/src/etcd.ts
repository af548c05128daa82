/**
 * A managed etcd (Debian's etcd-server) for tests, benchmarks and lab clusters: a data dir (a
 * temporary one unless given), client and peer URLs on free loopback ports (etcd 3.4 has no usable
 * unix-socket URL form) or on an address inside a network namespace, stopped by pid.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { NetNamespace } from '@calico-ts/kernel';
import { LabError } from './errors.ts';
import { relayTcp, type TcpRelay } from './tcp-relay.ts';

export interface EtcdProcess {
  /** Endpoint for clients: `http://127.0.0.1:<port>` (or the in-namespace URL with `netns`). */
  endpoint: string;
  /** Endpoint for clients in this process (a relay into the namespace with `netns`). */
  localEndpoint: string;
  dataDir: string;
  /** The etcd process's pid (changes when it is started again). */
  readonly pid: number;
  /** Kill (SIGKILL) without removing data; start() again brings it back with the same data. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Stop (SIGTERM, then SIGKILL after `graceMs`), close the relay, remove a temporary data dir. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartEtcdOptions {
  /** Directory for the data (`<dir>/data`); kept on stop. Default: a temporary one, removed on stop. */
  dir?: string;
  /** Member name (default `etcd`). */
  name?: string;
  /**
   * Run etcd inside this named network namespace (e.g. a lab's underlay), listening on `host`
   * port 2379. `endpoint` is then the in-namespace URL and `localEndpoint` a loopback relay into
   * it for clients in this process.
   */
  netns?: string;
  host?: string;
  /** With `netns`: the loopback port of the relay (default 0 = any free port). */
  relayPort?: number;
  /**
   * `capture` (default): keep etcd's output to explain a failed start. `forward`: also copy etcd's
   * stderr to ours while it runs (a long-running lab, where the user should see etcd's errors),
   * but not the chatter of its own shutdown.
   */
  output?: 'capture' | 'forward';
  /** How long to wait for /health (default 20 s). */
  timeoutMs?: number;
  /** Append etcd's output to this file as well (a long-running lab's log). */
  logFile?: string;
  /**
   * Called when etcd exits after a successful start without being asked to (kill(), stop()):
   * a supervisor reports it and calls start() again.
   */
  onExit?: (exit: { code: number | null; signal: NodeJS.Signals | null }) => void;
}

export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdProcess> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'calico-ts-etcd-'));
  const dataDir = join(dir, 'data');
  const name = options.name ?? 'etcd';
  const netns = options.netns;
  const host = options.host ?? '127.0.0.1';
  const [clientPort, peerPort] = netns !== undefined ? [2379, 2380] : [await freePort(), await freePort()];
  const clientUrl = `http://${host}:${clientPort}`;
  const peerUrl = `http://${host}:${peerPort}`;
  let relay: TcpRelay | undefined;
  let relayNs: NetNamespace | undefined;
  let localPort = clientPort;
  if (netns !== undefined) {
    relayNs = NetNamespace.open(netns);
    relay = await relayTcp({
      listen: { host: '127.0.0.1', port: options.relayPort ?? 0 },
      target: { host, port: clientPort, namespace: relayNs },
    }).catch((err: unknown) => {
      relayNs?.close();
      throw err;
    });
    localPort = relay.port;
  }
  const release = async (): Promise<void> => {
    await relay?.close();
    relayNs?.close();
    if (!options.dir) rmSync(dir, { recursive: true, force: true });
  };
  const timeoutMs = options.timeoutMs ?? 20_000;
  let child: ChildProcess | undefined;
  let output = '';
  let stopping = false;
  let logStream: WriteStream | undefined;
  if (options.logFile) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    logStream = createWriteStream(options.logFile, { flags: 'a' });
  }

  const start = async (): Promise<void> => {
    output = '';
    stopping = false;
    const argv = [
      '--name',
      name,
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      clientUrl,
      '--advertise-client-urls',
      clientUrl,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      `${name}=${peerUrl}`,
      // etcd 3.4's default logger ignores --log-level for raft chatter; zap honours it.
      '--logger',
      'zap',
      '--log-level',
      'error',
    ];
    // `ip netns exec` execs etcd, so the child's pid is etcd's.
    child =
      netns !== undefined
        ? spawn('ip', ['netns', 'exec', netns, 'etcd', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('etcd', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    // The tail is enough to explain a failed start; a long-running lab must not grow without bound.
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-65_536);
      logStream?.write(d);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', (d: Buffer) => {
      keep(d);
      if (options.output === 'forward' && !stopping) process.stderr.write(d);
    });
    const deadline = Date.now() + timeoutMs;
    const started = child;
    while (Date.now() < deadline) {
      if (started.exitCode !== null || started.signalCode !== null)
        throw new LabError(
          'NotReady',
          `etcd exited with ${started.exitCode ?? started.signalCode}: ${output}`,
        );
      if (await healthy(localPort)) {
        started.once('exit', (code, signal) => {
          if (!stopping && child === started) options.onExit?.({ code, signal });
        });
        return;
      }
      await delay(50);
    }
    throw new LabError('NotReady', `etcd did not become healthy within ${timeoutMs} ms: ${output}`);
  };

  const signal = async (sig: NodeJS.Signals, graceMs?: number): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    stopping = true;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(sig);
    const timer = graceMs === undefined ? undefined : setTimeout(() => c.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };

  try {
    await start();
  } catch (err) {
    await signal('SIGKILL');
    await release();
    logStream?.end();
    throw err;
  }
  return {
    endpoint: clientUrl,
    localEndpoint: `http://127.0.0.1:${localPort}`,
    dataDir,
    get pid() {
      return child?.pid ?? -1;
    },
    kill: () => signal('SIGKILL'),
    start,
    stop: async (graceMs = 5_000) => {
      await signal('SIGTERM', graceMs);
      await release();
      logStream?.end();
    },
  };
}

/** A port the kernel just handed out on loopback; free again once we close it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('true')));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}
