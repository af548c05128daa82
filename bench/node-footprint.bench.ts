// calico-node's footprint from built JavaScript (tsup's dist/, as the images and a package install
// run it) side by side with the same code run from TypeScript source (type stripping, the
// workspace's source condition), in one run on a one-node lab (LabCluster, VXLAN, etcd on the
// underlay, pods through the CNI plugins):
// - spawn → ready on a fresh datastore (first start);
// - RSS of calico-node after BENCH_NODE_PODS (110, Kubernetes' default max pods per node) pods
//   were added one after another;
// - stop and start again with the warm datastore (the pods and their endpoints in etcd, the
//   dataplane in place): start → ready, and RSS once ready;
// - the same, for each form, BENCH_ROUNDS times, forms alternating (built first in odd rounds).
// The dist/ of @calico-ts/node and what it imports is built first by the project's own build
// (`nx run-many -t build`, cached when nothing changed). `pnpm bench node-footprint`.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg as osLoadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PODS = Number(process.env['BENCH_NODE_PODS'] ?? 110);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 1);
/** BENCH_FORMS=built or =source runs one form only (both by default). */
const FORMS = (process.env['BENCH_FORMS'] ?? 'built,source')
  .split(',')
  .filter((f): f is Form => f === 'built' || f === 'source');

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

type Form = 'built' | 'source';

interface FormResult {
  form: Form;
  coldReadyMs: number;
  rssAfterPodsMb: number;
  warmReadyMs: number;
  rssWarmMb: number;
  addMs: number[];
  load: string;
}

/** @calico-ts/node's entry in the given form (dist/index.js beside src/ for built). */
function nodeEntry(form: Form): string {
  const src = fileURLToPath(import.meta.resolve('@calico-ts/node'));
  if (form === 'source') return src;
  const built = join(dirname(dirname(src)), 'dist', 'index.js');
  if (!existsSync(built)) throw new Error(`${built} is missing after the build`);
  return built;
}

async function runForm(form: Form, round: number): Promise<FormResult> {
  const [{ calicoPrograms, LAB_POD_NAMESPACE, LabCluster }, { installCni }, { ensureNamespaceProfileAt }] =
    await Promise.all([import('@calico-ts/lab'), import('@calico-ts/cni'), import('@calico-ts/datastore')]);
  const name = `nf${form[0]}${round}${process.pid % 100}`;
  let spawnedMs = 0;
  let coldReadyMs = Number.NaN;
  const cluster = new LabCluster({
    name,
    nodes: 1,
    backend: 'vxlan',
    poolCidr: '10.246.0.0/16',
    programs: calicoPrograms({
      node: nodeEntry(form),
      cni: import.meta.resolve('@calico-ts/cni'),
      installCni,
    }),
    readyTimeoutMs: 120_000,
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
    await cluster.stopNode(node);
    const t = nowMs();
    await cluster.startNode(node);
    const warmReadyMs = nowMs() - t;
    const rssWarmMb = rssMb(node.process!.pid);
    const r: FormResult = {
      form,
      coldReadyMs,
      rssAfterPodsMb,
      warmReadyMs,
      rssWarmMb,
      addMs,
      load: loadavg(),
    };
    log(
      `[${name}] ${form}: cold ready ${coldReadyMs.toFixed(0)} ms, RSS with ${PODS} pods ${rssAfterPodsMb.toFixed(0)} MB, warm start → ready ${warmReadyMs.toFixed(0)} ms, RSS then ${rssWarmMb.toFixed(0)} MB (load ${r.load})`,
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
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  log('building @calico-ts/node and its dependencies (nx, cached when unchanged)…');
  const build = spawnSync(
    'pnpm',
    [
      'exec',
      'nx',
      'run-many',
      '-t',
      'build',
      '-p',
      '@calico-ts/node',
      '@calico-ts/cni',
      '--outputStyle=static',
    ],
    { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  if (build.status !== 0) throw new Error(`build failed (exit ${build.status})`);
  const started = new Date();
  const loadStart = loadavg();
  const results: FormResult[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? FORMS : [...FORMS].reverse();
    for (const form of order) results.push(await runForm(form, round));
  }
  const p = (s: string) => process.stdout.write(`${s}\n`);
  p(
    `\ncalico-node footprint, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC; load ${loadStart} at start, ${loadavg()} at end; ${ROUNDS} round(s), medians`,
  );
  p(
    `\n| form | spawn → ready, fresh datastore | RSS with ${PODS} pods | restart → ready, warm datastore (${PODS} pods) | RSS after that restart | CNI ADD p50 |`,
  );
  p('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const form of FORMS) {
    const rs = results.filter((r) => r.form === form);
    const m = (f: (r: FormResult) => number) => median(rs.map(f));
    p(
      `| ${form} | ${m((r) => r.coldReadyMs).toFixed(0)} ms | ${m((r) => r.rssAfterPodsMb).toFixed(0)} MB | ${m((r) => r.warmReadyMs).toFixed(0)} ms | ${m((r) => r.rssWarmMb).toFixed(0)} MB | ${median(rs.flatMap((r) => r.addMs)).toFixed(0)} ms |`,
    );
  }
  const b = results.filter((r) => r.form === 'built');
  const s = results.filter((r) => r.form === 'source');
  if (b.length === 0 || s.length === 0) return;
  const ratio = (f: (r: FormResult) => number) => median(b.map(f)) / median(s.map(f));
  p(
    `\nbuilt ÷ source: warm start → ready ${ratio((r) => r.warmReadyMs).toFixed(2)}×, RSS with ${PODS} pods ${ratio((r) => r.rssAfterPodsMb).toFixed(2)}×, RSS after the warm restart ${ratio((r) => r.rssWarmMb).toFixed(2)}×`,
  );
}

await main();
