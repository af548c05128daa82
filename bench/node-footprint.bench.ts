// calico-node's footprint in three forms side by side, in one run on a one-node lab (LabCluster,
// VXLAN, etcd on the underlay, pods through the CNI plugins):
// - `bundle`: dist/bin.js, one minified file with every module it imports but the native addons
//   (what the lab, the node image and `calico cluster` run);
// - `built`: dist/main.js of the library build, which loads each workspace package's own dist/
//   and the third-party modules from node_modules (what the images ran before the bundle);
// - `source`: TypeScript source (type stripping, the workspace's source condition).
// Measured for each:
// - spawn → ready on a fresh datastore (first start);
// - RSS of calico-node after BENCH_NODE_PODS (110, Kubernetes' default max pods per node) pods
//   were added one after another;
// - stop and start again with the warm datastore (the pods and their endpoints in etcd, the
//   dataplane in place): start → ready, and RSS once ready;
// - the same, for each form, BENCH_ROUNDS times, forms alternating (built first in odd rounds).
// The dist/ of @calico-ts/node and what it imports is built first by the project's own build
// (`nx run-many -t build`, cached when nothing changed). `pnpm bench node-footprint`.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { loadavg as osLoadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildNodeAndCni } from './build-node.ts';

const PODS = Number(process.env['BENCH_NODE_PODS'] ?? 110);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 1);
/** Comma-separated forms to run (BENCH_FORMS=bundle,built for two); all three by default. */
const FORMS = (process.env['BENCH_FORMS'] ?? 'bundle,built,source')
  .split(',')
  .filter((f): f is Form => f === 'bundle' || f === 'built' || f === 'source');
/**
 * calico-node's Node options to compare, `|`-separated sets of space-separated flags: `lab` is
 * what the lab and the image use (CALICO_NODE_FLAGS), `none` Node's defaults, `NAME=value` an
 * environment variable. Each form runs with each set.
 */
const FLAG_SETS = (process.env['BENCH_NODE_FLAG_SETS'] ?? 'lab').split('|').map((s) => s.trim());
/** Seconds calico-node is left idle after the pods before its memory is read again (V8's memory reducer). */
const IDLE_S = Number(process.env['BENCH_IDLE_SECONDS'] ?? 15);
/** A directory: calico-node writes a V8 heap snapshot there after the pods and after the restart. */
const SNAPSHOT_DIR = process.env['BENCH_HEAP_SNAPSHOT_DIR'];
/** Scratch files of this run (the unbundled runner); removed at the end. */
const TMP = mkdtempSync('/tmp/nb-footprint-');

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const loadavg = (): string =>
  osLoadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const nowMs = (): number => performance.now();

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

type Form = 'bundle' | 'built' | 'source';

/** Where calico-node's memory sits: the kernel's view (smaps_rollup) and V8's (prom-client's gauges). */
interface MemoryBreakdown {
  rssMb: number;
  anonMb: number;
  fileMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  /** V8 heap spaces, used MB, by space name. */
  spaces: Record<string, number>;
}

function metricsText(namespace: string): string {
  const r = spawnSync('ip', ['netns', 'exec', namespace, 'curl', '-sf', 'http://127.0.0.1:9091/metrics'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.status !== 0) throw new Error(`metrics of calico-node in ${namespace}: curl exit ${r.status}`);
  return r.stdout;
}

function memoryBreakdown(pid: number, namespace: string): MemoryBreakdown {
  const smaps = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(smaps)?.[1] ?? NaN);
  const text = metricsText(namespace);
  const gauge = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  const spaces: Record<string, number> = {};
  for (const m of text.matchAll(/^nodejs_heap_space_size_used_bytes\{space="(\w+)"\} (\S+)/gm))
    spaces[m[1]!] = Number(m[2]) / 2 ** 20;
  return {
    rssMb: kb('Rss') / 1024,
    anonMb: kb('Anonymous') / 1024,
    fileMb: (kb('Rss') - kb('Anonymous')) / 1024,
    heapUsedMb: gauge('nodejs_heap_size_used_bytes') / 2 ** 20,
    heapTotalMb: gauge('nodejs_heap_size_total_bytes') / 2 ** 20,
    externalMb: gauge('nodejs_external_memory_bytes') / 2 ** 20,
    spaces,
  };
}

const formatBreakdown = (m: MemoryBreakdown): string =>
  `RSS ${m.rssMb.toFixed(0)} MB (anon ${m.anonMb.toFixed(0)}, file ${m.fileMb.toFixed(0)}); V8 heap used ${m.heapUsedMb.toFixed(0)} of ${m.heapTotalMb.toFixed(0)} MB, external ${m.externalMb.toFixed(0)} MB; spaces ${Object.entries(
    m.spaces,
  )
    .filter(([, v]) => v >= 0.5)
    .map(([k, v]) => `${k.replace(/_space$/, '')} ${v.toFixed(1)}`)
    .join(', ')}`;

