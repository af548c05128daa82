/**
 * Felix against the real kernel and a real etcd: a two-node lab fabric (@calico-ts/lab), the lab's
 * managed etcd on loopback, one Felix per node in this process, pods as namespaces with a `cali…`
 * veth, WorkloadEndpoints written directly (as Calico's own Felix FV tests do). Asserts traffic,
 * not rule text.
 */
import { createHash } from 'node:crypto';
import { type Datastore, EtcdDatastore, namespaceProfile } from '@calico-ts/datastore';
import { execInNamespace, waitFor } from '@calico-ts/kernel';
import {
  createLab,
  type EtcdProcess,
  LAB_GATEWAY_V4,
  type Lab,
  type LabNode,
  type LabPod,
  labNodeIpv4,
  startEtcd,
} from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { type ApplyStats, Felix } from '../src/index.ts';

const POOL = '10.65.0.0/16';
const blockOf = (i: number) => `10.65.${i - 1}.0/26`;
const tunnelOf = (i: number) => `10.65.${i - 1}.1`;
const nodeName = (i: number) => `node-${i}`;

interface Pod {
  lab: LabPod;
  iface: string;
  ip: string;
  mac: string;
}

describeWith(
  [root(), command('etcd'), command('iptables'), command('ipset'), command('ping')],
  'Felix in a lab fabric',
  () => {
    let lab: Lab;
    let etcd: EtcdProcess;
    let ds: Datastore;
    const felixes: Felix[] = [];
    const pods = new Map<string, Pod>();

    async function addPod(
      node: LabNode,
      name: string,
      ip: string,
      options: { wep?: boolean } = {},
    ): Promise<Pod> {
      const labPod = await lab.addPod(node.index, name);
      const iface = `cali${createHash('sha1').update(`default.${name}`).digest('hex').slice(0, 11)}`;
      // The pod's gateway is the link-local 169.254.1.1, answered by proxy ARP on the cali side.
      const { mac } = await lab.wirePod(labPod, { iface, ipv4: ip });
      const pod = { lab: labPod, iface, ip, mac };
      pods.set(name, pod);
      if (options.wep !== false) await writeWorkloadEndpoint(node, name, pod);
      return pod;
    }

    async function writeWorkloadEndpoint(node: LabNode, name: string, pod: Pod): Promise<void> {
      await ds.create('WorkloadEndpoint', {
        apiVersion: 'projectcalico.org/v3',
        kind: 'WorkloadEndpoint',
        metadata: { name: `${nodeName(node.index)}-k8s-${name}-eth0`, namespace: 'default' },
        spec: {
          node: nodeName(node.index),
          orchestrator: 'k8s',
          pod: name,
          endpoint: 'eth0',
          interfaceName: pod.iface,
          mac: pod.mac,
          ipNetworks: [`${pod.ip}/32`],
          profiles: ['kns.default'],
        },
      } as never);
    }

    async function pings(from: string, to: string): Promise<boolean> {
      const r = await execInNamespace(pods.get(from)!.lab.namespace, 'ping', ['-c', '1', '-W', '1', to]);
      return r.exitCode === 0;
    }

    async function eventuallyPings(from: string, to: string): Promise<void> {
      await waitFor(() => pings(from, to), {
        timeoutMs: 15_000,
        intervalMs: 100,
        what: `${from} → ${to} ping`,
      });
    }

    beforeAll(async () => {
      lab = await createLab({ prefix: runPrefix('fx'), nodes: 2 });
      etcd = await startEtcd();
      ds = new EtcdDatastore({ endpoints: [etcd.endpoint] });
      // The pods' namespace profile, as kube-controllers would write it: without it they get no traffic.
      await ds.create('Profile', namespaceProfile('default'));
      await ds.create('IPPool', {
        apiVersion: 'projectcalico.org/v3',
        kind: 'IPPool',
        metadata: { name: 'vxlan-pool' },
        spec: { cidr: POOL, vxlanMode: 'Always', ipipMode: 'Never', natOutgoing: true, blockSize: 26 },
      } as never);
      for (const node of lab.nodes) {
        const i = node.index;
        await ds.create('Node', {
          apiVersion: 'projectcalico.org/v3',
          kind: 'Node',
          metadata: { name: nodeName(i) },
          spec: { bgp: { ipv4Address: `${labNodeIpv4(i)}/24` }, ipv4VXLANTunnelAddr: tunnelOf(i) },
        } as never);
        await ds.create('IPAMBlock', {
          apiVersion: 'projectcalico.org/v3',
          kind: 'IPAMBlock',
          metadata: { name: blockOf(i).replaceAll(/[./]/g, '-') },
          spec: {
            cidr: blockOf(i),
            affinity: `host:${nodeName(i)}`,
            allocations: Array<null>(64).fill(null),
            unallocated: Array.from({ length: 64 }, (_, k) => k),
            attributes: [],
          },
        } as never);
      }
      await addPod(lab.nodes[0]!, 'a1', '10.65.0.5');
      await addPod(lab.nodes[0]!, 'a2', '10.65.0.6');
      await addPod(lab.nodes[1]!, 'b1', '10.65.1.5');
      for (const node of lab.nodes) {
        const felix = new Felix({
          datastore: ds,
          nodeName: nodeName(node.index),
          netns: node.namespace,
          config: { routeRefreshInterval: 1, iptablesRefreshInterval: 1 },
        });
        felixes.push(felix);
        felix.start();
      }
      await Promise.all(felixes.map((f) => f.whenReady()));
    });

    afterAll(async () => {
      for (const f of felixes) await f.stop();
      await ds?.close();
      await etcd?.stop();
      await lab?.teardown();
    });

    it('reports ready with its endpoints and routes', () => {
      const s = felixes[0]!.status();
      expect(s).toMatchObject({ syncStatus: 'in-sync', ready: true, endpoints: 2, errors: [] });
      expect(s.routes).toBeGreaterThanOrEqual(4);
    });

    it('connects pods on the same node', async () => {
      await eventuallyPings('a1', '10.65.0.6');
    });

    it('connects pods on different nodes over VXLAN without BGP', async () => {
      await eventuallyPings('a1', '10.65.1.5');
      await eventuallyPings('b1', '10.65.0.5');
    });

    it('drops traffic to a cali interface Felix does not know, until its endpoint exists', async () => {
      const node = lab.nodes[0]!;
      const pod = await addPod(node, 'a3', '10.65.0.7', { wep: false });
      // Route it by hand so that only the dispatch chain stands between the pods. Protocol
      // "kernel" keeps Felix's route sweep (which removes routes on cali interfaces) off it.
      await node.netlink.replaceRoute({ dst: '10.65.0.7/32', dev: pod.iface, scope: 'link', protocol: 2 });
      expect(await pings('a1', '10.65.0.7')).toBe(false);
      const save = await execInNamespace(node.namespace, 'iptables', [
        '-t',
        'filter',
        '-L',
        'cali-to-wl-dispatch',
        '-v',
        '-x',
        '-n',
      ]);
      const drop = save.stdout.split('\n').find((l) => l.includes('Unknown interface'));
      expect(Number(drop?.trim().split(/\s+/)[0])).toBeGreaterThan(0);
      await writeWorkloadEndpoint(node, 'a3', pod);
      await eventuallyPings('a1', '10.65.0.7');
    });

    it('restores a route deleted by hand on the next refresh', async () => {
      const node = lab.nodes[0]!;
      await node.netlink.deleteRoute({ dst: blockOf(2), dev: 'vxlan.calico' });
      await waitFor(
        async () => (await node.netlink.listRoutes({ family: 4 })).some((r) => r.dst === blockOf(2)),
        { timeoutMs: 10_000, what: 'route restored' },
      );
      await eventuallyPings('a1', '10.65.1.5');
    });

    it('corrects a rule of ours that was edited by hand', async () => {
      const node = lab.nodes[0]!;
      const list = async () =>
        (await execInNamespace(node.namespace, 'iptables', ['-t', 'filter', '-S', 'cali-from-wl-dispatch']))
          .stdout;
      const before = await list();
      // Replace the fail-closed rule with an accept, as a careless admin might.
      const rules = before.split('\n').filter((l) => l.startsWith('-A'));
      const r = await execInNamespace(node.namespace, 'iptables', [
        '-t',
        'filter',
        '-R',
        'cali-from-wl-dispatch',
        String(rules.length),
        '-j',
        'ACCEPT',
      ]);
      expect(r.exitCode).toBe(0);
      expect(await list()).not.toBe(before);
      await waitFor(async () => (await list()) === before, { timeoutMs: 10_000, what: 'rule corrected' });
    });

    it('masquerades traffic from a natOutgoing pool to an address outside every pool', async () => {
      const port = 40000 + Math.floor(Math.random() * 20000);
      const listener = await lab.spawn(lab.underlay.namespace, process.execPath, [
        '-e',
        `require('node:net').createServer((s) => { console.log('peer ' + s.remoteAddress); s.end('ok'); }).listen(${port}, '${LAB_GATEWAY_V4}', () => console.log('listening'));`,
      ]);
      let out = '';
      listener.child.stdout?.on('data', (d) => (out += d));
      await waitFor(() => out.includes('listening'), { timeoutMs: 10_000, what: 'listener' });
      const client = await execInNamespace(pods.get('a1')!.lab.namespace, process.execPath, [
        '-e',
        `const s = require('node:net').connect(${port}, '${LAB_GATEWAY_V4}'); s.on('data', () => { s.end(); }); s.on('error', (e) => { console.error(e.message); process.exit(1); });`,
      ]);
      expect(client.stderr).toBe('');
      await waitFor(() => out.includes('peer '), { timeoutMs: 10_000, what: 'connection seen' });
      expect(out).toContain(`peer ${labNodeIpv4(1)}`);
      expect(out).not.toContain('10.65.');
      await listener.stop();
    });

    it('keeps the dataplane when Felix stops, and a restarted Felix rewrites nothing', async () => {
      const f = felixes[0]!;
      await f.stop();
      await eventuallyPings('a1', '10.65.1.5');
      const again = new Felix({ datastore: ds, nodeName: nodeName(1), netns: lab.nodes[0]!.namespace });
      felixes[0] = again;
      let first: ApplyStats | undefined;
      again.once('applied', (stats) => {
        first = stats;
      });
      again.start();
      await again.whenReady();
      expect(again.status().errors).toEqual([]);
      // Mark-and-sweep found everything in place: no route replaced, no iptables line written.
      expect(first).toMatchObject({ routesReplaced: 0, routesRemoved: 0, iptablesLines: 0 });
      await eventuallyPings('a1', '10.65.1.5');
    });
  },
);
