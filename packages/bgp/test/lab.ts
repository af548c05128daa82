/**
 * Real BGP peers for interop tests: BIRD 2, gobgpd and FRR's bgpd processes on loopback addresses
 * and free ports, with configs and control sockets in a per-run temp dir, stopped by pid.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { type BgpMessage, decodeMessage, MessageFramer } from '../src/index.ts';
import { freePort } from './free-port.ts';

export { freePort };

const run = promisify(execFile);

export function tempDir(tag: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `calico-ts-bgp-${tag}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Poll `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
    await delay(everyMs);
  }
}

export interface Bird {
  ctl: string;
  pid: number;
  birdc(...args: string[]): Promise<string>;
  /** Routes in a table ("master4"/"master6"), from `show route count`. */
  routeCount(table?: string): Promise<number>;
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
  /** Start again with the same config (after stop()). */
  restart(extraArgs?: string[]): Promise<void>;
}

export async function startBird(dir: string, name: string, config: string): Promise<Bird> {
  const conf = join(dir, `${name}.conf`);
  const ctl = join(dir, `${name}.ctl`);
  const pidFile = join(dir, `${name}.pid`);
  writeFileSync(conf, config);
  let pid = 0;
  const alive = (p: number) => {
    try {
      process.kill(p, 0);
      return true;
    } catch {
      return false;
    }
  };
  const launch = async (extra: string[] = []) => {
    // BIRD writes its pid file after daemonizing, so the file may still be empty or stale right
    // after `bird` returns. Never act on such a pid: process.kill(0, …) hits our own group.
    rmSync(pidFile, { force: true });
    await run('bird', ['-c', conf, '-s', ctl, '-P', pidFile, ...extra]);
    pid = await waitFor(
      `BIRD ${name} pid file`,
      () => {
        const p = Number(readFileSync(pidFile, 'utf8').trim());
        return Number.isInteger(p) && p > 1 && alive(p) ? p : undefined;
      },
      10_000,
      20,
    );
    await waitFor(`BIRD ${name} control socket`, async () =>
      (await run('birdc', ['-s', ctl, 'show', 'status'])).stdout.includes('Daemon is up'),
    );
  };
  await launch();
  const signal = (sig: NodeJS.Signals) => {
    if (pid > 1) process.kill(pid, sig);
  };
  const bird: Bird = {
    ctl,
    get pid() {
      return pid;
    },
    birdc: async (...args) => (await run('birdc', ['-s', ctl, ...args])).stdout,
    routeCount: async (table = 'master4') => {
      const out = (await run('birdc', ['-s', ctl, 'show', 'route', 'count', 'table', table])).stdout;
      const m = /(\d+) of \d+ routes/.exec(out);
      return m ? Number(m[1]) : 0;
    },
    signal,
    stop: async () => {
      if (pid <= 1 || !alive(pid)) return;
      const p = pid;
      signal('SIGCONT');
      signal('SIGKILL');
      await waitFor(`BIRD ${name} exit`, () => !alive(p), 5000, 20);
    },
    restart: (extra) => launch(extra),
  };
  return bird;
}

export interface Gobgp {
  pid: number;
  apiPort: number;
  gobgp(...args: string[]): Promise<string>;
  json<T = unknown>(...args: string[]): Promise<T>;
  /** gobgpd's log so far. */
  log(): string;
  stop(): Promise<void>;
}

/** One gobgpd speaker with one neighbour, as the interop tests and benchmarks configure it. */
export interface GobgpConfig {
  as: number;
  routerId: string;
  /** Port gobgpd listens on. */
  port: number;
  /** Address gobgpd listens on and speaks from. */
  localAddress: string;
  neighbor: string;
  peerAs: number;
  /** Wait for the neighbour to connect (default true). */
  passive?: boolean;
  /** The neighbour's port when gobgpd dials it. */
  remotePort?: number;
  families: readonly ('ipv4' | 'ipv6')[];
  /** Graceful restart as a helper only (RFC 4724), with this restart time in seconds. */
  gracefulRestartHelper?: number;
}

/** gobgpd's TOML for a GobgpConfig. */
export function gobgpToml(c: GobgpConfig): string {
  const lines = [
    '[global.config]',
    `  as = ${c.as}`,
    `  router-id = "${c.routerId}"`,
    `  port = ${c.port}`,
    `  local-address-list = ["${c.localAddress}"]`,
    '[[neighbors]]',
    '  [neighbors.config]',
    `    neighbor-address = "${c.neighbor}"`,
    `    peer-as = ${c.peerAs}`,
    '  [neighbors.transport.config]',
    ...((c.passive ?? true) ? ['    passive-mode = true'] : []),
    `    local-address = "${c.localAddress}"`,
    ...(c.remotePort !== undefined ? [`    remote-port = ${c.remotePort}`] : []),
  ];
  if (c.gracefulRestartHelper !== undefined) {
    lines.push(
      '  [neighbors.graceful-restart.config]',
      '    enabled = true',
      `    restart-time = ${c.gracefulRestartHelper}`,
      '    helper-only = true',
    );
  }
  for (const family of c.families) {
    lines.push(
      '  [[neighbors.afi-safis]]',
      '    [neighbors.afi-safis.config]',
      `      afi-safi-name = "${family}-unicast"`,
    );
    if (c.gracefulRestartHelper !== undefined) {
      lines.push('    [neighbors.afi-safis.mp-graceful-restart.config]', '      enabled = true');
    }
  }
  return `${lines.join('\n')}\n`;
}

