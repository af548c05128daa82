import { EtcdDatastore, ensureNamespaceProfileAt } from '@calico-ts/datastore';
import { execInNamespace, NetNamespace, waitFor } from '@calico-ts/kernel';
import { type ClusterPod, calicoPrograms, LAB_POD_NAMESPACE, LabCluster, labNodeIpv4 } from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';

describeWith(
  [root(), command('etcd'), command('iptables')],
  'calico-node in a two-node lab (VXLAN, no BGP)',
  () => {
    // calico-node and the CNI plugins from this workspace's source.
    const cluster = new LabCluster({
      name: runPrefix('nd'),
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
    let a1: ClusterPod;
    let a2: ClusterPod;
    let b1: ClusterPod;

    beforeAll(async () => {
      await cluster.up();
      datastore = new EtcdDatastore({ endpoints: [cluster.etcd.localEndpoint] });
      a1 = await cluster.addPod(cluster.nodes[0]!, 'a1');
      a2 = await cluster.addPod(cluster.nodes[0]!, 'a2');
      b1 = await cluster.addPod(cluster.nodes[1]!, 'b1');
    }, 240_000);
    afterAll(async () => {
      await datastore?.close();
      await cluster.down();
    }, 60_000);

    it('start-up wrote the Node, the default pool and VXLAN tunnel addresses', async () => {
      const n1 = await datastore.get('Node', cluster.nodes[0]!.name);
      expect((n1.spec as { bgp?: { ipv4Address?: string } }).bgp?.ipv4Address).toBe(`${labNodeIpv4(1)}/24`);
      expect((n1.spec as { ipv4VXLANTunnelAddr?: string }).ipv4VXLANTunnelAddr).toMatch(/^10\.244\./);
      const pool = await datastore.get('IPPool', 'default-ipv4-ippool');
      expect(pool.spec).toMatchObject({ cidr: '10.244.0.0/16', vxlanMode: 'Always', natOutgoing: true });
      expect((await datastore.get('ClusterInformation', 'default')).spec).toMatchObject({
        datastoreReady: true,
      });
    });

    it('health and metrics answer', async () => {
      const node = cluster.nodes[0]!;
      const live = await fetch(`${node.healthUrl}/liveness`);
      expect(live.status).toBe(200);
      const ready = (await (await fetch(`${node.healthUrl}/readiness`)).json()) as {
        ready: boolean;
        components: object;
      };
      expect(ready.ready).toBe(true);
      expect(Object.keys(ready.components)).toEqual(expect.arrayContaining(['calico-node', 'felix']));
      const metrics = await (await fetch(`${node.metricsUrl}/metrics`)).text();
      expect(metrics).toMatch(/^felix_resync_state 1$/m);
      expect(metrics).toMatch(/^calico_cni_requests_total\{command="ADD",result="ok"\} 2$/m);
      expect(metrics).toMatch(/^process_resident_memory_bytes \d+/m);
    });

    it('pods on the same node and across nodes reach each other (VXLAN)', async () => {
      expect(await cluster.ping(a1, a2.ip)).toBe(true);
      try {
        await waitFor(() => cluster.ping(a1, b1.ip), { timeoutMs: 20_000, what: 'a1 → b1 over VXLAN' });
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${await cluster.diagnose(datastore)}`);
      }
      expect(await cluster.ping(b1, a1.ip)).toBe(true);
    });

    it('enforces policy across nodes: a selector matches a remote pod; deleting the policy restores traffic', async () => {
      // Label b1 (on the other node) as kube-controllers would copy a pod label onto its endpoint.
      const weps = (await datastore.list('WorkloadEndpoint', { namespace: 'default' })).items;
      const wepOf = (ip: string) => weps.find((w) => (w.spec.ipNetworks ?? []).includes(`${ip}/32`))!;
      const b1Wep = wepOf(b1.ip);
      await datastore.update('WorkloadEndpoint', {
        ...b1Wep,
        metadata: { ...b1Wep.metadata, labels: { ...b1Wep.metadata.labels, role: 'client' } },
      });
      await datastore.create('NetworkPolicy', {
        metadata: { name: 'clients-only', namespace: 'default' },
        spec: {
          selector: 'all()',
          types: ['Ingress'],
          ingress: [{ action: 'Allow', source: { selector: "role == 'client'" } }],
        },
      });
      try {
        await waitFor(async () => !(await cluster.ping(a2, a1.ip)), {
          timeoutMs: 15_000,
          what: 'a2 → a1 denied',
        });
        expect(await cluster.ping(b1, a1.ip)).toBe(true);
        // b1's own node applies the policy on its own schedule: wait for it too.
        await waitFor(async () => !(await cluster.ping(a1, b1.ip)), {
          timeoutMs: 15_000,
          what: 'a1 → b1 denied',
        });
      } finally {
        await datastore.delete('NetworkPolicy', 'clients-only', 'default');
      }
      await waitFor(() => cluster.ping(a2, a1.ip), { timeoutMs: 15_000, what: 'a2 → a1 allowed again' });
      await waitFor(() => cluster.ping(a1, b1.ip), { timeoutMs: 15_000, what: 'a1 → b1 allowed again' });
    });

    it('a route deleted by hand is restored within 1 s (netlink events, not the 90 s refresh)', async () => {
      const nl = cluster.nodes[0]!.netlink;
      await nl.deleteRoute({ dst: `${a2.ip}/32` });
      await waitFor(async () => (await nl.listRoutes({ dst: `${a2.ip}/32` })).length === 1, {
        timeoutMs: 1000,
        intervalMs: 10,
        what: 'route restored',
      });
      expect(await cluster.ping(a1, a2.ip)).toBe(true);
    });

    it("vxlan.calico's address deleted by hand is restored within 1 s", async () => {
      const nl = cluster.nodes[0]!.netlink;
      const vxlan = await nl.findLink('vxlan.calico');
      expect(vxlan).toBeDefined();
      const [address] = await nl.listAddresses({ dev: vxlan!.index, family: 4 });
      expect(address?.cidr).toMatch(/^10\.244\..*\/32$/);
      await nl.deleteAddress('vxlan.calico', address!.cidr);
      await waitFor(
        async () =>
          (await nl.listAddresses({ dev: vxlan!.index, family: 4 })).some((a) => a.cidr === address!.cidr),
        { timeoutMs: 1000, intervalMs: 10, what: 'vxlan.calico address restored' },
      );
      await waitFor(() => cluster.ping(a1, b1.ip), { timeoutMs: 10_000, what: 'a1 → b1 over VXLAN again' });
    });

    it('with etcd down the dataplane stays and traffic flows; afterwards new pods are programmed', async () => {
      await cluster.etcd.kill();
      try {
        expect(await cluster.ping(a1, b1.ip, 3)).toBe(true);
        expect(await cluster.ping(b1, a2.ip, 3)).toBe(true);
      } finally {
        await cluster.etcd.start();
      }
      const b2 = await cluster.addPod(cluster.nodes[1]!, 'b2');
      await waitFor(() => cluster.ping(a1, b2.ip), {
        timeoutMs: 30_000,
        what: 'a1 → new pod b2 after etcd returned',
      });
    });

    it('restarting calico-node loses no packet between established pods', async () => {
      const node = cluster.nodes[0]!;
      const ns = NetNamespace.open(a1.netns);
      // 0.2 s between pings while the node restarts; any lost reply shows in ping's summary.
      const pinging = execInNamespace(ns, 'ping', ['-i', '0.2', '-c', '60', '-W', '1', b1.ip]);
      try {
        await cluster.stopNode(node);
        await cluster.startNode(node);
        const r = await pinging;
        expect(r.stdout).toMatch(/60 packets transmitted, 60 received, 0% packet loss/);
      } finally {
        ns.close();
      }
    }, 120_000);

    it('DEL removes the pod and its endpoint', async () => {
      await cluster.deletePod(a2);
      const weps = (await datastore.list('WorkloadEndpoint', { namespace: 'default' })).items;
      expect(weps.map((w) => (w.spec as { pod?: string }).pod)).toContain(a1.name);
      expect(weps.map((w) => (w.spec as { pod?: string }).pod)).not.toContain(a2.name);
      expect(await cluster.ping(a1, a2.ip)).toBe(false);
    });
  },
);
