/**
 * IPAM: 1,000 allocations from 10 nodes at once against a real etcd (one process per node, each
 * with its own etcd connection, all started together after start-up). Two ways of serving the same
 * burst, measured in the same run:
 *   - burst:      100 concurrent autoAssign per node (our default: a node's concurrent requests
 *                 share block writes);
 *   - serialized: one autoAssign at a time per node, as Calico's CNI plugin does behind its
 *                 host-wide flock (each allocation = one block CAS + one handle write).
 * Reports total time, allocations/s, p50/p99 per allocation and datastore writes per allocation
 * (writes issued by the allocators, and etcd revisions consumed). Goal: 1,000 within 5 s.
 *
 *   cd bench && node --conditions=@calico-ts/source ipam.bench.ts      (or: pnpm bench ipam)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CALICO_API_VERSION, EtcdDatastore } from '@calico-ts/datastore';
import { Ipam } from '@calico-ts/ipam';
import { startEtcd } from '@calico-ts/lab';

const NODES = 10;
const PER_NODE = 100;
type Mode = 'burst' | 'serialized';

if (process.argv[2] === 'child') await child(process.argv[3]!, process.argv[4]!, process.argv[5] as Mode);
else await main();

/** One node: connect, say ready, wait for the start line, allocate, report. */
async function child(endpoint: string, node: string, mode: Mode): Promise<void> {
  const ds = new EtcdDatastore({ endpoints: endpoint });
  const ipam = new Ipam(ds);
  // Ten processes starting at once on shared cores can miss the dial timeout: keep trying.
  for (let attempt = 1; ; attempt++) {
    try {
      await ds.list('IPPool');
      break;
    } catch (err) {
      if (attempt >= 20) throw err;
    }
  }
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  process.stdin.pause();
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const one = async (i: number) => {
    const t0 = performance.now();
    await ipam.autoAssign({ num4: 1, handleId: `k8s-pod-network.${node}-${i}`, node, attrs: { node } });
    latencies.push(performance.now() - t0);
  };
  if (mode === 'burst') await Promise.all(Array.from({ length: PER_NODE }, (_, i) => one(i)));
  else for (let i = 0; i < PER_NODE; i++) await one(i);
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  process.stdout.write(`${JSON.stringify({ latencies, writes: ipam.writeCount, cpuMs })}\n`);
  await ds.close();
}

interface Run {
  mode: Mode;
  totalMs: number;
  latencies: number[];
  writes: number;
  revisions: number;
  /** CPU time the allocator processes spent during the burst. */
  cpuMs: number;
}

async function main(): Promise<void> {
  const etcd = await startEtcd();
  const children: ChildProcess[] = [];
  try {
    const ds = new EtcdDatastore({ endpoints: etcd.endpoint });
    const ipam = new Ipam(ds);
    await ds.create('IPPool', {
      apiVersion: CALICO_API_VERSION,
      kind: 'IPPool',
      metadata: { name: 'bench' },
      spec: { cidr: '10.200.0.0/20', blockSize: 26 },
    } as never);
    const runs: Run[] = [];
    for (const mode of ['burst', 'serialized'] as const) {
      runs.push(await runOnce(etcd.endpoint, ds, mode, children));
      // Give everything back (blocks included) so each mode starts from an empty pool.
      const { items } = await ds.list('IPAMHandle');
      const addrs = (await Promise.all(items.map((h) => ipam.ipsByHandle(h.metadata.name)))).flat();
      await ipam.releaseIPs(addrs);
      for (let n = 0; n < NODES; n++) await ipam.releaseHostAffinities(`node-${n}`);
      const check = await ipam.check({ checkNodes: false });
      if (!check.ok || check.blocks !== 0)
        throw new Error(`not clean after ${mode}: ${JSON.stringify(check)}`);
    }
    await ds.close();
    printTable(runs);
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await etcd.stop();
  }
}

async function runOnce(
  endpoint: string,
  ds: EtcdDatastore,
  mode: Mode,
  children: ChildProcess[],
): Promise<Run> {
  const self = fileURLToPath(import.meta.url);
  const procs = Array.from({ length: NODES }, (_, n) => {
    const c = spawn(
      process.execPath,
      ['--conditions=@calico-ts/source', self, 'child', endpoint, `node-${n}`, mode],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
        env: { ...process.env, CALICO_LOG_LEVEL: 'error' },
      },
    );
    children.push(c);
    let out = '';
    const ready = new Promise<void>((resolve) => {
      c.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.startsWith('ready\n')) resolve();
      });
    });
    const done = new Promise<{ latencies: number[]; writes: number; cpuMs: number }>((resolve, reject) =>
      c.once('exit', (code) => {
        if (code !== 0) reject(new Error(`allocator node-${n} exited ${code}`));
        else resolve(JSON.parse(out.slice('ready\n'.length)));
      }),
    );
    return { c, ready, done };
  });
  await Promise.all(procs.map((p) => p.ready));
  const revBefore = Number((await ds.list('IPAMHandle')).revision);
  const t0 = performance.now();
  for (const p of procs) p.c.stdin!.end('go\n');
  const results = await Promise.all(procs.map((p) => p.done));
  const totalMs = performance.now() - t0;
  const revAfter = Number((await ds.list('IPAMHandle')).revision);
  const { items } = await ds.list('IPAMHandle');
  if (items.length !== NODES * PER_NODE)
    throw new Error(`${mode}: ${items.length} handles, expected ${NODES * PER_NODE}`);
  return {
    mode,
    totalMs,
    latencies: results.flatMap((r) => r.latencies).sort((a, b) => a - b),
    writes: results.reduce((n, r) => n + r.writes, 0),
    revisions: revAfter - revBefore,
    cpuMs: results.reduce((n, r) => n + r.cpuMs, 0),
  };
}

function printTable(runs: Run[]): void {
  const n = NODES * PER_NODE;
  const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
  console.log(`\n${n} allocations, ${NODES} nodes × ${PER_NODE}, pool 10.200.0.0/20 (64 × /26), one etcd`);
  console.log(
    '| mode | total | allocations/s | p50 | p99 | writes/allocation (issued) | etcd revisions/allocation | allocator CPU/allocation | within 5 s |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of runs) {
    console.log(
      `| ${r.mode} | ${r.totalMs.toFixed(0)} ms | ${((n / r.totalMs) * 1000).toFixed(0)} | ${pct(r.latencies, 50).toFixed(1)} ms | ${pct(r.latencies, 99).toFixed(1)} ms | ${(r.writes / n).toFixed(2)} | ${(r.revisions / n).toFixed(2)} | ${(r.cpuMs / n).toFixed(1)} ms | ${r.totalMs <= 5000 ? 'yes' : 'no'} |`,
    );
  }
  const [burst, serial] = runs;
  if (burst && serial)
    console.log(`\nburst ÷ serialized total time: ${(burst.totalMs / serial.totalMs).toFixed(2)}`);
}
