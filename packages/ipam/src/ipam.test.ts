import {
  type Datastore,
  DatastoreError,
  type KindName,
  MemoryDatastore,
  parseSelector,
} from '@calico-ts/datastore';
import { describe, expect, it } from 'vitest';
import { isIpamError } from './errors.ts';
import { Ipam, type IpamOptions } from './ipam.ts';

const quiet = { random: () => 0.5 } satisfies IpamOptions;

async function pool(
  ds: Datastore,
  name: string,
  cidr: string,
  spec: Record<string, unknown> = {},
): Promise<void> {
  await ds.create('IPPool', {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name },
    spec: { cidr, ...spec },
  } as never);
}

async function node(ds: Datastore, name: string, labels: Record<string, string> = {}): Promise<void> {
  await ds.create('Node', {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Node',
    metadata: { name, labels },
    spec: {},
  } as never);
}

async function setup(
  pools: [string, string, Record<string, unknown>?][] = [['default', '10.244.0.0/24']],
  nodes: string[] = ['n1', 'n2'],
) {
  const ds = new MemoryDatastore();
  for (const [name, cidr, spec] of pools) await pool(ds, name, cidr, spec);
  for (const n of nodes) await node(ds, n);
  return { ds, ipam: new Ipam(ds, quiet) };
}

async function expectCode(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(isIpamError(err), String(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    if (message) expect((err as Error).message).toMatch(message);
    return;
  }
  expect.unreachable(`expected IpamError ${code}`);
}

/**
 * A Datastore that lets a test act between a write being decided and its answer: `before` runs
 * ahead of a write (e.g. a racing writer), `after` once it has been applied (e.g. the answer is
 * lost: throw Unavailable).
 */
class InterposedDatastore implements Datastore {
  readonly inner: MemoryDatastore;
  before: ((op: string, kind: KindName) => Promise<void>) | undefined;
  after: ((op: string, kind: KindName) => void) | undefined;
  constructor(inner: MemoryDatastore) {
    this.inner = inner;
  }
  get: Datastore['get'] = (k, n, ns) => this.inner.get(k, n, ns);
  list: Datastore['list'] = (k, o) => this.inner.list(k, o);
  watch: Datastore['watch'] = (o) => this.inner.watch(o);
  close = () => this.inner.close();
  create: Datastore['create'] = (k, r) => this.#write('create', k, () => this.inner.create(k, r as never));
  update: Datastore['update'] = (k, r) => this.#write('update', k, () => this.inner.update(k, r as never));
  apply: Datastore['apply'] = (k, r) => this.#write('apply', k, () => this.inner.apply(k, r as never));
  delete: Datastore['delete'] = (k, n, ns, o) =>
    this.#write('delete', k, () => this.inner.delete(k, n, ns, o));
  async #write<T>(op: string, kind: KindName, run: () => Promise<T>): Promise<T> {
    await this.before?.(op, kind);
    const r = await run();
    this.after?.(op, kind);
    return r;
  }
}

