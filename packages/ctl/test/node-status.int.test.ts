/**
 * `calico node status` as users run it (the real program, node + type stripping) against real BGP
 * agents: two lab nodes, a real etcd, one BgpAgent per node (its BGP sockets in the node's
 * namespace, its control socket in a temp dir) peering over the node-to-node mesh. The CLI shows
 * the session up while both run, and not up once the peer has gone; and says so when nothing
 * answers on the socket. Each agent also writes its CalicoNodeStatus to etcd, which
 * `calico node status --all` reads: both nodes up, then node 1's session down with its reason,
 * which node 1's readiness names too.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BgpAgent } from '@calico-ts/bgp-agent';
import { EtcdDatastore } from '@calico-ts/datastore';
import { waitFor } from '@calico-ts/kernel';
import { createLab, type EtcdProcess, type Lab, labNodeIpv4, startEtcd } from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';

const CLI = new URL('../src/cli.ts', import.meta.url).pathname;

function calico(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@calico-ts/source', CLI, ...args], {
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

const escaped = (ip: string) => ip.replaceAll('.', '\\.');

describeWith([root(), command('etcd')], 'calico node status', () => {
  const prefix = runPrefix('ns');
  const dir = mkdtempSync(join(tmpdir(), `calico-ts-${prefix}-`));
  const nodeName = (i: number) => `${prefix}-n${i}`;
  const controlSocket = (i: number) => join(dir, `bgp-${i}.ctl`);
  let lab: Lab;
  let etcd: EtcdProcess;
  let ds: EtcdDatastore;
  const agents = new Map<number, BgpAgent>();

  beforeAll(async () => {
    lab = await createLab({ prefix, nodes: 2 });
    etcd = await startEtcd({ dir: join(dir, 'etcd') });
    ds = new EtcdDatastore({ endpoints: [etcd.endpoint] });
    for (const i of [1, 2]) {
      await ds.create('Node', {
        metadata: { name: nodeName(i) },
        spec: { bgp: { ipv4Address: `${labNodeIpv4(i)}/24` } },
      });
    }
    for (const i of [1, 2]) {
      const agent = new BgpAgent({
        datastore: ds,
        nodeName: nodeName(i),
        netns: nodeName(i),
        statusSocket: controlSocket(i),
        connectRetryTime: 1,
        nodeStatus: { periodMs: 2000, pollMs: 200 },
      });
      agents.set(i, agent);
      await agent.start();
    }
  }, 60_000);

  afterAll(async () => {
    for (const agent of agents.values()) await agent.stop({ withdraw: true });
    await ds?.close();
    await etcd?.stop();
    await lab?.teardown();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('shows the mesh session to the other node up, read from the agent’s control socket', async () => {
    await waitFor(() => agents.get(1)!.status().peers[0]?.state === 'up', {
      timeoutMs: 30_000,
      what: 'the mesh session on node 1',
    });
    const r = await calico(['node', 'status', '--control', controlSocket(1)]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Calico process is running\.\n\nIPv4 BGP status\n\+-/);
    expect(r.out).toMatch(
      new RegExp(
        `\\| ${escaped(labNodeIpv4(2))} +\\| node-to-node mesh \\| up +\\| \\d\\d:\\d\\d:\\d\\d \\| Established \\|`,
      ),
    );
    expect(r.out).not.toContain(labNodeIpv4(1));
    expect(r.out).toContain('IPv6 BGP status\nNo IPv6 peers found.\n');
  });

  const all = () => calico(['--etcd-endpoints', etcd.endpoint, 'node', 'status', '--all']);

  it('--all reads both nodes’ sessions from their CalicoNodeStatus in etcd', async () => {
    const r = await waitFor(
      async () => {
        const r = await all();
        return (r.out.match(/\| up +\| \d\d:\d\d:\d\d \| Established/g) ?? []).length === 2 ? r : undefined;
      },
      { timeoutMs: 20_000, what: 'both nodes Established in calico node status --all' },
    );
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^Node ${nodeName(1)} \\(BGP agent Ready, updated \\d+s ago\\)$`, 'm'));
    expect(r.out).toMatch(new RegExp(`^Node ${nodeName(2)} \\(BGP agent Ready, updated \\d+s ago\\)$`, 'm'));
    expect(agents.get(1)!.readiness()).toEqual({ ready: true });
  });

  it('shows the session not up once the other node’s agent has stopped', async () => {
    await agents.get(2)!.stop({ withdraw: true });
    await waitFor(() => agents.get(1)!.status().peers[0]?.state === 'start', {
      timeoutMs: 30_000,
      what: 'the mesh session on node 1 down',
    });
    const r = await calico(['node', 'status', '--control', controlSocket(1)]);
    expect(r.code).toBe(0);
    const row = r.out.split('\n').find((l) => l.includes(labNodeIpv4(2)));
    expect(row).toMatch(/\| node-to-node mesh \| start \| \d\d:\d\d:\d\d \| (Idle|Connect|Active|OpenSent)/);
    expect(row).not.toContain('Established');
  });

  it('--all gives the reason node 1 sees (the Cease the stopped agent sent), as its readiness does', async () => {
    // Node 1 has the smaller address: it is the passive side of the mesh session (as confd).
    const peer2 = escaped(labNodeIpv4(2));
    const expected = new RegExp(
      `\\| ${peer2} +\\| node-to-node mesh \\| start \\| \\d\\d:\\d\\d:\\d\\d \\| \\w+: peer removed the session from its configuration \\(NOTIFICATION Cease / Peer De-configured\\) \\|`,
    );
    const r = await waitFor(
      async () => {
        const r = await all();
        return expected.test(r.out) ? r : undefined;
      },
      { timeoutMs: 20_000, what: 'node 1’s reason in calico node status --all' },
    );
    expect(r.code).toBe(0);
    const readiness = agents.get(1)!.readiness();
    expect(readiness.ready).toBe(false);
    expect(readiness.detail).toMatch(
      new RegExp(`^BGP not established with ${peer2} \\(Mesh_[\\d_]+, \\w+: peer removed the session`),
    );
  });

  it('says the process is not running (exit 1) when nothing answers', async () => {
    const r = await calico(['node', 'status', '--control', join(dir, 'absent.ctl')]);
    expect(r.code).toBe(1);
    expect(r.out).toBe('Calico process is not running.\n');
    expect(r.err).toContain('no BGP agent answers on');
  });
});
