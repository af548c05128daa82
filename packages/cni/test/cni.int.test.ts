import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execInNamespace, Netlink, NetNamespace, readSysctl } from '@calico-ts/kernel';
import {
  addNetworkList,
  type Conflist,
  checkNetworkList,
  delNetworkList,
  invokePlugin,
  pluginConfig,
} from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { type CniNode, startCniNode } from './cni-fixture.ts';
import { assertErrorResult, assertSuccessResult } from './cni-spec-checks.ts';

describeWith(
  [root(), command('etcd'), command('ip')],
  'calico CNI plugin against real etcd and namespaces',
  () => {
    let node: CniNode;
    let list: Conflist;

    beforeAll(async () => {
      node = await startCniNode({ poolCidr: '10.244.0.0/16' });
      list = {
        cniVersion: '1.1.0',
        name: 'k8s-pod-network',
        plugins: [
          { type: 'calico', mtu: 1450, agent_socket: node.socketPath, ipam: { type: 'calico-ipam' } },
        ],
      };
    });
    afterAll(async () => {
      await node?.teardown();
    });

    const target = (netns: string, pod: string, cid: string) => ({
      containerId: cid,
      netns,
      ifname: 'eth0',
      // What kubelet's runtime (containerd, CRI-O) sends.
      args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=${cid};K8S_POD_UID=uid-${pod}`,
      hostNetns: node.nodeNs,
    });

    async function podState(netns: string) {
      const ns = NetNamespace.open(netns);
      const nl = Netlink.open(ns);
      try {
        const eth0 = await nl.findLink('eth0');
        const addrs = eth0 ? await nl.listAddresses({ dev: 'eth0', family: 4 }) : [];
        const routes = eth0 ? await nl.listRoutes({ family: 4 }) : [];
        return { eth0, addrs, routes };
      } finally {
        nl.close();
        ns.close();
      }
    }

    async function hostLinks(): Promise<string[]> {
      const ns = NetNamespace.open(node.nodeNs);
      const nl = Netlink.open(ns);
      try {
        return (await nl.listLinks()).map((l) => l.name).filter((n) => n.startsWith('cali'));
      } finally {
        nl.close();
        ns.close();
      }
    }

    async function ping(fromNetns: string, to: string): Promise<boolean> {
      const ns = NetNamespace.open(fromNetns);
      try {
        const r = await execInNamespace(ns, 'ping', ['-c', '1', '-W', '2', to]);
        return r.exitCode === 0;
      } finally {
        ns.close();
      }
    }

    it('ADD, CHECK and DEL set up and remove a working pod network', async () => {
      const [ns1, ns2] = [await node.pod('p1'), await node.pod('p2')];
      const r1 = await addNetworkList(list, target(ns1, 'web-1', 'c1'), [node.binDir]);
      const r2 = await addNetworkList(list, target(ns2, 'web-2', 'c2'), [node.binDir]);
      assertSuccessResult(r1, list.cniVersion);
      assertSuccessResult(r2, list.cniVersion);
      const ip1 = String((r1['ips'] as { address: string }[])[0]!.address).split('/')[0]!;
      const ip2 = String((r2['ips'] as { address: string }[])[0]!.address).split('/')[0]!;
      expect(ip1).toMatch(/^10\.244\./);
      expect(ip1).not.toBe(ip2);
      expect(r1['interfaces']).toEqual([
        { name: expect.stringMatching(/^cali[0-9a-f]{11}$/), mac: 'ee:ee:ee:ee:ee:ee' },
        { name: 'eth0', mac: expect.any(String), mtu: 1450, sandbox: ns1 },
      ]);

      // The host end carries the workload interface sysctls Felix writes too (IPv4 set, no IPv6 one).
      const host1 = (r1['interfaces'] as { name: string }[])[0]!.name;
      const nodeNs = NetNamespace.open(node.nodeNs);
      try {
        const read = (key: string) => readSysctl(key, nodeNs);
        expect({
          proxyArp: read(`net/ipv4/conf/${host1}/proxy_arp`),
          proxyDelay: read(`net/ipv4/neigh/${host1}/proxy_delay`),
          forwarding: read(`net/ipv4/conf/${host1}/forwarding`),
          routeLocalnet: read(`net/ipv4/conf/${host1}/route_localnet`),
          rpFilter: read(`net/ipv4/conf/${host1}/rp_filter`),
        }).toEqual({ proxyArp: '1', proxyDelay: '0', forwarding: '1', routeLocalnet: '1', rpFilter: '1' });
      } finally {
        nodeNs.close();
      }

      const s1 = await podState(ns1);
      expect(s1.eth0?.mtu).toBe(1450);
      expect(s1.addrs.map((a) => a.cidr)).toEqual([`${ip1}/32`]);
      expect(s1.routes.some((r) => r.dst === '169.254.1.1/32' && r.scope === 253)).toBe(true);
      expect(s1.routes.some((r) => r.dst === '0.0.0.0/0' && r.gateway === '169.254.1.1')).toBe(true);

      // The node answers (its gateway role), and the two pods reach each other through it.
      expect(await ping(ns1, node.nodeAddress)).toBe(true);
      expect(await ping(ns1, ip2)).toBe(true);
      expect(await ping(ns2, ip1)).toBe(true);

      const weps = (await node.datastore.list('WorkloadEndpoint', { namespace: 'shop' })).items;
      const wep1 = weps.find((w) => w.metadata.name.endsWith('-k8s-web--1-eth0'));
      expect(wep1?.spec).toMatchObject({
        orchestrator: 'k8s',
        node: node.nodeName,
        pod: 'web-1',
        containerID: 'c1',
        endpoint: 'eth0',
        ipNetworks: [`${ip1}/32`],
        interfaceName: (r1['interfaces'] as { name: string }[])[0]!.name,
      });
      expect(wep1?.metadata.labels).toMatchObject({ 'projectcalico.org/namespace': 'shop' });

      await checkNetworkList(list, target(ns1, 'web-1', 'c1'), [node.binDir], r1);

      await delNetworkList(list, target(ns1, 'web-1', 'c1'), [node.binDir], r1);
      expect((await podState(ns1)).eth0).toBeUndefined();
      expect(await hostLinks()).toHaveLength(1);
      expect(await node.ipam.ipsByHandle('k8s-pod-network.c1')).toEqual([]);
      expect((await node.datastore.list('WorkloadEndpoint', { namespace: 'shop' })).items).toHaveLength(1);
      // DEL again, and DEL without a namespace, both succeed (CNI SPEC: DEL is idempotent).
      await delNetworkList(list, target(ns1, 'web-1', 'c1'), [node.binDir], r1);
      await delNetworkList(
        list,
        { ...target('', 'web-2', 'c2'), netns: undefined as never },
        [node.binDir],
        r2,
      );
      expect(await hostLinks()).toEqual([]);
      expect((await node.ipam.check()).ok).toBe(true);
    });

    it('refuses bad input with the spec code and leaves nothing behind', async () => {
      const ns = await node.pod('bad');
      const notNetns = join(node.binDir, 'not-a-netns');
      writeFileSync(notNetns, '');
      const base = {
        command: 'ADD' as const,
        containerId: 'bad1',
        netns: ns,
        ifname: 'eth0',
        path: [node.binDir],
        hostNetns: node.nodeNs,
      };
      const good = pluginConfig(list, list.plugins[0]!);
      const cases: [string, Parameters<typeof invokePlugin>[1], string, number][] = [
        ['missing CNI_COMMAND', { ...base, env: { CNI_COMMAND: undefined } }, good, 4],
        ['missing CNI_CONTAINERID', { ...base, containerId: undefined }, good, 4],
        ['missing CNI_NETNS', { ...base, netns: undefined }, good, 4],
        ['missing CNI_IFNAME', { ...base, ifname: undefined }, good, 4],
        ['malformed JSON', base, '{"cniVersion": "1.0.0", ', 6],
        ['unknown cniVersion', base, pluginConfig({ ...list, cniVersion: '7.0.0' }, list.plugins[0]!), 1],
        ['unknown IPAM type', base, pluginConfig(list, { ...list.plugins[0]!, ipam: { type: 'dhcp' } }), 7],
        ['netns that does not exist', { ...base, netns: '/run/netns/does-not-exist-xyz' }, good, 102],
        // What a runtime's private netns mount looks like from outside its mount namespace.
        ['netns that is an empty file', { ...base, netns: notNetns }, good, 4],
        ['netns that is a mount namespace', { ...base, netns: '/proc/self/ns/mnt' }, good, 4],
      ];
      for (const [what, inv, stdin, code] of cases) {
        const a = await invokePlugin('calico', inv, stdin);
        try {
          assertErrorResult(a, code);
        } catch (err) {
          throw new Error(`${what}: ${(err as Error).message}`);
        }
        expect(String(a.json?.['msg'] ?? '').length, what).toBeGreaterThan(0);
      }
      const notNs = await invokePlugin('calico', { ...base, netns: notNetns }, good);
      expect(notNs.json).toMatchObject({
        code: 4,
        msg: 'CNI_NETNS is not a network namespace',
        details: expect.stringMatching(
          new RegExp(
            `^CNI_NETNS ${notNetns} is an empty regular file, not a network namespace \\(looked up as the plugin process \\d+ sees it\\)$`,
          ),
        ),
      });
      // DEL tolerates what ADD refuses (CNI SPEC §DEL): such a path, or none at all.
      for (const netns of [notNetns, '/run/netns/does-not-exist-xyz']) {
        const del = await invokePlugin('calico', { ...base, command: 'DEL', netns }, good);
        expect(del.code, `DEL with ${netns}: ${del.stdout}`).toBe(0);
      }
      expect(await hostLinks()).toEqual([]);
      expect(await node.ipam.ipsByHandle('k8s-pod-network.bad1')).toEqual([]);
      expect((await node.datastore.list('IPAMHandle', { prefix: 'k8s-pod-network.bad1' })).items).toEqual([]);
      expect((await podState(ns)).eth0).toBeUndefined();
    });

    it('a full pool is a plugin error (100) and nothing is half-written', async () => {
      await node.datastore.create('IPPool', {
        apiVersion: 'projectcalico.org/v3',
        kind: 'IPPool',
        metadata: { name: `${node.prefix}-tiny` },
        spec: { cidr: '10.250.0.0/26', blockSize: 26, nodeSelector: 'all()' },
      } as never);
      await node.ipam.autoAssign({
        num4: 64,
        handleId: 'filler',
        node: node.nodeName,
        pools: ['10.250.0.0/26'],
      });
      const ns = await node.pod('full');
      const a = await invokePlugin(
        'calico',
        {
          command: 'ADD',
          ...target(ns, 'full-1', 'full1'),
          args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=full-1;cni.projectcalico.org/ipv4pools=${node.prefix}-tiny`,
          path: [node.binDir],
        },
        pluginConfig(list, list.plugins[0]!),
      );
      assertErrorResult(a, 100);
      expect(String(a.json?.['details'])).toMatch(/10\.250\.0\.0\/26|free|pool/i);
      expect(await hostLinks()).toEqual([]);
      expect(await node.ipam.ipsByHandle('k8s-pod-network.full1')).toEqual([]);
      await node.ipam.releaseByHandle('filler');
    });

    it('chains with Debian tuning, portmap and bandwidth', async () => {
      const chained: Conflist = {
        ...list,
        cniVersion: '1.0.0',
        plugins: [
          list.plugins[0]!,
          { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.arp_notify': '1' } },
          { type: 'portmap', capabilities: { portMappings: true }, snat: true },
          { type: 'bandwidth', capabilities: { bandwidth: true } },
        ],
      };
      const ns = await node.pod('chain');
      // What a runtime passes for a pod with bandwidth annotations (bits/s and bits).
      const t = {
        ...target(ns, 'chain-1', 'ch1'),
        capabilityArgs: {
          portMappings: [],
          bandwidth: {
            ingressRate: 8_000_000,
            ingressBurst: 8_000_000,
            egressRate: 8_000_000,
            egressBurst: 8_000_000,
          },
        },
      };
      const r = await addNetworkList(chained, t, [node.binDir]);
      assertSuccessResult(r, '1.0.0');
      const pns = NetNamespace.open(ns);
      try {
        const v = await execInNamespace(pns, 'cat', ['/proc/sys/net/ipv4/conf/eth0/arp_notify']);
        expect(v.stdout.trim()).toBe('1');
      } finally {
        pns.close();
      }
      // Debian's bandwidth 1.1.1 dereferences nil in cmdCheck (plugins/meta/bandwidth/main.go:301)
      // whatever it is given, so CHECK runs through the rest of the chain.
      await checkNetworkList({ ...chained, plugins: chained.plugins.slice(0, 3) }, t, [node.binDir], r);
      await delNetworkList(chained, t, [node.binDir], r);
      expect(await hostLinks()).toEqual([]);
    });

    it('calico-ipam answers a delegating plugin (ADD, DEL) as CNI SPEC §IP Allocation describes', async () => {
      // What a main plugin (say, ptp) hands its IPAM plugin: its own config, ours under "ipam".
      const parent: Conflist = {
        cniVersion: '1.0.0',
        name: 'ptp-net',
        plugins: [{ type: 'ptp', ipam: { type: 'calico-ipam', agent_socket: node.socketPath } }],
      };
      const stdin = pluginConfig(parent, parent.plugins[0]!);
      const inv = {
        containerId: 'ipam1',
        netns: await node.pod('ipam'),
        ifname: 'eth0',
        path: [node.binDir],
        hostNetns: node.nodeNs,
      };
      const add = await invokePlugin('calico-ipam', { ...inv, command: 'ADD' }, stdin);
      expect(add.code, add.stdout).toBe(0);
      assertSuccessResult(add.json, '1.0.0');
      expect(add.json?.['interfaces']).toBeUndefined();
      const ips = add.json?.['ips'] as { address: string; interface?: number }[];
      expect(ips).toHaveLength(1);
      expect(ips[0]!.interface).toBeUndefined();
      const ip = ips[0]!.address.split('/')[0]!;
      expect(await node.ipam.ipsByHandle('ptp-net.ipam1')).toEqual([ip]);
      const del = await invokePlugin('calico-ipam', { ...inv, command: 'DEL' }, stdin);
      expect(del.code, del.stdout).toBe(0);
      expect(await node.ipam.ipsByHandle('ptp-net.ipam1')).toEqual([]);
    });

    it('gives a container that is not a Kubernetes pod its network profile, and keeps an existing one', async () => {
      const plain: Conflist = { ...list, name: 'plain-net' };
      const plainTarget = (netns: string, cid: string) => ({
        containerId: cid,
        netns,
        ifname: 'eth0',
        hostNetns: node.nodeNs,
      });
      const ns1 = await node.pod('plain1');
      assertSuccessResult(
        await addNetworkList(plain, plainTarget(ns1, 'plain1'), [node.binDir]),
        plain.cniVersion,
      );
      const profile = await node.datastore.get('Profile', 'plain-net');
      expect(profile.spec).toEqual({
        ingress: [{ action: 'Allow', source: { selector: 'has(plain-net)' } }],
        egress: [{ action: 'Allow' }],
        labelsToApply: { 'plain-net': '' },
      });
      const { items } = await node.datastore.list('WorkloadEndpoint');
      expect(items.find((w) => w.spec.containerID === 'plain1')?.spec.profiles).toEqual(['plain-net']);

      // An operator's change to the profile survives the next container's ADD.
      await node.datastore.update('Profile', {
        ...profile,
        spec: { ...profile.spec, egress: [{ action: 'Deny' }] },
      });
      const ns2 = await node.pod('plain2');
      assertSuccessResult(
        await addNetworkList(plain, plainTarget(ns2, 'plain2'), [node.binDir]),
        plain.cniVersion,
      );
      expect((await node.datastore.get('Profile', 'plain-net')).spec.egress).toEqual([{ action: 'Deny' }]);

      for (const [ns, cid] of [
        [ns1, 'plain1'],
        [ns2, 'plain2'],
      ] as const) {
        await delNetworkList(plain, plainTarget(ns, cid), [node.binDir]);
      }
      expect(await node.ipam.ipsByHandle('plain-net.plain1')).toEqual([]);
      await node.datastore.delete('Profile', 'plain-net');
    });

    it('VERSION and STATUS answer', async () => {
      const v = await invokePlugin(
        'calico',
        { command: 'VERSION', path: [node.binDir] },
        '{"cniVersion":"1.1.0"}',
      );
      expect(v.json).toEqual({
        cniVersion: '1.1.0',
        supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
      });
      const s = await invokePlugin(
        'calico',
        { command: 'STATUS', path: [node.binDir], hostNetns: node.nodeNs },
        pluginConfig(list, list.plugins[0]!),
      );
      expect(s.code, s.stdout).toBe(0);
      const down = await invokePlugin(
        'calico',
        { command: 'STATUS', path: [node.binDir] },
        pluginConfig(list, { ...list.plugins[0]!, agent_socket: `${node.socketPath}.absent` }),
      );
      assertErrorResult(down, 50);
    });

    it('the installed plugin is the byte relay: calico-node answers it without a Node shim starting', async () => {
      // A bin dir with the relay alone: anything that needed the Node shim beside it would fail.
      const alone = mkdtempSync(join(tmpdir(), `calico-ts-${node.prefix}-relay-`));
      try {
        copyFileSync(join(node.binDir, 'calico'), join(alone, 'calico'));
        const v = await invokePlugin(
          'calico',
          { command: 'VERSION', path: [alone] },
          '{"cniVersion":"1.0.0"}',
        );
        expect(v.code, v.stdout).toBe(0);
        expect(v.json).toMatchObject({ cniVersion: '1.0.0' });
        const s = await invokePlugin(
          'calico',
          { command: 'STATUS', path: [alone], hostNetns: node.nodeNs },
          pluginConfig(list, list.plugins[0]!),
        );
        expect(s.code, s.stdout).toBe(0);
        // Bad input is judged by calico-node and comes back with the spec's code.
        const bad = await invokePlugin(
          'calico',
          { command: 'ADD', path: [alone] },
          pluginConfig(list, list.plugins[0]!),
        );
        assertErrorResult(bad, 4);
        // A config naming another socket is not calico-node's to answer: the relay hands over to
        // the shim (absent here, so it fails with EX_TEMPFAIL and prints nothing).
        const other = await invokePlugin(
          'calico',
          { command: 'STATUS', path: [alone] },
          pluginConfig(list, { ...list.plugins[0]!, agent_socket: `${node.socketPath}.other` }),
        );
        expect([other.code, other.stdout]).toEqual([75, '']);
      } finally {
        rmSync(alone, { recursive: true, force: true });
      }
    });
  },
);
