import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import {
  createNamespace,
  type DesiredTable,
  deleteNamespace,
  detectIptablesBackend,
  execInNamespace,
  Ipsets,
  Iptables,
  type NetNamespace,
} from '../src/index.ts';

const prefix = runPrefix('kt');
const nsName = `${prefix}-ipt`;
// Owned names carry the run prefix too, so nothing can collide with another run.
const own = `cali-${prefix}-`;
const setPrefix = `cali40${prefix}`;

function desired(extraRule?: string): DesiredTable[] {
  const fwd = [
    `-i cali+ -j ${own}from-wl`,
    `-o cali+ -j ${own}to-wl`,
    '-m mark --mark 0x10000/0x10000 -j ACCEPT',
  ];
  if (extraRule) fwd.splice(1, 0, extraRule);
  return [
    {
      table: 'filter',
      chains: {
        [`${own}FORWARD`]: fwd,
        [`${own}from-wl`]: [`-m set --match-set ${setPrefix}pods src -j RETURN`, '-j DROP'],
        [`${own}to-wl`]: ['-j DROP'],
      },
      hooks: [{ chain: 'FORWARD', rule: `-j ${own}FORWARD` }],
    },
    {
      table: 'nat',
      chains: { [`${own}nat-out`]: [`-m set --match-set ${setPrefix}pods src -j MASQUERADE`] },
      hooks: [{ chain: 'POSTROUTING', rule: `-j ${own}nat-out`, position: 'append' }],
    },
  ];
}

