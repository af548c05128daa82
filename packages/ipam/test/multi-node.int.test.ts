/**
 * Ten allocator processes (ten "nodes") against one real etcd: no address twice, every address
 * accounted for by its handle, affinities consistent, also while etcd is killed and restarted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CALICO_API_VERSION, EtcdDatastore } from '@calico-ts/datastore';
import { type EtcdProcess, startEtcd } from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith } from '../../../test-support/requirements.ts';
import { Ipam } from '../src/index.ts';

const here = dirname(fileURLToPath(import.meta.url));
const NODES = Array.from({ length: 10 }, (_, i) => `node-${i}`);
const PER_NODE = 100;
// 64 blocks of /26: room for 4096 addresses, so 10 × 100 needs about two blocks per node.
const POOL = '10.200.0.0/20';

interface Line {
  type: 'ready' | 'assigned' | 'retry' | 'done' | 'failed';
  handleId?: string;
  address?: string;
  node?: string;
  error?: string;
}

interface Allocator {
  child: ChildProcess;
  lines: Line[];
  ready: Promise<void>;
  exited: Promise<number | null>;
  /** What the allocator said last, for failure messages. */
  tail: () => string;
}

const children = new Set<ChildProcess>();

function startAllocator(endpoint: string, node: string, onLine: (l: Line) => void): Allocator {
  const child = spawn(
    process.execPath,
    ['--conditions=@calico-ts/source', join(here, 'allocator-process.ts'), endpoint, node, String(PER_NODE)],
    { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, CALICO_LOG_LEVEL: 'error' } },
  );
  children.add(child);
  const lines: Line[] = [];
  let markReady: () => void = () => {};
  const ready = new Promise<void>((r) => {
    markReady = r;
  });
  let buf = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (text.startsWith('@@')) {
        const l = JSON.parse(text.slice(2)) as Line;
        if (l.type === 'ready') markReady();
        lines.push(l);
        onLine(l);
      }
      i = buf.indexOf('\n');
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      if (code !== 0) console.error(`allocator ${node} exited ${code}: ${stderr.slice(0, 3000)}`);
      resolve(code);
    }),
  );
  const tail = () =>
    `${node}: ${lines.length} lines, last ${JSON.stringify(lines.at(-1))}; stderr ${stderr.slice(-500)}`;
  return { child, lines, ready, exited, tail };
}

