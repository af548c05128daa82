/**
 * `calico ipam` against a real etcd, reached the way a user reaches it (--etcd-endpoints). IPAM
 * state is made as calico-node makes it for a CNI ADD: an allocation with the pod's handle and
 * attributes, then the pod's WorkloadEndpoint; a leak is a WorkloadEndpoint deleted behind IPAM's
 * back (the pod went away without a CNI DEL).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { affinityName, EtcdDatastore } from '@calico-ts/datastore';
import { Ipam } from '@calico-ts/ipam';
import { type EtcdProcess, startEtcd } from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith } from '../../../test-support/requirements.ts';
import { run } from '../src/cli.ts';
import { captureIo } from '../src/cli-io.ts';

describeWith([command('etcd')], 'calico ipam on a real etcd', () => {
  let etcd: EtcdProcess;
  let ds: EtcdDatastore;
  let ipam: Ipam;
  let dir: string;
  const pods = new Map<string, string>();

  async function calico(...args: string[]) {
    const io = captureIo({ env: {}, cwd: dir });
    const code = await run(['--etcd-endpoints', etcd.endpoint, ...args], io);
    return { code, out: io.out, err: io.err };
  }

  /** What calico-node does for a CNI ADD: allocate for the pod, then write its endpoint. */
  async function addPod(name: string, node: string, pool = '10.65.0.0/16'): Promise<string> {
    const { ipv4 } = await ipam.autoAssign({
      num4: 1,
      handleId: `k8s-pod-network.${name}`,
      node,
      attrs: { namespace: 'shop', pod: name, node, timestamp: '2026-12-03 12:00:00 +0000 UTC' },
      pools: [pool],
    });
    const a = ipv4[0]!;
    await addEndpoint(name, node, a.address);
    pods.set(name, a.address);
    return a.address;
  }

  async function addEndpoint(pod: string, node: string, address: string): Promise<void> {
    await ds.create('WorkloadEndpoint', {
      metadata: { name: `${node}-k8s-${pod}-eth0`, namespace: 'shop' },
      spec: { node, pod, endpoint: 'eth0', orchestrator: 'k8s', ipNetworks: [`${address}/32`] },
    });
  }

  /** The pod goes away without a CNI DEL: its endpoint is deleted behind IPAM's back. */
  async function leakPod(name: string, node: string): Promise<string> {
    const address = await addPod(name, node);
    await ds.delete('WorkloadEndpoint', `${node}-k8s-${name}-eth0`, 'shop');
    return address;
  }

  beforeAll(async () => {
    etcd = await startEtcd();
    ds = new EtcdDatastore({ endpoints: etcd.endpoint });
    ipam = new Ipam(ds, { random: () => 0.5 });
    dir = await mkdtemp(join(tmpdir(), 'calico-ipam-'));
    await ds.create('ClusterInformation', {
      metadata: { name: 'default' },
      spec: { clusterGUID: 'c0ffee', clusterType: 'bgp', datastoreReady: true },
    });
    await ds.create('IPPool', { metadata: { name: 'pods' }, spec: { cidr: '10.65.0.0/16', blockSize: 26 } });
    await ds.create('IPPool', { metadata: { name: 'small' }, spec: { cidr: '10.66.0.0/29', blockSize: 30 } });
    for (const n of ['node-a', 'node-b']) await ds.create('Node', { metadata: { name: n }, spec: {} });
    await addPod('web-1', 'node-a');
    await addPod('web-2', 'node-a');
    await addPod('db-1', 'node-b');
  });

  afterAll(async () => {
    await ds?.close();
    await etcd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows usage per pool, and per block with --show-blocks', async () => {
    expect(await calico('ipam', 'show')).toEqual({
      code: 0,
      err: '',
      out: [
        '+----------+--------------+-----------+------------+--------------+',
        '| GROUPING |     CIDR     | IPS TOTAL | IPS IN USE |   IPS FREE   |',
        '+----------+--------------+-----------+------------+--------------+',
        '| IP Pool  | 10.65.0.0/16 |     65536 | 3 (0%)     | 65533 (100%) |',
        '| IP Pool  | 10.66.0.0/29 |         8 | 0 (0%)     | 8 (100%)     |',
        '+----------+--------------+-----------+------------+--------------+',
        '',
      ].join('\n'),
    });
    // Blocks in address order under their pool; node-b's block sorts first.
    expect((await calico('ipam', 'show', '--show-blocks')).out).toBe(
      [
        '+----------+------------------+-----------+------------+--------------+',
        '| GROUPING |       CIDR       | IPS TOTAL | IPS IN USE |   IPS FREE   |',
        '+----------+------------------+-----------+------------+--------------+',
        '| IP Pool  | 10.65.0.0/16     |     65536 | 3 (0%)     | 65533 (100%) |',
        '| Block    | 10.65.30.64/26   |        64 | 1 (2%)     | 63 (98%)     |',
        '| Block    | 10.65.240.192/26 |        64 | 2 (3%)     | 62 (97%)     |',
        '| IP Pool  | 10.66.0.0/29     |         8 | 0 (0%)     | 8 (100%)     |',
        '+----------+------------------+-----------+------------+--------------+',
        '',
      ].join('\n'),
    );
  });

  it('tells who holds an address, and that a free one is not assigned', async () => {
    expect(await calico('ipam', 'show', '--ip', pods.get('web-1')!)).toEqual({
      code: 0,
      err: '',
      out: [
        'IP 10.65.240.192 is in use',
        'Handle: k8s-pod-network.web-1',
        'Block: 10.65.240.192/26 (affinity host:node-a)',
        'Attributes:',
        '  namespace: shop',
        '  node: node-a',
        '  pod: web-1',
        '  timestamp: 2026-12-03 12:00:00 +0000 UTC',
        '',
      ].join('\n'),
    });
    expect(await calico('ipam', 'show', '--ip', '10.65.255.254')).toEqual({
      code: 0,
      err: '',
      out: 'IP 10.65.255.254 is not currently assigned\n',
    });
    const bad = await calico('ipam', 'show', '--ip', '10.65.0.300');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(
      "'--ip <IP>' argument '10.65.0.300' is invalid. expected an IPv4 or IPv6 address",
    );
    expect((await calico('ipam', 'show', '--ip', '10.65.0.1', '--show-blocks')).err).toBe(
      'give at most one of --ip, --show-blocks, --show-borrowed, --show-configuration\n',
    );
  });

  it('shows and changes the IPAM configuration', async () => {
    const table = (strict: boolean, max: number) =>
      [
        '+--------------------+-------+',
        '|      PROPERTY      | VALUE |',
        '+--------------------+-------+',
        `| StrictAffinity     | ${String(strict).padEnd(5)} |`,
        '| AutoAllocateBlocks | true  |',
        `| MaxBlocksPerHost   | ${String(max).padStart(5)} |`,
        '+--------------------+-------+',
        '',
      ].join('\n');
    expect((await calico('ipam', 'show', '--show-configuration')).out).toBe(table(false, 0));
    expect(await calico('ipam', 'configure', '--strictaffinity=true', '--max-blocks-per-host', '8')).toEqual({
      code: 0,
      err: '',
      out: 'Successfully set StrictAffinity to: true\nSuccessfully set MaxBlocksPerHost to: 8\n',
    });
    expect((await calico('ipam', 'show', '--show-configuration')).out).toBe(table(true, 8));
    const bad = await calico('ipam', 'configure', '--strictaffinity', 'yes');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('expected true or false, got "yes"');
    expect((await calico('ipam', 'configure')).err).toBe(
      'give --strictaffinity and/or --max-blocks-per-host\n',
    );
    await calico('ipam', 'configure', '--strictaffinity=false', '--max-blocks-per-host=0');
    expect((await ds.get('IPAMConfiguration', 'default')).spec).toMatchObject({
      strictAffinity: false,
      maxBlocksPerHost: 0,
    });
  });

  it('lists addresses a node borrowed from another node’s block', async () => {
    // node-a takes both /30 blocks of the small pool; node-b then has to borrow.
    for (let i = 1; i <= 7; i++) await addPod(`fill-${i}`, 'node-a', '10.66.0.0/29');
    const borrowed = await addPod('guest', 'node-b', '10.66.0.0/29');
    expect(borrowed).toBe('10.66.0.3');
    expect(await calico('ipam', 'show', '--show-borrowed')).toEqual({
      code: 0,
      err: '',
      out: [
        '+-----------+----------------+--------------+-------------+------+--------------+',
        '|    IP     | BORROWING-NODE |    BLOCK     | BLOCK OWNER | TYPE | ALLOCATED-TO |',
        '+-----------+----------------+--------------+-------------+------+--------------+',
        '| 10.66.0.3 | node-b         | 10.66.0.0/30 | node-a      | pod  | shop/guest   |',
        '+-----------+----------------+--------------+-------------+------+--------------+',
        '',
      ].join('\n'),
    });
    expect((await calico('ipam', 'check')).code).toBe(0);
  });

  it('finds a leaked address, writes a report, and releases it from the report', async () => {
    const leaked = await leakPod('gone', 'node-b');
    // A handle record left with nothing allocated under it.
    await ds.create('IPAMHandle', {
      metadata: { name: 'k8s-pod-network.stale' },
      spec: { handleID: 'k8s-pod-network.stale', block: {} },
    });

    const check = await calico('ipam', 'check', '--show-problem-ips', '-o', 'report.json');
    expect(check.code).toBe(1);
    expect(check.err).toBe('ipam check found 2 problem(s)\n');
    expect(check.out).toContain(
      `  ${leaked} leaked; attrs Main:k8s-pod-network.gone Extra:namespace=shop,node=node-b,pod=gone,timestamp=2026-12-03 12:00:00 +0000 UTC\n` +
        'Found 1 IPs that are allocated in IPAM but not actually in use.\n',
    );
    expect(check.out).toContain('Found 1 handles with no matching IPs (and 12 handles with matches).\n');
    expect(check.out).toContain('Check complete; found 2 problems.\nReport written to report.json\n');

    const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8'));
    expect(report).toMatchObject({
      version: expect.stringMatching(/^v\d/),
      clusterGUID: 'c0ffee',
      clusterType: 'bgp',
    });
    expect(report.allocations[leaked]).toEqual([
      expect.objectContaining({
        ip: leaked,
        inUse: false,
        owners: [],
        handle: 'k8s-pod-network.gone',
        pod: 'gone',
      }),
    ]);
    expect(report.allocations[pods.get('web-1')!][0]).toMatchObject({
      inUse: true,
      owners: ['Workload(shop/node-a-k8s-web-1-eth0)'],
    });
    expect(report.leakedHandles).toEqual([expect.objectContaining({ ID: 'k8s-pod-network.stale' })]);

    expect(await calico('ipam', 'release', '--from-report', 'report.json')).toEqual({
      code: 0,
      err: '',
      out: 'Releasing 1 old IPs...\nReleased 1 IPs successfully\nReleased 1 handles; 0 skipped; 0 errors.\n',
    });
    expect(await ipam.getAssignmentAttributes(leaked)).toBeUndefined();
    await expect(ds.get('IPAMHandle', 'k8s-pod-network.stale')).rejects.toThrow(/not found/);
    const clean = await calico('ipam', 'check');
    expect(clean.code).toBe(0);
    expect(clean.out).toContain('Check complete; found 0 problems.\n');
  });

  it('refuses to release an address something uses again, from a report or by --ip', async () => {
    const address = await leakPod('back', 'node-b');
    expect((await calico('ipam', 'check', '-o', 'stale.json')).code).toBe(1);
    // The pod's endpoint comes back after the report was written.
    await addEndpoint('back', 'node-b', address);
    const r = await calico('ipam', 'release', '--from-report', 'stale.json');
    expect(r.code).toBe(1);
    expect(r.out).toContain(`Not released: ${address} is in use by Workload(shop/node-b-k8s-back-eth0)\n`);
    expect(r.err).toBe('1 address(es) in the report are in use now and were not released\n');
    expect((await ipam.getAssignmentAttributes(address))?.handleId).toBe('k8s-pod-network.back');

    const byIp = await calico('ipam', 'release', '--ip', address);
    expect(byIp.code).toBe(1);
    expect(byIp.err).toBe(
      `IP address ${address} is in use by Workload(shop/node-b-k8s-back-eth0): not released (remove the user first, or pass --force)\n`,
    );
    await ds.delete('WorkloadEndpoint', 'node-b-k8s-back-eth0', 'shop');
    expect(await calico('ipam', 'release', '--ip', address)).toEqual({
      code: 0,
      err: '',
      out: `Successfully released IP address ${address}\n`,
    });
    expect((await calico('ipam', 'release', '--ip', address)).err).toBe(
      `IP address ${address} is not assigned\n`,
    );
  });

  it('refuses a report made for another cluster', async () => {
    const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8'));
    await writeFile(join(dir, 'other.json'), JSON.stringify({ ...report, clusterGUID: 'someone-else' }));
    const r = await calico('ipam', 'release', '--from-report', 'other.json');
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      'other.json was made for cluster "someone-else", this cluster is "c0ffee": refusing to release\n',
    );
    await writeFile(join(dir, 'junk.json'), '{"allocations": []}');
    expect((await calico('ipam', 'release', '--from-report', 'junk.json')).err).toBe(
      'junk.json is not an ipam check report: expected an object with an "allocations" map\n',
    );
  });

  it('reports blocks, affinities and handles that disagree', async () => {
    const name = affinityName('node-a', '10.65.200.0/26');
    await ds.create('BlockAffinity', {
      metadata: { name },
      spec: { state: 'confirmed', node: 'node-a', cidr: '10.65.200.0/26', type: 'host', deleted: false },
    });
    const r = await calico('ipam', 'check', '--show-problem-ips');
    expect(r.code).toBe(1);
    expect(r.out).toContain(
      'Checking that blocks, affinities and handles agree...\n' +
        "  node-a's affinity to 10.65.200.0/26 is confirmed, but that block is missing or affine elsewhere\n" +
        'Found 1 inconsistencies between blocks, affinities and handles.\n' +
        'Check complete; found 1 problems.\n',
    );
    await ds.delete('BlockAffinity', name);
    expect((await calico('ipam', 'check')).code).toBe(0);
  });
});
