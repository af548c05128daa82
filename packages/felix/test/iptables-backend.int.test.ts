/**
 * FelixConfiguration iptablesBackend reaches the iptables tables: Felix programs its chains with
 * the configured binaries (no detection), even where the namespace's rules would make detection
 * pick the other back end; a bad value never reaches Felix (the model rejects it, naming field,
 * value and the expected values).
 */
import { MemoryDatastore } from '@calico-ts/datastore';
import { createNamespace, deleteNamespace, execInNamespace, type NetNamespace } from '@calico-ts/kernel';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { LinuxKernel } from '../src/dataplane/linux-kernel.ts';
import { Felix } from '../src/index.ts';

const prefix = runPrefix('nb');

describeWith(
  [root(), command('ip'), command('iptables-nft-save'), command('iptables-legacy-save')],
  'Felix with a configured iptables back end',
  () => {
    const nsName = `${prefix}-fx`;
    let ns: NetNamespace;
    const stops: (() => Promise<void> | void)[] = [];

    const ownRules = async (backend: 'nft' | 'legacy') => {
      const r = await execInNamespace(ns, `iptables-${backend}-save`);
      expect(r.exitCode, r.stderr).toBe(0);
      return r.stdout.split('\n').filter((l) => l.startsWith('-A cali-'));
    };

    beforeAll(async () => {
      ns = await createNamespace(nsName);
      // Foreign rules in nft only: Auto would follow them to nft.
      for (const port of ['22', '80']) {
        const r = await execInNamespace(ns, 'iptables-nft', ['-A', 'INPUT', '-p', 'tcp', '--dport', port]);
        expect(r.exitCode, r.stderr).toBe(0);
      }
    });

    afterAll(async () => {
      for (const stop of stops.reverse()) await stop();
      ns?.close();
      // Every chain of both back ends lives in the namespace: deleting it removes them.
      await deleteNamespace(nsName, { ifExists: true });
    });

    it('rejects a bad iptablesBackend with the field, the value and the expected values', async () => {
      const ds = new MemoryDatastore();
      await expect(
        ds.create('FelixConfiguration', {
          metadata: { name: 'default' },
          spec: { iptablesBackend: 'nftables' },
        } as never),
      ).rejects.toThrow('spec.iptablesBackend: "nftables" — expected one of "Legacy", "NFT", "Auto"');
    });

    it('programs legacy iptables when FelixConfiguration says Legacy, without detecting', async () => {
      const ds = new MemoryDatastore();
      await ds.create('FelixConfiguration', {
        metadata: { name: 'default' },
        spec: { iptablesBackend: 'Legacy' },
      });
      const kernel = new LinuxKernel(ns);
      const felix = new Felix({ datastore: ds, nodeName: `${prefix}-node`, kernel });
      stops.push(
        () => kernel.close(),
        () => felix.stop(),
      );
      felix.start();
      await felix.whenReady();
      expect(felix.status().errors).toEqual([]);
      expect(kernel.readBacks.iptablesDetections).toBe(0);
      expect(await kernel.iptablesBackends()).toEqual({ ipv4: 'legacy', ipv6: 'legacy' });
      expect((await ownRules('legacy')).some((l) => l.startsWith('-A cali-FORWARD'))).toBe(true);
      expect(await ownRules('nft')).toEqual([]);
    });
  },
);
