// `calico cluster` as a user runs it: (1) `calico cluster up --nodes 3` from the command to its
// return (every calico-node ready, BGP Established in BGP mode), the CLI's own start-up included;
// (2) single-stream TCP throughput (iperf3, 5 s) across two nodes in BGP mode (encapsulation none)
// and in VXLAN mode, interleaved in rounds whose order rotates: pod→pod (pods added with
// `calico cluster pod add`, so through the CNI plugin and Felix's rules) against three baselines on
// the same fabric — node→node over the underlay, pod→pod over namespaces wired by hand (a veth
// per side, static /32 routes, no agent, no rules: this topology's limit), and the same over a
// VXLAN device wired by hand on each node (the kernel's own VXLAN cost). Medians; Markdown rows
// for docs/benchmarks.md. (3) TCP request/response latency (sockperf ping-pong, p50 and p99 of one
// 3 s run per path and round) on the same three paths, interleaved with the throughput rounds.
// (4) `calico cluster up --nodes 10` to ready in each mode. (5) Per iperf3 run, two figures that
// the machine's load moves far less than throughput: CPU seconds per GB (the iperf3 client's and server's user +
// system time as iperf3 reports it; with tick accounting that includes the softirq work done in
// their context, which on veth is the whole forward path) and the mean size of the packets node 1
// sent on its underlay veth (bytes ÷ packets from `ip -s link`: 64 KB GSO packets or MTU-sized).
// `pnpm bench cluster`; BENCH_ROUNDS (5), BENCH_IPERF_SECONDS (5), BENCH_SOCKPERF_SECONDS (3),
// BENCH_BIG_NODES (10, 0 = skip) override; BENCH_PREFIX (clb) starts every cluster's name.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg as osLoadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  createNamespace,
  deleteNamespace,
  execInNamespace,
  type NamespaceProcess,
  NetNamespace,
  spawnInNamespace,
  waitFor,
} from '@calico-ts/kernel';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const IPERF_SECONDS = Number(process.env['BENCH_IPERF_SECONDS'] ?? 5);
const IPERF_PORT = 5201;
const SOCKPERF_PORT = 11111;
const SOCKPERF_SECONDS = Number(process.env['BENCH_SOCKPERF_SECONDS'] ?? 3);
const BIG_NODES = Number(process.env['BENCH_BIG_NODES'] ?? 10);
const CLI = resolve(import.meta.dirname, '../packages/ctl/src/cli.ts');
const PREFIX = process.env['BENCH_PREFIX'] ?? 'clb';
const clustersDir = mkdtempSync(join(tmpdir(), `${PREFIX}-clusters-`));
const loadavg = (): string =>
  osLoadavg()
    .map((x) => x.toFixed(1))
    .join(' ');
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function calico(args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--conditions=@calico-ts/source', CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CALICO_CLUSTERS_DIR: clustersDir, CALICO_LOG_LEVEL: 'error', NO_COLOR: '1' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', rej);
    child.on('close', (code) => (code === 0 ? res(out) : rej(new Error(`calico ${args.join(' ')}: ${out}`))));
  });
}

type Path = 'node' | 'pod' | 'hand' | 'handvx';
interface ModeResult {
  mode: string;
  upMs: number;
  gbps: Record<Path, number[]>;
  /** sockperf ping-pong p50 and p99, µs, per round. */
  p50: Record<Path, number[]>;
  p99: Record<Path, number[]>;
  /** CPU seconds (iperf3 client + server) per GB received, per round. */
  cpuPerGb: Record<Path, number[]>;
  /** Mean size of the packets node 1 sent on its underlay veth during the run, bytes, per round. */
  underlayPacket: Record<Path, number[]>;
  /** `cluster up --nodes BIG_NODES` to ready (ms), or undefined when skipped. */
  bigUpMs: number | undefined;
  load: [string, string];
}

/** sockperf ping-pong over TCP from `ns` to `target`: the p50 and p99 round-trip latency in µs. */
async function sockperfUs(
  ns: NetNamespace,
  target: string,
  what: string,
): Promise<{ p50: number; p99: number }> {
  const r = await execInNamespace(ns, 'sockperf', [
    'ping-pong',
    '--tcp',
    '-i',
    target,
    '-p',
    String(SOCKPERF_PORT),
    '-t',
    String(SOCKPERF_SECONDS),
  ]);
  const out = r.stdout + r.stderr;
  const pct = (p: string): number => {
    const m = out.match(new RegExp(`percentile ${p} = +([\\d.]+)`));
    if (r.exitCode !== 0 || !m) throw new Error(`sockperf ${what} → ${target}: ${out.slice(-400)}`);
    return Number(m[1]);
  };
  return { p50: pct('50.000'), p99: pct('99.000') };
}