describe('autoAssign', () => {
  it('claims a block for the node (pending → block → confirmed) and records the handle', async () => {
    const { ds, ipam } = await setup();
    const r = await ipam.autoAssign({ num4: 1, handleId: 'h1', node: 'n1', attrs: { pod: 'p1' } });
    expect(r.ipv6).toEqual([]);
    const [a] = r.ipv4;
    expect(a!.address).toMatch(/^10\.244\.0\.\d+$/);
    expect(a!.cidr).toBe(`${a!.address}/26`);
    const block = await ds.get('IPAMBlock', a!.block.replace(/[./]/g, '-'));
    expect(block.spec.affinity).toBe('host:n1');
    const { items: affinities } = await ds.list('BlockAffinity');
    expect(affinities.map((x) => [x.spec.node, x.spec.cidr, x.spec.state])).toEqual([
      ['n1', a!.block, 'confirmed'],
    ]);
    const handle = await ds.get('IPAMHandle', 'h1');
    expect(handle.spec.block).toEqual({ [a!.block]: 1 });
    expect(await ipam.getAssignmentAttributes(a!.address)).toMatchObject({
      handleId: 'h1',
      attrs: { pod: 'p1' },
      blockAffinity: 'host:n1',
      sequenceNumber: a!.sequenceNumber,
    });
    expect((await ipam.check()).ok).toBe(true);
  });

  it('serves a warm affine block with one block write and one handle write', async () => {
    const { ipam } = await setup();
    await ipam.autoAssign({ num4: 1, handleId: 'warm-up', node: 'n1' });
    const before = ipam.writeCount;
    await ipam.autoAssign({ num4: 1, handleId: 'h2', node: 'n1' });
    expect(ipam.writeCount - before).toBe(2);
  });

  it('batches concurrent requests of one node into shared block writes', async () => {
    const { ipam } = await setup();
    await ipam.autoAssign({ num4: 1, handleId: 'warm-up', node: 'n1' });
    const before = ipam.writeCount;
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => ipam.autoAssign({ num4: 1, handleId: `h${i}`, node: 'n1' })),
    );
    const addrs = results.map((r) => r.ipv4[0]!.address);
    expect(new Set(addrs).size).toBe(30);
    // 30 handle creates plus a handful of block writes, far below 2 per allocation.
    expect(ipam.writeCount - before).toBeLessThanOrEqual(30 + 5);
    expect((await ipam.check()).ok).toBe(true);
  });

  it('exhausts a small pool and says why', async () => {
    // 4 blocks of 4 addresses; strictAffinity so nothing can be borrowed.
    const { ipam } = await setup([['small', '10.9.0.0/28', { blockSize: 30 }]]);
    await ipam.setConfig({ strictAffinity: true });
    const got = await ipam.autoAssign({ num4: 16, handleId: 'all', node: 'n1' });
    expect(new Set(got.ipv4.map((a) => a.address)).size).toBe(16);
    await expectCode(
      ipam.autoAssign({ num4: 1, handleId: 'one-more', node: 'n1' }),
      'NoFreeAddress',
      /^no free address in pool 10\.9\.0\.0\/28 for node n1: 10\.9\.0\.0\/28: 4 of 4 blocks claimed, borrowing disabled \(strictAffinity\)/,
    );
    expect(await ipam.ipsByHandle('one-more')).toEqual([]);
    expect((await ipam.check()).ok).toBe(true);
  });

  it('fails all-or-nothing when a request cannot be served in full', async () => {
    const { ipam } = await setup([['small', '10.9.0.0/29', { blockSize: 30 }]]);
    await ipam.setConfig({ strictAffinity: true });
    await expectCode(ipam.autoAssign({ num4: 9, handleId: 'greedy', node: 'n1' }), 'NoFreeAddress');
    expect(await ipam.ipsByHandle('greedy')).toEqual([]);
    const util = await ipam.getUtilization();
    expect(util[0]!.inUse).toBe(0);
    expect((await ipam.autoAssign({ num4: 8, handleId: 'fits', node: 'n1' })).ipv4).toHaveLength(8);
  });

  it('borrows from another node’s block only when strictAffinity is off', async () => {
    const { ipam } = await setup([['tiny', '10.9.0.0/29', { blockSize: 30 }]]);
    const n1 = await ipam.autoAssign({ num4: 5, handleId: 'n1-pods', node: 'n1' }); // both blocks
    expect(new Set(n1.ipv4.map((a) => a.block)).size).toBe(2);
    const borrowed = await ipam.autoAssign({ num4: 1, handleId: 'n2-pod', node: 'n2' });
    const attrs = await ipam.getAssignmentAttributes(borrowed.ipv4[0]!.address);
    expect(attrs?.blockAffinity).toBe('host:n1');

    await ipam.setConfig({ strictAffinity: true });
    await expectCode(
      ipam.autoAssign({ num4: 1, handleId: 'n2-pod-2', node: 'n2' }),
      'NoFreeAddress',
      /borrowing disabled \(strictAffinity\)/,
    );
    expect((await ipam.check()).ok).toBe(true);
  });

  it('respects maxBlocksPerHost', async () => {
    const { ipam } = await setup([['p', '10.9.0.0/28', { blockSize: 30 }]]);
    await ipam.setConfig({ maxBlocksPerHost: 1, strictAffinity: true });
    await ipam.autoAssign({ num4: 4, handleId: 'a', node: 'n1' });
    await expectCode(
      ipam.autoAssign({ num4: 1, handleId: 'b', node: 'n1' }),
      'BlockLimitReached',
      /maxBlocksPerHost=1/,
    );
    // Without strictAffinity the node borrows from another node's block instead.
    await ipam.autoAssign({ num4: 1, handleId: 'c', node: 'n2' });
    await ipam.setConfig({ strictAffinity: false });
    const b = await ipam.autoAssign({ num4: 1, handleId: 'b', node: 'n1' });
    expect((await ipam.getAssignmentAttributes(b.ipv4[0]!.address))?.blockAffinity).toBe('host:n2');
    expect(await ipam.getConfig()).toEqual({
      strictAffinity: false,
      maxBlocksPerHost: 1,
      autoAllocateBlocks: true,
    });
  });

  it('allocates IPv4 and IPv6 in one call (dual stack), undoing both if one family fails', async () => {
    const { ipam } = await setup([
      ['v4', '10.244.0.0/24'],
      ['v6', 'fd00:10::/120', { blockSize: 126 }],
    ]);
    const r = await ipam.autoAssign({ num4: 1, num6: 2, handleId: 'ds', node: 'n1' });
    expect(r.ipv4).toHaveLength(1);
    expect(r.ipv6.map((a) => a.address)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^fd00:10::[0-9a-f]+$/)]),
    );
    expect(r.ipv6[0]!.cidr).toMatch(/\/126$/);
    expect(new Set(await ipam.ipsByHandle('ds'))).toEqual(
      new Set([...r.ipv4, ...r.ipv6].map((a) => a.address)),
    );

    await ipam.setConfig({ strictAffinity: true });
    await expectCode(
      ipam.autoAssign({ num4: 1, num6: 1000, handleId: 'too-many', node: 'n1' }),
      'NoFreeAddress',
      /fd00:10::\/120/,
    );
    expect(await ipam.ipsByHandle('too-many')).toEqual([]);
    expect((await ipam.check()).ok).toBe(true);
  });

  it('picks pools by nodeSelector against the Node’s labels', async () => {
    const { ds, ipam } = await setup(
      [
        ['rack-a', '10.1.0.0/24', { nodeSelector: "rack == 'a'" }],
        ['rack-b', '10.2.0.0/24', { nodeSelector: "rack == 'b'" }],
      ],
      [],
    );
    await node(ds, 'na', { rack: 'a' });
    await node(ds, 'nb', { rack: 'b' });
    await node(ds, 'nc', { rack: 'c' });
    expect((await ipam.autoAssign({ num4: 1, handleId: 'a', node: 'na' })).ipv4[0]!.pool).toBe('rack-a');
    expect((await ipam.autoAssign({ num4: 1, handleId: 'b', node: 'nb' })).ipv4[0]!.pool).toBe('rack-b');
    await expectCode(ipam.autoAssign({ num4: 1, handleId: 'c', node: 'nc' }), 'NoUsablePool', /node nc/);
    await expectCode(ipam.autoAssign({ num4: 1, handleId: 'd', node: 'ghost' }), 'NodeNotFound', /ghost/);
    expect(parseSelector("rack == 'a'").evaluate({ rack: 'a' })).toBe(true);
  });

  it('honours allowedUses, disabled pools and Manual assignment mode', async () => {
    const { ipam } = await setup([
      ['a-tunnel', '10.3.0.0/24', { allowedUses: ['Tunnel'] }],
      ['b-workload', '10.4.0.0/24', { allowedUses: ['Workload'] }],
      ['c-off', '10.5.0.0/24', { disabled: true }],
      ['d-manual', '10.6.0.0/24', { assignmentMode: 'Manual' }],
    ]);
    const tunnel = await ipam.autoAssign({
      num4: 1,
      handleId: 'ipip-tunnel-addr-n1',
      node: 'n1',
      intendedUse: 'Tunnel',
    });
    expect(tunnel.ipv4[0]!.pool).toBe('a-tunnel');
    const pod = await ipam.autoAssign({ num4: 1, handleId: 'pod', node: 'n1' });
    expect(pod.ipv4[0]!.pool).toBe('b-workload');
    const manual = await ipam.autoAssign({ num4: 1, handleId: 'm', node: 'n1', pools: ['10.6.0.0/24'] });
    expect(manual.ipv4[0]!.pool).toBe('d-manual');
    await expectCode(
      ipam.autoAssign({ num4: 1, handleId: 'x', node: 'n1', pools: ['c-off'] }),
      'NoUsablePool',
      /disabled/,
    );
    await expectCode(
      ipam.autoAssign({ num4: 1, handleId: 'x', node: 'n1', pools: ['nope'] }),
      'NoUsablePool',
      /does not exist/,
    );
    await expectCode(
      ipam.autoAssign({ num4: 1, handleId: 'x', node: 'n1', pools: ['a-tunnel'], intendedUse: 'Workload' }),
      'NoUsablePool',
    );
  });

  it('validates its arguments', async () => {
    const { ipam } = await setup();
    await expectCode(ipam.autoAssign({ handleId: 'h', node: 'n1' }), 'InvalidArgument');
    await expectCode(ipam.autoAssign({ num4: 1, handleId: '', node: 'n1' }), 'InvalidArgument');
    await expectCode(ipam.setConfig({ maxBlocksPerHost: -1 }), 'InvalidArgument');
  });
});

