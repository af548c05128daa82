// BGP at scale: simulated nodes in this one process, each a real BgpSpeaker on its own loopback
// address (127.1.x.y, one shared free port), each originating one /26 block. Topologies:
// - route reflectors: every node a client of two reflectors with one cluster ID (the reflectors
//   peer with each other as non-clients). The reflectors are separate processes, so their CPU and
//   RSS are their own: calico-reflector (run from TypeScript source) or, side by side in the same
//   run, two BIRD 2 processes configured the same way (`rr client`, `rr cluster id`).
// - full mesh: every pair of nodes peers directly, in this process.
// Nodes listen passively; the reflectors (and the higher-numbered node of a mesh pair) dial.
// Measured: Established sessions, time from starting the nodes until every session is Established
// and every node holds every block (converged), time for one new block to reach every other node, and the reflectors' CPU
// (utime+stime over that interval, from /proc) and peak RSS (VmHWM). Prints Markdown for
// docs/benchmarks.md. `pnpm bench bgp-scale`; BENCH_SCALE_NODES (default "200,500"),
// BENCH_SCALE_MESH (default "50,100"; the file-descriptor limit stops a one-process mesh near 140
// nodes) and BENCH_SCALE_ROUNDS (default 1) override the sizes.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { BgpSpeaker } from '@calico-ts/bgp';
import { freePort, tempDir } from '../packages/bgp/test/lab.ts';

const run = promisify(execFile);
const AS = 64512;
const CLUSTER = '10.255.0.1';
const RR_ADDR = ['127.2.0.1', '127.2.0.2'];
const reflectorMain = new URL('../packages/reflector/src/main.ts', import.meta.url).pathname;
/** Extra node flags for the calico-reflector processes (e.g. `--max-semi-space-size=1`). */
const REFLECTOR_NODE_ARGS = (process.env['BENCH_REFLECTOR_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
const sizes = (v: string | undefined, d: string) =>
  (v ?? d)
    .split(',')
    .filter(Boolean)
    .map((s) => Number(s));
const RR_SIZES = sizes(process.env['BENCH_SCALE_NODES'], '200,500');
const MESH_SIZES = sizes(process.env['BENCH_SCALE_MESH'], '50,100');
const ROUNDS = Number(process.env['BENCH_SCALE_ROUNDS'] ?? 1);
const tmp = tempDir('hE-scale');

// Reflector processes to kill if this bench is interrupted.
const live = new Set<Reflectors>();
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    void Promise.all([...live].map((r) => r.stop())).finally(() => {
      tmp.remove();
      process.exit(1);
    });
  });

const nodeAddr = (i: number) => `127.1.${Math.floor(i / 200) + 1}.${(i % 200) + 1}`;
const nodeId = (i: number) => `10.1.${Math.floor(i / 200) + 1}.${(i % 200) + 1}`;
const block = (i: number) => {
  const a = ((10 << 24) | (244 << 16)) + i * 64;
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/26`;
};
const NEW_BLOCK = '10.245.0.0/26';

let progress = () => '';

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (
      await Promise.resolve()
        .then(check)
        .catch(() => false)
    )
      return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${progress()}`);
    await delay(everyMs);
  }
}

const listening = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

function memMb(pid: number): { hwm: number; rss: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? Number.NaN);
  return { hwm: kb('VmHWM') / 1024, rss: kb('VmRSS') / 1024 };
}

interface Reflectors {
  name: string;
  pids: number[];
  stop(): Promise<void>;
}

function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  return exited;
}

