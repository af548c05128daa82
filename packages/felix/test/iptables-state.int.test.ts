/**
 * The dataplane against a real kernel namespace: after the first apply it trusts what it last
 * wrote — a change writes only the chains it touches and reads nothing back, drift stays until
 * the periodic refresh repairs it, and a restore that fails against the remembered state is
 * retried after reading the tables back.
 */
import { createNamespace, deleteNamespace, execInNamespace, type NetNamespace } from '@calico-ts/kernel';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import type { DataplaneUpdate } from '../src/calc/dataplane-update.ts';
import { parseRule } from '../src/calc/policy/parsed-rule.ts';
import { policyChainName } from '../src/calc/policy/policy-id.ts';
import { defaultFelixConfig } from '../src/config.ts';
import { InternalDataplane } from '../src/dataplane/internal-dataplane.ts';
import { LinuxKernel } from '../src/dataplane/linux-kernel.ts';
import { defaultLogger } from '../src/logger.ts';

const prefix = runPrefix('pf');
const nsName = `${prefix}-dp`;

const policy = (key: string, ports: number[]): DataplaneUpdate => {
  const [, namespace = 'x', name = key] = key.split('/');
  return {
    type: 'activePolicyUpdate',
    policy: {
      id: { kind: 'NetworkPolicy', namespace, name },
      key,
      calicoName: name,
      rules: {
        ingress: ports.map((p) =>
          parseRule({ action: 'Allow', protocol: 'TCP', destination: { ports: [p] } }, namespace, new Map()),
        ),
        egress: [],
      },
    },
  };
};

describeWith(
  [root(), command('ip'), command('iptables-nft-restore'), command('ipset')],
  'the dataplane trusts its last applied iptables state',
  () => {
    let ns: NetNamespace;
    let kernel: LinuxKernel;
    let dp: InternalDataplane;
    const web = policyChainName('ingress', 'np/x/web');

    const chain = async (name: string) =>
      (await execInNamespace(ns, 'iptables', ['-S', name])).stdout
        .split('\n')
        .filter((l) => l.startsWith('-A '));
    const run = async (args: string[]) => {
      const r = await execInNamespace(ns, 'iptables', args);
      expect(r.exitCode, r.stderr).toBe(0);
    };
    const apply = async (batch: DataplaneUpdate[]) => {
      dp.onUpdates(batch);
      const stats = await dp.apply();
      expect(stats?.errors).toEqual([]);
      return stats!;
    };

    beforeAll(async () => {
      ns = await createNamespace(nsName);
      kernel = new LinuxKernel(ns);
      dp = new InternalDataplane({ kernel, nodeName: `${prefix}-node`, logger: defaultLogger });
    });

    afterAll(async () => {
      kernel?.close();
      ns?.close();
      // Every chain, hook and set lives in the namespace: deleting it removes them.
      await deleteNamespace(nsName, { ifExists: true });
    });

    it('reads the tables once at start; a change writes only its chains without reading them back', async () => {
      const first = await apply([
        { type: 'configUpdate', config: defaultFelixConfig() },
        policy('np/x/web', [80]),
        { type: 'inSync' },
      ]);
      expect(first.iptablesLines).toBeGreaterThan(20);
      expect(await chain(web)).toHaveLength(1);
      const reads = kernel.readBacks.iptablesReads;
      expect(reads).toBeGreaterThan(0);

      // A second policy: its one chain and rule (plus the egress chain), nothing else.
      const second = await apply([policy('np/x/db', [5432])]);
      expect(second.iptablesLines).toBe(3);
      // The same policy sent again, and an unrelated change: nothing written.
      expect((await apply([policy('np/x/db', [5432])])).iptablesLines).toBe(0);
      expect((await apply([{ type: 'hostMetadataRemove', hostname: 'elsewhere' }])).iptablesLines).toBe(0);
      expect(kernel.readBacks.iptablesReads).toBe(reads);
    });

    it('leaves drift alone until the refresh, which repairs it', async () => {
      await run(['-F', web]);
      const restores = kernel.readBacks.iptablesRestores;
      expect((await apply([policy('np/x/web', [80])])).iptablesLines).toBe(0);
      expect(kernel.readBacks.iptablesRestores).toBe(restores);
      expect(await chain(web)).toEqual([]);

      const reads = kernel.readBacks.iptablesReads;
      dp.refreshIptables();
      const repaired = await apply([]);
      expect(repaired.iptablesLines).toBe(1);
      expect(kernel.readBacks.iptablesReads).toBe(reads + 1);
      expect((await chain(web)).join('\n')).toContain('--dports 80');
    });

    it('reads the tables back and writes again when a restore fails against the remembered state', async () => {
      // Someone deletes our chain: the change planned against what we wrote cannot apply.
      await run(['-F', web]);
      await run(['-X', web]);
      const reads = kernel.readBacks.iptablesReads;
      const restores = kernel.readBacks.iptablesRestores;
      const stats = await apply([policy('np/x/web', [80, 8080])]);
      expect(kernel.readBacks.iptablesRestores).toBe(restores + 2);
      expect(kernel.readBacks.iptablesReads).toBe(reads + 1);
      const rules = await chain(web);
      // The chain declared again and every rule of it written.
      expect(stats.iptablesLines).toBe(1 + rules.length);
      expect(rules.join('\n')).toContain('--dports 80 ');
      expect(rules.join('\n')).toContain('--dports 8080 ');
    });
  },
);