describeWith([command('etcd')], 'IPAM: ten allocator processes on a real etcd', () => {
  let etcd: EtcdProcess;
  let ds: EtcdDatastore;
  let ipam: Ipam;

  beforeAll(async () => {
    etcd = await startEtcd();
    ds = new EtcdDatastore({ endpoints: etcd.endpoint });
    ipam = new Ipam(ds);
    await ds.create('IPPool', {
      apiVersion: CALICO_API_VERSION,
      kind: 'IPPool',
      metadata: { name: 'pods' },
      spec: {
        cidr: POOL,
        blockSize: 26,
        ipipMode: 'Never',
        vxlanMode: 'Never',
        natOutgoing: true,
        nodeSelector: 'all()',
      },
    } as never);
    for (const name of NODES) {
      await ds.create('Node', {
        apiVersion: CALICO_API_VERSION,
        kind: 'Node',
        metadata: { name },
        spec: {},
      } as never);
    }
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await ds?.close();
    await etcd?.stop();
  });

  async function runAll(onLine: (l: Line) => void = () => {}): Promise<Line[]> {
    const allocators = NODES.map((n) => startAllocator(etcd.endpoint, n, onLine));
    // Start every node's burst together (process start-up on two shared cores takes seconds).
    await Promise.all(
      allocators.map((a) =>
        Promise.race([
          a.ready,
          a.exited.then(() => {
            throw new Error(`allocator exited before it was ready: ${a.tail()}`);
          }),
        ]),
      ),
    );
    for (const a of allocators) a.child.stdin!.end('go\n');
    // Bounded wait: a stuck allocator fails the test with what each one said last.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), 150_000);
    });
    const codes = await Promise.race([Promise.all(allocators.map((a) => a.exited)), deadline]);
    clearTimeout(timer);
    expect(codes, allocators.map((a) => a.tail()).join('\n')).toEqual(NODES.map(() => 0));
    return allocators.flatMap((a) => a.lines);
  }

  async function expectAllAccountedFor(lines: Line[]): Promise<void> {
    const assigned = lines.filter((l) => l.type === 'assigned');
    expect(assigned).toHaveLength(NODES.length * PER_NODE);
    const addresses = assigned.map((l) => l.address!);
    expect(new Set(addresses).size).toBe(addresses.length);
    // Every address is held by exactly the handle that was told it got it.
    const util = await ipam.getUtilization();
    expect(util[0]!.inUse).toBe(NODES.length * PER_NODE);
    for (const l of assigned.filter((_, i) => i % 10 === 0)) {
      expect(await ipam.ipsByHandle(l.handleId!)).toEqual([l.address]);
    }
    const report = await ipam.check();
    expect(report, JSON.stringify(report, null, 1).slice(0, 3000)).toMatchObject({
      ok: true,
      allocations: NODES.length * PER_NODE,
      handles: NODES.length * PER_NODE,
    });
    // Each node allocated from blocks affine to itself (100 addresses fit in two /26 blocks).
    for (const b of util[0]!.blocks) expect(b.affinity).toMatch(/^host:node-\d$/);
  }

  async function releaseEverything(): Promise<void> {
    // One node's pods go away one by one (releaseByHandle, as CNI DEL does); the rest in one batch
    // (as the garbage collector does), which writes each block once.
    const handles = (await ds.list('IPAMHandle')).items.map((h) => h.metadata.name);
    const byHandle = handles.filter((h) => h.includes('node-0-'));
    for (let i = 0; i < byHandle.length; i += 10) {
      await Promise.all(byHandle.slice(i, i + 10).map((h) => ipam.releaseByHandle(h)));
    }
    const rest = handles.filter((h) => !h.includes('node-0-'));
    const addresses = (await Promise.all(rest.map((h) => ipam.ipsByHandle(h)))).flat();
    const { released } = await ipam.releaseIPs(addresses);
    expect(released).toHaveLength(addresses.length);
    for (const n of NODES) {
      const { kept } = await ipam.releaseHostAffinities(n, { mustBeEmpty: true });
      expect(kept).toEqual([]);
    }
    const report = await ipam.check();
    expect(report).toMatchObject({ ok: true, allocations: 0, handles: 0, blocks: 0, affinities: 0 });
  }

  it('allocates 10 × 100 addresses at once with no duplicate and nothing unaccounted for', {
    timeout: 180_000,
  }, async () => {
    const lines = await runAll();
    await expectAllAccountedFor(lines);
  });

  it('releases everything, after which every block can be claimed again', { timeout: 180_000 }, async () => {
    await releaseEverything();
    const all = await ipam.autoAssign({ num4: 4096, handleId: 'everything', node: 'node-0' });
    expect(new Set(all.ipv4.map((a) => a.address)).size).toBe(4096);
    expect(new Set(all.ipv4.map((a) => a.block)).size).toBe(64);
    await expect(
      ipam.autoAssign({ num4: 1, handleId: 'one-too-many', node: 'node-1' }),
    ).rejects.toMatchObject({
      code: 'NoFreeAddress',
    });
    expect((await ipam.check()).ok).toBe(true);
    await releaseEverything();
  });

  it('survives etcd being killed and restarted mid-run: nothing duplicated, nothing leaked', {
    timeout: 240_000,
  }, async () => {
    let assigned = 0;
    let restart: Promise<void> | undefined;
    const lines = await runAll((l) => {
      if (l.type !== 'assigned') return;
      assigned++;
      // Kill etcd once a fifth of the allocations are done, with the rest in flight.
      if (assigned === 200 && !restart) {
        restart = (async () => {
          await etcd.kill();
          await etcd.start();
        })();
      }
    });
    await restart;
    expect(restart).toBeDefined();
    await expectAllAccountedFor(lines);
    await releaseEverything();
  });
});