describeWith(
  [root(), command('ip'), command('iptables-nft-restore'), command('ipset')],
  'iptables and ipset batches',
  () => {
    let ns: NetNamespace;
    let ipt: Iptables;
    let sets: Ipsets;

    beforeAll(async () => {
      ns = await createNamespace(nsName);
      ipt = new Iptables({ namespace: ns, ownedPrefix: own });
      sets = new Ipsets({ namespace: ns, ownedPrefix: setPrefix });
    });

    afterAll(async () => {
      ipt?.close();
      sets?.close();
      ns?.close();
      // The namespace owns its rules and sets: deleting it removes them all.
      await deleteNamespace(nsName, { ifExists: true });
    });

    it('detects the back end the namespace uses', async () => {
      expect(['nft', 'legacy']).toContain(await detectIptablesBackend(ns));
      expect(['nft', 'legacy']).toContain(await ipt.backend());
    });

    it('creates ipsets in one restore, then applies member deltas only', async () => {
      const first = await sets.apply([
        {
          name: `${setPrefix}pods`,
          type: 'hash:net',
          family: 'inet',
          members: ['10.65.0.0/26', '10.65.1.1/32'],
        },
        { name: `${setPrefix}svc`, type: 'hash:ip,port', family: 'inet', members: ['10.96.0.10,udp:53'] },
      ]);
      expect(first.lines[0]).toMatch(/^create /);
      const again = await sets.apply([
        {
          name: `${setPrefix}pods`,
          type: 'hash:net',
          family: 'inet',
          members: ['10.65.0.0/26', '10.65.2.0/26'],
        },
        { name: `${setPrefix}svc`, type: 'hash:ip,port', family: 'inet', members: ['10.96.0.10,udp:53'] },
      ]);
      expect(again.lines).toEqual([`del ${setPrefix}pods 10.65.1.1`, `add ${setPrefix}pods 10.65.2.0/26`]);
      expect(
        await sets.update(`${setPrefix}pods`, 'hash:net', { add: ['10.65.3.0/26'], del: ['10.65.0.0/26'] }),
      ).toBe(2);
      const now = await sets.read();
      expect([...(now.get(`${setPrefix}pods`)?.members ?? [])].sort()).toEqual([
        '10.65.2.0/26',
        '10.65.3.0/26',
      ]);
      // IPv6 set; a maxelem change goes through temp set + swap, a type change through re-create.
      await sets.apply([
        { name: `${setPrefix}v6`, type: 'hash:ip', family: 'inet6', members: ['2001:db8::1'] },
      ]);
      const swapped = await sets.apply([
        {
          name: `${setPrefix}pods`,
          type: 'hash:net',
          family: 'inet',
          members: ['10.65.2.0/26', '10.65.3.0/26'],
          maxelem: 4096,
        },
        { name: `${setPrefix}svc`, type: 'hash:ip,port', family: 'inet', members: ['10.96.0.10,udp:53'] },
        { name: `${setPrefix}v6`, type: 'hash:net', family: 'inet6', members: ['2001:db8::/64'] },
      ]);
      expect(swapped.lines.some((l) => l.startsWith('swap '))).toBe(true);
      const after = await sets.read();
      expect(after.get(`${setPrefix}v6`)?.type).toBe('hash:net');
      expect(after.get(`${setPrefix}pods`)?.maxelem).toBe(4096);
      expect([...(after.get(`${setPrefix}pods`)?.members ?? [])].sort()).toEqual([
        '10.65.2.0/26',
        '10.65.3.0/26',
      ]);
    });

    it('applies a batch, and applying it again writes nothing', async () => {
      // A foreign rule and chain that must survive untouched.
      await ipt.restore(
        '*filter\n:KUBE-FORWARD - [0:0]\n-A KUBE-FORWARD -j ACCEPT\n-A FORWARD -j KUBE-FORWARD\nCOMMIT\n',
      );
      const first = await ipt.apply(desired());
      expect(first.lines).toBeGreaterThan(5);
      const second = await ipt.apply(desired());
      expect(second).toEqual({ lines: 0, input: '' });

      const save = (await execInNamespace(ns, `iptables-${await ipt.backend()}-save`)).stdout;
      expect(save).toContain('-A KUBE-FORWARD -j ACCEPT');
      const forward = save.split('\n').filter((l) => l.startsWith('-A FORWARD'));
      expect(forward[0]).toContain(`-j ${own}FORWARD`); // hook inserted at the top
      expect(forward[1]).toBe('-A FORWARD -j KUBE-FORWARD');
      expect(save).toMatch(new RegExp(`-A POSTROUTING .*-j ${own}nat-out`));
    });

    it('lists one chain, through the kept shell and as its own process alike', async () => {
      await ipt.apply(desired());
      const plain = new Iptables({ namespace: ns, ownedPrefix: own, restoreShell: false });
      try {
        for (const x of [ipt, plain]) {
          expect(await x.listChain('filter', `${own}to-wl`)).toEqual([
            expect.stringMatching(/^-m comment --comment "cali:\S+" -j DROP$/),
          ]);
          expect(await x.listChain('filter', `${own}FORWARD`)).toHaveLength(3);
          expect(await x.listChain('filter', `${own}no-such-chain`)).toBeUndefined();
        }
      } finally {
        plain.close();
      }
    });

    it('changes one rule with one line, keeps the hook position and foreign rules', async () => {
      // Someone else inserts at the top of FORWARD after us: our hook is not moved back.
      await ipt.restore('*filter\n-I FORWARD 1 -j LOG\nCOMMIT\n');
      const change = await ipt.apply(desired('-p tcp --dport 22 -j ACCEPT'));
      expect(change.lines).toBe(1);
      expect(change.input).toMatch(
        new RegExp(
          `^\\*filter\\n-I ${own}FORWARD 2 -m comment --comment "cali:[\\w-]{16}" -p tcp --dport 22 -j ACCEPT\\nCOMMIT\\n$`,
        ),
      );
      const save = (await execInNamespace(ns, `iptables-${await ipt.backend()}-save`, ['-t', 'filter']))
        .stdout;
      const forward = save.split('\n').filter((l) => l.startsWith('-A FORWARD'));
      expect(forward.map((l) => l.replace(/-m comment --comment "?cali:[\w-]+"? /, ''))).toEqual([
        '-A FORWARD -j LOG',
        `-A FORWARD -j ${own}FORWARD`,
        '-A FORWARD -j KUBE-FORWARD',
      ]);
      expect((await ipt.apply(desired('-p tcp --dport 22 -j ACCEPT'))).lines).toBe(0);
    });

    it('removes owned chains and hooks that are no longer desired, leaving the rest', async () => {
      const r = await ipt.apply([
        { table: 'filter', chains: {} },
        { table: 'nat', chains: {} },
      ]);
      expect(r.lines).toBeGreaterThan(0);
      const save = (await execInNamespace(ns, `iptables-${await ipt.backend()}-save`)).stdout;
      expect(save).not.toContain(own);
      expect(save).toContain('-A FORWARD -j KUBE-FORWARD');
      expect(save).toContain('-A FORWARD -j LOG');
      await sets.apply([], { removeStale: true });
      expect((await sets.read()).size).toBe(0);
    });

    it('runs ip6tables the same way', async () => {
      const ip6 = new Iptables({ family: 6, namespace: ns, ownedPrefix: own });
      const d: DesiredTable[] = [
        {
          table: 'filter',
          chains: { [`${own}v6`]: ['-p ipv6-icmp -j ACCEPT'] },
          hooks: [{ chain: 'INPUT', rule: `-j ${own}v6` }],
        },
      ];
      expect((await ip6.apply(d)).lines).toBe(3);
      expect((await ip6.apply(d)).lines).toBe(0);
    });
  },
);
