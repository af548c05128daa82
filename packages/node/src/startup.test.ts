import { readFileSync } from 'node:fs';
import { MemoryDatastore } from '@calico-ts/datastore';
import { Ipam } from '@calico-ts/ipam';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadNodeConfig } from './config.ts';
import { nodeVersion, startup } from './startup.ts';
import { ipamTunnelAllocator } from './tunnel-allocator.ts';

const log = pino({ level: 'silent' });

describe('calico-node start-up', () => {
  it('writes the Node, the default pool and a VXLAN tunnel address from that pool', async () => {
    const ds = new MemoryDatastore();
    const tunnels = ipamTunnelAllocator(new Ipam(ds));
    const cfg = loadNodeConfig(
      {},
      {
        NODENAME: 'node-a',
        IP: '192.0.2.11/24',
        IP6: 'none',
        AS: '64512',
        CALICO_IPV4POOL_CIDR: '10.244.0.0/16',
        CALICO_IPV4POOL_VXLAN: 'Always',
      },
    );
    const result = await startup(cfg, ds, tunnels, log);

    expect(result.vxlanTunnelAddress).toMatch(/^10\.244\./);
    expect(result.ipipTunnelAddress).toBeUndefined();
    const node = await ds.get('Node', 'node-a');
    expect(node.spec).toEqual({
      bgp: { ipv4Address: '192.0.2.11/24', asNumber: 64512 },
      orchRefs: [],
      ipv4VXLANTunnelAddr: result.vxlanTunnelAddress,
    });
    expect(node.metadata.labels).toEqual({ 'kubernetes.io/hostname': 'node-a' });
    const pool = await ds.get('IPPool', 'default-ipv4-ippool');
    expect(pool.spec).toMatchObject({ cidr: '10.244.0.0/16', vxlanMode: 'Always', ipipMode: 'Never' });
    expect(await ds.get('FelixConfiguration', 'node.node-a')).toMatchObject({
      spec: { defaultEndpointToHostAction: 'Return' },
    });

    // A second start keeps the address it holds.
    expect((await startup(cfg, ds, tunnels, log)).vxlanTunnelAddress).toBe(result.vxlanTunnelAddress);
  });

  it('records the running release in ClusterInformation, keeping the cluster GUID across starts', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(nodeVersion()).toBe(`v${version}`);
    const ds = new MemoryDatastore();
    const tunnels = ipamTunnelAllocator(new Ipam(ds));
    const cfg = loadNodeConfig({}, { NODENAME: 'node-a', IP: '192.0.2.11/24', IP6: 'none' });
    await startup(cfg, ds, tunnels, log);
    const first = await ds.get('ClusterInformation', 'default');
    expect(first.spec).toMatchObject({ calicoVersion: `v${version}`, datastoreReady: true });
    expect(first.spec.clusterGUID).toMatch(/^[0-9a-f]{32}$/);

    // An older release wrote the record: the next start records this one.
    await ds.update('ClusterInformation', { ...first, spec: { ...first.spec, calicoVersion: 'v0.0.1' } });
    await startup(cfg, ds, tunnels, log);
    const after = await ds.get('ClusterInformation', 'default');
    expect(after.spec.calicoVersion).toBe(`v${version}`);
    expect(after.spec.clusterGUID).toBe(first.spec.clusterGUID);
  });

  it('moves the tunnel address to IPIP when the pool changes encapsulation, releasing the VXLAN one', async () => {
    const ds = new MemoryDatastore();
    const ipam = new Ipam(ds);
    const tunnels = ipamTunnelAllocator(ipam);
    const cfg = loadNodeConfig(
      {},
      {
        NODENAME: 'node-a',
        IP: '192.0.2.11/24',
        CALICO_IPV4POOL_CIDR: '10.244.0.0/16',
        CALICO_IPV4POOL_VXLAN: 'Always',
      },
    );
    const first = await startup(cfg, ds, tunnels, log);
    const pool = await ds.get('IPPool', 'default-ipv4-ippool');
    await ds.update('IPPool', {
      ...pool,
      spec: { ...pool.spec, vxlanMode: 'Never', ipipMode: 'CrossSubnet' },
    });

    const second = await startup(cfg, ds, tunnels, log);
    expect(second.vxlanTunnelAddress).toBeUndefined();
    expect(second.ipipTunnelAddress).toMatch(/^10\.244\./);
    const node = await ds.get('Node', 'node-a');
    expect(node.spec.ipv4VXLANTunnelAddr).toBeUndefined();
    expect(node.spec.bgp).toEqual({
      ipv4Address: '192.0.2.11/24',
      ipv4IPIPTunnelAddr: second.ipipTunnelAddress,
    });
    expect(await ipam.ipsByHandle('vxlan-tunnel-addr-node-a')).toEqual([]);
    expect(await ipam.ipsByHandle('ipip-tunnel-addr-node-a')).toEqual([second.ipipTunnelAddress]);
    // The handle the node no longer needs is deleted with its last address, not left empty.
    expect((await ds.list('IPAMHandle')).items.map((h) => h.metadata.name)).toEqual([
      'ipip-tunnel-addr-node-a',
    ]);
    expect((await ipam.auditOwnership()).problems).toBe(0);
    expect(first.vxlanTunnelAddress).toMatch(/^10\.244\./);
  });

  it('leaves disabled pools and pools whose nodeSelector excludes the node without a tunnel address', async () => {
    const ds = new MemoryDatastore();
    await ds.create('IPPool', {
      metadata: { name: 'elsewhere' },
      spec: { cidr: '10.50.0.0/16', vxlanMode: 'Always', nodeSelector: "rack == 'b'" },
    });
    await ds.create('IPPool', {
      metadata: { name: 'off' },
      spec: { cidr: '10.60.0.0/16', ipipMode: 'Always', disabled: true },
    });
    const cfg = loadNodeConfig({}, { NODENAME: 'node-a', IP: '192.0.2.11/24' });
    const result = await startup(cfg, ds, ipamTunnelAllocator(new Ipam(ds)), log);
    expect([result.vxlanTunnelAddress, result.ipipTunnelAddress]).toEqual([undefined, undefined]);
    // Pools existed, so no default pool was added.
    expect((await ds.list('IPPool')).items.map((p) => p.metadata.name).sort()).toEqual(['elsewhere', 'off']);
  });
});
