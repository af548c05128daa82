/**
 * The behaviour every Datastore backend promises, as one suite each backend runs against a real
 * store. Names carry a per-test prefix so tests share one store without seeing each other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AnyResource,
  type ChangeEvent,
  type Datastore,
  isDatastoreError,
  type ResourceInput,
  type ResourceOf,
  type WatchEvent,
} from '../src/index.ts';
import { isChange, nameOf, summary, WatchReader } from './watch-reader.ts';

export interface ContractHarness {
  /** A client of the store; for etcd each call is a separate connection (a separate client). */
  client(): Datastore;
  /** Drops history up to `revision`, as etcd compaction does. */
  compact(revision: string): Promise<void>;
  /** A client whose network path the test can cut and heal (backends with a network). */
  partitionedClient?(): Promise<{ store: Datastore; cut(): void; heal(): void; close(): Promise<void> }>;
  /** Kills the store's server and starts it again with its data (backends with a server). */
  kill?(): Promise<void>;
  restart?(): Promise<void>;
  /** A client of a store that is not running. */
  unreachableClient?(): Promise<{ store: Datastore; endpoint: string }>;
  close(): Promise<void>;
}

let counter = 0;
/** A prefix unique to one test within this run. */
function unique(): string {
  counter++;
  return `t${counter}-${process.pid.toString(36)}`;
}

let cidrCounter = 0;
export function ipPool(name: string): ResourceOf<'IPPool'> {
  cidrCounter++;
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name },
    spec: {
      cidr: `10.${cidrCounter % 256}.${Math.floor(cidrCounter / 256) * 16}.0/20`,
      blockSize: 26,
      ipipMode: 'Never',
      vxlanMode: 'Never',
      natOutgoing: true,
      nodeSelector: 'all()',
    },
  } as ResourceOf<'IPPool'>;
}

function networkPolicy(namespace: string, name: string): ResourceOf<'NetworkPolicy'> {
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'NetworkPolicy',
    metadata: { name, namespace },
    spec: { selector: 'all()', types: ['Ingress'], ingress: [{ action: 'Allow' }] },
  } as ResourceOf<'NetworkPolicy'>;
}

function node(name: string): ResourceOf<'Node'> {
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Node',
    metadata: { name },
    spec: { bgp: { ipv4Address: '192.0.2.10/24' } },
  } as ResourceOf<'Node'>;
}

