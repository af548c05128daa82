// calico-node end to end, on a real 2-node cluster (LabCluster from @calico-ts/lab: etcd on the lab
// underlay, one calico-node process per node namespace, pods through the real CNI plugin binaries):
// (1) VXLAN: 50 pods added one after another on node 2; for each, the time from CNI ADD returning
//     to the first TCP SYN from a pod on node 1 that the new pod's own kernel answers (RST from a
//     closed port, or accept), probed every 10 ms by one long-running probe process in the node-1
//     pod; also when Felix's /32 route (netlink event) and the endpoint's iptables rules (`nft monitor`)
//     for the new pod appear on node 2, to see
//     where the time goes, and the ADD latency itself. The probe's own cost is measured against an
//     already-reachable pod first.
// (2) iperf3 single stream, interleaved rounds: node→node over the underlay vs pod→pod across nodes,
//     in VXLAN and BGP mode; Gbit/s and the pod/node ratio.
// (3) calico-node spawn-to-ready and RSS per node.
// calico-node runs built (dist/bin.js, as the images run it): @calico-ts/node and @calico-ts/cni are
// built first (nx, cached when unchanged); BENCH_NODE_FORM=source runs it from TypeScript source.
// Prints Markdown rows for docs/benchmarks.md. `pnpm bench node`; BENCH_PODS, BENCH_ROUNDS,
// BENCH_IPERF_SECONDS, BENCH_BGP=0 override the defaults; BENCH_NODE_POLICIES=1000 loads that many
// policies (bench/policy-set.ts, one in twenty selecting every lab pod, plus one allowing all
// traffic so the probe still gets through) before the pod ADDs; BENCH_PREFIX names the clusters;
// BENCH_NODE_CPU_PROF=<dir> has each calico-node write a V8 CPU profile into <dir> when it stops.
//
// Run with argv[2] === 'probe' this file is the probe itself (see runProbe).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { NetNamespace as NetNamespaceHandle } from '@calico-ts/kernel';
import { buildNodeAndCni } from './build-node.ts';
import { iperf3Gbps } from './iperf.ts';

const PODS = Number(process.env['BENCH_PODS'] ?? 50);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const IPERF_SECONDS = Number(process.env['BENCH_IPERF_SECONDS'] ?? 10);
const WITH_BGP = process.env['BENCH_BGP'] !== '0';
const NODE_POLICIES = Number(process.env['BENCH_NODE_POLICIES'] ?? 0);
const NODE_BUILT = process.env['BENCH_NODE_FORM'] !== 'source';
const PROBE_INTERVAL_MS = 10;
const PROBE_PORT = 9; // closed in every pod: the pod's kernel answers a SYN with RST
const IPERF_PORT = 5201;

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6; // CLOCK_MONOTONIC, shared by processes

// ---------------------------------------------------------------------------------------------
// The probe: reads `<id> <ip>` lines, starts a TCP connect to ip:PROBE_PORT every PROBE_INTERVAL_MS
// until one is answered (connected or refused = the target's kernel replied), then prints
// `{"id","gotMs","sentMs","answeredMs","attempts"}` (monotonic ms). Other errors (unreachable,
// timeout) are what "not yet reachable" looks like and are ignored.
// ---------------------------------------------------------------------------------------------
function runProbe(): void {
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const [id, ip] = line.trim().split(' ');
    if (!id || !ip) return;
    const gotMs = nowMs();
    const sockets = new Set<Socket>();
    let attempts = 0;
    let done = false;
    const finish = (out: Record<string, unknown>): void => {
      if (done) return;
      done = true;
      clearInterval(timer);
      clearTimeout(deadline);
      for (const s of sockets) s.destroy();
      process.stdout.write(`${JSON.stringify({ id, gotMs, attempts, ...out })}\n`);
    };
    const attempt = (): void => {
      attempts++;
      const sentMs = nowMs();
      const s = connect({ host: ip, port: PROBE_PORT });
      sockets.add(s);
      // A dropped SYN is retransmitted only after 1 s; newer attempts cover the gap meanwhile.
      s.setTimeout(1000, () => s.destroy());
      s.once('connect', () => finish({ sentMs, answeredMs: nowMs(), how: 'connect' }));
      s.once('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ECONNREFUSED') finish({ sentMs, answeredMs: nowMs(), how: 'refused' });
      });
      s.once('close', () => sockets.delete(s));
    };
    const timer = setInterval(attempt, PROBE_INTERVAL_MS);
    const deadline = setTimeout(() => finish({ error: 'not reachable within 30 s' }), 30_000);
    attempt();
  });
  rl.on('close', () => process.exit(0));
}