/**
 * One iperf3 client run (pinned to CPU 1, JSON): Gbit/s received and CPU seconds per GB, the
 * client's and the server's user + system time (`cpu_utilization_percent` × duration).
 */
async function iperf3Run(
  ns: NetNamespace,
  target: string,
  what: string,
): Promise<{ gbps: number; cpuPerGb: number }> {
  const r = await execInNamespace(ns, 'iperf3', [
    '-c',
    target,
    '-p',
    String(IPERF_PORT),
    '-t',
    String(IPERF_SECONDS),
    '-A',
    '1',
    '-J',
  ]);
  if (r.exitCode !== 0) throw new Error(`iperf3 ${what} → ${target}: ${r.stdout.slice(0, 400)} ${r.stderr}`);
  const j = JSON.parse(r.stdout) as {
    end: {
      sum_received: { bits_per_second: number; bytes: number; seconds: number };
      cpu_utilization_percent: { host_total: number; remote_total: number };
    };
  };
  const { sum_received: rx, cpu_utilization_percent: cpu } = j.end;
  const cpuSeconds = ((cpu.host_total + cpu.remote_total) / 100) * rx.seconds;
  return { gbps: rx.bits_per_second / 1e9, cpuPerGb: cpuSeconds / (rx.bytes / 1e9) };
}

/** tx packets and bytes of `dev` in `ns`. */
async function txCounters(ns: NetNamespace, dev: string): Promise<{ packets: number; bytes: number }> {
  const r = await execInNamespace(ns, 'ip', ['-s', '-j', 'link', 'show', dev]);
  const [link] = JSON.parse(r.stdout) as { stats64: { tx: { packets: number; bytes: number } } }[];
  if (r.exitCode !== 0 || !link) throw new Error(`${ns.name}: ip -s link show ${dev}: ${r.stderr}`);
  return link.stats64.tx;
}

async function sh(ns: NetNamespace, cmd: string): Promise<void> {
  const r = await execInNamespace(ns, 'sh', ['-c', cmd]);
  if (r.exitCode !== 0) throw new Error(`${ns.name}: ${cmd}: ${r.stderr}`);
}