describe('assignIP', () => {
  it('assigns a chosen address, claiming its block for the node', async () => {
    const { ipam } = await setup();
    const a = await ipam.assignIP({ ip: '10.244.0.200', handleId: 'vxlan-tunnel-addr-n1', node: 'n1' });
    expect(a).toMatchObject({ address: '10.244.0.200', block: '10.244.0.192/26', cidr: '10.244.0.200/26' });
    expect((await ipam.getAssignmentAttributes('10.244.0.200'))?.blockAffinity).toBe('host:n1');
    await expectCode(
      ipam.assignIP({ ip: '10.244.0.200', handleId: 'x', node: 'n1' }),
      'AddressInUse',
      /vxlan-tunnel-addr-n1/,
    );
    await expectCode(ipam.assignIP({ ip: '192.168.1.1', handleId: 'x', node: 'n1' }), 'AddressNotInPool');
    // n1's block is not n2's: allowed unless strictAffinity.
    await ipam.assignIP({ ip: '10.244.0.201', handleId: 'y', node: 'n2' });
    await ipam.setConfig({ strictAffinity: true });
    await expectCode(
      ipam.assignIP({ ip: '10.244.0.202', handleId: 'z', node: 'n2' }),
      'NotAffine',
      /host:n1/,
    );
    expect((await ipam.check()).ok).toBe(true);
  });
});

