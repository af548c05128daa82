// BGP fan-in, bgperf2 style: 10 BIRD "tester" peers (one BIRD process, one `protocol bgp` per
// tester on its own loopback address, router id and AS, each fed by its own disabled static
// protocol of 10,000 distinct /32s from 240.0.0.0/4 in its own table) announce 100,000 prefixes
// in all to the target; a GoBGP "monitor" peer of the target counts what the target re-advertises
// (`gobgp global rib summary`). Targets: calico-bgpd and BIRD 2 as an eBGP router (one table,
// import all / export all to every peer), one at a time, order alternating over the rounds. The
// clock starts at `birdc enable "s*"` on the testers and stops when the monitor holds all
// 100,000; the target's peak RSS is its VmHWM and its CPU time is utime+stime from
// /proc/<pid>/stat over that interval. Nothing is exported to a kernel anywhere.
// `cd bench && node --conditions=@calico-ts/source bgp-fanin.bench.ts`; BENCH_FANIN_PEERS,
// BENCH_FANIN_PREFIXES and BENCH_FANIN_ROUNDS override the sizes.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BgpdControlMethods, callControl } from '@calico-ts/bgp';
import {
  type Bird,
  freePort,
  type Gobgp,
  gobgpRibCount,
  gobgpToml,
  startBird,
  startGobgp,
  staticRoutes,
  tempDir,
  waitFor,
} from '../packages/bgp/test/lab.ts';

const PEERS = Number(process.env['BENCH_FANIN_PEERS'] ?? 10);
const PREFIXES = Number(process.env['BENCH_FANIN_PREFIXES'] ?? 10_000);
const ROUNDS = Number(process.env['BENCH_FANIN_ROUNDS'] ?? 3);
const TOTAL = PEERS * PREFIXES;
const TARGET = '127.0.13.1';
const MONITOR = '127.0.13.100';
const TARGET_AS = 64512;
const MONITOR_AS = 65200;
const testerAddr = (i: number) => `127.0.13.${11 + i}`;
const testerAs = (i: number) => 65001 + i;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const bgpd = new URL('./bgpd.ts', import.meta.resolve('@calico-ts/bgp-agent')).pathname;
/** Extra node flags for calico-bgpd only (e.g. `--max-semi-space-size=1`, `--cpu-prof`). */
const BGPD_NODE_ARGS = (process.env['BENCH_BGPD_NODE_ARGS'] ?? '').split(' ').filter(Boolean);

const tmp = tempDir('fanin');
/** Every pid we started, to check at the end that none is left. */
const started: number[] = [];
/** Stoppers for whatever is running now, so a signal can still clean up. */
const running = new Set<() => Promise<void>>();

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)": state is field 3, utime 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Target {
  name: string;
  pid: number;
  stop(): Promise<void>;
}

function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  return exited;
}

