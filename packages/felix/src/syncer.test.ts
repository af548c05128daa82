import {
  type AnyResource,
  type Datastore,
  keyFor,
  MemoryDatastore,
  type ResourceInput,
} from '@calico-ts/datastore';
import { afterEach, describe, expect, it } from 'vitest';
import { Syncer, type SyncerUpdate, type SyncStatus } from './syncer.ts';

function pool(name: string, cidr: string): ResourceInput<'IPPool'> {
  return { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec: { cidr } };
}

function recorder() {
  const statuses: SyncStatus[] = [];
  const updates: SyncerUpdate[] = [];
  const state = new Map<string, AnyResource>();
  return {
    statuses,
    updates,
    state,
    callbacks: {
      onStatus: (s: SyncStatus) => statuses.push(s),
      onUpdates: (us: SyncerUpdate[]) => {
        for (const u of us) {
          updates.push(u);
          if (u.value) state.set(u.key, u.value);
          else state.delete(u.key);
        }
      },
    },
  };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('Syncer', () => {
  let syncer: Syncer | undefined;
  afterEach(async () => {
    await syncer?.stop();
  });

  it('lists, reports in-sync, then follows changes', async () => {
    const ds = new MemoryDatastore();
    await ds.create('IPPool', pool('a', '10.1.0.0/16'));
    const r = recorder();
    syncer = new Syncer({ datastore: ds, callbacks: r.callbacks });
    syncer.start();
    await until(() => r.statuses.includes('in-sync'), 'in-sync');
    expect(r.statuses).toEqual(['waiting', 'resyncing', 'in-sync']);
    expect([...r.state.values()].map((v) => v.metadata.name)).toEqual(['a']);

    await ds.create('IPPool', pool('b', '10.2.0.0/16'));
    await ds.delete('IPPool', 'a');
    await until(() => r.state.size === 1 && [...r.state.values()][0]!.metadata.name === 'b', 'b only');
    expect(r.updates.at(-1)).toMatchObject({ kind: 'IPPool', value: null });
    // Kinds Felix does not read are not delivered.
    await ds.create('BGPPeer', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'p' },
      spec: { peerIP: '192.0.2.1', asNumber: 64512, sourceAddress: 'UseNodeIP' },
    });
    await ds.create('IPPool', pool('c', '10.3.0.0/16'));
    await until(() => r.state.size === 2, 'c');
    expect(r.updates.every((u) => u.kind === 'IPPool')).toBe(true);
  });

  it('relists when the watch fails: delivers what changed, deletes what vanished, repeats nothing', async () => {
    const ds = new MemoryDatastore();
    await ds.create('IPPool', pool('a', '10.1.0.0/16'));
    await ds.create('IPPool', pool('b', '10.2.0.0/16'));
    // A datastore whose watch can be made to fail, as a dropped etcd connection would.
    let failWatch: (() => void) | undefined;
    const flaky: Datastore = {
      get: ds.get.bind(ds),
      list: ds.list.bind(ds),
      create: ds.create.bind(ds),
      update: ds.update.bind(ds),
      apply: ds.apply.bind(ds),
      delete: ds.delete.bind(ds),
      close: ds.close.bind(ds),
      watch: (options) => watch(options),
    };
    const watch: Datastore['watch'] = (options) => {
      const inner = ds.watch(options);
      let fail: (e: Error) => void = () => {};
      const failed = new Promise<never>((_, reject) => (fail = reject));
      failWatch = () => fail(new Error('connection lost'));
      return {
        close: () => inner.close(),
        [Symbol.asyncIterator]: () => {
          const it = inner[Symbol.asyncIterator]();
          return { next: () => Promise.race([it.next(), failed]), return: () => it.return!() };
        },
      };
    };
    const r = recorder();
    syncer = new Syncer({ datastore: flaky, callbacks: r.callbacks, retryIntervalMs: 1 });
    syncer.start();
    await until(() => r.statuses.includes('in-sync') && failWatch !== undefined, 'in-sync');
    const before = r.updates.length;
    failWatch!();
    await until(() => syncer!.resyncCount === 1, 'relist');
    await ds.delete('IPPool', 'a');
    await ds.create('IPPool', pool('c', '10.3.0.0/16'));
    await until(() => r.state.size === 2 && r.state.has(keyFor('IPPool', 'c')), 'relisted state');
    const after = r.updates.slice(before);
    expect(after.map((u) => [u.key.split('/').at(-1), u.value === null])).toEqual(
      expect.arrayContaining([
        ['a', true],
        ['c', false],
      ]),
    );
    // b did not change: not delivered again.
    expect(after.some((u) => u.key.endsWith('/b'))).toBe(false);
    expect(syncer.resyncCount).toBeGreaterThanOrEqual(1);
    expect(r.statuses.at(-1)).toBe('in-sync');
  });
});
