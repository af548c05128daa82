import { type Datastore, keyFor, MemoryDatastore } from '@calico-ts/datastore';
import { afterEach, describe, expect, it } from 'vitest';
import { CalcGraph } from './calc/calc-graph.ts';
import { InternalDataplane } from './dataplane/internal-dataplane.ts';
import { MemoryKernel } from './dataplane/memory-kernel.ts';
import { Felix } from './felix.ts';
import { defaultLogger } from './logger.ts';
import { FELIX_KINDS } from './syncer.ts';

const meta = (name: string, namespace?: string) => ({ name, ...(namespace ? { namespace } : {}) });

async function seedCluster(ds: Datastore, options: { ipip?: boolean } = {}): Promise<void> {
  await ds.create('IPPool', {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: meta('vxlan-pool'),
    spec: { cidr: '10.65.0.0/16', vxlanMode: 'Always', ipipMode: 'Never', natOutgoing: true, blockSize: 26 },
  } as never);
  if (options.ipip) {
    await ds.create('IPPool', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPPool',
      metadata: meta('ipip-pool'),
      spec: {
        cidr: '10.70.0.0/16',
        vxlanMode: 'Never',
        ipipMode: 'Always',
        natOutgoing: false,
        blockSize: 26,
      },
    } as never);
    await ds.create('IPAMBlock', block('10.70.1.0/26', 'node-b'));
  }
  for (const [name, ip, tunnel] of [
    ['node-a', '192.0.2.11/24', '10.65.0.1'],
    ['node-b', '192.0.2.12/24', '10.65.1.1'],
  ] as const) {
    await ds.create('Node', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: meta(name),
      spec: { bgp: { ipv4Address: ip }, ipv4VXLANTunnelAddr: tunnel },
    } as never);
  }
  await ds.create('IPAMBlock', block('10.65.0.0/26', 'node-a'));
  await ds.create('IPAMBlock', block('10.65.1.0/26', 'node-b'));
  await ds.create('WorkloadEndpoint', wep('pod-a1', 'node-a', 'cali1111', '10.65.0.5'));
  await ds.create('WorkloadEndpoint', wep('pod-b1', 'node-b', 'cali2222', '10.65.1.5'));
}

function block(cidr: string, node: string) {
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPAMBlock',
    metadata: meta(cidr.replaceAll(/[./]/g, '-')),
    spec: {
      cidr,
      affinity: `host:${node}`,
      allocations: Array<null>(64).fill(null),
      unallocated: Array.from({ length: 64 }, (_, i) => i),
      attributes: [],
    },
  } as never;
}

function wep(pod: string, node: string, iface: string, ip: string) {
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'WorkloadEndpoint',
    metadata: meta(`${node}-k8s-${pod}-eth0`, 'default'),
    spec: {
      node,
      orchestrator: 'k8s',
      pod,
      endpoint: 'eth0',
      interfaceName: iface,
      mac: 'aa:bb:cc:00:00:01',
      ipNetworks: [`${ip}/32`],
      profiles: ['kns.default'],
    },
  } as never;
}

