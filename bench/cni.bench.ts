// CNI ADD/DEL latency: our installed `calico` binary (the byte relay, talking to a CniServer
// hosted in this process with CalicoPlugin, real IPAM on a real etcd and the netlink dataplane)
// against Debian's Go `ptp` + `host-local`, side by side in one run. Everything happens inside the
// node of a throwaway one-node lab fabric; every pod gets a fresh namespace. Both plugins are exec'd the same
// way (`nsenter --net=<node> -- <binary>`, clean env), so the exec floor is the same for both.
// Steps: VERSION; 200 sequential ADDs then their DELs, ours and the peer's alternating call by
// call; then 30 concurrent ADDs (and DELs), three rounds, first mover alternating.
// `pnpm bench cni` (= `cd bench && node --conditions=@calico-ts/source cni.bench.ts`), as root.
// BENCH_CNI_SEQUENTIAL / BENCH_CNI_CONCURRENT / BENCH_CNI_ROUNDS override the sizes; BENCH_PREFIX
// the name tag of every namespace and process the run makes (default `cb`).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CalicoIpamPlugin,
  CalicoPlugin,
  CniServer,
  CONFLIST_FILE,
  IpamAdapter,
  installCni,
  LinuxWorkloadDataplane,
  type RequestHandler,
} from '@calico-ts/cni';
import { EtcdDatastore } from '@calico-ts/datastore';
import { Ipam } from '@calico-ts/ipam';
import { createNamespace, deleteNamespace } from '@calico-ts/kernel';
import { type Conflist, createLab, pluginConfig, startEtcd } from '@calico-ts/lab';
import { build } from 'tsup';
import { buildRelay } from '../packages/cni/build-relay.ts';
import { pluginBinaries } from '../packages/cni/tsup.config.ts';
import { runPrefix } from '../test-support/run-id.ts';

const SEQUENTIAL = Number(process.env['BENCH_CNI_SEQUENTIAL'] ?? 200);
const CONCURRENT = Number(process.env['BENCH_CNI_CONCURRENT'] ?? 30);
const ROUNDS = Number(process.env['BENCH_CNI_ROUNDS'] ?? 3);
const VERSIONS = 50;

const prefix = runPrefix(process.env['BENCH_PREFIX'] ?? 'cb');
// The node is node 1 of a one-node lab fabric (its namespace is `<prefix>-n1`).
const nodeNs = `${prefix}-n1`;
const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
const binDir = join(dir, 'bin');
const namespaces: string[] = [];
const cleanups: (() => unknown)[] = [() => rmSync(dir, { recursive: true, force: true })];

type Side = 'ours' | 'peer';
interface Answer {
  code: number;
  stdout: string;
  ms: number;
}

/** What a runtime does for one plugin call: exec with CNI_* set and the config on stdin. */
function exec(type: string, env: Record<string, string>, stdin: string): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=/run/netns/${nodeNs}`, '--', join(binDir, type)], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CNI_PATH: binDir, ...env },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, ms: performance.now() - started }));
    // A Go plugin answers VERSION without reading stdin and may be gone before we write it.
    child.stdin.on('error', () => {});
    child.stdin.end(stdin);
  });
}

interface Pod {
  netns: string;
  containerId: string;
  result?: unknown;
}

class Contender {
  readonly side: Side;
  readonly list: Conflist;
  readonly add: number[] = [];
  readonly del: number[] = [];
  constructor(side: Side, list: Conflist) {
    this.side = side;
    this.list = list;
  }

  #env(command: string, pod: Pod): Record<string, string> {
    return {
      CNI_COMMAND: command,
      CNI_CONTAINERID: pod.containerId,
      CNI_NETNS: pod.netns,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${pod.containerId}`,
    };
  }

  async doAdd(pod: Pod, into = this.add, splitInto?: Split): Promise<void> {
    const p = this.list.plugins[0]!;
    const a = await this.#call('ADD', pod, pluginConfig(this.list, p), splitInto);
    pod.result = JSON.parse(a.stdout);
    into.push(a.ms);
  }

  async doDel(pod: Pod, into = this.del, splitInto?: Split): Promise<void> {
    const p = this.list.plugins[0]!;
    const a = await this.#call('DEL', pod, pluginConfig(this.list, p, pod.result), splitInto);
    into.push(a.ms);
  }

  async #call(
    command: 'ADD' | 'DEL',
    pod: Pod,
    stdin: string,
    splitInto: Split | undefined,
  ): Promise<Answer> {
    const t0 = performance.now();
    const a = await exec(String(this.list.plugins[0]!['type']), this.#env(command, pod), stdin);
    if (a.code !== 0) throw new Error(`${this.side} ${command} ${pod.containerId} failed: ${a.stdout}`);
    const s = served.get(`${command} ${pod.containerId}`);
    if (splitInto && s) {
      splitInto.before.push(s.start - t0);
      splitInto.server.push(s.end - s.start);
      splitInto.after.push(t0 + a.ms - s.end);
    }
    return a;
  }
}

