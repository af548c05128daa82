/**
 * A configured iptables back end is the one written to, whatever the namespace holds and without
 * a detection; in Auto the detection's own save output is the first read of the tables.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import {
  createNamespace,
  type DesiredTable,
  deleteNamespace,
  execInNamespace,
  Iptables,
  type NetNamespace,
} from '../src/index.ts';

const prefix = runPrefix('nb');
const own = `cali-${prefix}-`;

const desired: DesiredTable[] = [
  {
    table: 'filter',
    chains: { [`${own}FORWARD`]: ['-i cali+ -j DROP'] },
    hooks: [{ chain: 'FORWARD', rule: `-j ${own}FORWARD` }],
  },
];

describeWith(
  [
    root(),
    command('ip'),
    command('iptables-nft-save'),
    command('iptables-legacy-save'),
    command('iptables-legacy-restore'),
  ],
  'a configured iptables back end',
  () => {
    const names = { nft: `${prefix}-nft`, legacy: `${prefix}-leg` };
    const ns: Partial<Record<'nft' | 'legacy', NetNamespace>> = {};
    const instances: Iptables[] = [];

    /** The `-A` lines of one back end's save output in a namespace. */
    const rules = async (where: NetNamespace, backend: 'nft' | 'legacy') => {
      const r = await execInNamespace(where, `iptables-${backend}-save`);
      expect(r.exitCode, r.stderr).toBe(0);
      return r.stdout.split('\n').filter((l) => l.startsWith('-A '));
    };
    const iptables = (where: NetNamespace, backend: 'nft' | 'legacy' | 'auto') => {
      const ipt = new Iptables({ namespace: where, ownedPrefix: own, backend });
      instances.push(ipt);
      return ipt;
    };

    beforeAll(async () => {
      // Each namespace holds foreign rules in one back end only, so detection would pick that one.
      for (const backend of ['nft', 'legacy'] as const) {
        const where = await createNamespace(names[backend]);
        ns[backend] = where;
        for (const port of [22, 80, 443]) {
          const r = await execInNamespace(where, `iptables-${backend}`, [
            '-A',
            'INPUT',
            '-p',
            'tcp',
            '--dport',
            String(port),
            '-j',
            'ACCEPT',
          ]);
          expect(r.exitCode, r.stderr).toBe(0);
        }
      }
    });

    afterAll(async () => {
      for (const ipt of instances) ipt.close();
      for (const where of Object.values(ns)) where?.close();
      // The rules of both back ends live in the namespaces: deleting them removes everything.
      for (const name of Object.values(names)) await deleteNamespace(name, { ifExists: true });
    });

    it('writes to legacy when configured, though the namespace uses nft, without detecting', async () => {
      const where = ns.nft as NetNamespace;
      const ipt = iptables(where, 'legacy');
      expect((await ipt.apply(desired)).lines).toBeGreaterThan(0);
      expect(ipt.detections).toBe(0);
      expect(await ipt.backend()).toBe('legacy');
      expect((await rules(where, 'legacy')).join('\n')).toContain(`-A FORWARD -m comment`);
      expect((await rules(where, 'legacy')).some((l) => l.startsWith(`-A ${own}FORWARD`))).toBe(true);
      expect((await rules(where, 'nft')).some((l) => l.includes(own))).toBe(false);
    });

    it('writes to nft when configured, though the namespace uses legacy, without detecting', async () => {
      const where = ns.legacy as NetNamespace;
      const ipt = iptables(where, 'nft');
      expect((await ipt.apply(desired)).lines).toBeGreaterThan(0);
      expect(ipt.detections).toBe(0);
      expect((await rules(where, 'nft')).some((l) => l.startsWith(`-A ${own}FORWARD`))).toBe(true);
      expect((await rules(where, 'legacy')).some((l) => l.includes(own))).toBe(false);
    });

    it('in Auto follows the rules and reads the tables with the detection, no save of its own', async () => {
      const where = ns.legacy as NetNamespace;
      const ipt = iptables(where, 'auto');
      // Legacy holds 3 foreign rules and (after the test above) nft holds 2 of ours: legacy wins.
      const result = await ipt.apply(desired);
      expect(result.lines).toBeGreaterThan(0);
      expect(await ipt.backend()).toBe('legacy');
      expect([ipt.detections, ipt.reads, ipt.saves, ipt.restores]).toEqual([1, 1, 0, 1]);
      expect((await rules(where, 'legacy')).some((l) => l.startsWith(`-A ${own}FORWARD`))).toBe(true);
      // Against the state it wrote, the same desired state needs no process at all.
      expect((await ipt.apply(desired)).lines).toBe(0);
      expect([ipt.detections, ipt.saves, ipt.restores]).toEqual([1, 0, 1]);
    });

    it('keeps the back end in use when another is configured later', async () => {
      const ipt = iptables(ns.nft as NetNamespace, 'auto');
      expect(ipt.setBackend('legacy')).toBe(true);
      expect(ipt.setBackend('nft')).toBe(true);
      await ipt.read(['filter']);
      expect([ipt.detections, ipt.saves]).toEqual([0, 1]);
      expect(ipt.setBackend('legacy')).toBe(false);
      expect(ipt.setBackend('auto')).toBe(true);
      expect(await ipt.backend()).toBe('nft');
    });
  },
);
