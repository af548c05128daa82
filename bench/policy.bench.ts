// Felix policy programming at scale, on real etcd and one lab node with BENCH_PODS (200) local
// workload endpoints (a pod namespace with a veth each) and 300 remote endpoints, for each size in
// BENCH_POLICIES (1000,10000) Calico NetworkPolicies / GlobalNetworkPolicies (selectors, ports,
// nets; one in twenty selects five local pods, the rest none, as in a real cluster):
// - full resync: Felix start → dataplane in sync; iptables-save + ip6tables-save line count; RSS
//   after sync; the peer is a plain `iptables-restore` and `ip6tables-restore` of the same saved
//   rulesets into a fresh namespace;
// - change → enforcement: a Deny for one pod's TCP 80 written, then deleted; the time until a
//   prober in another pod (a TCP connect every 5 ms) sees the connect fail / succeed;
// - an unrelated change (a policy selecting no local endpoint): restore lines written;
// - ipset delta: a remote endpoint's label change that moves it into a selector, until
//   `ipset save` shows its address.
// Policies of the larger size are the smaller set plus more; between sizes Felix is stopped and the
// node's iptables and ipsets are flushed, so each resync programs them from nothing (routes and
// per-interface sysctls stay). Everything made carries a run-unique prefix and is removed at the
// end, also on failure or timeout (BENCH_TIMEOUT_S, 900 s). `pnpm bench policy`; BENCH_POLICIES,
// BENCH_PODS, BENCH_CHANGES (100 per size: 50 denies, 50 deletes), BENCH_IPSET_CHANGES (10 per size) override.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EtcdDatastore, namespaceProfile } from '@calico-ts/datastore';
import { type ApplyStats, Felix } from '@calico-ts/felix';
import {
  createNamespace,
  deleteNamespace,
  execInNamespace,
  type NetNamespace,
  waitFor,
} from '@calico-ts/kernel';
import { createLab, type EtcdProcess, type Lab, labNodeIpv4, startEtcd } from '@calico-ts/lab';
import { benchPolicy, pool } from './policy-set.ts';

// A GC to call before reading memory, also when run without --expose-gc (`pnpm bench`).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SIZES = (process.env['BENCH_POLICIES'] ?? '1000,10000').split(',').map(Number);
const PODS = Number(process.env['BENCH_PODS'] ?? 200);
const CHANGES = Number(process.env['BENCH_CHANGES'] ?? 100);
const IPSET_CHANGES = Number(process.env['BENCH_IPSET_CHANGES'] ?? 10);
const TIMEOUT_S = Number(process.env['BENCH_TIMEOUT_S'] ?? 900);
const REMOTES = 300;
const NAMESPACES = 10;
const APPS = 40;
const NODE = 'bench-node';
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
// BENCH_PREFIX (two letters, default pb) lets a caller keep its runs under its own prefix.
const prefix = `${process.env['BENCH_PREFIX'] ?? 'pb'}${randomBytes(2).toString('hex')}`;
const started = performance.now();
const budgetLeft = () => TIMEOUT_S * 1000 - (performance.now() - started);

const podIp = (i: number) => `10.66.${i >> 7}.${(i & 127) + 2}`;
const remoteIp = (j: number) => `10.67.${j >> 7}.${(j & 127) + 2}`;
const MOVER_IP = '10.67.200.2';
const iface = (i: number) => `cali${prefix}${i.toString(16).padStart(5, '0')}`;
// Pods 0, 1 and 2 are the probed server, the prober and the ipset test's target: no background
// policy selects them.
const podApp = (i: number) =>
  i === 0 ? 'probe-target' : i === 1 ? 'probe-client' : i === 2 ? 'ipset-target' : `app-${i % APPS}`;

/** Serves TCP 80 (accept, close); or connects to ip:port every `interval` s and prints each
 * change of outcome as `<1|0> <CLOCK_MONOTONIC ns when that connect started>`, in start order. */
