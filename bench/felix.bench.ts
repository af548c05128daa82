// Felix full resync: 110 local workloads and 500 remote nodes (one VXLAN block each) in the
// datastore. (1) memory backend + in-memory kernel: syncer → calc graph → dataplane, time to
// ready and RSS; the floor it is compared with is the bare datastore list of the same objects.
// (2) as root, the real dataplane in a throwaway lab namespace (110 veths): time to ready, then
// a restart's mark-and-sweep; the peer is `ip -batch` adding the same routes in the same
// namespace. Prints Markdown rows for docs/benchmarks.md. `pnpm bench felix`;
// BENCH_WORKLOADS / BENCH_REMOTE_NODES override the sizes.
import { randomBytes } from 'node:crypto';
import { MemoryDatastore, namespaceProfile } from '@calico-ts/datastore';
import { FELIX_KINDS, Felix, MemoryKernel } from '@calico-ts/felix';
import { execInNamespace } from '@calico-ts/kernel';
import { createLab, labNodeIpv4 } from '@calico-ts/lab';

const WORKLOADS = Number(process.env['BENCH_WORKLOADS'] ?? 110);
const REMOTES = Number(process.env['BENCH_REMOTE_NODES'] ?? 500);
const LOCAL = 'bench-node';
// The address node 1 of the lab fabric has (kernelRun runs Felix there).
const LOCAL_IP = labNodeIpv4(1);
const iface = (i: number) => `cali${i.toString(16).padStart(11, '0')}`;
const remoteIp = (i: number) => `198.18.${i >> 8}.${i & 255}`;
// Remote node i owns 10.(1 + i/256).(i%256).0/26 area; local blocks are 10.0.0.0/26, 10.0.0.64/26…
const remoteBlock = (i: number) => `10.${1 + (i >> 8)}.${i & 255}.0/26`;
const localIp = (n: number) => `10.0.${n >> 8}.${n & 255}`;

