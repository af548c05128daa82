// Datastore throughput: our memory and etcd backends against the bare etcd3 client doing the
// same work on the same JSON against the same etcd, in one run. Prints a Markdown table for
// docs/benchmarks.md. `pnpm bench datastore`; BENCH_N / BENCH_CONCURRENCY override the sizes.
import {
  type Datastore,
  EtcdDatastore,
  MemoryDatastore,
  type ResourceInput,
  type ResourceOf,
} from '@calico-ts/datastore';
import { startEtcd } from '@calico-ts/lab';
import { Etcd3 } from 'etcd3';

const N = Number(process.env['BENCH_N'] ?? 10_000);
/** Requests in flight at once: a busy calico-node or controller, not one serial caller. */
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 32);
const LIST_REPEATS = 5;
/** Objects in the untimed warm-up pass, so JIT and connection set-up are not measured. */
const WARMUP_N = 500;

/**
 * Rounds of the whole sequence. The table shows each side's best round: on a shared machine
 * noise only ever slows a run down, so the fastest round is the closest to the code's own cost.
 */
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);

type Op = 'create' | 'get' | 'update' | 'list' | 'watch';
const OPS: Op[] = ['create', 'get', 'update', 'list', 'watch'];

/**
 * One contender. Each step measures units per second (list: items listed, watch: events
 * delivered) over `n` objects in namespace `ns`, using what the earlier steps of that namespace
 * left behind.
 */
type Side = Record<Op, (n: number, ns: string) => Promise<number>>;

function policy(i: number, ns: string): ResourceInput<'NetworkPolicy'> {
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'NetworkPolicy',
    metadata: {
      name: `policy-${String(i).padStart(5, '0')}`,
      namespace: ns,
      labels: { app: `app-${i % 50}` },
    },
    spec: {
      order: 100,
      selector: `app == 'app-${i % 50}'`,
      types: ['Ingress', 'Egress'],
      ingress: [
        {
          action: 'Allow',
          protocol: 'TCP',
          source: { selector: "role == 'frontend'" },
          destination: { ports: [80, 443] },
        },
      ],
      egress: [{ action: 'Allow' }],
    },
  };
}

async function inParallel(n: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, n) }, worker));
}

async function rate(units: number, fn: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return units / seconds;
}

function ours(ds: Datastore): Side {
  const stored = new Map<string, ResourceOf<'NetworkPolicy'>[]>();
  const before = new Map<string, string>();
  return {
    create: (n, ns) =>
      rate(n, () => inParallel(n, async (i) => void (await ds.create('NetworkPolicy', policy(i, ns))))),
    get: (n, ns) => {
      const got: ResourceOf<'NetworkPolicy'>[] = new Array(n);
      stored.set(ns, got);
      return rate(n, () =>
        inParallel(n, async (i) => {
          got[i] = await ds.get('NetworkPolicy', policy(i, ns).metadata.name, ns);
        }),
      );
    },
    update: async (n, ns) => {
      before.set(ns, (await ds.list('NetworkPolicy', { namespace: ns })).revision);
      const got = stored.get(ns)!;
      return rate(n, () =>
        inParallel(n, async (i) => {
          const cur = got[i]!;
          await ds.update('NetworkPolicy', { ...cur, spec: { ...cur.spec, order: 200 } });
        }),
      );
    },
    list: (n, ns) =>
      rate(n * LIST_REPEATS, async () => {
        for (let r = 0; r < LIST_REPEATS; r++) {
          const { items } = await ds.list('NetworkPolicy', { namespace: ns });
          if (items.length !== n) throw new Error(`listed ${items.length} of ${n}`);
        }
      }),
    // Delivery of the n updates, already in history: the watch catches up from before them.
    watch: (n, ns) =>
      rate(n, async () => {
        const w = ds.watch({ kinds: ['NetworkPolicy'], namespace: ns, revision: before.get(ns)! });
        let seen = 0;
        for await (const e of w) {
          if (e.type === 'modified' && ++seen === n) break;
        }
        await w.close();
      }),
  };
}