/** Asks calico-node for a heap snapshot (SIGUSR2) and waits until it answers again (writing blocks it). */
async function heapSnapshot(pid: number, namespace: string): Promise<void> {
  if (!SNAPSHOT_DIR) return;
  const before = readdirSync(SNAPSHOT_DIR).length;
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 120_000;
  while (readdirSync(SNAPSHOT_DIR).length === before) {
    if (Date.now() > deadline) throw new Error('no heap snapshot within 120 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  metricsText(namespace);
}

interface FormResult {
  form: Form;
  flags: string;
  coldReadyMs: number;
  rssAfterPodsMb: number;
  warmReadyMs: number;
  rssWarmMb: number;
  memAfterPods: MemoryBreakdown;
  memIdle: MemoryBreakdown;
  memWarm: MemoryBreakdown;
  addMs: number[];
  load: string;
}

/** @calico-ts/node's entry in the given form (dist/index.js beside src/ for the built ones). */
function nodeEntry(form: Form): string {
  const src = fileURLToPath(import.meta.resolve('@calico-ts/node'));
  if (form === 'source') return src;
  const built = join(dirname(dirname(src)), 'dist', 'index.js');
  if (!existsSync(built)) throw new Error(`${built} is missing after the build`);
  return built;
}

/**
 * A script that runs the library build's main() (dist/main.js, which imports the other packages'
 * dist/), written to a temp directory: the package ships no unbundled executable.
 */
function unbundledRunner(dir: string): string {
  const mainJs = join(dirname(nodeEntry('built')), 'main.js');
  const file = join(dir, 'calico-node-unbundled.mjs');
  writeFileSync(
    file,
    `import { main } from ${JSON.stringify(pathToFileURL(mainJs).href)};\nprocess.exitCode = await main();\n`,
  );
  return file;
}

async function runForm(form: Form, flagSet: string, round: number): Promise<FormResult> {
  const [
    { CALICO_NODE_FLAGS, calicoPrograms, LAB_POD_NAMESPACE, LabCluster },
    { installCni },
    { ensureNamespaceProfileAt },
  ] = await Promise.all([import('@calico-ts/lab'), import('@calico-ts/cni'), import('@calico-ts/datastore')]);
  const name = `nb${{ bundle: 'bd', built: 'bt', source: 'sr' }[form]}${round}${process.pid % 100}`;
  // `NAME=value` tokens of a set go into calico-node's environment (e.g. MALLOC_ARENA_MAX=2).
  const tokens = flagSet.split(/\s+/).filter((t) => t && t !== 'lab' && t !== 'none');
  const envTokens = tokens.filter((t) => /^[A-Z_]+=/.test(t));
  const nodeFlags = [
    ...(flagSet.split(/\s+/).includes('lab') ? CALICO_NODE_FLAGS : []),
    ...tokens.filter((t) => !envTokens.includes(t)),
  ];
  const nodeEnv: Record<string, string> = Object.fromEntries(
    envTokens.map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)]),
  );
  if (SNAPSHOT_DIR)
    nodeEnv['NODE_OPTIONS'] = `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${SNAPSHOT_DIR}`;
  const flags = [...envTokens, ...nodeFlags].join(' ') || '(Node defaults)';
  const programs = calicoPrograms({
    node: nodeEntry(form),
    cni: import.meta.resolve('@calico-ts/cni'),
    installCni,
    nodeFlags,
  });
  const calicoNode =
    form === 'built' ? [process.execPath, ...nodeFlags, unbundledRunner(TMP)] : programs.calicoNode;
  log(`[${form}] calico-node: ${calicoNode.join(' ')}`);
  let spawnedMs = 0;
  let coldReadyMs = Number.NaN;
  const cluster = new LabCluster({
    name,
    nodes: 1,
    backend: 'vxlan',
    poolCidr: '10.246.0.0/16',
    programs: { ...programs, calicoNode },
    readyTimeoutMs: 120_000,
    env: nodeEnv,
    prepareDatastore: async (endpoint) => {
      await ensureNamespaceProfileAt([endpoint], LAB_POD_NAMESPACE);
    },
    log: (line) => {
      if (line.startsWith('etcd is up')) spawnedMs = nowMs();
      if (/^calico-node .* is ready$/.test(line) && Number.isNaN(coldReadyMs))
        coldReadyMs = nowMs() - spawnedMs;
    },
  });
  try {
    await cluster.up();
    const node = cluster.nodes[0]!;
    const addMs: number[] = [];
    for (let i = 1; i <= PODS; i++) {
      const t = nowMs();
      await cluster.addPod(node, `p${i}`);
      addMs.push(nowMs() - t);
    }
    const rssAfterPodsMb = rssMb(node.process!.pid);
    const memAfterPods = memoryBreakdown(node.process!.pid, node.namespace.name);
    log(`[${name}] ${form} after ${PODS} pods: ${formatBreakdown(memAfterPods)}`);
    // Deliberately idle: what calico-node keeps once nothing happens (no condition to wait for).
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const memIdle = memoryBreakdown(node.process!.pid, node.namespace.name);
    log(`[${name}] ${form} ${IDLE_S} s later: ${formatBreakdown(memIdle)}`);
    await heapSnapshot(node.process!.pid, node.namespace.name);
    await cluster.stopNode(node);
    const t = nowMs();
    await cluster.startNode(node);
    const warmReadyMs = nowMs() - t;
    const rssWarmMb = rssMb(node.process!.pid);
    const memWarm = memoryBreakdown(node.process!.pid, node.namespace.name);
    log(`[${name}] ${form} after the warm restart: ${formatBreakdown(memWarm)}`);
    await heapSnapshot(node.process!.pid, node.namespace.name);
    const r: FormResult = {
      form,
      flags,
      coldReadyMs,
      rssAfterPodsMb,
      warmReadyMs,
      rssWarmMb,
      memAfterPods,
      memIdle,
      memWarm,
      addMs,
      load: loadavg(),
    };
    log(
      `[${name}] ${form} ${flags}: cold ready ${coldReadyMs.toFixed(0)} ms, RSS with ${PODS} pods ${rssAfterPodsMb.toFixed(0)} MB, warm start → ready ${warmReadyMs.toFixed(0)} ms, RSS then ${rssWarmMb.toFixed(0)} MB (load ${r.load})`,
    );
    return r;
  } finally {
    await cluster.down().catch((e: unknown) => log(`[${name}] teardown: ${String(e)}`));
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    log('node-footprint bench: needs root (network namespaces); skipped');
    return;
  }
  log('building @calico-ts/node and its dependencies (nx, cached when unchanged)…');
  buildNodeAndCni();
  if (SNAPSHOT_DIR) mkdirSync(SNAPSHOT_DIR, { recursive: true });
  const started = new Date();
  const loadStart = loadavg();
  const results: FormResult[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? FORMS : [...FORMS].reverse();
    for (const form of order)
      for (const flagSet of round % 2 === 0 ? FLAG_SETS : [...FLAG_SETS].reverse())
        results.push(await runForm(form, flagSet, round));
  }
  const p = (s: string) => process.stdout.write(`${s}\n`);
  p(
    `\ncalico-node footprint, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC; load ${loadStart} at start, ${loadavg()} at end; ${ROUNDS} round(s), medians`,
  );
  p(
    `\n| form | Node options | spawn → ready, fresh datastore | RSS with ${PODS} pods (anon / V8 heap committed) | RSS ${IDLE_S} s later (anon / heap) | restart → ready, warm datastore | RSS after that restart (anon / heap) | CNI ADD p50 |`,
  );
  p('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  const mem = (xs: MemoryBreakdown[]): string =>
    `${median(xs.map((x) => x.rssMb)).toFixed(0)} MB (${median(xs.map((x) => x.anonMb)).toFixed(0)} / ${median(xs.map((x) => x.heapTotalMb)).toFixed(0)})`;
  const groups = FORMS.flatMap((form) =>
    [...new Set(results.filter((r) => r.form === form).map((r) => r.flags))].map((flags) =>
      results.filter((r) => r.form === form && r.flags === flags),
    ),
  );
  for (const rs of groups) {
    const m = (f: (r: FormResult) => number) => median(rs.map(f));
    p(
      `| ${rs[0]!.form} | ${rs[0]!.flags} | ${m((r) => r.coldReadyMs).toFixed(0)} ms | ${mem(rs.map((r) => r.memAfterPods))} | ${mem(rs.map((r) => r.memIdle))} | ${m((r) => r.warmReadyMs).toFixed(0)} ms | ${mem(rs.map((r) => r.memWarm))} | ${median(rs.flatMap((r) => r.addMs)).toFixed(0)} ms |`,
    );
  }
  p("\nRSS = anonymous + file-backed (the node executable's pages, shared by every Node process).");
}

try {
  await main();
} finally {
  rmSync(TMP, { recursive: true, force: true });
}
