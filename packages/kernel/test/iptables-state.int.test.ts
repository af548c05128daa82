import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import {
  createNamespace,
  type DesiredTable,
  deleteNamespace,
  execInNamespace,
  type IpsetSpec,
  Ipsets,
  Iptables,
  type NetNamespace,
} from '../src/index.ts';

const prefix = runPrefix('pf');
const nsName = `${prefix}-state`;
const own = `cali-${prefix}-`;
const setPrefix = `cali40${prefix}`;

function desired(toWl: string[] = ['-j DROP']): DesiredTable[] {
  return [
    {
      table: 'filter',
      chains: {
        [`${own}FORWARD`]: [`-o cali+ -j ${own}to-wl`, '-m mark --mark 0x10000/0x10000 -j ACCEPT'],
        [`${own}to-wl`]: toWl,
        [`${own}other`]: ['-p udp --dport 53 -j ACCEPT'],
      },
      hooks: [{ chain: 'FORWARD', rule: `-j ${own}FORWARD` }],
    },
  ];
}

const sets = (members: string[]): IpsetSpec[] => [
  { name: `${setPrefix}pods`, type: 'hash:net', family: 'inet', members },
];

describeWith(
  [root(), command('ip'), command('iptables-nft-restore'), command('ipset')],
  'iptables and ipsets trust their last applied state',
  () => {
    let ns: NetNamespace;
    let ipt: Iptables;
    let ips: Ipsets;

    const save = async () => (await execInNamespace(ns, `iptables-${await ipt.backend()}-save`)).stdout;
    const run = async (cmd: string, args: string[]) => {
      const r = await execInNamespace(ns, cmd, args);
      expect(r.exitCode, r.stderr).toBe(0);
    };
    const ours = (text: string) =>
      text
        .split('\n')
        .filter((l) => l.includes(own))
        .map((l) => l.replace(/-m comment --comment "?cali:[\w-]+"? /, ''));

    beforeAll(async () => {
      ns = await createNamespace(nsName);
      ipt = new Iptables({ namespace: ns, ownedPrefix: own });
      ips = new Ipsets({ namespace: ns, ownedPrefix: setPrefix });
      // A foreign chain and hook that must survive every apply.
      await ipt.restore(
        '*filter\n:KUBE-FORWARD - [0:0]\n-A KUBE-FORWARD -j ACCEPT\n-A FORWARD -j KUBE-FORWARD\nCOMMIT\n',
      );
    });

    afterAll(async () => {
      ipt?.close();
      ips?.close();
      ns?.close();
      await deleteNamespace(nsName, { ifExists: true });
    });

    it('reads the kernel once, then writes only changed chains without reading it again', async () => {
      const reads0 = ipt.reads;
      expect((await ipt.apply(desired())).lines).toBeGreaterThan(5);
      expect(ipt.reads).toBe(reads0 + 1);
      const restores = ipt.restores;
      // The same state again, in full and as an unrelated partial change: nothing read or written.
      expect(await ipt.apply(desired())).toEqual({ lines: 0, input: '' });
      expect(await ipt.apply([{ table: 'filter', chains: {} }], { partial: true })).toEqual({
        lines: 0,
        input: '',
      });
      expect(ipt.restores).toBe(restores);
      // One changed chain: its new rule only, no read.
      const change = await ipt.apply(
        [{ table: 'filter', chains: { [`${own}to-wl`]: ['-p tcp --dport 22 -j ACCEPT', '-j DROP'] } }],
        { partial: true },
      );
      expect(change.lines).toBe(1);
      expect(change.input).toContain(`-I ${own}to-wl 1 `);
      expect(ipt.reads).toBe(reads0 + 1);
      const text = await save();
      expect(ours(text)).toContain(`-A ${own}to-wl -p tcp -m tcp --dport 22 -j ACCEPT`);
      expect(text).toContain('-A KUBE-FORWARD -j ACCEPT');
      expect(text).toContain('-A FORWARD -j KUBE-FORWARD');
      // A partial removal deletes that chain only.
      await ipt.apply([{ table: 'filter', chains: {}, remove: [`${own}other`] }], { partial: true });
      expect(await save()).not.toContain(`${own}other`);
      expect(ipt.reads).toBe(reads0 + 1);
    });

    it('repairs drift on a refresh (reread), and only then', async () => {
      const state = desired(['-p tcp --dport 22 -j ACCEPT', '-j DROP']);
      await ipt.apply(state);
      const good = ours(await save());
      // Someone flushes our chain and removes our hook.
      await run('iptables', ['-F', `${own}to-wl`]);
      await run('iptables', ['-D', 'FORWARD', '1']);
      expect(ours(await save())).not.toEqual(good);
      const reads = ipt.reads;
      // Trusting the remembered state, an apply of the same state writes nothing...
      expect((await ipt.apply(state)).lines).toBe(0);
      expect(ipt.reads).toBe(reads);
      // ...and the refresh reads the kernel back and puts both back.
      const repaired = await ipt.apply(state, { reread: true });
      expect(repaired.lines).toBe(3);
      expect(ipt.reads).toBe(reads + 1);
      expect(ours(await save())).toEqual(good);
      expect(await save()).toContain('-A FORWARD -j KUBE-FORWARD');
    });

    it('reads the kernel back and retries when a restore fails against the remembered state', async () => {
      // Someone deletes one of our chains: the next change to it cannot apply as planned.
      await run('iptables', ['-F', `${own}FORWARD`]);
      await run('iptables', ['-F', `${own}to-wl`]);
      await run('iptables', ['-X', `${own}to-wl`]);
      const reads = ipt.reads;
      const restores = ipt.restores;
      const next = desired(['-p tcp --dport 2222 -j ACCEPT', '-j DROP']);
      const r = await ipt.apply(next, { partial: true });
      expect(ipt.restores).toBe(restores + 2);
      expect(ipt.reads).toBe(reads + 1);
      expect(r.input).toContain(`:${own}to-wl - [0:0]`);
      const text = ours(await save());
      expect(text).toContain(`-A ${own}to-wl -p tcp -m tcp --dport 2222 -j ACCEPT`);
      expect(text).toContain(`-A ${own}FORWARD -o cali+ -j ${own}to-wl`);
      // Trusted again afterwards.
      expect((await ipt.apply(next)).lines).toBe(0);
      expect(ipt.reads).toBe(reads + 1);
    });

    it('ipsets: deltas against the remembered sets, drift repaired on reread, a failed restore re-reads', async () => {
      const reads0 = ips.reads;
      await ips.apply(sets(['10.65.0.0/26', '10.65.1.1/32']));
      expect(ips.reads).toBe(reads0 + 1);
      const delta = await ips.apply(sets(['10.65.0.0/26', '10.65.2.2']));
      expect(delta.lines).toEqual([`del ${setPrefix}pods 10.65.1.1`, `add ${setPrefix}pods 10.65.2.2`]);
      expect((await ips.apply(sets(['10.65.0.0/26', '10.65.2.2']))).lines).toEqual([]);
      expect(ips.reads).toBe(reads0 + 1);
      // Drift: a member removed by hand stays gone until a reread.
      await run('ipset', ['del', `${setPrefix}pods`, '10.65.2.2']);
      expect((await ips.apply(sets(['10.65.0.0/26', '10.65.2.2']))).lines).toEqual([]);
      const repaired = await ips.apply(sets(['10.65.0.0/26', '10.65.2.2']), { reread: true });
      expect(repaired.lines).toEqual([`add ${setPrefix}pods 10.65.2.2`]);
      expect(ips.reads).toBe(reads0 + 2);
      // The set destroyed by hand: adding to it fails, so the sets are read back and it is made again.
      await run('ipset', ['destroy', `${setPrefix}pods`]);
      const remade = await ips.apply(sets(['10.65.0.0/26', '10.65.3.3']));
      expect(remade.lines[0]).toMatch(/^create /);
      expect(ips.reads).toBe(reads0 + 3);
      expect([...((await ips.read()).get(`${setPrefix}pods`)?.members ?? [])].sort()).toEqual([
        '10.65.0.0/26',
        '10.65.3.3',
      ]);
    });
  },
);