async function pods(side: Side, tag: string, n: number): Promise<Pod[]> {
  const out: Pod[] = [];
  // Namespaces are made ahead, in small parallel batches, and not timed.
  for (let i = 0; i < n; i += 10) {
    const batch = Array.from({ length: Math.min(10, n - i) }, (_, k) => `${prefix}-${side[0]}${tag}${i + k}`);
    await Promise.all(
      batch.map(async (name) => {
        namespaces.push(name);
        (await createNamespace(name)).close();
      }),
    );
    for (const name of batch) out.push({ netns: `/run/netns/${name}`, containerId: name });
  }
  return out;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
};
const median = (xs: number[]) => pct(xs, 50);
const ms = (x: number) => `${x.toFixed(x >= 100 ? 0 : 1)} ms`;

/**
 * When each of our requests reached CalicoPlugin and when it was answered, by command and container,
 * to split a call into: exec + plugin start until the request arrives | server | answer + exit.
 */
const served = new Map<string, { start: number; end: number }>();
function timed(handler: RequestHandler): RequestHandler {
  return async (req) => {
    const start = performance.now();
    try {
      return await handler(req);
    } finally {
      served.set(`${req.command} ${req.containerId}`, { start, end: performance.now() });
    }
  };
}
interface Split {
  before: number[];
  server: number[];
  after: number[];
}
const split = (): Split => ({ before: [], server: [], after: [] });
const splits = { ADD: split(), DEL: split() };

/** Time of every call CalicoPlugin makes into IPAM, the dataplane and the datastore, by phase. */
let phase: string | undefined;
const steps = new Map<string, number[]>();
function timedParts<T extends object>(part: string, target: T): T {
  return new Proxy(target, {
    get(t, prop) {
      const v = Reflect.get(t, prop, t) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        const start = performance.now();
        const record = () => {
          if (phase) {
            const key = `${phase}\t${part}.${String(prop)}`;
            steps.set(key, [...(steps.get(key) ?? []), performance.now() - start]);
          }
        };
        const r = (v as (...a: unknown[]) => unknown).apply(t, args);
        if (r instanceof Promise) return r.finally(record);
        record();
        return r;
      };
    },
  });
}

async function setUp(): Promise<{ ours: Contender; peer: Contender }> {
  const etcd = await startEtcd({ dir: join(dir, 'etcd') });
  cleanups.push(() => etcd.stop());
  const lab = await createLab({ prefix, nodes: 1 });
  cleanups.push(() => lab.teardown());
  const node = lab.node(1);

  const datastore = new EtcdDatastore({ endpoints: [etcd.endpoint] });
  cleanups.push(() => datastore.close());
  const nodeName = `${prefix}-node`;
  await datastore.create('IPPool', {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: `${prefix}-pool` },
    spec: { cidr: '10.244.0.0/16', blockSize: 26, nodeSelector: 'all()' },
  } as never);
  await datastore.create('Node', {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Node',
    metadata: { name: nodeName },
    spec: { bgp: { ipv4Address: `${node.ipv4}/24` } },
  } as never);
  const ipam = new IpamAdapter(new Ipam(datastore, { unavailableTimeoutMs: 5_000 }), datastore);
  const dataplane = new LinuxWorkloadDataplane({ hostNs: node.namespace });
  cleanups.push(() => dataplane.close());
  const calico = new CalicoPlugin({
    nodeName,
    datastore: timedParts('datastore', datastore),
    ipam: timedParts('ipam', ipam),
    dataplane: timedParts('dataplane', dataplane),
    defaultMtu: 1450,
  });
  const calicoIpam = new CalicoIpamPlugin({ ipam, nodeName });
  const socketPath = join(dir, 'cni.sock');
  const server = new CniServer({
    socketPath,
    handlers: { calico: timed((r) => calico.handle(r)), 'calico-ipam': timed((r) => calicoIpam.handle(r)) },
  });
  await server.listen();
  cleanups.push(() => server.close());

  // Ours exactly as a node gets it: the bundles built from this source, then installCni.
  const bundleDir = join(dir, 'bundle');
  await build({ ...pluginBinaries, outDir: bundleDir, config: false, silent: true });
  buildRelay(bundleDir);
  const confDir = join(dir, 'net.d');
  installCni({ binDir, confDir, bundleDir, agentSocket: socketPath, mtu: 1450, chained: [] });
  for (const p of ['ptp', 'host-local']) symlinkSync(`/usr/lib/cni/${p}`, join(binDir, p));
  const ours = JSON.parse(readFileSync(join(confDir, CONFLIST_FILE), 'utf8')) as Conflist;
  mkdirSync(join(dir, 'host-local'));
  const peer: Conflist = {
    cniVersion: '1.0.0',
    name: 'bench-ptp',
    plugins: [
      {
        type: 'ptp',
        mtu: 1450,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: '10.98.0.0/16' }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: join(dir, 'host-local'),
        },
      },
    ],
  };
  return { ours: new Contender('ours', ours), peer: new Contender('peer', peer) };
}

