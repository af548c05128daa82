// BGP receive: one eBGP session on loopback delivering 100,000 /32 prefixes from BIRD (static
// routes, enabled after the session is up) into calico-bgpd, and the same into gobgpd and FRR's
// bgpd (when /usr/lib/frr/bgpd exists and runs; otherwise the reason is printed), one receiver at a
// time, the order rotating over rounds. Measures
// time from `birdc enable` to the receiver holding every prefix, and the receiver's peak RSS
// (VmHWM). Prints a Markdown table for docs/benchmarks.md. `pnpm bench bgp`; BENCH_BGP_ROUTES
// and BENCH_BGP_ROUNDS override the sizes.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { type BgpdControlMethods, callControl } from '@calico-ts/bgp';
import { FRR_BGPD, freePort, gobgpToml, vtyCommand } from '../packages/bgp/test/lab.ts';

const run = promisify(execFile);
const N = Number(process.env['BENCH_BGP_ROUTES'] ?? 100_000);
const ROUNDS = Number(process.env['BENCH_BGP_ROUNDS'] ?? 2);
const BIRD_ADDR = '127.0.9.21';
const RECEIVER = '127.0.9.22';
const dir = mkdtempSync(join(tmpdir(), 'calico-ts-bgp-bench-'));
const bgpd = new URL('./bgpd.ts', import.meta.resolve('@calico-ts/bgp-agent')).pathname;
/** Extra node flags for calico-bgpd only (e.g. `--max-semi-space-size=1`, `--cpu-prof`). */
const BGPD_NODE_ARGS = (process.env['BENCH_BGPD_NODE_ARGS'] ?? '').split(' ').filter(Boolean);

async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(everyMs);
  }
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function staticRoutes(): string {
  const lines: string[] = [];
  for (let i = 0; i < N; i++) {
    const a = ((240 << 24) >>> 0) + i;
    lines.push(`route ${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/32 blackhole;`);
  }
  return lines.join('\n');
}

interface Receiver {
  name: string;
  pid: number;
  count(): Promise<number>;
  stop(): Promise<void>;
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  return exited;
}

/**
 * calico-bgpd as run from TypeScript source, or from the built dist/ (what a package install
 * runs), with extra node flags. BENCH_BGPD_VARIANTS adds more forms to the same run, e.g.
 * `dist;dist --max-semi-space-size=1` (each entry: `source` or `dist`, then node flags).
 */
interface BgpdForm {
  name: string;
  built: boolean;
  nodeArgs: string[];
}

function parseForm(spec: string): BgpdForm {
  const [form, ...args] = spec.trim().split(/\s+/);
  if (form !== 'source' && form !== 'dist')
    throw new Error(`BENCH_BGPD_VARIANTS: "${spec}" must start with "source" or "dist"`);
  const nodeArgs = [...BGPD_NODE_ARGS, ...args];
  const name = `calico-bgpd${form === 'dist' ? ' (dist)' : ''}${args.length ? ` ${args.join(' ')}` : ''}`;
  return { name, built: form === 'dist', nodeArgs };
}

const bgpdDist = join(dirname(dirname(bgpd)), 'dist', 'bgpd.js');