interface ProbeAnswer {
  id: string;
  gotMs: number;
  sentMs?: number;
  answeredMs?: number;
  attempts: number;
  how?: string;
  error?: string;
}

const pct = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};
const ms = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

interface ModeResult {
  backend: 'vxlan' | 'bgp';
  readyMs: number[];
  rssMb: number[];
  rssAfterMb: number[];
  podMtu: string;
  add?: {
    nsMs: number[];
    addMs: number[];
    /** From ADD start. */
    routeMs: number[];
    routeToReachMs: number[];
    /** From ADD start. */
    rulesMs: number[];
    rulesToReachMs: number[];
    startToReachMs: number[];
    /** From ADD return. */
    reachMs: number[];
    probeOverheadMs: number[];
    probeRttMs: number[];
    how: Map<string, number>;
    pingOk: number;
  };
  iperf: { node: number[]; pod: number[] };
  loadStart: string;
  loadEnd: string;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function runMode(backend: 'vxlan' | 'bgp', measureAdds: boolean): Promise<ModeResult> {
  // Loaded here, not at the top: the probe process runs this file too and needs none of it.
  const [
    { calicoPrograms, LAB_POD_NAMESPACE, LabCluster },
    { execInNamespace, NetNamespace, waitFor },
    { installCni },
    { ensureNamespaceProfileAt, EtcdDatastore },
    { benchPolicy, pool },
  ] = await Promise.all([
    import('@calico-ts/lab'),
    import('@calico-ts/kernel'),
    import('@calico-ts/cni'),
    import('@calico-ts/datastore'),
    import('./policy-set.ts'),
  ]);
  const name = `${process.env['BENCH_PREFIX'] ?? 'bn'}${randomBytes(2).toString('hex')}`;
  let etcdEndpoint = '';
  const loadStart = loadavg();
  // Ready times: from the log line that precedes the first calico-node spawn to each "is ready".
  let nodesStartMs = 0;
  const readyMs: number[] = [];
  const cluster = new LabCluster({
    name,
    nodes: 2,
    backend,
    poolCidr: '10.244.0.0/16',
    podsPerNode: 2,
    // BENCH_NODE_CPU_PROF=<dir>: each calico-node writes a V8 CPU profile there when it stops.
    ...(process.env['BENCH_NODE_CPU_PROF']
      ? { env: { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${process.env['BENCH_NODE_CPU_PROF']}` } }
      : {}),
    // calico-node built (unless BENCH_NODE_FORM=source), the plugins as a node gets them (built
    // and installed).
    programs: calicoPrograms({
      node: import.meta.resolve('@calico-ts/node'),
      cni: import.meta.resolve('@calico-ts/cni'),
      installCni,
      preferBuilt: NODE_BUILT,
    }),
    // The lab's pods name kns.default, the profile Kubernetes' controllers would keep.
    prepareDatastore: async (endpoint) => {
      etcdEndpoint = endpoint;
      await ensureNamespaceProfileAt([endpoint], LAB_POD_NAMESPACE);
    },
    log: (line) => {
      if (line.startsWith('etcd is up')) nodesStartMs = nowMs();
      if (/^calico-node .* is ready$/.test(line)) readyMs.push(nowMs() - nodesStartMs);
      log(`[${name}] ${line}`);
    },
  });
  const opened: NetNamespaceHandle[] = [];
  const open = (path: string) => {
    const ns = NetNamespace.open(path);
    opened.push(ns);
    return ns;
  };
  try {
    await cluster.up();
    const lab = cluster.lab;
    const [n1, n2] = [cluster.nodes[0]!, cluster.nodes[1]!];
    const nodePids = cluster.nodes.map((n) => n.process!.pid);
    const rssMb = nodePids.map(rssOf);
    const client = cluster.pods.find((p) => p.node === n1)!;
    const server = cluster.pods.find((p) => p.node === n2)!;
    const clientNs = open(client.netns);
    const serverNs = open(server.netns);
    const mtuOut = await execInNamespace(clientNs, 'ip', ['-o', 'link', 'show', 'eth0']);
    const podMtu = /mtu (\d+)/.exec(mtuOut.stdout)?.[1] ?? '?';
    for (const r of await cluster.checkConnectivity())
      if (!r.ok) throw new Error(`${backend}: ${r.from} → ${r.to} not reachable after cluster up`);

    if (measureAdds && NODE_POLICIES > 0) await loadPolicies();
    let add: ModeResult['add'];
    if (measureAdds) add = await measurePodAdds();

    // iperf3: one server in node 2 and one in the node-2 pod for the whole run (pinned to core 0),
    // clients pinned to core 1; node and pod runs alternate, the order flipping every round.
    const startServer = async (ns: NetNamespaceHandle) => {
      await lab.spawn(ns, 'iperf3', ['-s', '-p', String(IPERF_PORT), '-A', '0'], {
        stdio: 'ignore',
      });
      // iperf3 block-buffers its banner into a pipe, so ask the kernel whether it listens.
      await waitFor(
        async () =>
          (await execInNamespace(ns, 'ss', ['-Hltn', `sport = :${IPERF_PORT}`])).stdout.includes(
            `:${IPERF_PORT}`,
          ),
        { timeoutMs: 10_000, what: `iperf3 server in ${ns.name}` },
      );
    };
    await startServer(n2.namespace);
    await startServer(serverNs);
    const iperf = { node: [] as number[], pod: [] as number[] };
    const run = async (kind: 'node' | 'pod'): Promise<number> => {
      const [ns, target] = kind === 'node' ? [n1.namespace, n2.ipv4] : [clientNs, server.ip];
      return iperf3Gbps(ns, target, { port: IPERF_PORT, seconds: IPERF_SECONDS, what: kind });
    };
    for (let round = 0; round < ROUNDS; round++) {
      const order: ('node' | 'pod')[] = round % 2 === 0 ? ['node', 'pod'] : ['pod', 'node'];
      for (const kind of order) {
        const g = await run(kind);
        iperf[kind].push(g);
        log(
          `[${name}] ${backend} round ${round + 1}: ${kind}→${kind} ${g.toFixed(2)} Gbit/s (load ${loadavg()})`,
        );
      }
    }
    const rssAfterMb = nodePids.map(rssOf);
    return { backend, readyMs, rssMb, rssAfterMb, podMtu, add, iperf, loadStart, loadEnd: loadavg() };

    /** NODE_POLICIES background policies, then waits until node 2's Felix applied them. */
    async function loadPolicies(): Promise<void> {
      const ds = new EtcdDatastore({ endpoints: [etcdEndpoint] });
      try {
        const t0 = nowMs();
        await ds.create('GlobalNetworkPolicy', {
          metadata: { name: 'bench-allow-all' },
          spec: {
            order: 10_000,
            selector: 'all()',
            types: ['Ingress', 'Egress'],
            ingress: [{ action: 'Allow' }],
            egress: [{ action: 'Allow' }],
          },
        });
        await pool(0, NODE_POLICIES, 32, async (k) => {
          const p = benchPolicy(k, { namespace: () => LAB_POD_NAMESPACE, localSelector: () => 'all()' });
          if (p.kind === 'GlobalNetworkPolicy') await ds.create('GlobalNetworkPolicy', p.body);
          else await ds.create('NetworkPolicy', p.body);
        });
        // Felix renders the policies that select a local endpoint: one in twenty plus the allow-all,
        // each with an inbound chain. Once node 2 has them all, it has caught up.
        const active = Math.ceil(NODE_POLICIES / 20) + 1;
        await waitFor(
          async () => {
            const save = await execInNamespace(n2.namespace, 'iptables-save', ['-t', 'filter']);
            return (save.stdout.match(/^:cali-pi-/gm)?.length ?? 0) >= active;
          },
          { timeoutMs: 120_000, intervalMs: 500, what: `node 2 programming ${active} active policies` },
        );
        for (const r of await cluster.checkConnectivity())
          if (!r.ok)
            throw new Error(`${backend}: ${r.from} → ${r.to} not reachable with ${NODE_POLICIES} policies`);
        log(`[${name}] ${NODE_POLICIES} policies written and programmed in ${ms(nowMs() - t0)} ms`);
      } finally {
        await ds.close();
      }
    }

    async function measurePodAdds(): Promise<NonNullable<ModeResult['add']>> {
      const probe = await lab.spawn(
        clientNs,
        process.execPath,
        ['--conditions=@calico-ts/source', fileURLToPath(import.meta.url), 'probe'],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      const waiting = new Map<string, (a: ProbeAnswer) => void>();
      createInterface({ input: probe.child.stdout! }).on('line', (line) => {
        const a = JSON.parse(line) as ProbeAnswer;
        waiting.get(a.id)?.(a);
        waiting.delete(a.id);
      });
      const ask = (id: string, ip: string): { writtenMs: number; answer: Promise<ProbeAnswer> } => {
        const answer = new Promise<ProbeAnswer>((resolve) => waiting.set(id, resolve));
        const writtenMs = nowMs();
        probe.child.stdin!.write(`${id} ${ip}\n`);
        return { writtenMs, answer };
      };
      // The probe's own cost, against the pod on node 2 that is already reachable: hand-over
      // (command written → probe has it) and SYN → RST round trip.
      const probeOverheadMs: number[] = [];
      const probeRttMs: number[] = [];
      // The first command also waits for the probe to finish loading; it is not counted.
      for (let i = 0; i <= 20; i++) {
        const q = ask(`warm${i}`, server.ip);
        const a = await q.answer;
        if (i === 0) continue;
        if (a.error || a.answeredMs === undefined || a.sentMs === undefined)
          throw new Error(`probe to the reachable ${server.ip}: ${a.error}`);
        probeOverheadMs.push(a.gotMs - q.writtenMs);
        probeRttMs.push(a.answeredMs - a.sentMs);
      }

      // Felix's /32 route to each new pod on node 2, as the kernel announces it.
      const routeSeenMs = new Map<string, number>();
      // …and the first nftables rule naming its host-side interface (iptables-nft writes the
      // endpoint's chains and the dispatch jumps in one transaction), as `nft monitor` reports it.
      const rulesSeenMs = new Map<string, number>();
      const monitor = await lab.spawn(n2.namespace, 'stdbuf', ['-oL', 'nft', 'monitor'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      createInterface({ input: monitor.child.stdout! }).on('line', (line) => {
        const t = nowMs();
        for (const m of line.matchAll(/"(cali[0-9a-f]{11})"/g))
          if (!rulesSeenMs.has(m[1]!)) rulesSeenMs.set(m[1]!, t);
      });
      const sub = n2.netlink.subscribe(['route'], (ev) => {
        if (ev.kind === 'route' && ev.action === 'new' && ev.route.dst.endsWith('/32'))
          if (!routeSeenMs.has(ev.route.dst)) routeSeenMs.set(ev.route.dst, nowMs());
      });
      const out = {
        nsMs: [] as number[],
        addMs: [] as number[],
        routeMs: [] as number[],
        routeToReachMs: [] as number[],
        rulesMs: [] as number[],
        rulesToReachMs: [] as number[],
        startToReachMs: [] as number[],
        reachMs: [] as number[],
      };
      const how = new Map<string, number>();
      let pingOk = 0;
      try {
        for (let i = 0; i < PODS; i++) {
          // LabCluster.down() runs CNI DEL for every pod it added.
          const pod = await cluster.addPod(n2, `b${i}`);
          const { requested: t0, addStarted: t1, addReturned: addedMs } = pod.times;
          const { ip, result } = pod;
          const a = await ask(pod.name, ip).answer;
          if (a.error || a.answeredMs === undefined) throw new Error(`${pod.name} (${ip}): ${a.error}`);
          out.nsMs.push(t1 - t0);
          out.addMs.push(addedMs - t1);
          out.reachMs.push(a.answeredMs - addedMs);
          how.set(a.how ?? '?', (how.get(a.how ?? '?') ?? 0) + 1);
          out.startToReachMs.push(a.answeredMs - t1);
          const hostIface = (result['interfaces'] as { name: string; sandbox?: string }[]).find(
            (x) => !x.sandbox,
          )?.name;
          const rules = hostIface === undefined ? undefined : rulesSeenMs.get(hostIface);
          if (rules !== undefined) {
            out.rulesMs.push(rules - t1);
            out.rulesToReachMs.push(a.answeredMs - rules);
          }
          const seen = routeSeenMs.get(`${ip}/32`);
          if (seen !== undefined) {
            out.routeMs.push(seen - t1);
            out.routeToReachMs.push(a.answeredMs - seen);
          }
          // The same path answers ICMP too (not timed).
          if ((await execInNamespace(clientNs, 'ping', ['-c', '1', '-W', '1', ip])).exitCode === 0) pingOk++;
          log(
            `[${name}] pod ${i + 1}/${PODS} ${ip}: ADD ${ms(addedMs - t1)} ms, /32 route at ${seen === undefined ? '—' : ms(seen - t1)} ms, iptables at ${rules === undefined ? '—' : ms(rules - t1)} ms, reachable ${ms(a.answeredMs - addedMs)} ms after ADD returned (${a.attempts} attempts)`,
          );
        }
      } finally {
        sub.close();
        await monitor.stop();
        probe.child.stdin!.end();
        await probe.stop();
      }
      return { ...out, probeOverheadMs, probeRttMs, how, pingOk };
    }
  } finally {
    for (const ns of opened) ns.close();
    await cluster.down().catch((e: unknown) => log(`[${name}] teardown: ${String(e)}`));
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    log('node bench: needs root (network namespaces); skipped');
    return;
  }
  if (NODE_BUILT) {
    log('building @calico-ts/node and @calico-ts/cni (nx, cached when unchanged)…');
    buildNodeAndCni();
    const { freshBuild } = await import('@calico-ts/lab');
    if (!freshBuild(fileURLToPath(import.meta.resolve('@calico-ts/node'))))
      throw new Error('the build of @calico-ts/node is older than its source after building');
  }
  const started = new Date();
  const results: ModeResult[] = [await runMode('vxlan', true)];
  if (WITH_BGP) results.push(await runMode('bgp', false));

  const p = (s: string) => process.stdout.write(`${s}\n`);
  p(
    `\ncalico-node bench, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC; calico-node ${NODE_BUILT ? 'built (dist/bin.js)' : 'from source'}`,
  );
  for (const r of results)
    p(`${r.backend}: load average ${r.loadStart} at start, ${r.loadEnd} at end; pod eth0 MTU ${r.podMtu}`);
  const v = results[0]!.add!;
  p(`\n| measurement (VXLAN, ${PODS} pods added one after another on node 2) | p50 | p99 | max |`);
  p('| --- | ---: | ---: | ---: |');
  const row = (label: string, xs: number[]) =>
    p(`| ${label} | ${ms(pct(xs, 50))} ms | ${ms(pct(xs, 99))} ms | ${ms(Math.max(...xs))} ms |`);
  row('pod netns creation (before ADD)', v.nsMs);
  row('CNI ADD (plugin exec → result)', v.addMs);
  row('**CNI ADD returned → reachable from a node-1 pod**', v.reachMs);
  row(`ADD started → Felix's /32 route on node 2 (${v.routeMs.length} seen)`, v.routeMs);
  row(`ADD started → endpoint's iptables rules on node 2 (${v.rulesMs.length} seen)`, v.rulesMs);
  row('/32 route on node 2 → reachable', v.routeToReachMs);
  row('iptables rules on node 2 → reachable', v.rulesToReachMs);
  row('ADD started → reachable', v.startToReachMs);
  row('probe: command hand-over', v.probeOverheadMs);
  row('probe: SYN → RST round trip to a reachable pod', v.probeRttMs);
  p(
    `\nanswers: ${[...v.how].map(([k, n]) => `${k} ${n}`).join(', ')}; ICMP echo afterwards ok for ${v.pingOk}/${PODS}`,
  );
  p(
    `\n| mode | node→node Gbit/s (median) | pod→pod Gbit/s (median) | pod ÷ node, median of paired rounds | best pod ÷ best node | rounds (node / pod) |`,
  );
  p('| --- | ---: | ---: | ---: | ---: | --- |');
  // BENCH_ROUNDS=0 measures no throughput.
  for (const r of results.filter((x) => x.iperf.node.length > 0)) {
    const med = (xs: number[]) => pct(xs, 50);
    const ratios = r.iperf.pod.map((x, i) => x / r.iperf.node[i]!);
    p(
      `| ${r.backend} | ${med(r.iperf.node).toFixed(2)} | ${med(r.iperf.pod).toFixed(2)} | ${(100 * med(ratios)).toFixed(0)} % (rounds ${ratios.map((x) => `${(100 * x).toFixed(0)}`).join(', ')}) | ${((100 * Math.max(...r.iperf.pod)) / Math.max(...r.iperf.node)).toFixed(0)} % | ${r.iperf.node.map((x) => x.toFixed(2)).join(', ')} / ${r.iperf.pod.map((x) => x.toFixed(2)).join(', ')} |`,
    );
  }
  const ratio = (r: ModeResult) =>
    pct(
      r.iperf.pod.map((x, i) => x / r.iperf.node[i]!),
      50,
    );
  if (results.length === 2)
    p(
      `\nVXLAN pod→pod as a share of BGP (native) pod→pod, each against its own node→node: ${((100 * ratio(results[0]!)) / ratio(results[1]!)).toFixed(0)} %`,
    );
  p(`\n| mode | calico-node spawn → ready | RSS per node, 2 pods each | RSS after the run |`);
  p('| --- | --- | --- | --- |');
  for (const r of results)
    p(
      `| ${r.backend} | ${r.readyMs.map((x) => `${ms(x)} ms`).join(', ')} | ${r.rssMb.map((x) => `${x.toFixed(0)} MB`).join(', ')} | ${r.rssAfterMb.map((x) => `${x.toFixed(0)} MB`).join(', ')} |`,
    );
}

if (process.argv[2] === 'probe') runProbe();
else await main();
