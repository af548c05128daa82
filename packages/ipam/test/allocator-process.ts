/**
 * One "node" of the multi-process IPAM tests and benchmark: allocates `count` addresses, one
 * autoAssign per handle, all started at once (like a burst of pod starts), against a real etcd.
 * A request that fails (e.g. etcd stayed away beyond the deadline) is cleaned up by handle and
 * tried again, as the CNI plugin's caller would. Reports `@@{"type":"ready"}` once connected and
 * waits for a line on stdin, so that all nodes start their burst together; then one `@@{json}`
 * line per allocation on stdout, and a summary line.
 *
 *   node --conditions=@calico-ts/source allocator-process.ts <etcd-endpoint> <node> <count>
 */
import { EtcdDatastore } from '@calico-ts/datastore';
import { Ipam } from '../src/index.ts';

const [endpoint = '', node = '', countText = ''] = process.argv.slice(2);
if (!endpoint || !node || !countText) {
  console.error('usage: allocator-process.ts <etcd-endpoint> <node> <count>');
  process.exit(2);
}
const count = Number(countText);
const report = (o: object) => process.stdout.write(`@@${JSON.stringify(o)}\n`);

const ds = new EtcdDatastore({ endpoints: endpoint, dialTimeoutMs: 3_000, requestTimeoutMs: 5_000 });
const ipam = new Ipam(ds, { unavailableTimeoutMs: 30_000 });

// Connect (and warm the module graph) before the start line, so the burst measures allocation only.
// Ten processes starting at once on two shared cores can miss the dial timeout: keep trying.
for (let attempt = 1; ; attempt++) {
  try {
    await ds.list('IPPool');
    break;
  } catch (err) {
    if (attempt >= 20) throw err;
  }
}
report({ type: 'ready', node });
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
process.stdin.pause();
const started = performance.now();

async function allocate(i: number): Promise<void> {
  const handleId = `k8s-pod-network.${node}-${i}`;
  for (let attempt = 1; ; attempt++) {
    const t0 = performance.now();
    try {
      const r = await ipam.autoAssign({ num4: 1, handleId, node, attrs: { node, pod: `pod-${i}` } });
      report({
        type: 'assigned',
        handleId,
        address: r.ipv4[0]!.address,
        ms: performance.now() - t0,
        attempt,
      });
      return;
    } catch (err) {
      report({ type: 'retry', handleId, error: (err as Error).message });
      if (attempt >= 5) throw err;
      // Whatever the failed attempt may have left behind is released before trying again.
      await ipam.releaseByHandle(handleId).catch(() => undefined);
    }
  }
}

try {
  await Promise.all(Array.from({ length: count }, (_, i) => allocate(i)));
  report({ type: 'done', node, writes: ipam.writeCount, ms: performance.now() - started });
} catch (err) {
  report({ type: 'failed', node, error: (err as Error).message });
  process.exitCode = 1;
} finally {
  await ds.close();
}
