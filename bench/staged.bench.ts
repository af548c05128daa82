// Staged policies: what evaluating them on live traffic costs. One lab node with a real Felix
// (memory datastore) and two pods; the client opens TCP connections to the server one after
// another for BENCH_SECONDS (each a new flow, so each SYN walks the policy chains on egress and
// ingress). Peer, in the same run: the same POLICIES GlobalNetworkPolicies enforced alone;
// measured: the same plus a staged copy of each (StagedGlobalNetworkPolicy of the same name and
// rules, stagedAction Set), so every new flow is also walked through the staged chains. The two
// alternate ROUNDS times; the medians and their ratio are printed. As root. `pnpm bench staged`.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { MemoryDatastore, namespaceProfile } from '@calico-ts/datastore';
import { Felix } from '@calico-ts/felix';
import { execInNamespace, waitFor } from '@calico-ts/kernel';
import { createLab, type LabPod, labNodeIpv4 } from '@calico-ts/lab';

const POLICIES = Number(process.env['BENCH_POLICIES'] ?? 20);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const NODE = 'bench-node';
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

const SERVER = `
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 80)); s.listen(4096)
print('serving', flush=True)
while True:
    c, _ = s.accept(); c.close()
`;
// Closed with a reset (linger 0) so that no port waits in TIME_WAIT: thousands of connections a
// second would otherwise use up the ephemeral ports between rounds.
const CLIENT = `
import socket, struct, sys, time
ip, seconds = sys.argv[1], float(sys.argv[2])
n = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    s = socket.socket(); s.settimeout(5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    s.connect((ip, 80)); s.close(); n += 1
print(n / seconds)
`;

/** Addresses in 198.18.0.0/15 (benchmarking range), which no pod of the lab uses. */
const unused = (n: number) => `198.18.${n >> 8}.${n & 255}/32`;

/** Five rules that never match these pods, then an allow of everything: each flow walks them all. */
const spec = (i: number) => ({
  order: i,
  selector: 'all()',
  types: ['Ingress' as const, 'Egress' as const],
  ingress: [
    ...Array.from({ length: 5 }, (_, k) => ({
      action: 'Deny' as const,
      source: { nets: [unused(i * 5 + k)] },
    })),
    ...(i === POLICIES - 1 ? [{ action: 'Allow' as const }] : []),
  ],
  egress: [
    ...Array.from({ length: 5 }, (_, k) => ({
      action: 'Deny' as const,
      destination: { nets: [unused(i * 5 + k)] },
    })),
    ...(i === POLICIES - 1 ? [{ action: 'Allow' as const }] : []),
  ],
});

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('staged bench needs root (network namespaces, iptables)');
  const prefix = `st${randomBytes(2).toString('hex')}`;
  const lab = await createLab({ prefix, nodes: 1 });
  const ds = new MemoryDatastore();
  let felix: Felix | undefined;
  try {
    await ds.create('IPPool', {
      metadata: { name: 'pool' },
      spec: { cidr: '10.67.0.0/16', ipipMode: 'Never', vxlanMode: 'Never', blockSize: 26 },
    });
    await ds.create('Node', {
      metadata: { name: NODE },
      spec: { bgp: { ipv4Address: `${labNodeIpv4(1)}/24` } },
    });
    await ds.create('Profile', namespaceProfile('bench', {}));
    const node = lab.nodes[0]!;
    const pods: { pod: LabPod; ip: string }[] = [];
    for (const [k, name] of ['client', 'server'].entries()) {
      const ip = `10.67.0.${10 + k}`;
      const pod = await lab.addPod(node.index, name);
      const iface = `cali${prefix}${name.slice(0, 3)}`.slice(0, 15);
      const { mac } = await lab.wirePod(pod, { iface, ipv4: ip });
      await ds.create('WorkloadEndpoint', {
        metadata: {
          name: `${NODE}-k8s-${name}-eth0`,
          namespace: 'bench',
          labels: { 'projectcalico.org/namespace': 'bench', 'projectcalico.org/orchestrator': 'k8s' },
        },
        spec: {
          node: NODE,
          orchestrator: 'k8s',
          pod: name,
          endpoint: 'eth0',
          interfaceName: iface,
          mac,
          ipNetworks: [`${ip}/32`],
          profiles: ['kns.bench'],
        },
      });
      pods.push({ pod, ip });
    }
    const [client, server] = pods as [(typeof pods)[0], (typeof pods)[0]];
    await lab.spawn(server.pod, PYTHON, ['-c', SERVER]);
    for (let i = 0; i < POLICIES; i++)
      await ds.create('GlobalNetworkPolicy', { metadata: { name: `p${i}` }, spec: spec(i) });
    felix = new Felix({ datastore: ds, nodeName: NODE, netns: node.namespace });
    felix.start();
    await felix.whenReady();
    const save = async () =>
      (await execInNamespace(node.namespace, 'iptables-save', ['-t', 'filter'])).stdout;
    const until = (what: string, check: (s: string) => boolean) =>
      waitFor(async () => check(await save()), { timeoutMs: 30_000, intervalMs: 100, what });
    await until('enforced chains', (s) => s.includes(`:cali-pi-gnp/p${POLICIES - 1} `));
    const rate = async () => {
      const out = await execInNamespace(client.pod.namespace, PYTHON, [
        '-c',
        CLIENT,
        server.ip,
        String(SECONDS),
      ]);
      const n = Number(out.stdout);
      if (!out.stdout.trim() || !Number.isFinite(n)) throw new Error(`client failed: ${out.stderr.trim()}`);
      return n;
    };

    const enforced: number[] = [];
    const staged: number[] = [];
    await rate(); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      enforced.push(await rate());
      for (let i = 0; i < POLICIES; i++)
        await ds.create('StagedGlobalNetworkPolicy', { metadata: { name: `p${i}` }, spec: spec(i) });
      await until(
        'staged chains',
        (s) => s.includes(':cali-stw-') && s.includes(`:cali-spi-sgnp/p${POLICIES - 1} `),
      );
      staged.push(await rate());
      for (let i = 0; i < POLICIES; i++) await ds.delete('StagedGlobalNetworkPolicy', `p${i}`);
      await until('staged chains removed', (s) => !s.includes(':cali-s'));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const [e, s] = [median(enforced), median(staged)];
    const load = loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
    console.log(`date ${new Date().toISOString()}, load average ${load}`);
    console.log(
      `${POLICIES} policies × 5 non-matching rules per direction, ${SECONDS} s per round, ${ROUNDS} rounds`,
    );
    console.log(`enforced only: ${enforced.map((x) => x.toFixed(0)).join(', ')} connections/s`);
    console.log(`plus staged:   ${staged.map((x) => x.toFixed(0)).join(', ')} connections/s`);
    console.log(
      `| staged copies of ${POLICIES} policies | ${s.toFixed(0)} conn/s | ${e.toFixed(0)} conn/s | ${(s / e).toFixed(2)} |`,
    );
  } finally {
    await felix?.stop();
    await ds.close();
    await lab.teardown();
  }
}

await main();
