import { MemoryDatastore } from '@calico-ts/datastore';
import { describe, expect, it } from 'vitest';
import { Ipam } from './ipam.ts';

async function cluster() {
  const ds = new MemoryDatastore();
  await ds.create('IPPool', { metadata: { name: 'tiny' }, spec: { cidr: '10.9.0.0/29', blockSize: 30 } });
  for (const name of ['n1', 'n2']) await ds.create('Node', { metadata: { name }, spec: {} });
  return { ds, ipam: new Ipam(ds, { random: () => 0.5 }) };
}

async function workload(ds: MemoryDatastore, name: string, node: string, ip: string): Promise<void> {
  await ds.create('WorkloadEndpoint', {
    metadata: { name, namespace: 'default' },
    spec: { node, pod: name, endpoint: 'eth0', ipNetworks: [`${ip}/32`] },
  });
}

describe('auditOwnership', () => {
  it('finds leaked addresses and handles, borrowed addresses and blocks of nodes that are gone', async () => {
    const { ds, ipam } = await cluster();
    const attrs = (pod: string, node: string) => ({ namespace: 'default', pod, node });
    const web = await ipam.autoAssign({ num4: 1, handleId: 'h-web', node: 'n1', attrs: attrs('web', 'n1') });
    const gone = await ipam.autoAssign({
      num4: 1,
      handleId: 'h-gone',
      node: 'n1',
      attrs: attrs('gone', 'n1'),
    });
    const tunnel = await ipam.autoAssign({
      num4: 1,
      handleId: 'vxlan-tunnel-addr-n1',
      node: 'n1',
      attrs: { node: 'n1', type: 'vxlanTunnelAddress' },
      intendedUse: 'Tunnel',
    });
    await workload(ds, 'web', 'n1', web.ipv4[0]!.address);
    const n1 = await ds.get('Node', 'n1');
    await ds.update('Node', { ...n1, spec: { ...n1.spec, ipv4VXLANTunnelAddr: tunnel.ipv4[0]!.address } });
    // An address a workload uses that IPAM never handed out.
    await workload(ds, 'rogue', 'n2', '10.9.0.7');

    const audit = await ipam.auditOwnership();
    expect(audit.leakedAddresses.map((a) => [a.ip, a.handle, a.pod])).toEqual([
      [gone.ipv4[0]!.address, 'h-gone', 'gone'],
    ]);
    expect(audit.allocations[web.ipv4[0]!.address]?.[0]).toMatchObject({
      inUse: true,
      owners: ['Workload(default/web)'],
      handle: 'h-web',
      node: 'n1',
    });
    expect(audit.allocations[tunnel.ipv4[0]!.address]?.[0]?.owners).toEqual(['Node(n1)']);
    expect(audit.inUseWithoutAllocation).toEqual([{ ip: '10.9.0.7', owners: ['Workload(default/rogue)'] }]);
    expect(audit.problems).toBe(2);

    // Releasing the leak re-checks: the address in use is refused, the leaked one goes.
    const released = await ipam.releaseLeaked([
      { ip: gone.ipv4[0]!.address, handle: 'h-gone', sequenceNumber: gone.ipv4[0]!.sequenceNumber },
      { ip: web.ipv4[0]!.address, handle: 'h-web' },
    ]);
    expect(released.released).toEqual([gone.ipv4[0]!.address]);
    expect(released.stillInUse).toEqual([{ ip: web.ipv4[0]!.address, owners: ['Workload(default/web)'] }]);
    expect(await ipam.ipsByHandle('h-gone')).toEqual([]);
    expect((await ipam.auditOwnership()).leakedAddresses).toEqual([]);

    // n1's blocks are full: n2 borrows; once n1 is deleted its blocks have no node.
    await ipam.autoAssign({ num4: 5, handleId: 'h-fill', node: 'n1', attrs: attrs('fill', 'n1') });
    const borrowed = await ipam.autoAssign({ num4: 1, handleId: 'h-b', node: 'n2', attrs: attrs('b', 'n2') });
    const list = await ipam.getBorrowedAddresses();
    expect(list.borrowed).toContainEqual({
      address: borrowed.ipv4[0]!.address,
      borrowingNode: 'n2',
      block: borrowed.ipv4[0]!.block,
      blockOwner: 'n1',
      type: 'pod',
      allocatedTo: 'default/b',
    });
    await ds.delete('Node', 'n1');
    const after = await ipam.auditOwnership();
    expect(after.blocksWithoutNode.map((b) => b.affinity)).toEqual(['host:n1', 'host:n1']);
  });

  it('deletes a leaked handle only while it is unchanged and unused', async () => {
    const { ds, ipam } = await cluster();
    await ds.create('IPAMHandle', { metadata: { name: 'orphan' }, spec: { handleID: 'orphan', block: {} } });
    const audit = await ipam.auditOwnership();
    expect(audit.leakedHandles.map((h) => h.ID)).toEqual(['orphan']);
    const stale = { ...audit.leakedHandles[0]!, Revision: '1' };
    expect((await ipam.deleteLeakedHandles([stale])).skipped).toEqual([{ id: 'orphan', reason: 'changed' }]);
    expect((await ipam.deleteLeakedHandles(audit.leakedHandles)).deleted).toEqual(['orphan']);
    expect((await ipam.auditOwnership()).leakedHandles).toEqual([]);
  });

  it('lists blocks whose pool is gone apart from the pools', async () => {
    const { ds, ipam } = await cluster();
    const a = await ipam.autoAssign({ num4: 1, handleId: 'h', node: 'n1' });
    await ds.delete('IPPool', 'tiny');
    expect(await ipam.getUtilization()).toEqual([]);
    expect(await ipam.getBlocksOutsidePools()).toEqual([
      { cidr: a.ipv4[0]!.block, affinity: 'host:n1', capacity: 4, inUse: 1, free: 3 },
    ]);
  });

  it('leaves no handle record behind when a handle that holds nothing is released', async () => {
    const { ds, ipam } = await cluster();
    expect(await ipam.releaseByHandle('ipip-tunnel-addr-n1')).toEqual([]);
    expect((await ds.list('IPAMHandle')).items).toEqual([]);
    expect((await ipam.auditOwnership()).leakedHandles).toEqual([]);
  });
});
