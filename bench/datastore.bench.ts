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
import { Etcd3 } from 'etcd3';
import { startEtcd } from '../test-support/etcd.ts';

const N = Number(process.env['BENCH_N'] ?? 10_000);
/** Requests in flight at once: a busy calico-node or controller, not one serial caller. */
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 32);
const LIST_REPEATS = 5;
/** Objects in the untimed warm-up pass, so JIT and connection set-up are not measured. */
const WARMUP_N = 500;

type Op = 'create' | 'get' | 'update' | 'list' | 'watch';
const OPS: Op[] = ['create', 'get', 'update', 'list', 'watch'];
/** Units per second for each operation; list counts items listed, watch counts events delivered. */
type Result = Record<Op, number>;

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

async function ours(ds: Datastore, N: number, ns: string): Promise<Result> {
  const create = await rate(N, () =>
    inParallel(N, async (i) => void (await ds.create('NetworkPolicy', policy(i, ns)))),
  );
  const stored: ResourceOf<'NetworkPolicy'>[] = new Array(N);
  const get = await rate(N, () =>
    inParallel(N, async (i) => {
      stored[i] = await ds.get('NetworkPolicy', policy(i, ns).metadata.name, ns);
    }),
  );
  const { revision } = await ds.list('NetworkPolicy', { namespace: ns });
  const update = await rate(N, () =>
    inParallel(N, async (i) => {
      const cur = stored[i]!;
      await ds.update('NetworkPolicy', { ...cur, spec: { ...cur.spec, order: 200 } });
    }),
  );
  const list = await rate(N * LIST_REPEATS, async () => {
    for (let r = 0; r < LIST_REPEATS; r++) {
      const { items } = await ds.list('NetworkPolicy', { namespace: ns });
      if (items.length !== N) throw new Error(`listed ${items.length} of ${N}`);
    }
  });
  // Delivery of N changes already in history: the watch catches up from the pre-update revision.
  const watch = await rate(N, async () => {
    const w = ds.watch({ kinds: ['NetworkPolicy'], namespace: ns, revision });
    let seen = 0;
    for await (const e of w) {
      if (e.type === 'modified' && ++seen === N) break;
    }
    await w.close();
  });
  return { create, get, update, list, watch };
}

async function bare(client: Etcd3, N: number, ns: string): Promise<Result> {
  const prefix = `/bench/raw/networkpolicies/${ns}/`;
  const key = (i: number) => `${prefix}${policy(i, ns).metadata.name}`;
  // The same bytes our backend stores (server metadata included, resourceVersion excluded).
  const json = (i: number, order: number) =>
    JSON.stringify({
      ...policy(i, ns),
      metadata: {
        ...policy(i, ns).metadata,
        uid: crypto.randomUUID(),
        creationTimestamp: new Date().toISOString(),
      },
      spec: { ...policy(i, ns).spec, order },
    });
  {
    const create = await rate(N, () =>
      inParallel(N, async (i) => void (await client.put(key(i)).value(json(i, 100)))),
    );
    const get = await rate(N, () =>
      inParallel(N, async (i) => {
        const v = await client.get(key(i)).string();
        if (v === null) throw new Error('missing');
        JSON.parse(v);
      }),
    );
    const startRev = (await client.get(key(0)).exec()).header.revision;
    const update = await rate(N, () =>
      inParallel(N, async (i) => void (await client.put(key(i)).value(json(i, 200)))),
    );
    const list = await rate(N * LIST_REPEATS, async () => {
      for (let r = 0; r < LIST_REPEATS; r++) {
        const all = await client.getAll().prefix(prefix).strings();
        const items = Object.values(all).map((v) => JSON.parse(v));
        if (items.length !== N) throw new Error(`listed ${items.length} of ${N}`);
      }
    });
    const watch = await rate(N, async () => {
      let seen = 0;
      let done: () => void = () => {};
      const finished = new Promise<void>((r) => {
        done = r;
      });
      const w = await client
        .watch()
        .prefix(prefix)
        .startRevision(String(Number(startRev) + 1))
        .create();
      w.on('put', (kv) => {
        JSON.parse(kv.value.toString());
        if (++seen === N) done();
      });
      await finished;
      await w.cancel();
    });
    return { create, get, update, list, watch };
  }
}

const fmt = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1));

/** A fresh etcd per side, so neither pays for the other's history; each warmed up untimed first. */
async function onFreshEtcd<T>(fn: (endpoint: string) => Promise<T>): Promise<T> {
  const etcd = await startEtcd();
  try {
    return await fn(etcd.endpoint);
  } finally {
    await etcd.stop();
  }
}

async function main(): Promise<void> {
  process.stderr.write(`datastore bench: ${N} NetworkPolicies, ${CONCURRENCY} requests in flight\n`);
  const memory = new MemoryDatastore();
  await ours(memory, WARMUP_N, 'warmup');
  const mem = await ours(memory, N, 'bench');
  await memory.close();

  const raw = await onFreshEtcd(async (endpoint) => {
    const client = new Etcd3({ hosts: endpoint });
    try {
      await bare(client, WARMUP_N, 'warmup');
      return await bare(client, N, 'bench');
    } finally {
      client.close();
    }
  });
  const ourEtcd = await onFreshEtcd(async (endpoint) => {
    const ds = new EtcdDatastore({ endpoints: endpoint });
    try {
      await ours(ds, WARMUP_N, 'warmup');
      return await ours(ds, N, 'bench');
    } finally {
      await ds.close();
    }
  });

  const rows = OPS.map((op) => {
    const unit = op === 'list' ? 'items/s' : op === 'watch' ? 'events/s' : 'ops/s';
    return `| ${op} (${unit}) | ${fmt(mem[op])} | ${fmt(ourEtcd[op])} | ${fmt(raw[op])} | ${(raw[op] / ourEtcd[op]).toFixed(2)}× |`;
  });
  const table = [
    `| operation | memory backend | etcd backend | bare etcd3 client | bare ÷ ours (etcd) |`,
    `| --- | ---: | ---: | ---: | ---: |`,
    ...rows,
  ].join('\n');
  process.stdout.write(`${table}\n`);
}

await main();
