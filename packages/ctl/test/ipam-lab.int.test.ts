/**
 * `calico ipam` on a real cluster's data: a two-node lab whose pods got their addresses from real
 * CNI ADDs through calico-node, and whose nodes hold VXLAN tunnel addresses. A pod whose
 * WorkloadEndpoint is deleted behind IPAM's back (no CNI DEL) is the leak `ipam check` must find
 * and `ipam release --from-report` must fix.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdDatastore, ensureNamespaceProfileAt } from '@calico-ts/datastore';
import { type ClusterPod, calicoPrograms, LAB_POD_NAMESPACE, LabCluster } from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { run } from '../src/cli.ts';
import { captureIo } from '../src/cli-io.ts';

describeWith(
  [root(), command('etcd'), command('iptables')],
  'calico ipam and node diags on a lab cluster',
  () => {
    const cluster = new LabCluster({
      name: runPrefix('ip'),
      nodes: 2,
      backend: 'vxlan',
      poolCidr: '10.244.0.0/16',
      programs: calicoPrograms({
        node: import.meta.resolve('@calico-ts/node'),
        cni: import.meta.resolve('@calico-ts/cni'),
      }),
      readyTimeoutMs: 60_000,
      // The lab's pods name kns.default, the profile Kubernetes' controllers would keep.
      prepareDatastore: async (endpoint) => {
        await ensureNamespaceProfileAt([endpoint], LAB_POD_NAMESPACE);
      },
    });
    let datastore: EtcdDatastore;
    let dir: string;
    const pods: ClusterPod[] = [];

    async function calico(...args: string[]) {
      const io = captureIo({ env: {}, cwd: dir });
      const code = await run(['--etcd-endpoints', cluster.etcd.localEndpoint, ...args], io);
      return { code, out: io.out, err: io.err };
    }

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'calico-ipam-lab-'));
      await cluster.up();
      datastore = new EtcdDatastore({ endpoints: [cluster.etcd.localEndpoint] });
      pods.push(await cluster.addPod(cluster.nodes[0]!, 'a1'));
      pods.push(await cluster.addPod(cluster.nodes[0]!, 'a2'));
      pods.push(await cluster.addPod(cluster.nodes[1]!, 'b1'));
    }, 240_000);

    afterAll(async () => {
      await datastore?.close();
      await cluster.down();
      if (dir) await rm(dir, { recursive: true, force: true });
    }, 60_000);

    it('shows the pool and each node’s block, and finds nothing wrong', async () => {
      // Three pods and two VXLAN tunnel addresses, one block per node.
      const show = await calico('ipam', 'show', '--show-blocks');
      expect(show.err).toBe('');
      const rows = show.out.split('\n').filter((l) => l.startsWith('| '));
      const cells = rows.map((r) =>
        r
          .split('|')
          .map((c) => c.trim())
          .slice(1, 6),
      );
      const blockRow = [
        'Block',
        expect.stringMatching(/^10\.244\.\d+\.\d+\/26$/),
        '64',
        expect.stringMatching(/^[23] \([35]%\)$/),
        expect.stringMatching(/^6[12] \(9[75]%\)$/),
      ];
      expect(cells).toEqual([
        ['GROUPING', 'CIDR', 'IPS TOTAL', 'IPS IN USE', 'IPS FREE'],
        ['IP Pool', '10.244.0.0/16', '65536', '5 (0%)', '65531 (100%)'],
        blockRow,
        blockRow,
      ]);
      const check = await calico('ipam', 'check');
      expect(check.code, check.out + check.err).toBe(0);
      expect(check.out).toContain('Found 2 node tunnel IPs.\n');
      expect(check.out).toContain('Found 3 workload IPs.\nWorkloads and nodes are using 5 IPs.\n');
      expect(check.out).toContain('Check complete; found 0 problems.\n');

      const who = await calico('ipam', 'show', '--ip', pods[0]!.ip);
      expect(who.out).toContain(`IP ${pods[0]!.ip} is in use\nHandle: `);
      expect(who.out).toContain(`  node: ${cluster.nodes[0]!.name}\n`);
    });

    it('finds the address of a pod whose endpoint vanished without a CNI DEL, and releases it', async () => {
      const b1 = pods[2]!;
      const weps = (await datastore.list('WorkloadEndpoint')).items;
      const wep = weps.find((w) => w.spec.ipNetworks?.includes(`${b1.ip}/32`));
      expect(wep, `no WorkloadEndpoint holds ${b1.ip}`).toBeDefined();
      await datastore.delete('WorkloadEndpoint', wep!.metadata.name, wep!.metadata.namespace);

      const check = await calico('ipam', 'check', '--show-problem-ips', '-o', 'report.json');
      expect(check.code).toBe(1);
      expect(check.out).toContain(`  ${b1.ip} leaked; attrs Main:`);
      expect(check.out).toContain('Found 1 IPs that are allocated in IPAM but not actually in use.\n');
      const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8'));
      expect(report.allocations[b1.ip][0]).toMatchObject({ inUse: false, owners: [] });
      expect(report.clusterGUID).toMatch(/./);

      expect(await calico('ipam', 'release', '--from-report', 'report.json')).toMatchObject({
        code: 0,
        out: expect.stringContaining('Released 1 IPs successfully\n'),
      });
      expect((await calico('ipam', 'show', '--ip', b1.ip)).out).toBe(
        `IP ${b1.ip} is not currently assigned\n`,
      );
      const after = await calico('ipam', 'check');
      expect(after.code, after.out).toBe(0);
      expect(after.out).toContain('Check complete; found 0 problems.\n');
    });

    it('collects a node’s diagnostics into one tarball', async () => {
      const node = cluster.nodes[0]!;
      const r = await calico(
        'node',
        'diags',
        '--netns',
        node.name,
        '--node',
        node.name,
        '--output',
        'diags.tgz',
      );
      expect(r.err).toBe('');
      expect(r.out).toBe(
        `Collecting diagnostics for node ${node.name} (namespace ${node.name})...\nDiags saved to ${join(dir, 'diags.tgz')}\n`,
      );
      const out = join(dir, 'diags');
      await mkdir(out);
      execFileSync('tar', ['-xzf', join(dir, 'diags.tgz'), '-C', out, '--strip-components=1']);
      const read = (file: string) => readFile(join(out, file), 'utf8');
      expect(await read('links.txt')).toContain('vxlan.calico');
      expect(await read('routes-ipv4.txt')).toContain(`${pods[0]!.ip} dev cali`);
      expect(await read('iptables-save.txt')).toContain(':cali-FORWARD');
      expect(await read('datastore.yaml')).toContain(`name: ${node.name}`);
      expect(await read('datastore.yaml')).toContain('kind: WorkloadEndpoint');
      expect(await read('bgp-status.txt')).toMatch(/^Calico process is (not )?running/);
    });
  },
);