async function benchMode(encapsulation: 'none' | 'vxlan'): Promise<ModeResult> {
  const name = `${PREFIX}${Math.random().toString(16).slice(2, 6)}`;
  const load0 = loadavg();
  const handNs: string[] = [];
  const servers: NamespaceProcess[] = [];
  const opened: NetNamespace[] = [];
  const open = (n: string) => {
    const ns = NetNamespace.open(n);
    opened.push(ns);
    return ns;
  };
  try {
    const t0 = performance.now();
    await calico(['cluster', 'up', '--name', name, '--nodes', '3', '--encapsulation', encapsulation]);
    const upMs = performance.now() - t0;
    log(`[${encapsulation}] cluster up: ${(upMs / 1000).toFixed(1)} s (load ${loadavg()})`);
    await calico(['cluster', 'namespace', 'add', 'bench', '--name', name]);
    await calico(['cluster', 'pod', 'add', 'n1', 'bench/client', '--name', name]);
    await calico(['cluster', 'pod', 'add', 'n2', 'bench/server', '--name', name]);
    const record = JSON.parse(readFileSync(join(clustersDir, name, 'cluster.json'), 'utf8')) as {
      nodes: { name: string; address: string }[];
      pods: { name: string; ip: string; netns: string }[];
    };
    const [n1, n2] = [record.nodes[0]!, record.nodes[1]!];
    const pod = (p: string) => record.pods.find((x) => x.name === p)!;
    const node1 = open(n1.name);
    const node2 = open(n2.name);

    // The hand-wired pair: what Calico's dataplane does for a pod (veth, /32 routes, proxy ARP
    // for 169.254.1.1), done once by hand with no agent and no rules.
    const hand = [
      { node: node1, ns: `${name}-hw1`, ip: '10.250.1.2', peerIp: '10.250.2.2', peerNode: n2.address },
      { node: node2, ns: `${name}-hw2`, ip: '10.250.2.2', peerIp: '10.250.1.2', peerNode: n1.address },
    ];
    for (const h of hand) {
      const ns = await createNamespace(h.ns);
      opened.push(ns);
      handNs.push(h.ns);
      const host = `hw${h.ns.slice(-1)}${name.slice(-4)}`;
      await sh(h.node, `ip link add ${host} type veth peer name eth0 netns ${h.ns}`);
      await sh(h.node, `ip link set ${host} up && echo 1 > /proc/sys/net/ipv4/conf/${host}/proxy_arp`);
      await sh(
        h.node,
        `ip route add ${h.ip}/32 dev ${host} && ip route add ${h.peerIp}/32 via ${h.peerNode}`,
      );
      await sh(ns, `ip link set lo up && ip link set eth0 up && ip addr add ${h.ip}/32 dev eth0`);
      await sh(ns, 'ip route add 169.254.1.1 dev eth0 && ip route add default via 169.254.1.1');
    }
    // The same pair once more over a VXLAN device wired by hand on each node (VNI 4097 beside
    // Felix's 4096, same UDP port, static FDB and ARP entries, no agent, no rules): the kernel's
    // own VXLAN cost on this fabric, in either mode.
    const nodes = [
      { node: node1, i: 1, address: n1.address },
      { node: node2, i: 2, address: n2.address },
    ];
    const vxDev = `hvx${name.slice(-4)}`;
    const vxMac = (i: number) => `66:00:00:00:00:0${i}`;
    for (const { node, i, address } of nodes) {
      const peer = nodes.find((x) => x.i !== i)!;
      await sh(
        node,
        `ip link add ${vxDev} type vxlan id 4097 local ${address} dev eth0 dstport 4789 nolearning && ip link set ${vxDev} address ${vxMac(i)} mtu 1450 up && ip addr add 10.251.255.${i}/32 dev ${vxDev}`,
      );
      await sh(
        node,
        `bridge fdb append ${vxMac(peer.i)} dev ${vxDev} dst ${peer.address} && ip neigh replace 10.251.255.${peer.i} lladdr ${vxMac(peer.i)} dev ${vxDev} nud permanent && ip route add 10.251.${peer.i}.2/32 via 10.251.255.${peer.i} dev ${vxDev} onlink`,
      );
      const nsName = `${name}-hx${i}`;
      const ns = await createNamespace(nsName);
      opened.push(ns);
      handNs.push(nsName);
      const host = `hx${i}${name.slice(-4)}`;
      await sh(node, `ip link add ${host} type veth peer name eth0 netns ${nsName}`);
      await sh(node, `ip link set ${host} up && echo 1 > /proc/sys/net/ipv4/conf/${host}/proxy_arp`);
      await sh(node, `ip route add 10.251.${i}.2/32 dev ${host}`);
      await sh(
        ns,
        `ip link set lo up && ip link set eth0 mtu 1450 up && ip addr add 10.251.${i}.2/32 dev eth0`,
      );
      await sh(ns, 'ip route add 169.254.1.1 dev eth0 && ip route add default via 169.254.1.1');
    }
    const handVx1 = open(`${name}-hx1`);
    const handVx2 = open(`${name}-hx2`);
    const clientPod = open(pod('client').netns);
    const serverPod = open(pod('server').netns);
    const hand1 = open(`${name}-hw1`);
    const hand2 = open(`${name}-hw2`);

    const serveOn = async (ns: NetNamespace) => {
      servers.push(
        await spawnInNamespace(ns, 'iperf3', ['-s', '-p', String(IPERF_PORT), '-A', '0'], {
          stdio: 'ignore',
        }),
      );
      await waitFor(
        async () =>
          (await execInNamespace(ns, 'ss', ['-Hltn', `sport = :${IPERF_PORT}`])).stdout.includes(
            `:${IPERF_PORT}`,
          ),
        { timeoutMs: 10_000, what: `iperf3 server in ${ns.name}` },
      );
    };
    for (const ns of [node2, serverPod, hand2, handVx2]) await serveOn(ns);
    for (const ns of [node2, serverPod, hand2, handVx2]) {
      servers.push(
        await spawnInNamespace(
          ns,
          'sockperf',
          ['server', '--tcp', '-i', '0.0.0.0', '-p', String(SOCKPERF_PORT)],
          {
            stdio: 'ignore',
          },
        ),
      );
      await waitFor(
        async () =>
          (await execInNamespace(ns, 'ss', ['-Hltn', `sport = :${SOCKPERF_PORT}`])).stdout.includes(
            `:${SOCKPERF_PORT}`,
          ),
        { timeoutMs: 10_000, what: `sockperf server in ${ns.name}` },
      );
    }
    const paths: Record<Path, [NetNamespace, string]> = {
      node: [node1, n2.address],
      pod: [clientPod, pod('server').ip],
      hand: [hand1, '10.250.2.2'],
      handvx: [handVx1, '10.251.2.2'],
    };
    const gbps: Record<Path, number[]> = { node: [], pod: [], hand: [], handvx: [] };
    const cpuPerGb: Record<Path, number[]> = { node: [], pod: [], hand: [], handvx: [] };
    const underlayPacket: Record<Path, number[]> = { node: [], pod: [], hand: [], handvx: [] };
    // The lab wires each node to the underlay bridge through its `eth0`.
    const underlayDev = 'eth0';
    const p50: Record<Path, number[]> = { node: [], pod: [], hand: [], handvx: [] };
    const p99: Record<Path, number[]> = { node: [], pod: [], hand: [], handvx: [] };
    const order: Path[] = ['node', 'pod', 'hand', 'handvx'];
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < order.length; k++) {
        const path = order[(k + round) % order.length]!;
        const [ns, target] = paths[path];
        const before = await txCounters(node1, underlayDev);
        const run = await iperf3Run(ns, target, path);
        const after = await txCounters(node1, underlayDev);
        const g = run.gbps;
        gbps[path].push(g);
        cpuPerGb[path].push(run.cpuPerGb);
        underlayPacket[path].push((after.bytes - before.bytes) / Math.max(1, after.packets - before.packets));
        const lat = await sockperfUs(ns, target, path);
        p50[path].push(lat.p50);
        p99[path].push(lat.p99);
        log(
          `[${encapsulation}] round ${round + 1} ${path}: ${g.toFixed(2)} Gbit/s, ${run.cpuPerGb.toFixed(2)} CPU-s/GB, underlay packets ${underlayPacket[path].at(-1)!.toFixed(0)} B, p50 ${lat.p50.toFixed(1)} µs, p99 ${lat.p99.toFixed(1)} µs (load ${loadavg()})`,
        );
      }
    }
    return {
      mode: encapsulation === 'none' ? 'BGP (none)' : 'VXLAN',
      upMs,
      gbps,
      p50,
      p99,
      cpuPerGb,
      underlayPacket,
      bigUpMs: undefined,
      load: [load0, loadavg()],
    };
  } finally {
    for (const s of servers) await s.stop().catch(() => undefined);
    for (const ns of opened) ns.close();
    for (const n of handNs) await deleteNamespace(n, { ifExists: true }).catch(() => undefined);
    await calico(['cluster', 'down', '--name', name]).catch((err: Error) => log(err.message));
  }
}

