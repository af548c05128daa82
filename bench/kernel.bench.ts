// Kernel programming: our netlink path against `ip -batch` doing the same operations in the same
// run, each in its own throwaway namespace; and iptables batches (one big restore from empty vs
// an incremental change of 10 rules, both through Iptables.apply, plus the bare
// iptables-restore of the same input as the peer). Prints a Markdown table for
// docs/benchmarks.md. Needs root. `pnpm bench kernel`; BENCH_ROUTES / BENCH_VETHS /
// BENCH_IPT_RULES / BENCH_ROUTE_ROUNDS override the sizes, BENCH_KERNEL_PARTS picks the parts.
import { randomBytes } from 'node:crypto';
import {
  createNamespace,
  type DesiredTable,
  deleteNamespace,
  execInNamespace,
  Iptables,
  Netlink,
  type NetNamespace,
  planTable,
  renderRestore,
} from '@calico-ts/kernel';

const ROUTES = Number(process.env['BENCH_ROUTES'] ?? 10_000);
const VETHS = Number(process.env['BENCH_VETHS'] ?? 1_000);
const IPT_RULES = Number(process.env['BENCH_IPT_RULES'] ?? 100_000);
const RULES_PER_CHAIN = 100;
/** BENCH_KERNEL_PARTS=routes,veths,iptables (the default: all three) picks what runs. */
const PARTS = (process.env['BENCH_KERNEL_PARTS'] ?? 'routes,veths,iptables').split(',');
const prefix = `kb${randomBytes(2).toString('hex')}`;
const made: NetNamespace[] = [];

