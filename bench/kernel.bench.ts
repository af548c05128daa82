// Kernel programming: our netlink path against `ip -batch` doing the same operations in the same
// run, each in its own throwaway namespace; and iptables batches (one big restore from empty vs
// an incremental change of 10 rules, both through Iptables.apply, plus the bare
// iptables-restore of the same input as the peer). Prints a Markdown table for
// docs/benchmarks.md. Needs root. `pnpm bench kernel`; BENCH_ROUTES / BENCH_VETHS /
// BENCH_IPT_RULES override the sizes.
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

async function routes(): Promise<string[]> {
  const ours = await routeNamespace('r1');
  const peer = await routeNamespace('r2');
  const oursAdd = await timed(() =>
    Promise.all(
      Array.from({ length: ROUTES }, (_, i) =>
        ours.nl.addRoute({ dst: routeDst(i), gateway: '192.0.2.2', dev: ours.dev, protocol: 80 }),
      ),
    ),
  );
  const peerAdd = await timed(() =>
    ipBatch(
      peer.n,
      Array.from({ length: ROUTES }, (_, i) => `route add ${routeDst(i)} via 192.0.2.2 dev up0 proto 80`),
    ),
  );
  const check = (await ours.nl.listRoutes({ protocol: 80 })).length;
  const checkPeer = (await peer.nl.listRoutes({ protocol: 80 })).length;
  if (check !== ROUTES || checkPeer !== ROUTES)
    throw new Error(`route count ${check}/${checkPeer} ≠ ${ROUTES}`);
  const oursList = await timed(() => ours.nl.listRoutes({ protocol: 80 }));
  const peerList = await timed(() =>
    execInNamespace(peer.n, 'ip', ['-json', 'route', 'show', 'proto', '80']),
  );
  const oursDel = await timed(() =>
    Promise.all(
      Array.from({ length: ROUTES }, (_, i) => ours.nl.deleteRoute({ dst: routeDst(i), table: 254 })),
    ),
  );
  const peerDel = await timed(() =>
    ipBatch(
      peer.n,
      Array.from({ length: ROUTES }, (_, i) => `route del ${routeDst(i)}`),
    ),
  );
  ours.nl.close();
  peer.nl.close();
  return [
    row(`add ${ROUTES} routes`, oursAdd, peerAdd, ROUTES),
    row(`list ${ROUTES} routes`, oursList, peerList, ROUTES),
    row(`delete ${ROUTES} routes`, oursDel, peerDel, ROUTES),
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
    out.push(...(await routes()));
    out.push(...(await veths()));
    out.push(...(await iptables()));
  } finally {
    for (const n of made) {
      n.close();
      await deleteNamespace(n.name, { ifExists: true });
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