/** `calico cluster up --nodes N` to its return (ready, BGP Established), then down. */
async function bigUp(encapsulation: 'none' | 'vxlan', nodes: number): Promise<number> {
  const name = `${PREFIX}${Math.random().toString(16).slice(2, 6)}`;
  try {
    const t0 = performance.now();
    await calico([
      'cluster',
      'up',
      '--name',
      name,
      '--nodes',
      String(nodes),
      '--encapsulation',
      encapsulation,
    ]);
    const ms = performance.now() - t0;
    log(`[${encapsulation}] cluster up with ${nodes} nodes: ${(ms / 1000).toFixed(1)} s (load ${loadavg()})`);
    return ms;
  } finally {
    await calico(['cluster', 'down', '--name', name]).catch((err: Error) => log(err.message));
  }
}

try {
  const results: ModeResult[] = [];
  for (const mode of ['none', 'vxlan'] as const) results.push(await benchMode(mode));
  // Last, so that a failure here (logged, shown as "failed") keeps the measurements above.
  if (BIG_NODES > 0)
    for (const r of results)
      r.bigUpMs = await bigUp(r.mode.startsWith('BGP') ? 'none' : 'vxlan', BIG_NODES).catch((err: Error) => {
        log(`cluster up with ${BIG_NODES} nodes failed: ${err.message.split('\n').slice(-2).join(' ')}`);
        return Number.NaN;
      });
  const f = (x: number) => x.toFixed(2);
  console.log(
    `\n| mode | cluster up (3 nodes) | node→node Gbit/s | hand-wired pod→pod | calico-ts pod→pod | pod / hand-wired | pod / node | load (start → end) |`,
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    const ratio = (a: Path, b: Path) => median(r.gbps[a].map((x, i) => x / r.gbps[b][i]!));
    console.log(
      `| ${r.mode} | ${(r.upMs / 1000).toFixed(1)} s | ${f(median(r.gbps.node))} | ${f(median(r.gbps.hand))} | ${f(median(r.gbps.pod))} | ${(100 * ratio('pod', 'hand')).toFixed(0)} % | ${(100 * ratio('pod', 'node')).toFixed(0)} % | ${r.load[0]} → ${r.load[1]} |`,
    );
  }
  console.log(
    `\n| mode | cluster up (${BIG_NODES} nodes) | node→node p50 / p99 µs | hand-wired p50 / p99 | calico-ts pod→pod p50 / p99 | pod / hand-wired p50 | pod / hand-wired p99 |`,
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    const lat = (p: Path) => `${median(r.p50[p]).toFixed(1)} / ${median(r.p99[p]).toFixed(1)}`;
    const ratio = (xs: Record<Path, number[]>) => median(xs.pod.map((x, i) => x / xs.hand[i]!)).toFixed(2);
    console.log(
      `| ${r.mode} | ${r.bigUpMs === undefined ? '-' : Number.isNaN(r.bigUpMs) ? 'failed' : `${(r.bigUpMs / 1000).toFixed(1)} s`} | ${lat('node')} | ${lat('hand')} | ${lat('pod')} | ${ratio(r.p50)}× | ${ratio(r.p99)}× |`,
    );
  }
  const [bgp, vxlan] = results;
  if (bgp && vxlan)
    console.log(
      `\nVXLAN pod→pod / BGP pod→pod (medians): ${((100 * median(vxlan.gbps.pod)) / median(bgp.gbps.pod)).toFixed(0)} %`,
    );
  console.log(
    '\n| mode | CPU-s per GB: node→node | hand-wired pod→pod | hand-wired over VXLAN | calico-ts pod→pod | pod / hand-wired (median of rounds) | pod / hand-wired over VXLAN | mean underlay packet: node→node | hand-wired | hand-wired over VXLAN | calico-ts pod→pod | Gbit/s hand-wired over VXLAN |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    const c = (p: Path) => median(r.cpuPerGb[p]).toFixed(2);
    const b = (p: Path) => `${median(r.underlayPacket[p]).toFixed(0)} B`;
    const ratio = (to: Path) => median(r.cpuPerGb.pod.map((x, i) => x / r.cpuPerGb[to][i]!)).toFixed(2);
    console.log(
      `| ${r.mode} | ${c('node')} | ${c('hand')} | ${c('handvx')} | ${c('pod')} | ${ratio('hand')}× | ${ratio('handvx')}× | ${b('node')} | ${b('hand')} | ${b('handvx')} | ${b('pod')} | ${f(median(r.gbps.handvx))} |`,
    );
  }
  if (bgp && vxlan)
    console.log(
      `VXLAN pod→pod CPU per GB / BGP pod→pod (medians): ${(median(vxlan.cpuPerGb.pod) / median(bgp.cpuPerGb.pod)).toFixed(2)}×`,
    );
  console.log(`rounds: ${ROUNDS} × ${IPERF_SECONDS} s per path, interleaved; per-round Gbit/s:`);
  for (const r of results)
    for (const p of ['node', 'hand', 'handvx', 'pod'] as const)
      console.log(
        `  ${r.mode} ${p}: ${r.gbps[p].map(f).join(', ')} Gbit/s; ${r.cpuPerGb[p].map(f).join(', ')} CPU-s/GB; p50 ${r.p50[p].map((x) => x.toFixed(1)).join(', ')} µs`,
      );
} finally {
  rmSync(clustersDir, { recursive: true, force: true });
}