async function ns(tag: string): Promise<NetNamespace> {
  const n = await createNamespace(`${prefix}-${tag}`);
  made.push(n);
  return n;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function ipBatch(where: NetNamespace, lines: string[]): Promise<void> {
  const r = await execInNamespace(where, 'ip', ['-batch', '-'], { input: `${lines.join('\n')}\n` });
  if (r.exitCode !== 0) throw new Error(`ip -batch failed: ${r.stderr.slice(0, 300)}`);
}

/** A namespace with an up link holding 192.0.2.1/24, so routes via 192.0.2.2 are valid. */
async function routeNamespace(tag: string): Promise<{ n: NetNamespace; nl: Netlink; dev: number }> {
  const n = await ns(tag);
  const nl = Netlink.open(n);
  const link = await nl.createVeth({ name: 'up0', peer: { name: 'up1' } });
  await nl.addAddress(link.index, '192.0.2.1/24');
  await nl.setLink(link.index, { up: true });
  await nl.setLink('up1', { up: true });
  return { n, nl, dev: link.index };
}

const routeDst = (i: number) => `172.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`;

/** Add/delete rounds; the contenders' order rotates each round and the median round is shown. */
const ROUTE_ROUNDS = Number(process.env['BENCH_ROUTE_ROUNDS'] ?? 3);

async function routes(): Promise<string[]> {
  const single = await routeNamespace('r1');
  const batched = await routeNamespace('r3');
  const peer = await routeNamespace('r2');
  const want = Array.from({ length: ROUTES }, (_, i) => ({
    dst: routeDst(i),
    gateway: '192.0.2.2',
    dev: 'up0',
    protocol: 80,
  }));
  const failures = (rs: (Error | undefined)[]) => {
    const bad = rs.filter((e) => e !== undefined);
    if (bad.length) throw new Error(`${bad.length} batch failures, first: ${bad[0]!.message}`);
  };
  type Contender = { name: string; add: () => Promise<unknown>; del: () => Promise<unknown>; ns: Netlink };
  const contenders: Contender[] = [
    {
      name: 'single',
      ns: single.nl,
      add: () => Promise.all(want.map((r) => single.nl.addRoute({ ...r, dev: single.dev }))),
      del: () => Promise.all(want.map((r) => single.nl.deleteRoute({ dst: r.dst, table: 254 }))),
    },
    {
      name: 'batch',
      ns: batched.nl,
      add: async () => failures(await batched.nl.addRoutes(want)),
      del: async () => failures(await batched.nl.deleteRoutes(want.map((r) => ({ dst: r.dst })))),
    },
    {
      name: 'peer',
      ns: peer.nl,
      add: () =>
        ipBatch(
          peer.n,
          want.map((r) => `route add ${r.dst} via 192.0.2.2 dev up0 proto 80`),
        ),
      del: () =>
        ipBatch(
          peer.n,
          want.map((r) => `route del ${r.dst}`),
        ),
    },
  ];
  const adds = new Map<string, number[]>();
  const dels = new Map<string, number[]>();
  let oursList = 0;
  let peerList = 0;
  for (let round = 0; round < ROUTE_ROUNDS; round++) {
    const order = contenders.map((_, k) => contenders[(k + round) % contenders.length]!);
    for (const c of order) adds.set(c.name, [...(adds.get(c.name) ?? []), await timed(c.add)]);
    for (const c of contenders) {
      const n = (await c.ns.listRoutes({ protocol: 80 })).length;
      if (n !== ROUTES) throw new Error(`${c.name}: route count ${n} ≠ ${ROUTES}`);
    }
    if (round === 0) {
      oursList = await timed(() => batched.nl.listRoutes({ protocol: 80 }));
      peerList = await timed(() => execInNamespace(peer.n, 'ip', ['-json', 'route', 'show', 'proto', '80']));
    }
    for (const c of order) dels.set(c.name, [...(dels.get(c.name) ?? []), await timed(c.del)]);
    for (const c of contenders) {
      const n = (await c.ns.listRoutes({ protocol: 80 })).length;
      if (n !== 0) throw new Error(`${c.name}: ${n} routes left after delete`);
    }
  }
  for (const c of contenders) c.ns.close();
  const med = (m: Map<string, number[]>, k: string) => {
    const xs = [...m.get(k)!].sort((a, b) => a - b);
    return xs[(xs.length - 1) >> 1]!;
  };
  const all = (m: Map<string, number[]>, k: string) =>
    m
      .get(k)!
      .map((t) => t.toFixed(0))
      .join(', ');
  process.stderr.write(
    `route rounds (ms) add: single ${all(adds, 'single')} | batch ${all(adds, 'batch')} | ip ${all(adds, 'peer')}\n` +
      `route rounds (ms) del: single ${all(dels, 'single')} | batch ${all(dels, 'batch')} | ip ${all(dels, 'peer')}\n`,
  );
  return [
    row(`add ${ROUTES} routes, \`addRoutes\` batch`, med(adds, 'batch'), med(adds, 'peer'), ROUTES),
    row(`add ${ROUTES} routes, one \`addRoute\` each`, med(adds, 'single'), med(adds, 'peer'), ROUTES),
    row(`list ${ROUTES} routes`, oursList, peerList, ROUTES),
    row(`delete ${ROUTES} routes, \`deleteRoutes\` batch`, med(dels, 'batch'), med(dels, 'peer'), ROUTES),
    row(`delete ${ROUTES} routes, one \`deleteRoute\` each`, med(dels, 'single'), med(dels, 'peer'), ROUTES),
  ];
}

async function veths(): Promise<string[]> {
  const [a1, b1, a2, b2] = [await ns('v1'), await ns('p1'), await ns('v2'), await ns('p2')];
  const nl = Netlink.open(a1);
  const ours = await timed(() =>
    Promise.all(
      Array.from({ length: VETHS }, (_, i) =>
        nl.createVeth({ name: `cali${i}`, peer: { name: `eth${i}`, namespace: b1 } }),
      ),
    ),
  );
  const peer = await timed(() =>
    ipBatch(
      a2,
      Array.from(
        { length: VETHS },
        (_, i) => `link add cali${i} type veth peer name eth${i} netns ${b2.name}`,
      ),
    ),
  );
  const count = (await nl.listLinks()).filter((l) => l.kind === 'veth').length;
  if (count !== VETHS) throw new Error(`veth count ${count} ≠ ${VETHS}`);
  nl.close();
  return [row(`create ${VETHS} veth pairs (peer in another netns)`, ours, peer, VETHS)];
}

function iptDesired(changed = 0): DesiredTable {
  const chains: Record<string, string[]> = {};
  const nChains = Math.ceil(IPT_RULES / RULES_PER_CHAIN);
  let k = 0;
  for (let c = 0; c < nChains; c++) {
    const rules: string[] = [];
    for (let r = 0; r < RULES_PER_CHAIN && k < IPT_RULES; r++, k++) {
      const port = 1000 + (k % 50000);
      // `changed` rules, spread evenly over the chains, get a different action.
      const step = Math.max(1, Math.floor(IPT_RULES / 10));
      const action = changed > 0 && k % step === 0 && k / step < changed ? 'DROP' : 'ACCEPT';
      rules.push(`-p tcp --dport ${port} -s 10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255} -j ${action}`);
    }
    chains[`cali-pi-bench${c}`] = rules;
  }
  return { table: 'filter', chains, hooks: [{ chain: 'FORWARD', rule: '-j cali-pi-bench0' }] };
}

async function iptables(): Promise<string[]> {
  const rawNs = await ns('ipt1');
  const oursNs = await ns('ipt2');
  const full = iptDesired();
  const input = renderRestore([planTable(full, undefined)]);
  const lines = input.split('\n').length - 3;
  const raw = new Iptables({ namespace: rawNs });
  const backend = await raw.backend();
  const peerFull = await timed(() => raw.restore(input));
  const ipt = new Iptables({ namespace: oursNs, backend });
  let applied = 0;
  const oursFull = await timed(async () => {
    applied = (await ipt.apply([full])).lines;
  });
  let incLines = 0;
  const oursInc = await timed(async () => {
    incLines = (await ipt.apply([iptDesired(10)])).lines;
  });
  let noopLines = -1;
  const oursNoop = await timed(async () => {
    noopLines = (await ipt.apply([iptDesired(10)])).lines;
  });
  const readBack = await timed(() => ipt.read(['filter']));
  return [
    `| iptables (${backend}): ${lines} restore lines from empty | ${ms(oursFull)} (Iptables.apply, ${applied} lines) | ${ms(peerFull)} (bare iptables-restore) | ${(peerFull / oursFull).toFixed(2)} |`,
    `| iptables: change 10 of ${IPT_RULES} rules | ${ms(oursInc)} (${incLines} lines written) | ${ms(oursFull)} (full apply above) | ${(oursFull / oursInc).toFixed(1)} |`,
    `| iptables: re-apply unchanged ${IPT_RULES} rules | ${ms(oursNoop)} (${noopLines} lines written) | — | — |`,
    `| iptables-save + parse of ${IPT_RULES} rules | ${ms(readBack)} | — | — |`,
  ];
}

const ms = (t: number) => `${t.toFixed(0)} ms`;

function row(what: string, ours: number, peer: number, n: number): string {
  const perOp = (t: number) => `${((t * 1000) / n).toFixed(1)} µs/op`;
  return `| ${what} | ${ms(ours)} (${perOp(ours)}) | ${ms(peer)} (${perOp(peer)}) | ${(peer / ours).toFixed(2)} |`;
}

async function main(): Promise<void> {
  const out = [
    '| operation | calico-ts | peer (`ip -batch` / bare restore) | peer ÷ ours |',
    '| --- | --- | --- | --- |',
  ];
  try {
    if (PARTS.includes('routes')) out.push(...(await routes()));
    if (PARTS.includes('veths')) out.push(...(await veths()));
    if (PARTS.includes('iptables')) out.push(...(await iptables()));
  } finally {
    for (const n of made) {
      n.close();
      await deleteNamespace(n.name, { ifExists: true });
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