describe('release', () => {
  it('releases by address and by handle, deleting empty handles', async () => {
    const { ds, ipam } = await setup();
    const a = await ipam.autoAssign({ num4: 3, handleId: 'h', node: 'n1' });
    const [x, y, z] = a.ipv4.map((i) => i.address) as [string, string, string];
    const r = await ipam.releaseIPs([x, '10.244.0.250']);
    expect(r).toEqual({ released: [x], notAllocated: ['10.244.0.250'], rejected: [] });
    expect((await ds.get('IPAMHandle', 'h')).spec.block).toEqual({ [a.ipv4[0]!.block]: 2 });
    expect(new Set(await ipam.releaseByHandle('h'))).toEqual(new Set([y, z]));
    await expect(ds.get('IPAMHandle', 'h')).rejects.toMatchObject({ code: 'NotFound' });
    expect(await ipam.getAssignmentAttributes(y)).toBeUndefined();
    expect(await ipam.releaseByHandle('h')).toEqual([]);
    expect((await ipam.check()).ok).toBe(true);
  });

  it('serves concurrent releases by handle of one block with shared block writes', async () => {
    const { ds, ipam } = await setup();
    const held = await Promise.all(
      Array.from({ length: 30 }, (_, i) => ipam.autoAssign({ num4: 1, handleId: `h${i}`, node: 'n1' })),
    );
    const before = ipam.writeCount;
    const released = await Promise.all(held.map((_, i) => ipam.releaseByHandle(`h${i}`)));
    expect(released.map((r) => r.length)).toEqual(held.map(() => 1));
    expect(new Set(released.flat())).toEqual(new Set(held.map((r) => r.ipv4[0]!.address)));
    // 30 handle deletes plus a handful of block writes, not a block write (and its conflicts) each.
    expect(ipam.writeCount - before).toBeLessThanOrEqual(30 + 5);
    expect((await ds.list('IPAMHandle')).items).toEqual([]);
    const report = await ipam.check();
    expect(report.ok, JSON.stringify(report)).toBe(true);
    expect(report.allocations).toBe(0);
  });

  it('releases by handle against a block another instance changed since it was cached', async () => {
    const { ds } = await setup();
    const ipam = new Ipam(ds, quiet);
    const other = new Ipam(ds, quiet);
    await ipam.autoAssign({ num4: 1, handleId: 'warm', node: 'n1' });
    // Written by another instance: this instance's cached block does not show it.
    const theirs = (await other.autoAssign({ num4: 2, handleId: 'theirs', node: 'n1' })).ipv4;
    expect(new Set(await ipam.releaseByHandle('theirs'))).toEqual(new Set(theirs.map((a) => a.address)));
    // The cached block (now stale) still serves warm's release after a conflict and a re-read.
    await other.autoAssign({ num4: 1, handleId: 'later', node: 'n1' });
    expect(await ipam.releaseByHandle('warm')).toHaveLength(1);
    expect(await ipam.ipsByHandle('later')).toHaveLength(1);
    const report = await ipam.check();
    expect(report.ok, JSON.stringify(report)).toBe(true);
    expect(report.allocations).toBe(1);
  });

  it('refuses a release for another handle', async () => {
    const { ipam } = await setup();
    const a = (await ipam.autoAssign({ num4: 1, handleId: 'owner', node: 'n1' })).ipv4[0]!;
    const r = await ipam.releaseIPs([{ address: a.address, handleId: 'intruder' }]);
    expect(r.rejected).toEqual([{ address: a.address, reason: 'OtherHandle' }]);
    expect(await ipam.ipsByHandle('owner')).toEqual([a.address]);
  });

  it('reuses released addresses last (FIFO) and rejects a stale release by sequence number', async () => {
    const { ipam } = await setup([['p', '10.9.0.0/30', { blockSize: 30 }]]);
    const first = (await ipam.autoAssign({ num4: 1, handleId: 'a', node: 'n1' })).ipv4[0]!;
    await ipam.releaseIPs([{ address: first.address, sequenceNumber: first.sequenceNumber }]);
    const next = (await ipam.autoAssign({ num4: 1, handleId: 'b', node: 'n1' })).ipv4[0]!;
    expect(next.address).not.toBe(first.address);
    const rest = await ipam.autoAssign({ num4: 3, handleId: 'c', node: 'n1' });
    const again = rest.ipv4.find((x) => x.address === first.address)!;
    expect(again).toBeDefined();
    expect(again.sequenceNumber).toBeGreaterThan(first.sequenceNumber);
    // A late, duplicated release of the first allocation must not free the address c holds now.
    const stale = await ipam.releaseIPs([{ address: first.address, sequenceNumber: first.sequenceNumber }]);
    expect(stale).toEqual({
      released: [],
      notAllocated: [],
      rejected: [{ address: first.address, reason: 'BadSequenceNumber' }],
    });
    expect(await ipam.ipsByHandle('c')).toContain(first.address);
  });
});

