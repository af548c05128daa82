/**
 * Starts a real etcd (Debian's etcd-server) for a test: a temporary data dir, client and peer URLs
 * on free loopback ports (etcd 3.4 has no usable unix-socket URL form), stopped by pid.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { TcpRelay } from '../packages/kernel/src/index.ts';

export interface EtcdProcess {
  /** Endpoint for clients: `http://127.0.0.1:<port>` (or the in-namespace URL with `netns`). */
  endpoint: string;
  /** Endpoint for clients in this process (a relay into the namespace with `netns`). */
  localEndpoint: string;
  dataDir: string;
  pid: number;
  /** Kill (SIGKILL) without removing data; start() again brings it back with the same data. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Stop and remove the data dir. */
  stop(): Promise<void>;
}

export interface StartEtcdOptions {
  dir?: string;
  /**
   * Run etcd inside this named network namespace (e.g. a lab's underlay), listening on `host`
   * port 2379. `endpoint` is then the in-namespace URL and `localEndpoint` a loopback relay into
   * it for clients in this process.
   */
  netns?: string;
  host?: string;
}

export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdProcess> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'calico-ts-etcd-'));
  const dataDir = join(dir, 'data');
  const inNs = options.netns !== undefined;
  const host = options.host ?? '127.0.0.1';
  const [clientPort, peerPort] = inNs ? [2379, 2380] : [await freePort(), await freePort()];
  const clientUrl = `http://${host}:${clientPort}`;
  const peerUrl = `http://${host}:${peerPort}`;
  let relay: TcpRelay | undefined;
  let localPort = clientPort;
  if (inNs) {
    // Loaded only here: most users of this helper have no business with the kernel package.
    const { NetNamespace, relayTcp } = await import('../packages/kernel/src/index.ts');
    relay = await relayTcp({
      listen: { host: '127.0.0.1', port: 0 },
      target: { host, port: clientPort, namespace: NetNamespace.open(options.netns!) },
    });
    localPort = relay.port;
  }
  let child: ChildProcess | undefined;
  let output = '';

  const start = async (): Promise<void> => {
    output = '';
    const argv = [
      '--name',
      'test',
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
      `test=${peerUrl}`,
      '--log-level',
      'error',
    ];
    child = inNs
      ? spawn('ip', ['netns', 'exec', options.netns!, 'etcd', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('etcd', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d) => (output += d));
    child.stderr?.on('data', (d) => (output += d));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`etcd exited with ${child.exitCode}: ${output}`);
      if (await healthy(localPort)) return;
      await delay(50);
    }
    throw new Error(`etcd did not become healthy within 20 s: ${output}`);
  };

  const kill = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };

  await start();
  return {
    endpoint: clientUrl,
    localEndpoint: `http://127.0.0.1:${localPort}`,
    dataDir,
    get pid() {
      return child?.pid ?? -1;
    },
    kill,
    start,
    stop: async () => {
      await kill();
      await relay?.close();
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A port the kernel just handed out on loopback; free again once we close it. */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function healthy(port: number): Promise<boolean> {
  const http = await import('node:http');
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/health', timeout: 1000 }, (res) => {
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
