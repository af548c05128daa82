/**
 * Felix's IPIP path against the real kernel of this machine, in a throwaway network namespace.
 * Whether the kernel can make ipip links is asked of iproute2 first (in another namespace), and
 * the test asserts the path Felix must take for that answer: with the module, `tunl0` up with
 * the tunnel address and the remote block routed over it; without it (this CI kernel), the clear
 * error in status() while everything else is still programmed.
 */
import { execFileSync } from 'node:child_process';
import { MemoryDatastore } from '@calico-ts/datastore';
import { createNamespace, deleteNamespace, Netlink, type NetNamespace } from '@calico-ts/kernel';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { Felix } from '../src/index.ts';

const prefix = runPrefix('fi');
const names = { node: `${prefix}-node`, probe: `${prefix}-probe` };

/** Whether this kernel can make ipip links, asked of iproute2 rather than of the code under test. */
function kernelCanMakeIpip(): boolean {
  execFileSync('ip', ['netns', 'add', names.probe]);
  try {
    execFileSync('ip', ['-n', names.probe, 'link', 'add', 'probe0', 'type', 'ipip'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  } finally {
    execFileSync('ip', ['netns', 'del', names.probe]);
  }
}

describeWith(
  [root(), command('ip'), command('iptables'), command('ipset')],
  'Felix IPIP on this kernel',
  () => {
    let ns: NetNamespace;
    let nl: Netlink;
    let felix: Felix;
    let ipipAvailable: boolean;

    beforeAll(async () => {
      ipipAvailable = kernelCanMakeIpip();
      ns = await createNamespace(names.node);
      nl = Netlink.open(ns);
      // The node's NIC: one end of a veth pair whose peer stays in the namespace (no dummy module here).
      await nl.createVeth({ name: 'eth0', mtu: 1500, peer: { name: 'eth0-peer' } });
      await nl.setLink('eth0-peer', { up: true });
      await nl.setLink('eth0', { up: true });
      await nl.addAddress('eth0', '192.0.2.11/24');

      const ds = new MemoryDatastore();
      await ds.create('IPPool', {
        metadata: { name: 'ipip-pool' },
        spec: { cidr: '10.70.0.0/16', ipipMode: 'Always', blockSize: 26 },
      });
      await ds.create('Node', {
        metadata: { name: 'node-a' },
        spec: { bgp: { ipv4Address: '192.0.2.11/24', ipv4IPIPTunnelAddr: '10.70.0.1' } },
      });
      await ds.create('Node', {
        metadata: { name: 'node-b' },
        spec: { bgp: { ipv4Address: '192.0.2.12/24', ipv4IPIPTunnelAddr: '10.70.1.1' } },
      });
      for (const [cidr, node] of [
        ['10.70.0.0/26', 'node-a'],
        ['10.70.1.0/26', 'node-b'],
      ] as const) {
        await ds.create('IPAMBlock', {
          metadata: { name: cidr.replaceAll(/[./]/g, '-') },
          spec: {
            cidr,
            affinity: `host:${node}`,
            allocations: Array<null>(64).fill(null),
            unallocated: Array.from({ length: 64 }, (_, i) => i),
            attributes: [],
          },
        });
      }
      felix = new Felix({
        datastore: ds,
        nodeName: 'node-a',
        netns: ns,
        config: { routeRefreshInterval: 0 },
      });
      felix.start();
      await felix.whenReady();
    });

    afterAll(async () => {
      await felix?.stop();
      nl?.close();
      await deleteNamespace(names.node, { ifExists: true });
    });

    it('programs this node’s own block as a blackhole whatever the kernel offers', async () => {
      const routes = await nl.listRoutes({ family: 4 });
      expect(routes.find((r) => r.dst === '10.70.0.0/26')).toMatchObject({ type: 'blackhole', protocol: 80 });
    });

    it('takes the IPIP path this kernel allows', async () => {
      const tunl0 = await nl.findLink('tunl0');
      const remote = (await nl.listRoutes({ family: 4 })).find((r) => r.dst === '10.70.1.0/26');
      if (ipipAvailable) {
        expect(felix.status().errors).toEqual([]);
        expect(tunl0).toMatchObject({ mtu: 1480, up: true });
        const addresses = await nl.listAddresses({ dev: tunl0!.index, family: 4 });
        expect(addresses.map((a) => a.cidr)).toEqual(['10.70.0.1/32']);
        expect(remote).toMatchObject({
          gateway: '192.0.2.12',
          dev: tunl0!.index,
          onlink: true,
          protocol: 80,
        });
      } else {
        expect(felix.status().errors.join('\n')).toMatch(/no ipip module, so tunl0 cannot be created/);
        expect(tunl0).toBeUndefined();
        expect(remote).toBeUndefined();
      }
    });
  },
);