async function startOurs(port: number, monitorPort: number, testerPorts: number[]): Promise<Target> {
  const conf = join(tmp.dir, 'bgpd.yaml');
  const control = join(tmp.dir, 'bgpd.sock');
  const peers: string[] = [];
  for (let i = 0; i < PEERS; i++)
    peers.push(
      `  - {address: ${testerAddr(i)}, asNumber: ${testerAs(i)}, port: ${testerPorts[i]}, localAddress: ${TARGET}, ` +
        `connectRetryTime: 1, families: [ipv4]}`,
    );
  peers.push(
    `  - {address: ${MONITOR}, asNumber: ${MONITOR_AS}, port: ${monitorPort}, localAddress: ${TARGET}, ` +
      `connectRetryTime: 1, families: [ipv4], nextHopV4: 192.0.2.1}`,
  );
  writeFileSync(
    conf,
    `routerId: 192.0.2.1\nasNumber: ${TARGET_AS}\nlisten: {address: "${TARGET}", port: ${port}}\n` +
      `peers:\n${peers.join('\n')}\nlogLevel: warn\n`,
  );
  const child = spawn(
    process.execPath,
    [...BGPD_NODE_ARGS, '--conditions=@calico-ts/source', bgpd, '--config', conf, '--control', control],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  started.push(child.pid!);
  await waitFor(
    'calico-bgpd control socket',
    async () => {
      if (child.exitCode !== null) throw new Error(`calico-bgpd exited with ${child.exitCode}`);
      return existsSync(control) && (await callControl<BgpdControlMethods, 'status'>(control, 'status'));
    },
    30_000,
    100,
  );
  // With extra node flags (a profile to write) the daemon gets SIGTERM and a moment to exit.
  const stop = async () => {
    if (BGPD_NODE_ARGS.length && child.exitCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
    }
    await killChild(child);
  };
  return { name: 'calico-bgpd', pid: child.pid!, stop };
}

async function startBirdTarget(port: number, monitorPort: number, testerPorts: number[]): Promise<Target> {
  const testers: string[] = [];
  for (let i = 0; i < PEERS; i++)
    testers.push(
      `protocol bgp t${i + 1} from tester { neighbor ${testerAddr(i)} port ${testerPorts[i]} as ${testerAs(i)}; }`,
    );
  // Multihop eBGP resolves next hops recursively: the testers' next hops (192.0.2.x) resolve
  // through a device route on lo in a separate IGP table, so master4 holds only the 100,000.
  const bird = await startBird(
    tmp.dir,
    'target',
    `router id 192.0.2.1;
ipv4 table igp4;
protocol device {}
protocol static nexthops { ipv4 { table igp4; }; route 192.0.2.0/24 via "lo"; }
template bgp tester {
  local ${TARGET} port ${port} as ${TARGET_AS};
  multihop; connect delay time 1; connect retry time 1;
  ipv4 { import all; export all; igp table igp4; };
}
${testers.join('\n')}
protocol bgp monitor {
  local ${TARGET} port ${port} as ${TARGET_AS};
  neighbor ${MONITOR} port ${monitorPort} as ${MONITOR_AS};
  multihop; connect delay time 1; connect retry time 1;
  ipv4 { import none; export all; next hop address 192.0.2.1; igp table igp4; };
}
`,
  );
  started.push(bird.pid);
  return { name: 'BIRD 2.0.12', pid: bird.pid, stop: () => bird.stop() };
}

async function startTesters(ports: number[]): Promise<Bird> {
  const parts: string[] = ['router id 192.0.2.250;', 'protocol device {}'];
  for (let i = 0; i < PEERS; i++) {
    const n = i + 1;
    // One BIRD for all testers: BIRD locks (neighbor address, port) per session, so testers
    // with the same neighbor would wait for each other (Idle) forever. Hence the testers are
    // passive, each with its own listening port and a distinct, never-dialled remote port,
    // and the target connects to each of them.
    const port = ports[i]!;
    const file = join(tmp.dir, `s${n}.conf`);
    if (!existsSync(file)) writeFileSync(file, staticRoutes(PREFIXES, (240 << 24) + i * 65536));
    parts.push(
      `ipv4 table tab${n};`,
      `protocol static s${n} {\n  disabled;\n  ipv4 { table tab${n}; };\ninclude "${file}";\n}`,
      `protocol bgp t${n} {\n  router id 192.0.2.${100 + n};\n  local ${testerAddr(i)} port ${port} as ${testerAs(i)};\n` +
        `  neighbor ${TARGET} port ${20000 + n} as ${TARGET_AS};\n  passive on; multihop;\n` +
        `  ipv4 { table tab${n}; import none; export all; next hop address 192.0.2.${100 + n}; };\n}`,
    );
  }
  const bird = await startBird(tmp.dir, 'testers', `${parts.join('\n')}\n`);
  started.push(bird.pid);
  return bird;
}

async function startMonitor(port: number): Promise<Gobgp> {
  const g = await startGobgp(
    tmp.dir,
    'monitor',
    gobgpToml({
      as: MONITOR_AS,
      routerId: '192.0.2.200',
      port,
      localAddress: MONITOR,
      neighbor: TARGET,
      peerAs: TARGET_AS,
      families: ['ipv4'],
    }),
  );
  started.push(g.pid);
  return g;
}

interface Result {
  name: string;
  seconds: number;
  firstSeconds: number;
  rss: number;
  cpu: number;
  idleRss: number;
  /** CPU seconds of the tester BIRD and of the GoBGP monitor over the same interval. */
  testersCpu: number;
  monitorCpu: number;
}

async function measure(
  start: (port: number, monitorPort: number, testerPorts: number[]) => Promise<Target>,
): Promise<Result> {
  const [port, monitorPort] = [await freePort(), await freePort()];
  const testerPorts: number[] = [];
  for (let i = 0; i < PEERS; i++) testerPorts.push(await freePort());
  const stoppers: (() => Promise<void>)[] = [];
  const track = (stop: () => Promise<void>) => {
    stoppers.unshift(stop);
    running.add(stop);
  };
  try {
    const monitor = await startMonitor(monitorPort);
    track(() => monitor.stop());
    const testers = await startTesters(testerPorts);
    track(() => testers.stop());
    const target = await start(port, monitorPort, testerPorts);
    track(() => target.stop());
    let seen = '';
    await waitFor(
      `${target.name}: ${PEERS} tester sessions and the monitor session`,
      async () => {
        const protos = await testers.birdc('show', 'protocols');
        const neighbor = await monitor.gobgp('neighbor');
        seen = `${protos}\n${neighbor}`;
        const up = protos.split('\n').filter((l) => /^t\d+\s.*Established/.test(l)).length;
        return up === PEERS && /Establ/.test(neighbor);
      },
      120_000,
      200,
    ).catch((e: unknown) => {
      throw new Error(`${String(e)}\ntesters and monitor:\n${seen}`);
    });
    const idleRss = peakRssMb(target.pid);
    const cpu0 = cpuSeconds(target.pid);
    const [testers0, monitor0] = [cpuSeconds(testers.pid), cpuSeconds(monitor.pid)];
    const t0 = performance.now();
    const out = await testers.birdc('enable', '"s*"');
    if ((out.match(/enabled/g) ?? []).length < PEERS) throw new Error(`birdc enable: ${out}`);
    let first = Number.NaN;
    let count = 0;
    await waitFor(
      `${target.name}: monitor to hold ${TOTAL} prefixes`,
      async () => {
        count = await gobgpRibCount(monitor);
        if (count > 0 && Number.isNaN(first)) first = performance.now();
        return count >= TOTAL;
      },
      600_000,
      100,
    );
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(target.pid) - cpu0;
    const testersCpu = cpuSeconds(testers.pid) - testers0;
    const monitorCpu = cpuSeconds(monitor.pid) - monitor0;
    if (count !== TOTAL) process.stderr.write(`note: monitor holds ${count}, expected ${TOTAL}\n`);
    return {
      name: target.name,
      seconds,
      firstSeconds: (first - t0) / 1000,
      rss: peakRssMb(target.pid),
      cpu,
      idleRss,
      testersCpu,
      monitorCpu,
    };
  } finally {
    for (const stop of stoppers) {
      await stop().catch((e: unknown) => process.stderr.write(`stop failed: ${String(e)}\n`));
      running.delete(stop);
    }
  }
}

async function cleanup(): Promise<void> {
  for (const stop of [...running]) await stop().catch(() => {});
  tmp.remove();
}
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    void cleanup().finally(() => process.exit(130));
  });