export async function startGobgp(dir: string, name: string, toml: string): Promise<Gobgp> {
  const conf = join(dir, `${name}.toml`);
  writeFileSync(conf, toml);
  const apiPort = await freePort();
  const child: ChildProcess = spawn(
    'gobgpd',
    ['-f', conf, '--api-hosts', `127.0.0.1:${apiPort}`, '--pprof-disable', '-p', '-l', 'info'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const gobgp = async (...args: string[]) =>
    (await run('gobgp', ['-u', '127.0.0.1', '-p', String(apiPort), ...args])).stdout;
  await waitFor('gobgpd API', async () => {
    if (child.exitCode !== null) throw new Error(`gobgpd exited: ${output}`);
    return (await gobgp('global')).includes('AS');
  });
  return {
    pid: child.pid!,
    apiPort,
    gobgp,
    json: async <T>(...args: string[]) => JSON.parse(await gobgp(...args, '-j')) as T,
    log: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Debian's FRR bgpd binary. */
export const FRR_BGPD = '/usr/lib/frr/bgpd';

/**
 * One command over FRR bgpd's vty socket in vtysh's protocol (the command and a NUL; the answer
 * ends with three NULs and a status byte): `vtysh --vty_socket <dir> -d bgpd -c <cmd>` without
 * exec'ing vtysh.
 */
export function vtyCommand(socket: string, cmd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.createConnection(socket);
    s.setTimeout(10_000, () => s.destroy(new Error(`vty ${cmd}: timeout`)));
    s.once('error', reject);
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      const b = Buffer.concat(chunks);
      const n = b.length;
      if (n >= 4 && b[n - 4] === 0 && b[n - 3] === 0 && b[n - 2] === 0) {
        s.end();
        if (b[n - 1] === 0) resolve(b.subarray(0, n - 4).toString('utf8'));
        else reject(new Error(`vty ${cmd}: status ${b[n - 1]}: ${b.subarray(0, n - 4).toString('utf8')}`));
      }
    });
    s.write(`${cmd}\0`);
  });
}

export interface Frr {
  pid: number;
  /** One vty command's output. */
  vty(cmd: string): Promise<string>;
  /** One vty command ending in `json`, parsed. */
  json<T = unknown>(cmd: string): Promise<T>;
  /** bgpd's stdout and stderr so far. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * FRR's bgpd alone, never Debian's frr service: no zebra (-Z), no kernel (-n), no user switch
 * (-S), no TCP vty (-P 0), listening on `address`:`port` only, with its config, vty socket and pid
 * file in `dir`/`name`. Without zebra, next hops cannot be resolved: received paths are kept but
 * not valid for best-path selection.
 */
export async function startFrr(
  dir: string,
  name: string,
  listen: { address: string; port: number },
  config: string,
): Promise<Frr> {
  const frrDir = join(dir, name);
  mkdirSync(frrDir, { recursive: true });
  const conf = join(frrDir, 'bgpd.conf');
  writeFileSync(conf, config);
  const child = spawn(
    FRR_BGPD,
    [
      '-Z',
      '-S',
      '-n',
      '-p',
      String(listen.port),
      '-l',
      listen.address,
      '-P',
      '0',
      '-f',
      conf,
      '-i',
      join(frrDir, 'bgpd.pid'),
      '--vty_socket',
      frrDir,
      '--log',
      'stdout',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const vty = (cmd: string) => vtyCommand(join(frrDir, 'bgpd.vty'), cmd);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  try {
    await waitFor(`FRR ${name} vty`, async () => {
      if (child.exitCode !== null) throw new Error(`FRR bgpd exited: ${output}`);
      return (await vty('show bgp summary json')).includes('{');
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    pid: child.pid!,
    vty,
    json: async <T>(cmd: string) => JSON.parse(await vty(cmd)) as T,
    log: () => output,
    stop,
  };
}

/** `gobgp global rib summary` → number of destinations. */
export async function gobgpRibCount(g: Gobgp, family: 'ipv4' | 'ipv6' = 'ipv4'): Promise<number> {
  const out = await g.gobgp('global', 'rib', 'summary', '-a', family);
  const m = /Destination:\s*(\d+)/.exec(out);
  return m ? Number(m[1]) : 0;
}

/** BIRD static routes: `n` /32 blackholes from 240.0.0.0 up. */
export function staticRoutes(n: number, base = 240 << 24): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = (base + i) >>> 0;
    lines.push(`route ${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/32 blackhole;`);
  }
  return lines.join('\n');
}

/**
 * A hand-driven BGP endpoint for the one thing real speakers never do: send malformed messages.
 * It records every message it receives.
 */
export class RawPeer {
  readonly socket: net.Socket;
  received: BgpMessage[] = [];
  closed = false;
  #framer = new MessageFramer();

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d) => {
      for (const f of this.#framer.push(d))
        this.received.push(decodeMessage(f.slice(), { fourOctetAs: true }));
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  static connect(host: string, port: number, localAddress: string): RawPeer {
    return new RawPeer(net.connect({ host, port, localAddress }));
  }

  send(b: Uint8Array): void {
    this.socket.write(b);
  }
}