async function startOurReflectors(n: number, nodePort: number, rrPort: number): Promise<Reflectors> {
  const children = RR_ADDR.map((addr, k) => {
    const args = [
      ...REFLECTOR_NODE_ARGS,
      '--conditions=@calico-ts/source',
      reflectorMain,
      '--router-id',
      `10.255.1.${k + 1}`,
      '--as',
      String(AS),
      '--cluster-id',
      CLUSTER,
      '--listen',
      `${addr}:${rrPort}`,
      '--peer',
      `${RR_ADDR[1 - k]}:${rrPort}`,
      '--health',
      'off',
      '--control',
      'off',
      '--connect-retry-time',
      '1',
      '--log-level',
      'warn',
    ];
    for (let i = 0; i < n; i++) args.push('--client', `${nodeAddr(i)}:${nodePort}`);
    return spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  });
  const stop = async () => {
    for (const c of children) await killChild(c);
  };
  try {
    for (const [k, addr] of RR_ADDR.entries()) {
      await until(`calico-reflector ${k + 1} listening`, () => listening(addr, rrPort), 30_000, 50);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const r = { name: 'calico-reflector', pids: children.map((c) => c.pid!), stop };
  live.add(r);
  return r;
}

async function startBirdReflectors(n: number, nodePort: number, rrPort: number): Promise<Reflectors> {
  const pids: number[] = [];
  const stop = async () => {
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  const version = /BIRD version (\S+)/.exec(
    (await run('bird', ['--version']).catch((e) => e)).stderr ?? '',
  )?.[1];
  try {
    for (const [k, addr] of RR_ADDR.entries()) {
      const lines = [
        `router id 10.255.1.${k + 1};`,
        'protocol device {}',
        `template bgp rrc { local ${addr} port ${rrPort} as ${AS}; strict bind on; rr client; rr cluster id ${CLUSTER};`,
        '  connect delay time 1; connect retry time 1; error wait time 1,2; ipv4 { import all; export all; }; }',
        `protocol bgp twin { local ${addr} port ${rrPort} as ${AS}; neighbor ${RR_ADDR[1 - k]} port ${rrPort} as ${AS}; strict bind on;`,
        `  rr cluster id ${CLUSTER}; connect delay time 1; connect retry time 1; ipv4 { import all; export all; }; }`,
      ];
      for (let i = 0; i < n; i++)
        lines.push(`protocol bgp c${i} from rrc { neighbor ${nodeAddr(i)} port ${nodePort} as ${AS}; }`);
      const conf = join(tmp.dir, `bird-rr${k}.conf`);
      const pidFile = join(tmp.dir, `bird-rr${k}.pid`);
      writeFileSync(conf, `${lines.join('\n')}\n`);
      await run('bird', ['-c', conf, '-s', join(tmp.dir, `bird-rr${k}.ctl`), '-P', pidFile]);
      let pid = 0;
      await until(
        'BIRD pid file',
        () => {
          pid = Number(readFileSync(pidFile, 'utf8').trim());
          return Number.isInteger(pid) && pid > 1;
        },
        10_000,
      );
      pids.push(pid);
      await until(`BIRD reflector ${k + 1} listening`, () => listening(addr, rrPort), 30_000, 50);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const r = { name: `BIRD ${version ?? '2'}`, pids, stop };
  live.add(r);
  return r;
}

interface Result {
  topology: string;
  nodes: number;
  sessions: number;
  convergeS: number;
  newBlockS: number;
  cpu?: number[];
  hwm?: number[];
  rss?: number[];
}

/** N nodes in this process; `peersOf(i)` lists the peers of node i. */
async function runNodes(
  topology: string,
  n: number,
  nodePort: number,
  peersOf: (i: number) => { address: string; port: number; passive: boolean }[],
  reflectors?: Reflectors,
): Promise<Result> {
  // A node's own block is not a best-path event of its own: count it from the start.
  const held = Array.from({ length: n }, (_, i) => new Set<string>([block(i)]));
  let complete = 0;
  let haveNew = 0;
  let established = 0; // node ends of Established sessions
  let wanted = 0;
  const speakers: BgpSpeaker[] = [];
  for (let i = 0; i < n; i++) {
    const s = new BgpSpeaker({
      routerId: nodeId(i),
      asNumber: AS,
      listen: { address: nodeAddr(i), port: nodePort },
    });
    const peers = peersOf(i);
    wanted += peers.length;
    for (const p of peers)
      s.addPeer({
        address: p.address,
        asNumber: AS,
        port: p.port,
        localAddress: nodeAddr(i),
        passive: p.passive,
        connectRetryTime: 1,
        families: ['ipv4'],
      });
    s.originate(block(i));
    s.on('peer-state', (e) => {
      if (e.to === 'Established') established++;
      else if (e.from === 'Established') established--;
    });
    s.on('best-path', (changes) => {
      const set = held[i]!;
      for (const c of changes) {
        const before = set.size;
        const had = set.has(c.prefix);
        if (c.best) set.add(c.prefix);
        else set.delete(c.prefix);
        if (before < n && set.size === n) complete++;
        if (before === n && set.size < n) complete--;
        if (c.prefix === NEW_BLOCK && !had && c.best) haveNew++;
      }
    });
    speakers.push(s);
  }
  progress = () => `: ${complete}/${n} nodes complete, ${established}/${wanted} session ends Established`;
  const cpu0 = reflectors?.pids.map(cpuSeconds);
  try {
    const t0 = performance.now();
    await Promise.all(speakers.map((s) => s.start()));
    await until(
      `${topology} ${n}: every session Established and every node holding all ${n} blocks`,
      () => complete === n && established === wanted,
      Number(process.env['BENCH_SCALE_TIMEOUT'] ?? 300) * 1000,
    );
    const convergeS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    speakers[0]!.originate(NEW_BLOCK);
    await until(`${topology} ${n}: the new block at every node`, () => haveNew >= n - 1, 60_000, 2);
    const newBlockS = (performance.now() - t1) / 1000;
    let sessions = 0;
    for (const s of speakers) for (const p of s.status().peers) if (p.state === 'Established') sessions++;
    const r: Result = { topology, nodes: n, sessions, convergeS, newBlockS };
    if (reflectors) {
      // Each node counted its end of a reflector session; the two reflectors' own session once.
      r.sessions = sessions + 1;
      r.cpu = reflectors.pids.map((p, k) => cpuSeconds(p) - cpu0![k]!);
      const mem = reflectors.pids.map(memMb);
      r.hwm = mem.map((m) => m.hwm);
      r.rss = mem.map((m) => m.rss);
    } else {
      r.sessions = sessions / 2;
    }
    return r;
  } finally {
    await Promise.all(speakers.map((s) => s.stop()));
    await reflectors?.stop();
    if (reflectors) live.delete(reflectors);
  }
}

async function rrRun(n: number, start: typeof startOurReflectors): Promise<Result> {
  const [nodePort, rrPort] = [await freePort(), await freePort()];
  const reflectors = await start(n, nodePort, rrPort);
  return runNodes(
    `2 reflectors: ${reflectors.name}`,
    n,
    nodePort,
    () => RR_ADDR.map((address) => ({ address, port: rrPort, passive: true })),
    reflectors,
  );
}

async function meshRun(n: number): Promise<Result> {
  const nodePort = await freePort();
  return runNodes('full mesh', n, nodePort, (i) =>
    Array.from({ length: n }, (_, j) => j)
      .filter((j) => j !== i)
      .map((j) => ({ address: nodeAddr(j), port: nodePort, passive: i < j })),
  );
}

const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const results: (Result & { load: string })[] = [];
const record = (r: Result, l: string) => {
  results.push({ ...r, load: l });
  const extra = r.cpu
    ? `, reflector CPU ${r.cpu.map((c) => c.toFixed(2)).join(' / ')} s, peak RSS ${r.hwm!.map((m) => m.toFixed(0)).join(' / ')} MB`
    : '';
  process.stderr.write(
    `${r.topology}, ${r.nodes} nodes: ${r.sessions} sessions, converged ${r.convergeS.toFixed(2)} s, ` +
      `new block ${(r.newBlockS * 1000).toFixed(0)} ms${extra} (load ${l})\n`,
  );
};
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const n of RR_SIZES) {
      // Alternate which reflector goes first.
      const order =
        round % 2 === 0
          ? [startOurReflectors, startBirdReflectors]
          : [startBirdReflectors, startOurReflectors];
      for (const start of order) {
        const l = load();
        record(await rrRun(n, start), l);
      }
    }
    for (const n of MESH_SIZES) {
      const l = load();
      record(await meshRun(n), l);
    }
  }
} finally {
  tmp.remove();
}
process.stdout.write(
  `\nBGP scale (${new Date().toISOString()}, ${ROUNDS} round(s))\n\n` +
    '| topology | nodes | sessions | converged | new block at every node | reflector CPU (each) | reflector peak RSS (each) | load at start |\n' +
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n',
);
for (const r of results) {
  process.stdout.write(
    `| ${r.topology} | ${r.nodes} | ${r.sessions} | ${r.convergeS.toFixed(2)} s | ${(r.newBlockS * 1000).toFixed(0)} ms | ` +
      `${r.cpu ? `${r.cpu.map((c) => c.toFixed(2)).join(' / ')} s` : '—'} | ${r.hwm ? `${r.hwm.map((m) => m.toFixed(0)).join(' / ')} MB` : '—'} | ${r.load} |\n`,
  );
}