const contenders = [startOurs, startBirdTarget];
const results = new Map<string, Result[]>();
const loads: string[] = [];
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
try {
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const c of order) {
      loads.push(loadavg());
      const r = await measure(c);
      process.stderr.write(
        `round ${round + 1}: ${r.name} ${r.seconds.toFixed(2)} s (first prefix ${r.firstSeconds.toFixed(2)} s), ` +
          `peak RSS ${r.rss.toFixed(0)} MB (idle ${r.idleRss.toFixed(0)} MB), CPU ${r.cpu.toFixed(2)} s ` +
          `(testers ${r.testersCpu.toFixed(2)} s, monitor ${r.monitorCpu.toFixed(2)} s), load ${loads.at(-1)}\n`,
      );
      const list = results.get(r.name) ?? [];
      list.push(r);
      results.set(r.name, list);
    }
  }
} finally {
  await cleanup();
  const left = started.filter(alive);
  if (left.length > 0) process.stderr.write(`still running: ${left.join(' ')}\n`);
  else process.stderr.write(`all ${started.length} processes we started are gone\n`);
}

const best = (name: string) => [...(results.get(name) ?? [])].sort((a, b) => a.seconds - b.seconds)[0]!;
const bird = best('BIRD 2.0.12');
process.stdout.write(
  `\nBGP fan-in: ${PEERS} BIRD testers × ${PREFIXES} /32 → target → GoBGP monitor; ` +
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; best of ${ROUNDS}; ` +
    `load at each start: ${loads.join(' | ')}\n\n`,
);
process.stdout.write(
  '| target | time to all at monitor (rounds) | first prefix | peak RSS (idle) | target CPU | testers / monitor CPU | time ÷ BIRD | RSS ÷ BIRD |\n' +
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n',
);
for (const name of results.keys()) {
  const r = best(name);
  const rounds = results
    .get(name)!
    .map((x) => x.seconds.toFixed(2))
    .join(', ');
  process.stdout.write(
    `| ${name} | ${r.seconds.toFixed(2)} s (${rounds}) | ${r.firstSeconds.toFixed(2)} s | ` +
      `${r.rss.toFixed(0)} MB (${r.idleRss.toFixed(0)}) | ${r.cpu.toFixed(2)} s | ` +
      `${r.testersCpu.toFixed(2)} / ${r.monitorCpu.toFixed(2)} s | ` +
      `${(r.seconds / bird.seconds).toFixed(2)} | ${(r.rss / bird.rss).toFixed(2)} |\n`,
  );
}
