/**
 * Starts a real etcd (Debian's etcd-server) for a test: a temporary data dir, client and peer URLs
 * on free loopback ports (etcd 3.4 has no usable unix-socket URL form), stopped by pid.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export interface EtcdProcess {
  /** Endpoint for clients: `http://127.0.0.1:<port>`. */
  endpoint: string;
  dataDir: string;
  pid: number;
  /** Kill (SIGKILL) without removing data; start() again brings it back with the same data. */
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Stop and remove the data dir. */
  stop(): Promise<void>;
}

export async function startEtcd(options: { dir?: string } = {}): Promise<EtcdProcess> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'calico-ts-etcd-'));
  const dataDir = join(dir, 'data');
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  let child: ChildProcess | undefined;
  let output = '';

  const start = async (): Promise<void> => {
    output = '';
    child = spawn(
      'etcd',
      [
        '--name', 'test',
        '--data-dir', dataDir,
        '--listen-client-urls', clientUrl,
        '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', peerUrl,
        '--initial-advertise-peer-urls', peerUrl,
        '--initial-cluster', `test=${peerUrl}`,
        '--log-level', 'error',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (d) => (output += d));
    child.stderr?.on('data', (d) => (output += d));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`etcd exited with ${child.exitCode}: ${output}`);
      if (await healthy(clientPort)) return;
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
    dataDir,
    get pid() {
      return child?.pid ?? -1;
    },
    kill,
    start,
    stop: async () => {
      await kill();
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