describe('affinities', () => {
  it('releases empty blocks, keeps allocations of non-empty ones, and lets blocks be reclaimed', async () => {
    const { ds, ipam } = await setup([['p', '10.9.0.0/29', { blockSize: 30 }]]);
    const a = await ipam.autoAssign({ num4: 5, handleId: 'h', node: 'n1' });
    const blocks = [...new Set(a.ipv4.map((x) => x.block))];
    expect(blocks).toHaveLength(2);
    await expectCode(
      ipam.releaseAffinity(blocks[0]!, 'n1', { mustBeEmpty: true }),
      'BlockNotEmpty',
      /release them first/,
    );
    // Empty one block (the one not holding the fifth address).
    const otherBlock = blocks.find((b) => b !== a.ipv4[4]!.block)!;
    await ipam.releaseIPs(a.ipv4.filter((x) => x.block === otherBlock).map((x) => x.address));
    const { released, kept } = await ipam.releaseHostAffinities('n1', { mustBeEmpty: true });
    expect(released).toEqual([otherBlock]);
    expect(kept).toEqual([a.ipv4[4]!.block]);
    // Without mustBeEmpty the node loses the block, the allocation stays valid.
    await ipam.releaseHostAffinities('n1');
    const { items } = await ds.list('IPAMBlock');
    expect(items.map((b) => [b.spec.cidr, b.spec.affinity])).toEqual([[a.ipv4[4]!.block, undefined]]);
    expect((await ds.list('BlockAffinity')).items).toEqual([]);
    expect((await ipam.check()).ok).toBe(true);
    // Once released, n2 can claim the freed block.
    const n2 = await ipam.autoAssign({ num4: 4, handleId: 'n2', node: 'n2' });
    expect(new Set(n2.ipv4.map((x) => x.block))).toEqual(new Set([otherBlock]));
  });

  it('lets exactly one of two racing nodes claim the last block', async () => {
    const { ds, ipam } = await setup([['one', '10.9.0.0/30', { blockSize: 30 }]]);
    await ipam.setConfig({ strictAffinity: true });
    const other = new Ipam(ds, quiet);
    const results = await Promise.allSettled([
      ipam.autoAssign({ num4: 1, handleId: 'a', node: 'n1' }),
      other.autoAssign({ num4: 1, handleId: 'b', node: 'n2' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const report = await ipam.check();
    expect(report.ok, JSON.stringify(report)).toBe(true);
    expect(report.affinities).toBe(1);
  });
});

describe('compare-and-swap under contention', () => {
  it('two Ipam instances for the same node never hand out an address twice', async () => {
    const { ds } = await setup([['p', '10.9.0.0/26', { blockSize: 29 }]]);
    const a = new Ipam(ds, quiet);
    const b = new Ipam(ds, quiet);
    const all = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a : b)
          .autoAssign({ num4: 1, handleId: `h${i}`, node: 'n1' })
          .then((r) => r.ipv4[0]!.address),
      ),
    );
    expect(new Set(all).size).toBe(40);
    const report = await a.check();
    expect(report.ok, JSON.stringify(report)).toBe(true);
    expect(report.allocations).toBe(40);
  });

  it('re-reads and recomputes when another writer wins the block', async () => {
    const mem = new MemoryDatastore();
    const ds = new InterposedDatastore(mem);
    await pool(ds, 'p', '10.9.0.0/24');
    await node(ds, 'n1');
    const ipam = new Ipam(ds, quiet);
    const rival = new Ipam(mem, quiet);
    await ipam.autoAssign({ num4: 1, handleId: 'warm', node: 'n1' });
    let raced = 0;
    ds.before = async (op, kind) => {
      // Before each of our block updates, a rival allocates in the same block: our CAS must fail.
      if (op === 'update' && kind === 'IPAMBlock' && raced < 3) {
        raced++;
        await rival.autoAssign({ num4: 1, handleId: `rival${raced}`, node: 'n1' });
      }
    };
    const mine = await ipam.autoAssign({ num4: 1, handleId: 'mine', node: 'n1' });
    expect(raced).toBe(3);
    const rivals = await Promise.all([1, 2, 3].map((i) => rival.ipsByHandle(`rival${i}`)));
    expect(rivals.flat()).not.toContain(mine.ipv4[0]!.address);
    expect((await ipam.check()).ok).toBe(true);
  });

  it('recognises its own write when the answer is lost (Unavailable after apply)', async () => {
    const mem = new MemoryDatastore();
    const ds = new InterposedDatastore(mem);
    await pool(ds, 'p', '10.9.0.0/24');
    await node(ds, 'n1');
    const ipam = new Ipam(ds, quiet);
    await ipam.autoAssign({ num4: 1, handleId: 'warm', node: 'n1' });
    const lost = new Set<string>();
    ds.after = (op, kind) => {
      const key = `${op} ${kind}`;
      if (!lost.has(key)) {
        lost.add(key);
        throw new DatastoreError('Unavailable', 'connection reset after the write was applied');
      }
    };
    const r = await ipam.autoAssign({ num4: 2, handleId: 'lossy', node: 'n1' });
    expect(lost).toEqual(new Set(['update IPAMBlock', 'create IPAMHandle']));
    const report = await ipam.check();
    expect(report.ok, JSON.stringify(report)).toBe(true);
    expect(report.allocations).toBe(3);
    expect(new Set(await ipam.ipsByHandle('lossy'))).toEqual(new Set(r.ipv4.map((a) => a.address)));
    // A release whose answer is lost is not repeated against a reused address either.
    const rel = await ipam.releaseIPs([r.ipv4[0]!.address]);
    expect(rel.released).toEqual([r.ipv4[0]!.address]);
    ds.after = undefined;
    expect((await ipam.check()).ok).toBe(true);
  });

  it('recognises its own release by handle when the answers are lost', async () => {
    const mem = new MemoryDatastore();
    const ds = new InterposedDatastore(mem);
    await pool(ds, 'p', '10.9.0.0/24');
    await node(ds, 'n1');
    const ipam = new Ipam(ds, quiet);
    const held = (await ipam.autoAssign({ num4: 2, handleId: 'lossy', node: 'n1' })).ipv4;
    await ipam.autoAssign({ num4: 1, handleId: 'keep', node: 'n1' });
    const lost = new Set<string>();
    ds.after = (op, kind) => {
      const key = `${op} ${kind}`;
      if (!lost.has(key)) {
        lost.add(key);
        throw new DatastoreError('Unavailable', 'connection reset after the write was applied');
      }
    };
    expect(new Set(await ipam.releaseByHandle('lossy'))).toEqual(new Set(held.map((a) => a.address)));
    expect(lost).toEqual(new Set(['update IPAMBlock', 'delete IPAMHandle']));
    ds.after = undefined;
    const report = await ipam.check();
    expect(report.ok, JSON.stringify(report)).toBe(true);
    expect(report.allocations).toBe(1);
    await expect(mem.get('IPAMHandle', 'lossy')).rejects.toMatchObject({ code: 'NotFound' });
  });

  it('gives up with TooManyConflicts when a block never stops changing', async () => {
    const mem = new MemoryDatastore();
    const ds = new InterposedDatastore(mem);
    await pool(ds, 'p', '10.9.0.0/24');
    await node(ds, 'n1');
    const ipam = new Ipam(ds, { ...quiet, maxConflicts: 3 });
    await ipam.autoAssign({ num4: 1, handleId: 'warm', node: 'n1' });
    ds.before = async (op, kind) => {
      if (op === 'update' && kind === 'IPAMBlock')
        throw DatastoreError.conflict({ kind, name: 'x' }, '1', '2');
    };
    await expectCode(ipam.autoAssign({ num4: 1, handleId: 'h', node: 'n1' }), 'TooManyConflicts', /3|4/);
  });
});

describe('check', () => {
  it('reports a lost handle write and repairs it from the blocks', async () => {
    const mem = new MemoryDatastore();
    const ds = new InterposedDatastore(mem);
    await pool(ds, 'p', '10.9.0.0/24');
    await node(ds, 'n1');
    const ipam = new Ipam(ds, quiet);
    ds.before = async (_op, kind) => {
      // The process "dies" between the block write and the handle write.
      if (kind === 'IPAMHandle') throw new Error('process died');
    };
    await expect(ipam.autoAssign({ num4: 1, handleId: 'half', node: 'n1' })).rejects.toThrow('process died');
    ds.before = undefined;
    const report = await ipam.check();
    expect(report.ok).toBe(false);
    expect(report.leakedAddresses).toEqual([
      expect.objectContaining({ handleId: 'half', reason: 'handle record missing' }),
    ]);
    // releaseByHandle still finds it by scanning blocks.
    expect(await ipam.ipsByHandle('half')).toHaveLength(1);
    await ipam.check({ repair: true });
    expect((await ipam.check()).ok).toBe(true);
  });

  it('reports affinities of nodes that are gone and blocks missing their affinity', async () => {
    const { ds, ipam } = await setup();
    const a = (await ipam.autoAssign({ num4: 1, handleId: 'h', node: 'n1' })).ipv4[0]!;
    await ds.delete('Node', 'n1');
    const affinity = (await ds.list('BlockAffinity')).items[0]!;
    let report = await ipam.check();
    expect(report.affinitiesWithoutNode).toEqual([{ node: 'n1', cidr: a.block }]);
    await ds.delete('BlockAffinity', affinity.metadata.name);
    report = await ipam.check({ checkNodes: false });
    expect(report.blocksWithoutAffinity).toEqual([{ cidr: a.block, affinity: 'host:n1' }]);
    expect(report.ok).toBe(false);
  });

  it('reports handles whose counts disagree with the blocks', async () => {
    const { ds, ipam } = await setup();
    const a = (await ipam.autoAssign({ num4: 2, handleId: 'h', node: 'n1' })).ipv4[0]!;
    const h = await ds.get('IPAMHandle', 'h');
    await ds.update('IPAMHandle', { ...h, spec: { ...h.spec, block: { [a.block]: 5 } } });
    const report = await ipam.check();
    expect(report.orphanedHandles).toEqual([{ handleId: 'h', block: a.block, recorded: 5, actual: 2 }]);
  });
});

describe('gc', () => {
  it('releases dead handles only after the grace period, all addresses at once', async () => {
    const ds = new MemoryDatastore();
    await pool(ds, 'p', '10.9.0.0/24');
    await node(ds, 'n1');
    let now = 1_000_000;
    const ipam = new Ipam(ds, { ...quiet, now: () => now });
    await ipam.autoAssign({ num4: 2, handleId: 'dead', node: 'n1' });
    await ipam.autoAssign({ num4: 1, handleId: 'alive', node: 'n1' });
    let report = await ipam.gc({ liveHandles: ['alive'], gracePeriodMs: 60_000 });
    expect(report.candidates).toEqual(['dead']);
    expect(report.releasedHandles).toEqual([]);
    now += 30_000;
    // Seen alive again: the clock restarts.
    await ipam.gc({ isLive: (h) => h === 'alive' || h === 'dead', gracePeriodMs: 60_000 });
    now += 50_000;
    report = await ipam.gc({ liveHandles: ['alive'], gracePeriodMs: 60_000 });
    expect(report.releasedHandles).toEqual([]);
    now += 60_000;
    report = await ipam.gc({ liveHandles: ['alive'], gracePeriodMs: 60_000 });
    expect(report.releasedHandles).toEqual(['dead']);
    expect(report.releasedAddresses).toHaveLength(2);
    expect(await ipam.ipsByHandle('alive')).toHaveLength(1);
    expect((await ipam.check()).ok).toBe(true);
  });

  it('releases empty blocks after a cool-down, but never a node’s last block', async () => {
    const ds = new MemoryDatastore();
    await pool(ds, 'p', '10.9.0.0/28', { blockSize: 30 });
    await node(ds, 'n1');
    let now = 0;
    const ipam = new Ipam(ds, { ...quiet, now: () => now });
    const a = await ipam.autoAssign({ num4: 12, handleId: 'h', node: 'n1' });
    await ipam.releaseByHandle('h');
    const gc = () => ipam.gc({ liveHandles: [], gracePeriodMs: 0, emptyBlockCooldownMs: 10_000 });
    expect((await gc()).releasedBlocks).toEqual([]);
    now += 10_000;
    const report = await gc();
    expect(report.releasedBlocks).toHaveLength(2);
    const { items } = await ds.list('IPAMBlock');
    expect(items).toHaveLength(1);
    expect(new Set(a.ipv4.map((x) => x.block))).toContain(items[0]!.spec.cidr);
    expect((await ipam.check()).ok).toBe(true);
    // The instance's cache forgot the released blocks: allocation still works.
    expect((await ipam.autoAssign({ num4: 5, handleId: 'again', node: 'n1' })).ipv4).toHaveLength(5);
  });

  it('needs a way to tell live handles', async () => {
    const { ipam } = await setup();
    await expectCode(ipam.gc({ gracePeriodMs: 0 }), 'InvalidArgument');
  });
});

describe('utilization', () => {
  it('reports usage per pool and block', async () => {
    const { ipam } = await setup([['p', '10.9.0.0/28', { blockSize: 30 }]]);
    await ipam.autoAssign({ num4: 5, handleId: 'h', node: 'n1' });
    const [u] = await ipam.getUtilization();
    expect(u).toMatchObject({ name: 'p', cidr: '10.9.0.0/28', blockSize: 30, capacity: 16, inUse: 5 });
    expect(u!.blocks.map((b) => [b.affinity, b.inUse + b.free])).toEqual([
      ['host:n1', 4],
      ['host:n1', 4],
    ]);
  });
});