async function seed(): Promise<MemoryDatastore> {
  const ds = new MemoryDatastore();
  const r = (kind: string, name: string, spec: object, namespace?: string) =>
    ({
      apiVersion: 'projectcalico.org/v3',
      kind,
      metadata: { name, ...(namespace ? { namespace } : {}) },
      spec,
    }) as never;
  await ds.create(
    'IPPool',
    r('IPPool', 'pool', {
      cidr: '10.0.0.0/8',
      vxlanMode: 'Always',
      ipipMode: 'Never',
      natOutgoing: true,
      blockSize: 26,
    }),
  );
  const block = (cidr: string, node: string) =>
    r('IPAMBlock', cidr.replaceAll(/[./]/g, '-'), {
      cidr,
      affinity: `host:${node}`,
      allocations: Array<null>(64).fill(null),
      unallocated: Array.from({ length: 64 }, (_, k) => k),
      attributes: [],
    });
  await ds.create(
    'Node',
    r('Node', LOCAL, { bgp: { ipv4Address: `${LOCAL_IP}/24` }, ipv4VXLANTunnelAddr: '10.0.255.1' }),
  );
  for (let b = 0; b * 64 < WORKLOADS + 2; b++)
    await ds.create('IPAMBlock', block(`10.0.0.${b * 64}/26`, LOCAL));
  for (let i = 0; i < REMOTES; i++) {
    const name = `remote-${i}`;
    const [a, b2] = [1 + (i >> 8), i & 255];
    await ds.create(
      'Node',
      r('Node', name, { bgp: { ipv4Address: `${remoteIp(i)}/16` }, ipv4VXLANTunnelAddr: `10.${a}.${b2}.1` }),
    );
    await ds.create('IPAMBlock', block(remoteBlock(i), name));
  }
  // The namespace profile the pods name (kube-controllers writes it in a real cluster).
  await ds.create('Profile', namespaceProfile('default'));
  for (let i = 0; i < WORKLOADS; i++) {
    await ds.create(
      'WorkloadEndpoint',
      r(
        'WorkloadEndpoint',
        `${LOCAL}-k8s-pod${i}-eth0`,
        {
          node: LOCAL,
          orchestrator: 'k8s',
          pod: `pod${i}`,
          endpoint: 'eth0',
          interfaceName: iface(i),
          mac: `aa:bb:cc:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
          ipNetworks: [`${localIp(i + 2)}/32`],
          profiles: ['kns.default'],
        },
        'default',
      ),
    );
  }
  return ds;
}

const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;

async function memoryRun(ds: MemoryDatastore): Promise<string[]> {
  const listStart = performance.now();
  let objects = 0;
  for (const kind of FELIX_KINDS) objects += (await ds.list(kind)).items.length;
  const listMs = performance.now() - listStart;

  const kernel = new MemoryKernel();
  kernel.addLink('eth0', { kind: undefined });
  await kernel.addAddress('eth0', `${LOCAL_IP}/24`);
  for (let i = 0; i < WORKLOADS; i++) kernel.addLink(iface(i));
  globalThis.gc?.();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const felix = new Felix({ datastore: ds, nodeName: LOCAL, kernel });
  felix.start();
  await felix.whenReady();
  const ms = performance.now() - t0;
  globalThis.gc?.();
  const rss1 = process.memoryUsage().rss;
  const heap1 = process.memoryUsage().heapUsed;
  const s = felix.status();
  await felix.stop();
  return [
    `| full resync, memory datastore + in-memory kernel (${objects} objects) | ${ms.toFixed(0)} ms to ready (${s.routes} routes, ${s.endpoints} endpoints) | ${listMs.toFixed(0)} ms (bare list of the same objects) | ${(listMs / ms).toFixed(2)} |`,
    `| memory held by that Felix: RSS growth / heap growth after GC (process RSS after: ${mb(rss1)}) | ${mb(rss1 - rss0)} / ${mb(heap1 - heap0)} | — | — |`,
  ];
}

async function kernelRun(ds: MemoryDatastore): Promise<string[]> {
  const lab = await createLab({ prefix: `fb${randomBytes(2).toString('hex')}`, nodes: 1 });
  try {
    const node = lab.nodes[0]!;
    for (let i = 0; i < WORKLOADS; i++) {
      await node.netlink.createVeth({ name: iface(i), peer: { name: `p${i}` } });
      await node.netlink.setLink(iface(i), { up: true });
      await node.netlink.setLink(`p${i}`, { up: true });
    }
    const t0 = performance.now();
    const felix = new Felix({ datastore: ds, nodeName: LOCAL, netns: node.namespace });
    felix.start();
    await felix.whenReady();
    const firstMs = performance.now() - t0;
    const s = felix.status();
    await felix.stop();

    const t1 = performance.now();
    const again = new Felix({ datastore: ds, nodeName: LOCAL, netns: node.namespace });
    let stats: { routesReplaced: number; iptablesLines: number } | undefined;
    again.once('applied', (a) => {
      stats = a;
    });
    again.start();
    await again.whenReady();
    const restartMs = performance.now() - t1;
    await again.stop();

    // Peer: the same routes through `ip -batch` into another table of the same namespace.
    const lines = [
      ...Array.from(
        { length: WORKLOADS },
        (_, i) => `route add ${localIp(i + 2)}/32 dev ${iface(i)} scope link table 100`,
      ),
      ...Array.from(
        { length: REMOTES },
        (_, i) =>
          `route add ${remoteBlock(i)} via 10.${1 + (i >> 8)}.${i & 255}.1 dev vxlan.calico onlink table 100`,
      ),
    ];
    const t2 = performance.now();
    const r = await execInNamespace(node.namespace, 'ip', ['-batch', '-'], {
      input: `${lines.join('\n')}\n`,
    });
    const peerMs = performance.now() - t2;
    if (r.exitCode !== 0) throw new Error(`ip -batch failed: ${r.stderr.slice(0, 300)}`);
    return [
      `| full resync into a lab namespace (${WORKLOADS} veths; routes, ARP, FDB, sysctls, iptables, ipsets) | ${firstMs.toFixed(0)} ms to ready (${s.routes} routes) | ${peerMs.toFixed(0)} ms (\`ip -batch\` of the ${lines.length} routes alone) | ${(peerMs / firstMs).toFixed(2)} |`,
      `| restart over a programmed node (mark-and-sweep) | ${restartMs.toFixed(0)} ms, ${stats?.routesReplaced} routes replaced, ${stats?.iptablesLines} iptables lines | — | — |`,
    ];
  } finally {
    await lab.teardown();
  }
}

const ds = await seed();
const rows = ['| measurement | calico-ts | floor / peer | peer ÷ ours |', '| --- | --- | --- | --- |'];
rows.push(...(await memoryRun(ds)));
if (process.getuid?.() === 0) rows.push(...(await kernelRun(ds)));
else console.error('not root: skipping the kernel dataplane run');
process.stdout.write(`${rows.join('\n')}\n`);
process.exit(0);
