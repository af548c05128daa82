import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execInNamespace, NetNamespace } from '@calico-ts/kernel';
import {
  addNetworkList,
  type Conflist,
  delNetworkList,
  invokePlugin,
  relayTcp,
  type TcpRelay,
} from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { CONFLIST_FILE, type InstallCniOptions, installCni } from '../src/install.ts';
import { buildPluginBundles, type CniNode, startCniNode } from './cni-fixture.ts';
import { assertSuccessResult } from './cni-spec-checks.ts';

describeWith(
  [root(), command('etcd'), command('ip'), command('iptables')],
  'installCni puts working plugins and a working conflist in place',
  () => {
    let node: CniNode;
    let dir: string;
    let bundleDir: string;
    let relay: TcpRelay | undefined;
    let nodeNsHandle: NetNamespace | undefined;

    beforeAll(async () => {
      node = await startCniNode({ poolCidr: '10.245.0.0/16' });
      dir = mkdtempSync(join(tmpdir(), `calico-ts-${node.prefix}-install-`));
      bundleDir = join(dir, 'bundle');
      await buildPluginBundles(bundleDir);
    });
    afterAll(async () => {
      await relay?.close();
      nodeNsHandle?.close();
      await node?.teardown();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** Installs into <dir>/<name>/{bin,net.d}, with Debian's portmap beside our binaries. */
    function install(name: string, options: InstallCniOptions): { binDir: string; list: Conflist } {
      const binDir = join(dir, name, 'bin');
      const confDir = join(dir, name, 'net.d');
      const first = installCni({ binDir, confDir, bundleDir, ...options });
      // calico, calico-ipam (the relays), calico.cjs, calico-ipam.cjs (the Node shims), the conflist
      expect(first.changed).toHaveLength(5);
      expect(installCni({ binDir, confDir, bundleDir, ...options }).changed).toEqual([]);
      mkdirSync(binDir, { recursive: true });
      symlinkSync('/usr/lib/cni/portmap', join(binDir, 'portmap'));
      return { binDir, list: JSON.parse(readFileSync(join(confDir, CONFLIST_FILE), 'utf8')) as Conflist };
    }

    async function natRules(): Promise<string> {
      const ns = NetNamespace.open(`/run/netns/${node.nodeNs}`);
      try {
        return (await execInNamespace(ns, 'iptables', ['-w', '-t', 'nat', '-S'])).stdout;
      } finally {
        ns.close();
      }
    }

    it('the installed calico + portmap chain sets up a pod with a host port, and DEL undoes it', async () => {
      const { binDir, list } = install('agent', { agentSocket: node.socketPath, mtu: 1450 });
      expect(list.plugins.map((p) => p['type'])).toEqual(['calico', 'portmap']);
      const netns = await node.pod('inst');
      const hostPort = 20_000 + Math.floor(Math.random() * 10_000);
      const target = {
        containerId: 'inst1',
        netns,
        ifname: 'eth0',
        args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=inst-1',
        hostNetns: node.nodeNs,
        capabilityArgs: { portMappings: [{ hostPort, containerPort: 80, protocol: 'tcp' }] },
      };
      const result = await addNetworkList(list, target, [binDir]);
      assertSuccessResult(result, '1.0.0');
      const ip = (result['ips'] as { address: string }[])[0]!.address.split('/')[0]!;
      expect(ip).toMatch(/^10\.245\./);
      expect(await node.ipam.ipsByHandle('k8s-pod-network.inst1')).toEqual([ip]);
      expect(await natRules()).toContain(`--dport ${hostPort} -j DNAT --to-destination ${ip}:80`);

      await delNetworkList(list, target, [binDir], result);
      expect(await node.ipam.ipsByHandle('k8s-pod-network.inst1')).toEqual([]);
      expect(await natRules()).not.toContain(`--dport ${hostPort}`);
    });

    it('a standalone install does the ADD in the plugin process when no calico-node answers', async () => {
      // The plugin runs in the node's namespace; etcd listens on this host's loopback.
      nodeNsHandle = NetNamespace.open(`/run/netns/${node.nodeNs}`);
      relay = await relayTcp({
        listen: { host: '127.0.0.1', port: 0, namespace: nodeNsHandle },
        target: { host: '127.0.0.1', port: Number(new URL(node.etcd.endpoint).port) },
      });
      const { binDir, list } = install('standalone', {
        standalone: true,
        agentSocket: `${node.socketPath}.absent`,
        mtu: 1450,
        calicoConfig: { etcd_endpoints: `http://127.0.0.1:${relay.port}`, nodename: node.nodeName },
        chained: [],
      });
      const netns = await node.pod('sa');
      const target = {
        containerId: 'sa1',
        netns,
        ifname: 'eth0',
        args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=sa-1',
        hostNetns: node.nodeNs,
      };
      const result = await addNetworkList(list, target, [binDir]);
      assertSuccessResult(result, '1.0.0');
      const ip = (result['ips'] as { address: string }[])[0]!.address.split('/')[0]!;
      expect(await node.ipam.ipsByHandle('k8s-pod-network.sa1')).toEqual([ip]);
      await delNetworkList(list, target, [binDir], result);
      expect(await node.ipam.ipsByHandle('k8s-pod-network.sa1')).toEqual([]);

      // Without `standalone` the same unreachable agent is "try again later" (CNI SPEC code 11).
      const { binDir: agentBin, list: agentList } = install('no-agent', {
        agentSocket: `${node.socketPath}.absent`,
      });
      const a = await invokePlugin(
        'calico',
        { command: 'ADD', ...target, containerId: 'sa2', path: [agentBin] },
        JSON.stringify({ ...agentList.plugins[0], name: agentList.name, cniVersion: agentList.cniVersion }),
      );
      expect(a.code).not.toBe(0);
      expect(a.json).toMatchObject({ code: 11, msg: 'calico-node is not reachable' });
    });
  },
);