async function expectCode(p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p;
  } catch (err) {
    expect(isDatastoreError(err), String(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    return err as Error;
  }
  throw new Error(`expected a DatastoreError ${code}, but the call succeeded`);
}

/** Retries `fn` until it succeeds or the deadline passes (a store coming back up). */
async function eventually<T>(fn: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const mine = (prefix: string) => (e: ChangeEvent) => nameOf(e).startsWith(prefix);

/** What a backend can be put through; tests that need a missing one are not registered at all. */
export interface ContractCapabilities {
  /** A client whose connection the test can cut and heal (etcd through a TCP relay). */
  partition?: boolean;
  /** The server can be killed and restarted. */
  restart?: boolean;
  /** A client pointed at a server that is not there. */
  unreachable?: boolean;
}

export function datastoreContract(
  name: string,
  makeHarness: () => Promise<ContractHarness>,
  caps: ContractCapabilities = {},
): void {
  // A test that cannot apply to a backend is left out, not counted as skipped.
  const itIf = (cond: boolean | undefined): typeof it =>
    cond ? it : ((() => undefined) as unknown as typeof it);
  describe(`Datastore contract: ${name}`, () => {
    let h: ContractHarness;
    let ds: Datastore;
    const readers: WatchReader[] = [];
    const watchOf = (store: Datastore, ...args: Parameters<Datastore['watch']>): WatchReader => {
      const r = new WatchReader(store.watch(...args));
      readers.push(r);
      return r;
    };

    beforeAll(async () => {
      h = await makeHarness();
      ds = h.client();
    });
    afterAll(async () => {
      for (const r of readers) await r.close();
      await ds?.close();
      await h?.close();
    });

    it('creates, reads, updates and deletes, stamping resourceVersion and server metadata', async () => {
      const n = `${unique()}-pool`;
      const created = await ds.create('IPPool', ipPool(n));
      expect(created.metadata.resourceVersion).toMatch(/^\d+$/);
      expect(created.metadata.uid).toBeTruthy();
      expect(created.metadata.creationTimestamp).toBeTruthy();
      const got = await ds.get('IPPool', n);
      expect(got).toEqual(created);

      const updated = await ds.update('IPPool', { ...got, spec: { ...got.spec, natOutgoing: false } });
      expect(Number(updated.metadata.resourceVersion)).toBeGreaterThan(
        Number(created.metadata.resourceVersion),
      );
      expect(updated.metadata.uid).toBe(created.metadata.uid);
      expect(updated.metadata.creationTimestamp).toBe(created.metadata.creationTimestamp);
      expect((await ds.get('IPPool', n)).spec).toMatchObject({ natOutgoing: false });

      const applied = await ds.apply('IPPool', {
        ...ipPool(n),
        metadata: { name: n, resourceVersion: '1' },
        spec: { ...ipPool(n).spec, cidr: created.spec.cidr },
      });
      expect(applied.metadata.uid).toBe(created.metadata.uid);
      const fresh = await ds.apply('IPPool', ipPool(`${n}-applied`));
      expect(fresh.metadata.resourceVersion).toMatch(/^\d+$/);

      const deleted = await ds.delete('IPPool', n);
      expect(deleted.metadata.resourceVersion).toBe(applied.metadata.resourceVersion);
      await expectCode(ds.get('IPPool', n), 'NotFound');
      await ds.delete('IPPool', `${n}-applied`);
    });

    it('reports every error code with the resource in the message', async () => {
      const n = `${unique()}-pool`;
      expect((await expectCode(ds.get('IPPool', n), 'NotFound')).message).toContain(n);
      await expectCode(ds.update('IPPool', ipPool(n)), 'NotFound');
      await expectCode(ds.delete('IPPool', n), 'NotFound');
      await expectCode(ds.delete('IPPool', n, undefined, { resourceVersion: '5' }), 'NotFound');
      const created = await ds.create('IPPool', ipPool(n));
      expect((await expectCode(ds.create('IPPool', ipPool(n)), 'AlreadyExists')).message).toContain(n);
      await ds.update('IPPool', created);
      const conflict = await expectCode(ds.update('IPPool', created), 'Conflict');
      expect(conflict.message).toContain(created.metadata.resourceVersion);
      await expectCode(
        ds.delete('IPPool', n, undefined, { resourceVersion: created.metadata.resourceVersion }),
        'Conflict',
      );
      // A namespaced kind without a namespace cannot be stored.
      const policy = networkPolicy('x', `${n}-np`);
      await expectCode(ds.create('NetworkPolicy', { ...policy, metadata: { name: `${n}-np` } }), 'Invalid');
      await expectCode(
        ds.create('IPPool', { ...ipPool(`${n}-b`), metadata: { name: `${n}-b`, namespace: 'x' } }),
        'Invalid',
      );
      await ds.delete('IPPool', n);
    });

    it('refuses the IPPool writes Calico refuses, naming the field, and writes nothing', async () => {
      const p = unique();
      const pool = (
        name: string,
        spec: Partial<ResourceInput<'IPPool'>['spec']>,
      ): ResourceInput<'IPPool'> => ({
        metadata: { name: `${p}-${name}` },
        spec: { cidr: '100.64.0.0/16', ...spec },
      });
      const refused = async (write: Promise<unknown>, path: string, ...words: string[]): Promise<void> => {
        const err = await expectCode(write, 'Invalid');
        expect(err.message).toContain(`${path}:`);
        for (const w of words) expect(err.message).toContain(w);
      };
      const a = await ds.create('IPPool', pool('a', { blockSize: 26 }));
      const after = (await ds.list('IPPool', { prefix: p })).revision;

      // Overlap with an existing pool, by create and by apply, either containing the other.
      await refused(
        ds.create('IPPool', pool('b', { cidr: '100.64.128.0/20' })),
        'spec.cidr',
        `${p}-a`,
        '100.64.0.0/16',
      );
      await refused(ds.apply('IPPool', pool('b', { cidr: '100.0.0.0/8' })), 'spec.cidr', `${p}-a`);
      // cidr and blockSize are fixed once the pool exists.
      await refused(
        ds.update('IPPool', { ...a, spec: { ...a.spec, cidr: '100.65.0.0/16' } }),
        'spec.cidr',
        '100.64.0.0/16',
      );
      await refused(
        ds.update('IPPool', { ...a, spec: { ...a.spec, blockSize: 29 } }),
        'spec.blockSize',
        '26',
      );
      await refused(ds.apply('IPPool', pool('a', { blockSize: 28 })), 'spec.blockSize', '26');
      // Block sizes per family, link-local ranges, selectors and uses.
      await refused(
        ds.create('IPPool', pool('c', { cidr: '100.66.0.0/16', blockSize: 19 })),
        'spec.blockSize',
        '20–32',
      );
      await refused(
        ds.create('IPPool', pool('c', { cidr: '100.66.0.0/16', blockSize: 33 })),
        'spec.blockSize',
        '20–32',
      );
      await refused(
        ds.create('IPPool', pool('c', { cidr: 'fd00:1::/64', blockSize: 115 })),
        'spec.blockSize',
        '116–128',
      );
      await refused(
        ds.create('IPPool', pool('c', { cidr: '169.254.0.0/16' })),
        'spec.cidr',
        '169.254.0.0/16',
      );
      await refused(ds.create('IPPool', pool('c', { cidr: '169.0.0.0/8' })), 'spec.cidr', '169.254.0.0/16');
      await refused(ds.create('IPPool', pool('c', { cidr: 'fe80::/64' })), 'spec.cidr', 'fe80::/10');
      await refused(
        ds.create('IPPool', pool('c', { cidr: '100.66.0.0/16', nodeSelector: 'rack ==' })),
        'spec.nodeSelector',
      );
      await refused(
        ds.create('IPPool', {
          ...pool('c', { cidr: '100.66.0.0/16' }),
          spec: { cidr: '100.66.0.0/16', allowedUses: ['Workload', 'Bogus'] },
        } as ResourceInput<'IPPool'>),
        'spec.allowedUses[1]',
        'Workload',
      );

      // Nothing was written by any refused call.
      const now = await ds.list('IPPool', { prefix: p });
      expect(now.items).toEqual([a]);
      expect(now.revision).toBe(after);
      // Other fields still change; the pool's own cidr does not count as an overlap.
      const changed = await ds.update('IPPool', { ...a, spec: { ...a.spec, natOutgoing: true } });
      expect(changed.spec.natOutgoing).toBe(true);
      // Once the pool is gone its range is free again.
      await ds.delete('IPPool', a.metadata.name);
      const b = await ds.create('IPPool', pool('b', { cidr: '100.64.128.0/20' }));
      await ds.delete('IPPool', b.metadata.name);
    });

    it('lets only one of two overlapping pools created at once be stored', async () => {
      const p = unique();
      const [one, two] = [h.client(), h.client()];
      const results = await Promise.allSettled([
        one.create('IPPool', { metadata: { name: `${p}-one` }, spec: { cidr: '100.70.0.0/16' } }),
        two.create('IPPool', { metadata: { name: `${p}-two` }, spec: { cidr: '100.70.0.0/17' } }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const loser = results.find((r) => r.status === 'rejected');
      expect(isDatastoreError(loser?.reason, 'Invalid'), String(loser?.reason)).toBe(true);
      const stored = (await ds.list('IPPool', { prefix: p })).items;
      expect(stored).toHaveLength(1);
      await ds.delete('IPPool', stored[0]!.metadata.name);
      if (one !== ds) await one.close();
      if (two !== ds && two !== one) await two.close();
    });

    it('updates and deletes compare-and-swap on resourceVersion', async () => {
      const n = `${unique()}-pool`;
      const v1 = await ds.create('IPPool', ipPool(n));
      const v2 = await ds.update('IPPool', { ...v1, spec: { ...v1.spec, natOutgoing: false } });
      await expectCode(ds.update('IPPool', { ...v1, spec: { ...v1.spec, disabled: true } }), 'Conflict');
      expect((await ds.get('IPPool', n)).metadata.resourceVersion).toBe(v2.metadata.resourceVersion);
      // Without a resourceVersion, update overwrites whatever is stored.
      const { resourceVersion: _rv, ...meta } = v1.metadata;
      const v3 = await ds.update('IPPool', { ...v1, metadata: meta });
      await expectCode(
        ds.delete('IPPool', n, undefined, { resourceVersion: v2.metadata.resourceVersion }),
        'Conflict',
      );
      const gone = await ds.delete('IPPool', n, undefined, { resourceVersion: v3.metadata.resourceVersion });
      expect(gone.metadata.resourceVersion).toBe(v3.metadata.resourceVersion);
      await expectCode(ds.get('IPPool', n), 'NotFound');
    });

    it('lists by namespace and name prefix, at a revision that covers the items', async () => {
      const p = unique();
      const [a, b] = [`${p}-a`, `${p}-b`];
      for (const [ns, name] of [
        [a, 'web-1'],
        [a, 'web-2'],
        [a, 'db-1'],
        [b, 'web-1'],
      ] as const) {
        await ds.create('NetworkPolicy', networkPolicy(ns, name));
      }
      const last = await ds.create('IPPool', ipPool(`${p}-pool`));

      const inA = await ds.list('NetworkPolicy', { namespace: a });
      expect(inA.items.map((i) => i.metadata.name)).toEqual(['db-1', 'web-1', 'web-2']);
      expect(inA.revision).toBe(last.metadata.resourceVersion);
      const webInA = await ds.list('NetworkPolicy', { namespace: a, prefix: 'web' });
      expect(webInA.items.map((i) => i.metadata.name)).toEqual(['web-1', 'web-2']);
      const webAll = (await ds.list('NetworkPolicy', { prefix: 'web' })).items.filter((i) =>
        i.metadata.namespace?.startsWith(p),
      );
      expect(webAll.map((i) => `${i.metadata.namespace}/${i.metadata.name}`)).toEqual([
        `${a}/web-1`,
        `${a}/web-2`,
        `${b}/web-1`,
      ]);
      const pools = await ds.list('IPPool', { prefix: p });
      expect(pools.items.map((i) => i.metadata.name)).toEqual([`${p}-pool`]);
      expect(pools.items[0]).toEqual(last);
      for (const item of inA.items) {
        expect(Number(item.metadata.resourceVersion)).toBeLessThanOrEqual(Number(inA.revision));
      }
    });

    it('creates again after a delete, as a new object', async () => {
      const n = `${unique()}-node`;
      const first = await ds.create('Node', node(n));
      await ds.delete('Node', n);
      const second = await ds.create('Node', node(n));
      expect(Number(second.metadata.resourceVersion)).toBeGreaterThan(Number(first.metadata.resourceVersion));
      expect(second.metadata.uid).not.toBe(first.metadata.uid);
      expect(await ds.get('Node', n)).toEqual(second);
      // A CAS delete with the first incarnation's version must not remove the second.
      await expectCode(
        ds.delete('Node', n, undefined, { resourceVersion: first.metadata.resourceVersion }),
        'Conflict',
      );
      await ds.delete('Node', n);
    });

    it('lets exactly one of several clients win each compare-and-swap round', async () => {
      const n = `${unique()}-pool`;
      const clients = [h.client(), h.client(), h.client(), h.client()];
      try {
        await ds.create('IPPool', ipPool(n));
        for (let round = 0; round < 10; round++) {
          const seen = await Promise.all(clients.map((c) => c.get('IPPool', n)));
          expect(new Set(seen.map((s) => s.metadata.resourceVersion)).size).toBe(1);
          const results = await Promise.allSettled(
            clients.map((c, i) =>
              c.update('IPPool', {
                ...seen[i]!,
                metadata: { ...seen[i]!.metadata, labels: { winner: String(i) } },
              }),
            ),
          );
          const won = results.filter((r) => r.status === 'fulfilled');
          const lost = results.filter((r) => r.status === 'rejected');
          expect(won).toHaveLength(1);
          for (const l of lost)
            expect(isDatastoreError((l as PromiseRejectedResult).reason, 'Conflict')).toBe(true);
          const stored = await ds.get('IPPool', n);
          expect(stored).toEqual((won[0] as PromiseFulfilledResult<AnyResource>).value);
        }
      } finally {
        for (const c of clients) if (c !== ds) await c.close();
      }
      await ds.delete('IPPool', n);
    });

    it('watches from a list revision: every later change exactly once, in order', async () => {
      const p = unique();
      const before = await ds.create('IPPool', ipPool(`${p}-before`));
      const { revision } = await ds.list('IPPool');
      const w = watchOf(ds, { kinds: ['IPPool', 'Node'], revision });
      const expected: { type: string; name: string }[] = [];
      const record = (type: string, r: AnyResource) => expected.push({ type, name: r.metadata.name });
      for (let i = 0; i < 5; i++) record('added', await ds.create('IPPool', ipPool(`${p}-${i}`)));
      record('added', await ds.create('Node', node(`${p}-node`)));
      for (let i = 0; i < 5; i += 2) {
        const cur = await ds.get('IPPool', `${p}-${i}`);
        record('modified', await ds.update('IPPool', { ...cur, spec: { ...cur.spec, disabled: true } }));
      }
      await ds.delete('IPPool', `${p}-1`);
      expected.push({ type: 'deleted', name: `${p}-1` });
      const lastDel = await ds.delete('IPPool', `${p}-before`);
      expected.push({ type: 'deleted', name: `${p}-before` });
      const sentinel = await ds.create('IPPool', ipPool(`${p}-sentinel`));
      record('added', sentinel);

      const read = await w.untilChange('added', `${p}-sentinel`);
      const changes = read.filter(isChange).filter(mine(p));
      expect(changes.map((c) => `${c.type}:${nameOf(c)}`)).toEqual(
        expected.map((e) => `${e.type}:${e.name}`),
      );
      const revs = changes.map((c) => Number(c.revision));
      expect([...revs].sort((x, y) => x - y)).toEqual(revs);
      expect(new Set(revs).size).toBe(revs.length);
      for (const c of changes) {
        if (c.type !== 'deleted') expect(c.revision).toBe(c.new.metadata.resourceVersion);
      }
      const mod = changes.find((c) => c.type === 'modified' && nameOf(c) === `${p}-0`);
      if (mod?.type !== 'modified' || !mod.old) throw new Error(`no modified event with old for ${p}-0`);
      expect((mod.old.spec as { disabled?: boolean }).disabled ?? false).toBe(false);
      expect(mod.new.spec).toMatchObject({ disabled: true });
      const removed = changes.find((c) => c.type === 'deleted' && nameOf(c) === `${p}-before`);
      expect(removed?.type === 'deleted' && removed.old.metadata.uid).toBe(before.metadata.uid);
      expect(read.some((e) => e.type === 'resync')).toBe(false);
      expect(Number(lastDel.metadata.resourceVersion)).toBeLessThan(
        Number(sentinel.metadata.resourceVersion),
      );
    });

    it('starts a watch without a revision with a resync of the current state', async () => {
      const p = unique();
      const a = await ds.create('IPPool', ipPool(`${p}-a`));
      const w = watchOf(ds, { kinds: ['IPPool'] });
      const [first] = await w.until(() => true, 15_000, 'initial resync');
      expect(first?.type).toBe('resync');
      if (first?.type !== 'resync') return;
      expect(first.items.filter((i) => i.metadata.name.startsWith(p))).toEqual([a]);
      expect(first.events.filter(isChange).filter(mine(p))).toEqual([
        { type: 'added', kind: 'IPPool', revision: first.revision, new: a },
      ]);
      const b = await ds.create('IPPool', ipPool(`${p}-b`));
      const read = await w.untilChange('added', `${p}-b`);
      expect(read.filter(isChange).at(-1)).toEqual({
        type: 'added',
        kind: 'IPPool',
        revision: b.metadata.resourceVersion,
        new: b,
      });
    });

    it('resyncs a watch whose start revision was compacted', async () => {
      const p = unique();
      const keep = await ds.create('IPPool', ipPool(`${p}-keep`));
      const change = await ds.create('IPPool', ipPool(`${p}-change`));
      await ds.create('IPPool', ipPool(`${p}-drop`));
      const { revision } = await ds.list('IPPool');
      const changed = await ds.update('IPPool', { ...change, spec: { ...change.spec, disabled: true } });
      await ds.delete('IPPool', `${p}-drop`);
      const added = await ds.create('IPPool', ipPool(`${p}-new`));
      await h.compact(added.metadata.resourceVersion!);

      const w = watchOf(ds, { kinds: ['IPPool'], revision });
      const [first] = await w.until(() => true, 15_000, 'resync');
      expect(first?.type).toBe('resync');
      if (first?.type !== 'resync') return;
      expect(first.revision).toBe(added.metadata.resourceVersion);
      // This watch had delivered nothing, so everything current is new to it.
      const byName = (x: AnyResource, y: AnyResource) => (x.metadata.name < y.metadata.name ? -1 : 1);
      expect(first.items.filter((i) => i.metadata.name.startsWith(p)).sort(byName)).toEqual(
        [changed, keep, added].sort(byName),
      );
      expect(
        first.events
          .filter(mine(p))
          .map((e) => `${e.type}:${nameOf(e)}`)
          .sort(),
      ).toEqual([`added:${p}-change`, `added:${p}-keep`, `added:${p}-new`]);
      const next = await ds.create('IPPool', ipPool(`${p}-after`));
      const read = await w.untilChange('added', `${p}-after`);
      expect(read.filter(isChange).at(-1)?.revision).toBe(next.metadata.resourceVersion);
    });

    itIf(caps.partition)(
      'resyncs with the added/modified/deleted diff when history it missed was compacted',
      async () => {
        const p = unique();
        const part = await h.partitionedClient!();
        try {
          const modify = await ds.create('IPPool', ipPool(`${p}-modify`));
          const remove = await ds.create('IPPool', ipPool(`${p}-remove`));
          const keep = await ds.create('IPPool', ipPool(`${p}-keep`));
          const w = watchOf(part.store, { kinds: ['IPPool'] });
          await w.until((e) => e.type === 'resync', 15_000, 'initial resync');

          part.cut();
          await w.until(
            (e) => e.type === 'status' && e.state === 'disconnected',
            15_000,
            'disconnected status',
          );
          const modified = await ds.update('IPPool', { ...modify, spec: { ...modify.spec, disabled: true } });
          await ds.delete('IPPool', `${p}-remove`);
          const added = await ds.create('IPPool', ipPool(`${p}-add`));
          await h.compact(added.metadata.resourceVersion!);
          part.heal();

          const read = await w.until((e) => e.type === 'resync', 20_000, 'resync after compaction');
          expect(summary(read)).toMatch(/status:connected/);
          const resync = read.at(-1) as Extract<WatchEvent, { type: 'resync' }>;
          const events = resync.events.filter(mine(p)).sort((x, y) => (nameOf(x) < nameOf(y) ? -1 : 1));
          expect(events).toEqual([
            { type: 'added', kind: 'IPPool', revision: resync.revision, new: added },
            { type: 'modified', kind: 'IPPool', revision: resync.revision, old: modify, new: modified },
            { type: 'deleted', kind: 'IPPool', revision: resync.revision, old: remove },
          ]);
          expect(
            resync.items
              .filter((i) => i.metadata.name.startsWith(p))
              .map((i) => i.metadata.name)
              .sort(),
          ).toEqual([added, keep, modified].map((i) => i.metadata.name).sort());
          const after = await ds.create('IPPool', ipPool(`${p}-after`));
          const tail = await w.untilChange('added', `${p}-after`);
          expect(tail.filter(isChange).filter(mine(p))).toEqual([
            { type: 'added', kind: 'IPPool', revision: after.metadata.resourceVersion, new: after },
          ]);
        } finally {
          await part.close();
        }
      },
    );

    itIf(caps.restart)(
      'resumes a watch across a server kill and restart without gaps or duplicates',
      async () => {
        const p = unique();
        const { revision } = await ds.list('IPPool');
        const w = watchOf(ds, { kinds: ['IPPool'], revision });
        const names: string[] = [];
        for (let i = 0; i < 5; i++) {
          names.push(`${p}-pre-${i}`);
          await ds.create('IPPool', ipPool(`${p}-pre-${i}`));
        }
        await h.kill!();
        const started = Date.now();
        const down = await expectCode(ds.get('IPPool', `${p}-pre-0`), 'Unavailable');
        expect(Date.now() - started).toBeLessThan(6_000);
        expect(down.message).toMatch(/cannot reach etcd at http:\/\/127\.0\.0\.1:\d+/);
        await w.until(
          (e) => e.type === 'status' && e.state === 'disconnected',
          15_000,
          'disconnected status',
        );
        await h.restart!();
        const writer = h.client();
        try {
          for (let i = 0; i < 5; i++) {
            names.push(`${p}-post-${i}`);
            await eventually(() => writer.create('IPPool', ipPool(`${p}-post-${i}`)));
          }
          await eventually(() => writer.create('IPPool', ipPool(`${p}-sentinel`)));
        } finally {
          await writer.close();
        }
        const read = await w.untilChange('added', `${p}-sentinel`, 30_000);
        const all = w.events;
        const changes = all.filter(isChange).filter(mine(p));
        expect(changes.map(nameOf)).toEqual([...names, `${p}-sentinel`]);
        expect(changes.every((c) => c.type === 'added')).toBe(true);
        const statuses = all
          .filter((e) => e.type === 'status')
          .map((e) => (e.type === 'status' ? e.state : ''));
        expect(statuses).toEqual(['disconnected', 'connected']);
        expect(read.some((e) => e.type === 'resync')).toBe(false);
      },
    );

    itIf(caps.unreachable)(
      'fails promptly with Unavailable when the store is down, naming the endpoint',
      async () => {
        const { store, endpoint } = await h.unreachableClient!();
        try {
          const started = Date.now();
          const err = await expectCode(store.get('IPPool', 'any'), 'Unavailable');
          expect(err.message).toContain(endpoint);
          await expectCode(store.create('IPPool', ipPool(`${unique()}-x`)), 'Unavailable');
          await expectCode(store.list('IPPool'), 'Unavailable');
          expect(Date.now() - started).toBeLessThan(6_000);
        } finally {
          await store.close();
        }
      },
    );
  });
}