const PROBE_SCRIPT = `
import selectors, socket, struct, sys, time
if sys.argv[1] == 'serve':
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', 80)); s.listen(1024)
    while True:
        c, _ = s.accept(); c.close()
ip, port, interval, timeout = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
sel = selectors.DefaultSelector()
pending = []
last = None
nxt = time.monotonic()
def finish(e, ok):
    e[2] = ok; sel.unregister(e[1])
    e[1].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    e[1].close()
while True:
    if time.monotonic() >= nxt:
        s = socket.socket(); s.setblocking(False)
        e = [time.monotonic_ns(), s, None]
        s.connect_ex((ip, port))
        pending.append(e); sel.register(s, selectors.EVENT_WRITE, e)
        nxt += interval
    for key, _ in sel.select(max(0, nxt - time.monotonic())):
        finish(key.data, 1 if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 else 0)
    now = time.monotonic_ns()
    for e in pending:
        if e[2] is None and now - e[0] > timeout * 1e9:
            finish(e, 0)
    while pending and pending[0][2] is not None:
        e = pending.pop(0)
        if e[2] != last:
            last = e[2]; print(e[2], e[0], flush=True)
`;

/** Background policy k: one in twenty selects a local app (five local pods). */
const policy = (k: number) =>
  benchPolicy(k, {
    namespace: (j) => `ns-${j % NAMESPACES}`,
    localSelector: (j) => `app == 'app-${j % APPS}'`,
  });

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? Number.NaN;
};
const ms = (x: number) => `${x.toFixed(0)} ms`;
const monoNs = () => process.hrtime.bigint();

let lab: Lab | undefined;
let etcd: EtcdProcess | undefined;
let ds: EtcdDatastore | undefined;
let felix: Felix | undefined;
let scriptDir: string | undefined;
let peerNs: NetNamespace | undefined;
const peerName = `${prefix}-peer`;

async function cleanup(): Promise<void> {
  await felix?.stop().catch(() => {});
  await ds?.close().catch(() => {});
  await etcd?.stop().catch(() => {});
  // Stops the server and prober (by pid) and removes every namespace, with their interfaces.
  await lab?.teardown().catch((e: unknown) => console.error(e));
  peerNs?.close();
  await deleteNamespace(peerName, { ifExists: true }).catch((e: unknown) => console.error(e));
  if (scriptDir) rmSync(scriptDir, { recursive: true, force: true });
}

