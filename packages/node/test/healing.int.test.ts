/**
 * Self-healing with deadlines: in a two-node BGP lab (no encapsulation), state that calico-node
 * programmed is changed by hand and must come back within its deadline — a workload route and a
 * BGP-learned route (netlink events, 1 s), a workload interface's sysctl and IP forwarding (the
 * one-second sysctl check; the deadline allows the check period plus the write), our iptables
 * chain flushed and our hook removed (the few-second chain check, ≤ 10 s). Nothing here shortens
 * a refresh interval: the periodic refresh (90 s) cannot be what heals.
 */
import { ensureNamespaceProfileAt, RouteProtocol } from '@calico-ts/datastore';
import { execInNamespace, readSysctl, waitFor, writeSysctl } from '@calico-ts/kernel';
import { type ClusterPod, calicoPrograms, LAB_POD_NAMESPACE, LabCluster } from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';

/** Netlink events and the one-second checks: restored within this after the change. */
const EVENT_DEADLINE_MS = 1000;
const SYSCTL_DEADLINE_MS = 2000;
const IPTABLES_DEADLINE_MS = 10_000;

describeWith([root(), command('etcd'), command('iptables')], 'calico-node heals what it programmed', () => {
  const cluster = new LabCluster({
    name: runPrefix('hg'),
    nodes: 2,
    backend: 'bgp',
    poolCidr: '10.245.0.0/16',
    programs: calicoPrograms({
      node: import.meta.resolve('@calico-ts/node'),
      cni: import.meta.resolve('@calico-ts/cni'),
    }),
    readyTimeoutMs: 60_000,
    prepareDatastore: async (endpoint) => {
      await ensureNamespaceProfileAt([endpoint], LAB_POD_NAMESPACE);
    },
  });
  let a1: ClusterPod;
  let b1: ClusterPod;

  beforeAll(async () => {
    await cluster.up();
    a1 = await cluster.addPod(cluster.nodes[0]!, 'a1');
    b1 = await cluster.addPod(cluster.nodes[1]!, 'b1');
    await waitFor(() => cluster.ping(a1, b1.ip), { timeoutMs: 30_000, what: 'a1 → b1 over BGP' });
  }, 180_000);
  afterAll(async () => {
    await cluster.down();
  }, 60_000);

  /** Time from now until `check` holds, failing past `deadlineMs`. */
  async function healedWithin(deadlineMs: number, what: string, check: () => Promise<boolean> | boolean) {
    const started = performance.now();
    await waitFor(async () => await check(), { timeoutMs: deadlineMs, intervalMs: 10, what });
    return performance.now() - started;
  }

  it('a workload route deleted by hand is back within 1 s', async () => {
    const nl = cluster.nodes[0]!.netlink;
    const dst = `${a1.ip}/32`;
    const [before] = await nl.listRoutes({ dst });
    expect(before?.protocol).toBe(RouteProtocol.device);
    await nl.deleteRoute({ dst });
    await healedWithin(EVENT_DEADLINE_MS, 'workload route restored', async () => {
      const [r] = await nl.listRoutes({ dst });
      return r !== undefined && r.dev === before!.dev;
    });
    expect(await cluster.ping(b1, a1.ip)).toBe(true);
  });

  it('a BGP-learned route deleted by hand is back within 1 s', async () => {
    const nl = cluster.nodes[0]!.netlink;
    const learned = (await nl.listRoutes({ family: 4 })).filter((r) => r.protocol === RouteProtocol.bird);
    const block = learned.find((r) => r.type === 'unicast' && r.dst.startsWith('10.245.'));
    expect(block, 'node 1 learned node 2 block over BGP').toBeDefined();
    await nl.deleteRoute({ dst: block!.dst, protocol: RouteProtocol.bird });
    await healedWithin(EVENT_DEADLINE_MS, 'learned route restored', async () =>
      (await nl.listRoutes({ dst: block!.dst })).some((r) => r.protocol === RouteProtocol.bird),
    );
    expect(await cluster.ping(a1, b1.ip)).toBe(true);
  });

  it('a workload interface sysctl and IP forwarding flipped by hand are set again', async () => {
    const node = cluster.nodes[0]!;
    const [route] = await node.netlink.listRoutes({ dst: `${a1.ip}/32` });
    const iface = (await node.netlink.listLinks()).find((l) => l.index === route!.dev)!.name;
    const key = `net/ipv4/conf/${iface}/proxy_arp`;
    expect(readSysctl(key, node.namespace)).toBe('1');
    writeSysctl(key, 0, node.namespace);
    await healedWithin(
      SYSCTL_DEADLINE_MS,
      'proxy_arp back on',
      () => readSysctl(key, node.namespace) === '1',
    );

    writeSysctl('net/ipv4/ip_forward', 0, node.namespace);
    await healedWithin(
      SYSCTL_DEADLINE_MS,
      'ip_forward back on',
      () => readSysctl('net/ipv4/ip_forward', node.namespace) === '1',
    );
    expect(await cluster.ping(b1, a1.ip)).toBe(true);
  });

  it('our iptables chain flushed and our hook deleted by hand are restored within 10 s', async () => {
    const ns = cluster.nodes[0]!.namespace;
    const rules = async (chain: string) =>
      (await execInNamespace(ns, 'iptables', ['-w', '-S', chain])).stdout
        .split('\n')
        .filter((l) => l.startsWith('-A '));
    const before = await rules('cali-FORWARD');
    expect(before.length).toBeGreaterThan(0);
    expect((await execInNamespace(ns, 'iptables', ['-w', '-F', 'cali-FORWARD'])).exitCode).toBe(0);
    await healedWithin(IPTABLES_DEADLINE_MS, 'cali-FORWARD refilled', async () =>
      sameRules(await rules('cali-FORWARD'), before),
    );

    const hook = (await rules('FORWARD')).find((l) => l.endsWith('-j cali-FORWARD'));
    expect(hook).toBeDefined();
    const del = await execInNamespace(ns, 'iptables', [
      '-w',
      ...hook!.replace(/^-A /, '-D ').replaceAll('"', '').split(' '),
    ]);
    expect(del.exitCode, del.stderr).toBe(0);
    await healedWithin(IPTABLES_DEADLINE_MS, 'FORWARD jumps to cali-FORWARD again', async () =>
      (await rules('FORWARD')).some((l) => l.endsWith('-j cali-FORWARD')),
    );
    expect(await cluster.ping(a1, b1.ip)).toBe(true);
  }, 30_000);
});

function sameRules(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}