async function nodeKernel(k: MemoryKernel = new MemoryKernel()): Promise<MemoryKernel> {
  k.addLink('lo', { kind: undefined, mtu: 65536 });
  k.addLink('eth0', { kind: undefined, mtu: 1500 });
  await k.addAddress('eth0', '192.0.2.11/24');
  k.addLink('cali1111');
  k.writes = 0;
  return k;
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('Felix against an in-memory kernel', () => {
  let felix: Felix | undefined;
  afterEach(async () => {
    await felix?.stop();
    felix = undefined;
  });

  async function startFelix(ds: Datastore, kernel: MemoryKernel): Promise<Felix> {
    felix = new Felix({ datastore: ds, nodeName: 'node-a', kernel, config: { routeRefreshInterval: 0 } });
    felix.start();
    await felix.whenReady();
    return felix;
  }

  it('writes nothing to the kernel before the datastore is in sync', async () => {
    const kernel = await nodeKernel();
    const dp = new InternalDataplane({ kernel, nodeName: 'node-a', logger: defaultLogger });
    const graph = new CalcGraph({ nodeName: 'node-a' });
    const ds = new MemoryDatastore();
    await seedCluster(ds);
    for (const kind of FELIX_KINDS) {
      const { items } = await ds.list(kind);
      graph.onUpdates(
        items.map((value) => ({
          kind,
          key: keyFor(kind, value.metadata.name, value.metadata.namespace),
          value,
        })),
      );
    }
    dp.onUpdates(graph.flush());
    expect(await dp.apply()).toBeUndefined();
    expect(kernel.writes).toBe(0);
    graph.onStatus('in-sync');
    dp.onUpdates(graph.flush());
    expect(await dp.apply()).toMatchObject({ errors: [] });
    expect(kernel.writes).toBeGreaterThan(0);
  });

  it('programs workload, blackhole and VXLAN routes, the VTEP, sysctls, chains and ipsets', async () => {
    const ds = new MemoryDatastore();
    await seedCluster(ds);
    const kernel = await nodeKernel();
    const f = await startFelix(ds, kernel);

    const idx = (n: string) => kernel.linkByName(n)?.index;
    const route = (dst: string) => kernel.routes.find((r) => r.dst === dst);
    expect(route('10.65.0.5/32')).toMatchObject({ dev: idx('cali1111'), protocol: 3, scope: 253 });
    expect(route('10.65.0.0/26')).toMatchObject({ type: 'blackhole', protocol: 80 });
    expect(route('10.65.1.0/26')).toMatchObject({
      gateway: '10.65.1.1',
      dev: idx('vxlan.calico'),
      onlink: true,
      protocol: 3,
    });
    const vx = kernel.linkByName('vxlan.calico')!;
    // The VTEP MAC is 0x66 + SHA-1(nodename)[0:5]: SHA-1("node-a") = 0702c1cc60ff…, SHA-1("node-b") = 893a227aaca1….
    expect(vx).toMatchObject({ mtu: 1450, mac: '66:07:02:c1:cc:60', up: true });
    expect(vx.vxlan).toMatchObject({
      vni: 4096,
      port: 4789,
      local: '192.0.2.11',
      learning: false,
      linkIndex: idx('eth0'),
    });
    expect(kernel.addresses.filter((a) => a.index === vx.index).map((a) => a.cidr)).toEqual(['10.65.0.1/32']);
    expect(kernel.fdb).toEqual([{ dev: vx.index, mac: '66:89:3a:22:7a:ac', address: '192.0.2.12' }]);
    expect(kernel.neighbours).toEqual(
      expect.arrayContaining([
        { dev: vx.index, address: '10.65.1.1', mac: '66:89:3a:22:7a:ac' },
        { dev: idx('cali1111'), address: '10.65.0.5', mac: 'aa:bb:cc:00:00:01' },
      ]),
    );
    // The workload interface set shared with the CNI plugin; an IPv4-only endpoint gets no IPv6 keys.
    expect(kernel.sysctls.get('cali1111')).toEqual({
      proxyArp: true,
      proxyDelay: 0,
      forwarding: true,
      routeLocalnet: true,
      rpFilter: 1,
    });
    expect(kernel.forwarding.ipv4).toBe(true);

    const fwd = kernel.chain('filter', 'cali-from-wl-dispatch')!;
    expect(fwd).toEqual([
      '-i cali1111 -g cali-fw-cali1111',
      '-m comment --comment "Unknown interface" -j DROP',
    ]);
    expect(kernel.chain('filter', 'cali-tw-cali1111')).toEqual(
      expect.arrayContaining([
        '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-m conntrack --ctstate INVALID -j DROP',
      ]),
    );
    expect(kernel.chain('nat', 'cali-nat-outgoing')).toEqual([
      '-m set --match-set cali40masq-ipam-pools src -m set ! --match-set cali40network-ip-pools dst -j MASQUERADE --random-fully',
    ]);
    expect(kernel.iptables.get('filter')!.hooks).toContainEqual({
      chain: 'FORWARD',
      position: 'insert',
      rule: '-j cali-FORWARD',
    });
    expect(kernel.ipsets.get('cali40all-vxlan-net')?.members).toEqual(['192.0.2.12/32']);
    expect(kernel.ipsets.get('cali40masq-ipam-pools')?.members).toEqual(['10.65.0.0/16']);

    expect(f.status()).toMatchObject({ syncStatus: 'in-sync', ready: true, endpoints: 1, errors: [] });
  });

  it('writes nothing before in-sync, and nothing more when the kernel already matches', async () => {
    const ds = new MemoryDatastore();
    await seedCluster(ds);
    const kernel = await nodeKernel();
    const f = await startFelix(ds, kernel);
    const writes = kernel.writes;
    expect(writes).toBeGreaterThan(0);
    // A change that reaches the dataplane but alters nothing in it: one apply, no kernel writes.
    const applied = f.status().applyCount;
    await ds.apply('Node', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: meta('node-b'),
      spec: { bgp: { ipv4Address: '192.0.2.12/24', asNumber: 64513 }, ipv4VXLANTunnelAddr: '10.65.1.1' },
    } as never);
    await until(() => f.status().applyCount > applied, 'apply');
    expect(kernel.writes).toBe(writes);
  });

  it('sweeps stale routes it owns on the first apply and leaves foreign ones', async () => {
    const ds = new MemoryDatastore();
    await seedCluster(ds);
    const kernel = await nodeKernel();
    kernel.addLink('cali9999');
    await kernel.replaceRoute({ dst: '10.99.0.0/26', type: 'blackhole', protocol: 80 });
    await kernel.replaceRoute({ dst: '10.65.0.9/32', dev: 'cali9999', scope: 'link', protocol: 3 });
    await kernel.replaceRoute({ dst: '198.51.100.0/24', gateway: '192.0.2.1', dev: 'eth0', protocol: 4 });
    await startFelix(ds, kernel);
    const dsts = kernel.routes.map((r) => r.dst);
    expect(dsts).not.toContain('10.99.0.0/26');
    expect(dsts).not.toContain('10.65.0.9/32');
    expect(dsts).toContain('198.51.100.0/24');
  });

  it('follows endpoint churn: a removed endpoint loses its route, neighbour and chains', async () => {
    const ds = new MemoryDatastore();
    await seedCluster(ds);
    const kernel = await nodeKernel();
    await startFelix(ds, kernel);
    await ds.delete('WorkloadEndpoint', 'node-a-k8s-pod-a1-eth0', 'default');
    await until(() => !kernel.routes.some((r) => r.dst === '10.65.0.5/32'), 'route removed');
    await until(() => kernel.chain('filter', 'cali-tw-cali1111') === undefined, 'chains removed');
    expect(kernel.chain('filter', 'cali-from-wl-dispatch')).toEqual([
      '-m comment --comment "Unknown interface" -j DROP',
    ]);
    expect(kernel.neighbours.some((n) => n.address === '10.65.0.5')).toBe(false);
  });

  it('restores a route deleted by hand on the next route refresh', async () => {
    const ds = new MemoryDatastore();
    await seedCluster(ds);
    const kernel = await nodeKernel();
    felix = new Felix({ datastore: ds, nodeName: 'node-a', kernel, config: { routeRefreshInterval: 0.05 } });
    felix.start();
    await felix.whenReady();
    await kernel.deleteRoute({ dst: '10.65.1.0/26' });
    await until(() => kernel.routes.some((r) => r.dst === '10.65.1.0/26'), 'route restored');
  });

  it('reports a missing ipip module clearly and still programs everything else', async () => {
    const ds = new MemoryDatastore();
    await seedCluster(ds, { ipip: true });
    const kernel = await nodeKernel();
    kernel.missingModules.add('ipip');
    const f = await startFelix(ds, kernel);
    expect(f.status().errors.join()).toMatch(/no ipip module/);
    expect(kernel.routes.some((r) => r.dst === '10.65.1.0/26')).toBe(true);
    expect(kernel.routes.some((r) => r.dst === '10.70.1.0/26')).toBe(false);
  });

  it('routes IPIP pools via the remote node on tunl0 when the module is there', async () => {
    const ds = new MemoryDatastore();
    await seedCluster(ds, { ipip: true });
    const kernel = await nodeKernel();
    await startFelix(ds, kernel);
    expect(kernel.routes.find((r) => r.dst === '10.70.1.0/26')).toMatchObject({
      gateway: '192.0.2.12',
      dev: kernel.linkByName('tunl0')!.index,
      onlink: true,
      protocol: 80,
    });
    expect(kernel.linkByName('tunl0')).toMatchObject({ mtu: 1480, up: true });
  });

  it('does not lose a change that arrives while an apply is in flight (a node joining mid-apply)', async () => {
    // Every ipset write waits on a gate the test holds, so an apply is reliably in flight when
    // the next change arrives.
    class GatedKernel extends MemoryKernel {
      gate: Promise<void> = Promise.resolve();
      blocked = false;
      override async applyIpsets(...args: Parameters<MemoryKernel['applyIpsets']>): Promise<void> {
        // The last write of an apply (stale sets removed): what it writes was read before it.
        if (args[1].removeStale) {
          this.blocked = true;
          await this.gate;
          this.blocked = false;
        }
        return super.applyIpsets(...args);
      }
    }
    const kernel = (await nodeKernel(new GatedKernel())) as GatedKernel;
    const ds = new MemoryDatastore();
    await seedCluster(ds);
    const seen: string[] = [];
    felix = new Felix({
      datastore: ds,
      nodeName: 'node-a',
      kernel,
      config: { routeRefreshInterval: 0 },
      onIntent: (batch) => {
        for (const u of batch) if (u.type === 'vtepUpdate') seen.push(u.vtep.node);
      },
    });
    felix.start();
    await felix.whenReady();
    let release!: () => void;
    kernel.gate = new Promise((r) => (release = r));
    const node = (name: string, ip: string, tunnel: string) =>
      ds.create('Node', {
        apiVersion: 'projectcalico.org/v3',
        kind: 'Node',
        metadata: meta(name),
        spec: { bgp: { ipv4Address: ip }, ipv4VXLANTunnelAddr: tunnel },
      } as never);
    await node('node-c', '192.0.2.13/24', '10.65.2.1');
    await until(() => kernel.blocked, 'an apply to reach the ipset write');
    await node('node-d', '192.0.2.14/24', '10.65.3.1');
    await until(() => seen.includes('node-d'), 'node-d to reach the intent stream mid-apply');
    kernel.gate = Promise.resolve();
    release();
    await until(
      () => (kernel.ipsets.get('cali40all-vxlan-net')?.members ?? []).includes('192.0.2.14/32'),
      'node-d in all-vxlan-net',
    );
  });

  it('stop() leaves the dataplane in place', async () => {
    const ds = new MemoryDatastore();
    await seedCluster(ds);
    const kernel = await nodeKernel();
    const f = await startFelix(ds, kernel);
    const before = JSON.stringify([kernel.routes, [...kernel.iptables]]);
    await f.stop();
    felix = undefined;
    expect(JSON.stringify([kernel.routes, [...kernel.iptables]])).toBe(before);
    expect(f.status().syncStatus).toBe('stopped');
  });
});