for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    console.error(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
const watchdog = setTimeout(() => {
  console.error(`policy bench: over ${TIMEOUT_S} s, cleaning up`);
  void cleanup().finally(() => process.exit(1));
}, TIMEOUT_S * 1000);

async function nodeExec(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await execInNamespace(lab!.nodes[0]!.namespace, cmd, args, input === undefined ? {} : { input });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.slice(0, 300)}`);
  return r.stdout;
}

/** Removes every chain and set from the node, so the next Felix programs them from nothing. */
async function flushNode(): Promise<void> {
  // Both families: IPv6 rules reference the cali60 sets, which cannot go while they do.
  for (const tool of ['iptables', 'ip6tables']) {
    const tables = (await nodeExec(`${tool}-save`, []))
      .split('\n')
      .filter((l) => l.startsWith('*'))
      .map((l) => l.slice(1));
    for (const t of tables) {
      await nodeExec(tool, ['-t', t, '-F']);
      await nodeExec(tool, ['-t', t, '-X']);
    }
  }
  await nodeExec('ipset', ['destroy']);
}

async function setup(): Promise<{ prober: ProbeWatch }> {
  scriptDir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const script = join(scriptDir, 'probe.py');
  writeFileSync(script, PROBE_SCRIPT);
  lab = await createLab({ prefix, nodes: 1 });
  etcd = await startEtcd();
  ds = new EtcdDatastore({ endpoints: [etcd.endpoint] });
  await ds.create('IPPool', {
    metadata: { name: 'pool' },
    spec: { cidr: '10.66.0.0/16', ipipMode: 'Never', vxlanMode: 'Never', blockSize: 26 },
  });
  await ds.create('Node', {
    metadata: { name: NODE },
    spec: { bgp: { ipv4Address: `${labNodeIpv4(1)}/24` } },
  });
  for (let n = 0; n < NAMESPACES; n++)
    await ds.create('Profile', namespaceProfile(`ns-${n}`, { ns: `ns-${n}` }));
  const node = lab.nodes[0]!;
  const t0 = performance.now();
  for (let i = 0; i < PODS; i++) {
    const pod = await lab.addPod(node.index, `p${i}`);
    const { mac } = await lab.wirePod(pod, { iface: iface(i), ipv4: podIp(i) });
    const ns = `ns-${i % NAMESPACES}`;
    await ds.create('WorkloadEndpoint', {
      metadata: {
        name: `${NODE}-k8s-p${i}-eth0`,
        namespace: ns,
        labels: {
          app: podApp(i),
          'projectcalico.org/namespace': ns,
          'projectcalico.org/orchestrator': 'k8s',
        },
      },
      spec: {
        node: NODE,
        orchestrator: 'k8s',
        pod: `p${i}`,
        endpoint: 'eth0',
        interfaceName: iface(i),
        mac,
        ipNetworks: [`${podIp(i)}/32`],
        profiles: [`kns.${ns}`],
      },
    });
  }
  console.error(`${PODS} pods in ${ms(performance.now() - t0)}`);
  const remote = (j: number, name: string, ip: string, labels: Record<string, string>) =>
    ds!.create('WorkloadEndpoint', {
      metadata: { name: `remote-${j % 20}-k8s-${name}-eth0`, namespace: `ns-${j % NAMESPACES}`, labels },
      spec: {
        node: `remote-${j % 20}`,
        orchestrator: 'k8s',
        pod: name,
        endpoint: 'eth0',
        interfaceName: `cali-r${j}`,
        ipNetworks: [`${ip}/32`],
        profiles: [`kns.ns-${j % NAMESPACES}`],
      },
    });
  await pool(0, REMOTES, 16, (j) =>
    remote(j, `r${j}`, remoteIp(j), { app: `app-${j % APPS}`, role: `r-${j % 100}` }),
  );
  await remote(0, 'mover', MOVER_IP, { app: 'mover' });
  // The ipset test's policy: selects pod 2, admits sources labelled moved=yes.
  await ds.create('GlobalNetworkPolicy', {
    metadata: { name: 'bench-ipset' },
    spec: {
      order: 10,
      selector: "app == 'ipset-target'",
      types: ['Ingress'],
      ingress: [{ action: 'Allow', source: { selector: "moved == 'yes'" } }],
    },
  });
  await lab.spawn(await podNs(0), PYTHON, [script, 'serve']);
  const proc = await lab.spawn(await podNs(1), PYTHON, [script, 'probe', podIp(0), '80', '0.005', '0.3']);
  const prober = new ProbeWatch(createInterface({ input: proc.child.stdout! }));
  return { prober };
}

async function podNs(i: number): Promise<NetNamespace> {
  return lab!.pods.find((p) => p.name.endsWith(`-p${i}`))!.namespace;
}

/** The prober's outcome changes as they arrive: the last one, and those waited for. */
class ProbeWatch {
  state: { ok: boolean; at: bigint } | undefined;
  /** Changes whose outcome the prober already showed before the write (measured as 0 ms). */
  early = 0;
  #waiters: ((s: { ok: boolean; at: bigint }) => void)[] = [];
  constructor(lines: AsyncIterable<string>) {
    void (async () => {
      for await (const line of lines) {
        const [ok, at] = line.split(' ');
        this.state = { ok: ok === '1', at: BigInt(at!) };
        for (const w of this.#waiters.splice(0)) w(this.state);
      }
    })();
  }

  /** Ms from `since` (CLOCK_MONOTONIC ns) to the first connect started after it with outcome `ok`. */
  async sees(ok: boolean, since: bigint): Promise<number> {
    const deadline = performance.now() + 20_000;
    for (;;) {
      const s = this.state;
      if (s?.ok === ok) {
        // Already so before the write: a connect timed out under load just before it (or the
        // change came before any connect did). Counted, so the figures can say so.
        if (s.at < since) this.early++;
        return Number((s.at > since ? s.at : since) - since) / 1e6;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`prober did not see connects ${ok ? 'succeed' : 'fail'} within 20 s`);
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((res) => {
        this.#waiters.push(() => res());
        timer = setTimeout(res, left);
      });
      clearTimeout(timer);
    }
  }
}

interface SizeResult {
  policies: number;
  resyncMs: number;
  resyncLines: number;
  iptablesSaveLines: number;
  ipsets: number;
  rssMb: number;
  heapGrowthMb: number;
  applyMs: number[];
  applyLines: number[];
  /** Per change: write → start of the apply that programmed it (watch, calculation, a running apply). */
  queueMs: number[];
  /** Phases of the applies that programmed a change. */
  phases: ApplyStats['phasesMs'][];
  peerMs: number;
  peerIpsetMs: number;
  deny: number[];
  allow: number[];
  unrelatedLines: number[];
  ipsetAdd: number[];
  ipsetRemove: number[];
}

async function runSize(n: number, prober: ProbeWatch, budgetMs: number): Promise<SizeResult> {
  const sizeStart = performance.now();
  const node = lab!.nodes[0]!;
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  let resyncLines = 0;
  const t0 = performance.now();
  felix = new Felix({ datastore: ds!, nodeName: NODE, netns: node.namespace });
  const onResync = (s: ApplyStats) => {
    resyncLines += s.iptablesLines;
  };
  felix.on('applied', onResync);
  felix.start();
  await felix.whenReady();
  const resyncMs = performance.now() - t0;
  felix.off('applied', onResync);
  const st = felix.status();
  if (st.errors.length > 0) throw new Error(`Felix errors after sync: ${st.errors.join('; ')}`);
  gc();
  const rss1 = process.memoryUsage().rss;
  const heap1 = process.memoryUsage().heapUsed;
  const save = await nodeExec('iptables-save', []);
  // Felix programs IPv6 policy too (ip6tables, cali60 sets) when the kernel has ip6tables.
  const save6 = await nodeExec('ip6tables-save', []);
  const saveLines = save.split('\n').length - 1 + (save6.split('\n').length - 1);
  const ipsetSave = await nodeExec('ipset', ['save']);
  console.error(`${n} policies: resync ${ms(resyncMs)}, ${saveLines} iptables + ip6tables lines`);

  // Peer: the same sets and ruleset restored into a fresh namespace.
  peerNs = await createNamespace(peerName);
  const tIpset = performance.now();
  let r = await execInNamespace(peerNs, 'ipset', ['restore'], { input: ipsetSave });
  const peerIpsetMs = performance.now() - tIpset;
  if (r.exitCode !== 0) throw new Error(`peer ipset restore: ${r.stderr.slice(0, 300)}`);
  const tPeer = performance.now();
  r = await execInNamespace(peerNs, 'iptables-restore', [], { input: save });
  if (r.exitCode !== 0) throw new Error(`peer iptables-restore: ${r.stderr.slice(0, 300)}`);
  r = await execInNamespace(peerNs, 'ip6tables-restore', [], { input: save6 });
  const peerMs = performance.now() - tPeer;
  if (r.exitCode !== 0) throw new Error(`peer ip6tables-restore: ${r.stderr.slice(0, 300)}`);
  peerNs.close();
  peerNs = undefined;
  await deleteNamespace(peerName);

  const applied: ApplyStats[] = [];
  /** Every apply of the change loop with the time its 'applied' event came, and every write's time. */
  const applyLog: { stats: ApplyStats; at: number }[] = [];
  const writes: number[] = [];
  felix.on('applied', (s) => {
    applied.push(s);
    applyLog.push({ stats: s, at: performance.now() });
  });
  const queueMs: number[] = [];
  const phases: ApplyStats['phasesMs'][] = [];
  /** For each write, the first apply that started after it and wrote rules: its wait and phases. */
  const attribute = () => {
    for (const w of writes) {
      const a = applyLog.find((e) => e.stats.iptablesLines > 0 && e.at - e.stats.durationMs >= w);
      if (!a) continue;
      queueMs.push(a.at - a.stats.durationMs - w);
      phases.push(a.stats.phasesMs);
    }
  };

  // Change → enforcement: a Deny for pod 0's TCP 80, then its deletion.
  await prober.sees(true, 0n);
  const deny: number[] = [];
  // The applies each change caused (Felix's own time in iptables/ipset work, and lines written).
  const changeApplies: ApplyStats[] = [];
  const allow: number[] = [];
  const share = (budgetMs - (performance.now() - sizeStart)) * 0.7;
  const changesStart = performance.now();
  for (let c = 0; c < CHANGES / 2 && performance.now() - changesStart < share; c++) {
    let since = monoNs();
    writes.push(performance.now());
    await ds!.create('GlobalNetworkPolicy', {
      metadata: { name: 'bench-probe-deny' },
      spec: {
        order: 1,
        selector: "app == 'probe-target'",
        types: ['Ingress'],
        ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [80] } }],
      },
    });
    applied.length = 0;
    deny.push(await prober.sees(false, since));
    changeApplies.push(...applied);
    since = monoNs();
    writes.push(performance.now());
    await ds!.delete('GlobalNetworkPolicy', 'bench-probe-deny');
    applied.length = 0;
    allow.push(await prober.sees(true, since));
    changeApplies.push(...applied);
  }

  console.error(
    `${n} policies: ${deny.length + allow.length} changes, min ${ms(Math.min(...deny, ...allow))}, ${prober.early} seen before the write so far`,
  );

  // Unrelated changes: a policy selecting no local endpoint created, updated, deleted. Nothing
  // observable follows, so each gets a fixed 1 s window for whatever apply it causes.
  const unrelatedLines: number[] = [];
  // k = 999999: a GlobalNetworkPolicy (k % 3 == 0) selecting no local app (k % 20 != 0).
  const unrelated = policy(999_999);
  const window = async (write: () => Promise<unknown>) => {
    applied.length = 0;
    await write();
    await new Promise((res) => setTimeout(res, 1000));
    unrelatedLines.push(applied.reduce((a, s) => a + s.iptablesLines, 0));
  };
  if (unrelated.kind !== 'GlobalNetworkPolicy') throw new Error('unrelated policy should be global');
  // The last change's apply may still be finishing (its rules are in, its 'applied' event not
  // yet emitted): let it land before the first window.
  await new Promise((res) => setTimeout(res, 1000));
  attribute();
  await window(() => ds!.create('GlobalNetworkPolicy', unrelated.body));
  await window(async () => {
    const cur = await ds!.get('GlobalNetworkPolicy', unrelated.body.metadata.name);
    await ds!.update('GlobalNetworkPolicy', { ...cur, spec: { ...cur.spec, order: 999 } });
  });
  await window(() => ds!.delete('GlobalNetworkPolicy', unrelated.body.metadata.name));

  // ipset delta: the remote "mover" endpoint gains / loses moved=yes.
  const ipsetAdd: number[] = [];
  const ipsetRemove: number[] = [];
  const moverName = 'remote-0-k8s-mover-eth0';
  const hasMover = async () =>
    new RegExp(`^add \\S+ ${MOVER_IP.replaceAll('.', '\\.')}$`, 'm').test(await nodeExec('ipset', ['save']));
  const ipsetStart = performance.now();
  const ipsetShare = budgetMs - (performance.now() - sizeStart) - 5000;
  for (let c = 0; c < IPSET_CHANGES && performance.now() - ipsetStart < ipsetShare; c++) {
    for (const moved of [true, false]) {
      const cur = await ds!.get('WorkloadEndpoint', moverName, 'ns-0');
      const labels = { ...cur.metadata.labels };
      if (moved) labels['moved'] = 'yes';
      else delete labels['moved'];
      const t = performance.now();
      await ds!.update('WorkloadEndpoint', { ...cur, metadata: { ...cur.metadata, labels } });
      await waitFor(async () => (await hasMover()) === moved, {
        timeoutMs: 20_000,
        intervalMs: 5,
        what: `mover ${moved ? 'in' : 'out of'} the ipset`,
      });
      (moved ? ipsetAdd : ipsetRemove).push(performance.now() - t);
    }
  }

  await felix.stop();
  felix = undefined;
  return {
    policies: n,
    resyncMs,
    resyncLines,
    iptablesSaveLines: saveLines,
    ipsets: st.ipsets,
    rssMb: rss1 / 1048576,
    heapGrowthMb: (heap1 - heap0) / 1048576,
    applyMs: changeApplies.map((a) => a.durationMs),
    applyLines: changeApplies.map((a) => a.iptablesLines),
    queueMs,
    phases,
    peerMs,
    peerIpsetMs,
    deny,
    allow,
    unrelatedLines,
    ipsetAdd,
    ipsetRemove,
  };
}

const results: SizeResult[] = [];
let failure: unknown;
try {
  const { prober } = await setup();
  let written = 0;
  for (const [idx, n] of SIZES.entries()) {
    const tw = performance.now();
    await pool(written, n, 32, async (k) => {
      const p = policy(k);
      if (p.kind === 'GlobalNetworkPolicy') await ds!.create('GlobalNetworkPolicy', p.body);
      else await ds!.create('NetworkPolicy', p.body);
    });
    console.error(`wrote policies ${written}..${n - 1} in ${ms(performance.now() - tw)}`);
    written = n;
    if (idx > 0) await flushNode();
    // The rest of the budget, shared among the sizes left, the larger getting more.
    const left = SIZES.slice(idx).reduce((a, b) => a + b, 0);
    results.push(await runSize(n, prober, (budgetLeft() - 30_000) * (n / left)));
  }
} catch (e) {
  failure = e;
} finally {
  clearTimeout(watchdog);
  await cleanup();
}

const pct = (xs: number[]) =>
  xs.length === 0 ? '—' : `${ms(quantile(xs, 0.5))} / ${ms(quantile(xs, 0.99))} (n=${xs.length})`;
const rows = [
  `| policies | resync (Felix start → in sync) | peer: iptables-restore of the saved ruleset | peer ÷ ours | iptables-save lines | process RSS after sync (Felix heap after GC) | deny → probe fails p50 / p99 | delete → probe succeeds p50 / p99 | all changes p50 / p99 | Felix apply per change p50 / p99, restore lines p50 / max | unrelated change: restore lines (create, update, delete) | ipset add p50 / max | ipset remove p50 / max |`,
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...results.map(
    (r) =>
      `| ${r.policies} | ${ms(r.resyncMs)} (${r.resyncLines} restore lines) | ${ms(r.peerMs)} (+ ${ms(r.peerIpsetMs)} ipset restore of ${r.ipsets} sets) | ${(r.peerMs / r.resyncMs).toFixed(2)} | ${r.iptablesSaveLines} | ${r.rssMb.toFixed(0)} MB (${r.heapGrowthMb.toFixed(0)} MB) | ${pct(r.deny)} | ${pct(r.allow)} | ${pct([...r.deny, ...r.allow])} | ${pct(r.applyMs)}, ${quantile(r.applyLines, 0.5)} / ${Math.max(...r.applyLines)} | ${r.unrelatedLines.join(', ')} | ${ms(quantile(r.ipsetAdd, 0.5))} / ${ms(Math.max(...r.ipsetAdd))} | ${ms(quantile(r.ipsetRemove, 0.5))} / ${ms(Math.max(...r.ipsetRemove))} |`,
  ),
];
process.stdout.write(`${rows.join('\n')}\n`);
// Where a change's time goes: waiting to be applied, then each phase of the apply that programmed it.
for (const r of results) {
  const phaseNames = Object.keys(r.phases[0] ?? {}) as (keyof ApplyStats['phasesMs'])[];
  const parts = phaseNames.map((p) => `${p} ${pct(r.phases.map((x) => x[p]))}`);
  process.stdout.write(
    `${r.policies} policies, per change p50 / p99: write → apply start ${pct(r.queueMs)}; ${parts.join('; ')}\n`,
  );
}
if (failure) {
  console.error(failure);
  process.exit(1);
}
process.exit(0);
