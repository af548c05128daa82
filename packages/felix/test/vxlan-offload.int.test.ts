/**
 * Felix keeps the VXLAN device's tx checksum offload as configured, on a real `vxlan.calico` in a
 * throwaway namespace: on by default (TSO follows it, so TCP's 64 KB packets are encapsulated
 * once), restored after someone turns it off with ethtool, and off with Calico's
 * `featureDetectOverride: ChecksumOffloadBroken=true`. The feature is read with the ethtool
 * binary here too, not through the code under test.
 */
import { MemoryDatastore } from '@calico-ts/datastore';
import {
  createNamespace,
  deleteNamespace,
  execInNamespace,
  Netlink,
  type NetNamespace,
  waitFor,
} from '@calico-ts/kernel';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { Felix } from '../src/index.ts';

const prefix = runPrefix('nv');

describeWith(
  [root(), command('ip'), command('iptables'), command('ipset'), command('ethtool')],
  'Felix VXLAN device offloads',
  () => {
    let ns: NetNamespace;
    let nl: Netlink;
    let felix: Felix;
    let ds: MemoryDatastore;

    /** `tx-checksum-ip-generic` and `tx-tcp-segmentation` of vxlan.calico as ethtool prints them. */
    async function offloads(): Promise<{ txChecksum?: string; tso?: string }> {
      const r = await execInNamespace(ns, 'ethtool', ['-k', 'vxlan.calico']);
      if (r.exitCode !== 0) return {};
      const get = (name: string) => new RegExp(`^\\s*${name}: (on|off)`, 'm').exec(r.stdout)?.[1];
      const out: { txChecksum?: string; tso?: string } = {};
      const txChecksum = get('tx-checksum-ip-generic');
      const tso = get('tx-tcp-segmentation');
      if (txChecksum) out.txChecksum = txChecksum;
      if (tso) out.tso = tso;
      return out;
    }

    async function ethtoolSet(...args: string[]): Promise<void> {
      const r = await execInNamespace(ns, 'ethtool', ['-K', 'vxlan.calico', ...args]);
      expect(r.exitCode, r.stderr).toBe(0);
    }

    async function untilOffloads(want: { txChecksum: string; tso: string }, what: string): Promise<void> {
      await waitFor(async () => JSON.stringify(await offloads()) === JSON.stringify(want), {
        timeoutMs: 5_000,
        intervalMs: 50,
        what,
      });
    }

    beforeAll(async () => {
      ns = await createNamespace(`${prefix}-node`);
      nl = Netlink.open(ns);
      // The node's NIC: a veth whose peer stays in the namespace.
      await nl.createVeth({ name: 'eth0', mtu: 1500, peer: { name: 'eth0-peer' } });
      await nl.setLink('eth0-peer', { up: true });
      await nl.setLink('eth0', { up: true });
      await nl.addAddress('eth0', '192.0.2.11/24');

      ds = new MemoryDatastore();
      await ds.create('IPPool', {
        metadata: { name: 'vxlan-pool' },
        spec: { cidr: '10.71.0.0/16', vxlanMode: 'Always', ipipMode: 'Never', blockSize: 26 },
      });
      await ds.create('Node', {
        metadata: { name: 'node-a' },
        spec: { bgp: { ipv4Address: '192.0.2.11/24' }, ipv4VXLANTunnelAddr: '10.71.0.1' },
      });
      // Periodic route refresh off: what brings the feature back is the device's own link event.
      felix = new Felix({
        datastore: ds,
        nodeName: 'node-a',
        netns: ns,
        config: { routeRefreshInterval: 0 },
      });
      felix.start();
      await felix.whenReady();
      await waitFor(async () => (await nl.findLink('vxlan.calico')) !== undefined, {
        timeoutMs: 10_000,
        what: 'vxlan.calico created',
      });
    });

    afterAll(async () => {
      await felix?.stop();
      nl?.close();
      await deleteNamespace(`${prefix}-node`, { ifExists: true });
    });

    it('leaves tx checksum offload and TSO on for a new device', async () => {
      await untilOffloads({ txChecksum: 'on', tso: 'on' }, 'offloads on');
      expect(felix.status().errors).toEqual([]);
    });

    it('turns tx checksum offload (and with it TSO) back on after it is turned off by hand', async () => {
      await ethtoolSet('tx-checksum-ip-generic', 'off');
      // Only within Felix's reach if the kernel really dropped TSO with it (the slow path).
      expect(await offloads()).toMatchObject({ txChecksum: 'off', tso: 'off' });
      await untilOffloads({ txChecksum: 'on', tso: 'on' }, 'tx checksum offload restored');
    });

    it('turns it off with featureDetectOverride ChecksumOffloadBroken=true, and on again without', async () => {
      await ds.create('FelixConfiguration', {
        metadata: { name: 'default' },
        spec: { featureDetectOverride: 'ChecksumOffloadBroken=true' },
      });
      await untilOffloads(
        { txChecksum: 'off', tso: 'off' },
        'tx checksum offload off (ChecksumOffloadBroken)',
      );
      // Turned on by hand, it goes off again: the setting is kept either way.
      await ethtoolSet('tx-checksum-ip-generic', 'on');
      await untilOffloads({ txChecksum: 'off', tso: 'off' }, 'tx checksum offload off again');

      const cfg = await ds.get('FelixConfiguration', 'default');
      await ds.update('FelixConfiguration', { ...cfg, spec: {} });
      await untilOffloads({ txChecksum: 'on', tso: 'on' }, 'tx checksum offload on again');
    });
  },
);