async function main(): Promise<void> {
  const { ours, peer } = await setUp();
  const both = [ours, peer] as const;
  const order = (i: number) => (i % 2 === 0 ? both : ([peer, ours] as const));

  // Exec floor and VERSION (no stdin validation, no agent): pure start-up.
  const floor: number[] = [];
  const version: Record<Side, number[]> = { ours: [], peer: [] };
  for (let i = 0; i < VERSIONS; i++) {
    const t = performance.now();
    await new Promise<void>((resolve, reject) =>
      spawn('nsenter', [`--net=/run/netns/${nodeNs}`, '--', '/bin/true'])
        .on('close', () => resolve())
        .on('error', reject),
    );
    floor.push(performance.now() - t);
    for (const c of order(i)) {
      const type = String(c.list.plugins[0]!['type']);
      const a = await exec(type, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
      if (a.code !== 0) throw new Error(`${c.side} VERSION failed: ${a.stdout}`);
      version[c.side].push(a.ms);
    }
  }

  // Warm-up: the first ADD claims an IPAM block and JIT-compiles the server; not counted.
  const warm = { ours: await pods('ours', 'w', 3), peer: await pods('peer', 'w', 3) };
  for (const c of both) {
    for (const p of warm[c.side]) await c.doAdd(p, []);
    for (const p of warm[c.side]) await c.doDel(p, []);
  }

  process.stderr.write(`cni bench: ${SEQUENTIAL} sequential ADDs + DELs each, alternating\n`);
  const seq = { ours: await pods('ours', 's', SEQUENTIAL), peer: await pods('peer', 's', SEQUENTIAL) };
  phase = 'sequential ADD';
  for (let i = 0; i < SEQUENTIAL; i++) {
    for (const c of order(i)) await c.doAdd(seq[c.side][i]!, c.add, splits.ADD);
    if ((i + 1) % 50 === 0) {
      process.stderr.write(
        `  ADDs ${i - 48}-${i + 1}: p50 ours ${ms(median(ours.add.slice(-50)))}, peer ${ms(median(peer.add.slice(-50)))}\n`,
      );
    }
  }
  phase = undefined;
  // Start-up again, now that the node has all those pods (interfaces, routes, namespaces).
  const versionLoaded: Record<Side, number[]> = { ours: [], peer: [] };
  for (let i = 0; i < 20; i++) {
    for (const c of order(i)) {
      const type = String(c.list.plugins[0]!['type']);
      versionLoaded[c.side].push((await exec(type, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}')).ms);
    }
  }
  phase = 'sequential DEL';
  for (let i = 0; i < SEQUENTIAL; i++) {
    for (const c of order(i)) await c.doDel(seq[c.side][i]!, c.del, splits.DEL);
  }
  phase = undefined;

  process.stderr.write(`cni bench: ${CONCURRENT} concurrent ADDs + DELs, ${ROUNDS} rounds\n`);
  const burst = {
    ours: { all: [] as number[], add: [] as number[], delAll: [] as number[], del: [] as number[] },
    peer: { all: [] as number[], add: [] as number[], delAll: [] as number[], del: [] as number[] },
  };
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of order(r)) {
      const ps = await pods(c.side, `c${r}x`, CONCURRENT);
      let t = performance.now();
      phase = 'concurrent ADD';
      await Promise.all(ps.map((p) => c.doAdd(p, burst[c.side].add)));
      phase = undefined;
      burst[c.side].all.push(performance.now() - t);
      t = performance.now();
      phase = 'concurrent DEL';
      await Promise.all(ps.map((p) => c.doDel(p, burst[c.side].del)));
      phase = undefined;
      burst[c.side].delAll.push(performance.now() - t);
      process.stderr.write(
        `  round ${r + 1} ${c.side}: ${CONCURRENT} ADDs all done in ${ms(burst[c.side].all.at(-1)!)}, DELs in ${ms(burst[c.side].delAll.at(-1)!)}\n`,
      );
    }
  }

  const row = (what: string, o: string, p: string, ratio: string) => `| ${what} | ${o} | ${p} | ${ratio} |`;
  const r2 = (a: number, b: number) => (b / a).toFixed(2);
  const lines = [
    '| measurement | calico-ts (`calico` relay → CniServer) | Debian `ptp` + `host-local` | peer ÷ ours |',
    '| --- | ---: | ---: | ---: |',
    row(
      `VERSION p50 (×${VERSIONS}; exec floor \`nsenter … /bin/true\` ${ms(median(floor))})`,
      ms(median(version.ours)),
      ms(median(version.peer)),
      r2(median(version.ours), median(version.peer)),
    ),
    row(
      `VERSION p50 with the ${SEQUENTIAL} pods of each side up`,
      ms(median(versionLoaded.ours)),
      ms(median(versionLoaded.peer)),
      r2(median(versionLoaded.ours), median(versionLoaded.peer)),
    ),
    row(
      `ADD p50, ${SEQUENTIAL} sequential`,
      ms(median(ours.add)),
      ms(median(peer.add)),
      r2(median(ours.add), median(peer.add)),
    ),
    row(
      `ADD p99, ${SEQUENTIAL} sequential`,
      ms(pct(ours.add, 99)),
      ms(pct(peer.add, 99)),
      r2(pct(ours.add, 99), pct(peer.add, 99)),
    ),
    row(
      `DEL p50, ${SEQUENTIAL} sequential`,
      ms(median(ours.del)),
      ms(median(peer.del)),
      r2(median(ours.del), median(peer.del)),
    ),
    row(
      `DEL p99, ${SEQUENTIAL} sequential`,
      ms(pct(ours.del, 99)),
      ms(pct(peer.del, 99)),
      r2(pct(ours.del, 99), pct(peer.del, 99)),
    ),
    row(
      `${CONCURRENT} concurrent ADDs: all done (median of ${ROUNDS} rounds)`,
      ms(median(burst.ours.all)),
      ms(median(burst.peer.all)),
      r2(median(burst.ours.all), median(burst.peer.all)),
    ),
    row(
      `${CONCURRENT} concurrent ADDs: per-ADD p50 / p99`,
      `${ms(median(burst.ours.add))} / ${ms(pct(burst.ours.add, 99))}`,
      `${ms(median(burst.peer.add))} / ${ms(pct(burst.peer.add, 99))}`,
      r2(median(burst.ours.add), median(burst.peer.add)),
    ),
    row(
      `${CONCURRENT} concurrent DELs: all done (median of ${ROUNDS} rounds)`,
      ms(median(burst.ours.delAll)),
      ms(median(burst.peer.delAll)),
      r2(median(burst.ours.delAll), median(burst.peer.delAll)),
    ),
    row(
      `${CONCURRENT} concurrent DELs: per-DEL p50 / p99`,
      `${ms(median(burst.ours.del))} / ${ms(pct(burst.ours.del, 99))}`,
      `${ms(median(burst.peer.del))} / ${ms(pct(burst.peer.del, 99))}`,
      r2(median(burst.ours.del), median(burst.peer.del)),
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n\n`);
  const splitRow = (what: string, x: Split) =>
    `| ${what} | ${ms(median(x.before))} / ${ms(pct(x.before, 99))} | ${ms(median(x.server))} / ${ms(pct(x.server, 99))} | ${ms(median(x.after))} / ${ms(pct(x.after, 99))} |`;
  process.stdout.write(
    [
      'Where our sequential time goes (p50 / p99):',
      '',
      '| call | exec + relay start, until the request reaches CalicoPlugin | CalicoPlugin | answer + relay exit |',
      '| --- | ---: | ---: | ---: |',
      splitRow('ADD', splits.ADD),
      splitRow('DEL', splits.DEL),
    ].join('\n') + '\n',
  );
  const stepRows = [...steps].map(
    ([key, xs]) => `| ${key.replace('\t', ' | ')} | ${xs.length} | ${ms(median(xs))} | ${ms(pct(xs, 99))} |`,
  );
  process.stdout.write(
    [
      '',
      "CalicoPlugin's calls into its parts:",
      '',
      '| phase | call | n | p50 | p99 |',
      '| --- | --- | ---: | ---: | ---: |',
      ...stepRows,
    ].join('\n') + '\n',
  );
  process.stderr.write(`load average at the end: ${readFileSync('/proc/loadavg', 'utf8')}`);
}

try {
  await main();
} finally {
  for (const name of namespaces) await deleteNamespace(name, { ifExists: true }).catch(() => {});
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch {
      // keep going: everything else must still be removed
    }
  }
}