async function startOurs(
  port: number,
  birdPort: number,
  form: BgpdForm = parseForm('source'),
): Promise<Receiver> {
  const tag = form.name.replace(/[^a-z0-9]+/gi, '-');
  const conf = join(dir, `${tag}.yaml`);
  const control = join(dir, `${tag}.sock`);
  writeFileSync(
    conf,
    `routerId: 192.0.2.22\nasNumber: 64512\nlisten: {address: "${RECEIVER}", port: ${port}}\n` +
      `peers:\n  - {address: ${BIRD_ADDR}, asNumber: 65001, port: ${birdPort}, localAddress: ${RECEIVER}, connectRetryTime: 1, families: [ipv4]}\n` +
      `logLevel: warn\n`,
  );
  const child = spawn(
    process.execPath,
    form.built
      ? [...form.nodeArgs, bgpdDist, '--config', conf, '--control', control]
      : [...form.nodeArgs, '--conditions=@calico-ts/source', bgpd, '--config', conf, '--control', control],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  await until('calico-bgpd control socket', async () => existsSync(control), 20_000);
  return {
    name: form.name,
    pid: child.pid!,
    count: async () =>
      (await callControl<BgpdControlMethods, 'status'>(control, 'status')).peers[0]!.accepted,
    stop: () => kill(child),
  };
}

async function startGobgpd(port: number, birdPort: number): Promise<Receiver> {
  const conf = join(dir, 'gobgpd.toml');
  const api = await freePort();
  writeFileSync(
    conf,
    gobgpToml({
      as: 64512,
      routerId: '192.0.2.22',
      port,
      localAddress: RECEIVER,
      neighbor: BIRD_ADDR,
      peerAs: 65001,
      passive: false,
      remotePort: birdPort,
      families: ['ipv4'],
    }),
  );
  const child = spawn(
    'gobgpd',
    ['-f', conf, '--api-hosts', `127.0.0.1:${api}`, '--pprof-disable', '-l', 'warn'],
    {
      stdio: ['ignore', 'ignore', 'ignore'],
    },
  );
  const gobgp = async (...a: string[]) =>
    (await run('gobgp', ['-u', '127.0.0.1', '-p', String(api), ...a])).stdout;
  await until('gobgpd API', async () => (await gobgp('global')).includes('AS'), 20_000);
  return {
    name: 'gobgpd 3.10',
    pid: child.pid!,
    count: async () =>
      Number(/Destination:\s*(\d+)/.exec(await gobgp('global', 'rib', 'summary', '-a', 'ipv4'))?.[1] ?? 0),
    stop: () => kill(child),
  };
}

// Why FRR cannot be measured here, or undefined when it can.
function frrMissing(): string | undefined {
  if (!existsSync(FRR_BGPD)) return `${FRR_BGPD} not found (Debian package frr not installed)`;
  try {
    execFileSync(FRR_BGPD, ['-v'], { stdio: 'ignore' });
  } catch (e) {
    return `${FRR_BGPD} -v failed: ${(e as Error).message}`;
  }
  return undefined;
}

function frrVersion(): string {
  const v = /version\s+(\S+)/.exec(execFileSync(FRR_BGPD, ['-v'], { encoding: 'utf8' }))?.[1];
  return `FRR ${v ?? '?'} bgpd`;
}

// FRR's bgpd on its own: no zebra (-Z), no kernel (-n), no user switch (-S), listening only on
// RECEIVER:port, its vty socket and pid file in a fresh temp dir; queried over that vty socket.
// Never Debian's frr service. Next hops cannot be resolved without zebra; pfxRcd counts what was
// received and accepted into the peer's table, as the other receivers' counters do.
async function startFrr(port: number, birdPort: number): Promise<Receiver> {
  const frrDir = mkdtempSync(join(dir, 'frr-'));
  const conf = join(frrDir, 'bgpd.conf');
  writeFileSync(
    conf,
    `frr defaults traditional\nhostname bench\nlog stdout warnings\n` +
      `router bgp 64512\n bgp router-id 192.0.2.22\n no bgp ebgp-requires-policy\n no bgp network import-check\n` +
      ` neighbor ${BIRD_ADDR} remote-as 65001\n neighbor ${BIRD_ADDR} port ${birdPort}\n` +
      ` neighbor ${BIRD_ADDR} update-source ${RECEIVER}\n neighbor ${BIRD_ADDR} ebgp-multihop 255\n` +
      ` neighbor ${BIRD_ADDR} timers connect 1\n address-family ipv4 unicast\n  neighbor ${BIRD_ADDR} activate\n` +
      ` exit-address-family\n`,
  );
  const child = spawn(
    FRR_BGPD,
    [
      '-Z',
      '-S',
      '-n',
      '-p',
      String(port),
      '-l',
      RECEIVER,
      '-P',
      '0',
      '-f',
      conf,
      '-i',
      join(frrDir, 'bgpd.pid'),
      '--vty_socket',
      frrDir,
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  const summary = async () =>
    JSON.parse(await vtyCommand(join(frrDir, 'bgpd.vty'), 'show bgp ipv4 unicast summary json')) as {
      peers?: Record<string, { pfxRcd?: number }>;
    };
  try {
    await until('FRR bgpd vty', async () => (await summary()).peers?.[BIRD_ADDR] !== undefined, 20_000);
  } catch (e) {
    await kill(child);
    throw e;
  }
  return {
    name: frrVersion(),
    pid: child.pid!,
    count: async () => (await summary()).peers?.[BIRD_ADDR]?.pfxRcd ?? 0,
    stop: async () => {
      await kill(child);
      rmSync(frrDir, { recursive: true, force: true });
    },
  };
}

async function startBird(
  receiverPort: number,
  birdPort: number,
): Promise<{ birdc: (...a: string[]) => Promise<string>; stop(): void }> {
  const conf = join(dir, 'bird.conf');
  const ctl = join(dir, 'bird.ctl');
  const pidFile = join(dir, 'bird.pid');
  writeFileSync(
    conf,
    `router id 192.0.2.21;\nprotocol device {}\nprotocol static s100k {\n  disabled;\n  ipv4;\ninclude "${join(dir, 'static.conf')}";\n}\n` +
      `protocol bgp receiver {\n  local ${BIRD_ADDR} port ${birdPort} as 65001;\n  neighbor ${RECEIVER} port ${receiverPort} as 64512;\n` +
      `  multihop; connect delay time 1; connect retry time 1;\n  ipv4 { import none; export all; next hop address 192.0.2.21; };\n}\n`,
  );
  rmSync(pidFile, { force: true });
  execFileSync('bird', ['-c', conf, '-s', ctl, '-P', pidFile]);
  // The pid file appears after BIRD daemonizes; a 0 here would make kill() hit our own group.
  const pid = await until(
    'BIRD pid file',
    async () => {
      const p = Number(readFileSync(pidFile, 'utf8').trim());
      return Number.isInteger(p) && p > 1 ? p : undefined;
    },
    10_000,
    20,
  );
  return {
    birdc: async (...a) => (await run('birdc', ['-s', ctl, ...a])).stdout,
    stop: () => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    },
  };
}

async function measure(
  start: (port: number, birdPort: number) => Promise<Receiver>,
): Promise<{ name: string; seconds: number; rss: number }> {
  const [port, birdPort] = [await freePort(), await freePort()];
  const receiver = await start(port, birdPort);
  const bird = await startBird(port, birdPort);
  try {
    await until(
      `${receiver.name} session`,
      async () => (await bird.birdc('show', 'protocols', 'receiver')).includes('Established'),
      60_000,
    );
    const t0 = performance.now();
    await bird.birdc('enable', 's100k');
    await until(
      `${receiver.name} to hold ${N} prefixes`,
      async () => (await receiver.count()) >= N,
      300_000,
      50,
    );
    const seconds = (performance.now() - t0) / 1000;
    return { name: receiver.name, seconds, rss: peakRssMb(receiver.pid) };
  } finally {
    bird.stop();
    await receiver.stop();
  }
}

writeFileSync(join(dir, 'static.conf'), staticRoutes());
const contenders: ((p: number, b: number) => Promise<Receiver>)[] = [(p, b) => startOurs(p, b), startGobgpd];
for (const spec of (process.env['BENCH_BGPD_VARIANTS'] ?? '').split(';').filter((x) => x.trim())) {
  const form = parseForm(spec);
  if (form.built && !existsSync(bgpdDist))
    throw new Error(`${bgpdDist} is missing: build it first (pnpm nx run @calico-ts/bgp-agent:build)`);
  contenders.splice(1, 0, (p, b) => startOurs(p, b, form));
}
const noFrr = frrMissing();
if (noFrr) process.stderr.write(`FRR not measured: ${noFrr}\n`);
else contenders.push(startFrr);
const results = new Map<string, { seconds: number; rss: number }[]>();
try {
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order so every receiver takes every slot in turn.
    const k = round % contenders.length;
    const order = [...contenders.slice(k), ...contenders.slice(0, k)];
    for (const c of order) {
      const r = await measure(c);
      process.stderr.write(
        `round ${round + 1}: ${r.name} ${r.seconds.toFixed(2)} s, peak RSS ${r.rss.toFixed(0)} MB\n`,
      );
      const list = results.get(r.name) ?? [];
      list.push(r);
      results.set(r.name, list);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const best = (name: string) => [...(results.get(name) ?? [])].sort((a, b) => a.seconds - b.seconds)[0]!;
const ours = best('calico-bgpd');
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
process.stdout.write(
  `\nBGP receive, ${N} /32 from BIRD over one eBGP session (best of ${ROUNDS}; ${new Date().toISOString()}; load ${load})\n\n`,
);
process.stdout.write(
  '| receiver | time to all received | peak RSS | time ÷ ours | RSS ÷ ours |\n| --- | ---: | ---: | ---: | ---: |\n',
);
for (const name of results.keys()) {
  const r = best(name);
  const rounds = results
    .get(name)!
    .map((x) => x.seconds.toFixed(2))
    .join(', ');
  const rssRounds = results
    .get(name)!
    .map((x) => x.rss.toFixed(0))
    .join(', ');
  process.stdout.write(
    `| ${name} | ${r.seconds.toFixed(2)} s (rounds: ${rounds}) | ${r.rss.toFixed(0)} MB (rounds: ${rssRounds}) | ` +
      `${(r.seconds / ours.seconds).toFixed(2)} | ${(r.rss / ours.rss).toFixed(2)} |\n`,
  );
}
process.stdout.write('\n');
for (const name of results.keys()) {
  if (name === 'calico-bgpd') continue;
  const r = best(name);
  process.stdout.write(
    `ours ÷ ${name}: time ${(ours.seconds / r.seconds).toFixed(2)}, peak RSS ${(ours.rss / r.rss).toFixed(2)}\n`,
  );
}
if (noFrr) process.stdout.write(`FRR not measured: ${noFrr}\n`);