function bare(client: Etcd3): Side {
  const prefix = (ns: string) => `/bench/raw/networkpolicies/${ns}/`;
  const key = (ns: string, i: number) => `${prefix(ns)}${policy(i, ns).metadata.name}`;
  // The same bytes our backend stores (server metadata included, resourceVersion excluded).
  const json = (ns: string, i: number, order: number) =>
    JSON.stringify({
      ...policy(i, ns),
      metadata: {
        ...policy(i, ns).metadata,
        uid: crypto.randomUUID(),
        creationTimestamp: new Date().toISOString(),
      },
      spec: { ...policy(i, ns).spec, order },
    });
  const before = new Map<string, string>();
  return {
    create: (n, ns) =>
      rate(n, () => inParallel(n, async (i) => void (await client.put(key(ns, i)).value(json(ns, i, 100))))),
    get: (n, ns) =>
      rate(n, () =>
        inParallel(n, async (i) => {
          const v = await client.get(key(ns, i)).string();
          if (v === null) throw new Error('missing');
          JSON.parse(v);
        }),
      ),
    update: async (n, ns) => {
      before.set(ns, (await client.get(key(ns, 0)).exec()).header.revision);
      return rate(n, () =>
        inParallel(n, async (i) => void (await client.put(key(ns, i)).value(json(ns, i, 200)))),
      );
    },
    list: (n, ns) =>
      rate(n * LIST_REPEATS, async () => {
        for (let r = 0; r < LIST_REPEATS; r++) {
          const all = await client.getAll().prefix(prefix(ns)).strings();
          const items = Object.values(all).map((v) => JSON.parse(v));
          if (items.length !== n) throw new Error(`listed ${items.length} of ${n}`);
        }
      }),
    watch: (n, ns) =>
      rate(n, async () => {
        let seen = 0;
        let done: () => void = () => {};
        const finished = new Promise<void>((r) => {
          done = r;
        });
        const w = await client
          .watch()
          .prefix(prefix(ns))
          .startRevision(String(Number(before.get(ns)!) + 1))
          .create();
        w.on('put', (kv) => {
          JSON.parse(kv.value.toString());
          if (++seen === n) done();
        });
        await finished;
        await w.cancel();
      }),
  };
}

const fmt = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1));
const best = (xs: number[]) => Math.max(...xs);

async function main(): Promise<void> {
  process.stderr.write(
    `datastore bench: ${N} NetworkPolicies, ${CONCURRENCY} requests in flight, ${ROUNDS} rounds\n`,
  );
  // Our backend and the bare client each get their own etcd, so neither pays for the other's
  // history; they run step by step in turn (order rotating each round), so load from elsewhere
  // on the machine hits both alike.
  const [etcdOurs, etcdBare] = [await startEtcd(), await startEtcd()];
  const memory = new MemoryDatastore();
  const ds = new EtcdDatastore({ endpoints: etcdOurs.endpoint });
  // A 10,000-item range is ~5 MB, over gRPC's default 4 MB message limit: lift it for the bare
  // client (our backend lifts it too, and pages its lists).
  const client = new Etcd3({
    hosts: etcdBare.endpoint,
    grpcOptions: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
  });
  try {
    const sides = { memory: ours(memory), etcd: ours(ds), bare: bare(client) };
    const names = Object.keys(sides) as (keyof typeof sides)[];
    const results = Object.fromEntries(
      names.map((s) => [s, Object.fromEntries(OPS.map((op) => [op, [] as number[]]))]),
    ) as Record<keyof typeof sides, Record<Op, number[]>>;
    for (const s of names) for (const op of OPS) await sides[s][op](WARMUP_N, 'warmup');
    for (let round = 0; round < ROUNDS; round++) {
      const order = names.map((_, i) => names[(i + round) % names.length]!);
      for (const op of OPS) {
        for (const s of order) results[s][op].push(await sides[s][op](N, `round-${round}`));
      }
      process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
    }
    const rows = OPS.map((op) => {
      const unit = op === 'list' ? 'items/s' : op === 'watch' ? 'events/s' : 'ops/s';
      const [m, e, b] = [best(results.memory[op]), best(results.etcd[op]), best(results.bare[op])];
      return `| ${op} (${unit}) | ${fmt(m)} | ${fmt(e)} | ${fmt(b)} | ${(b / e).toFixed(2)}× |`;
    });
    const table = [
      '| operation | memory backend | etcd backend | bare etcd3 client | bare ÷ ours (etcd) |',
      '| --- | ---: | ---: | ---: | ---: |',
      ...rows,
    ].join('\n');
    process.stdout.write(`${table}\n`);
    process.stderr.write(`raw rounds: ${JSON.stringify(results)}\n`);
  } finally {
    client.close();
    await ds.close();
    await memory.close();
    await etcdOurs.stop();
    await etcdBare.stop();
  }
}

await main();
