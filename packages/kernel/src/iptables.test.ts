import { describe, expect, it } from 'vitest';
import { type DesiredTable, parseIptablesSave, planTable, renderRestore, ruleHash } from './iptables.ts';

/** What iptables-save would print after applying `plan` lines to nothing: enough to round-trip. */
function saveOf(table: string, chains: Record<string, string[]>): string {
  const lines = [`*${table}`, ...Object.keys(chains).map((c) => `:${c} - [0:0]`)];
  for (const [c, rules] of Object.entries(chains)) for (const r of rules) lines.push(`-A ${c} ${r}`);
  return `${lines.join('\n')}\nCOMMIT\n`;
}

const withHash = (chain: string, rule: string, n = 0) =>
  `-m comment --comment "${ruleHash(chain, rule, n)}" ${rule}`;

describe('iptables planning', () => {
  const desired: DesiredTable = {
    table: 'filter',
    chains: {
      'cali-FORWARD': ['-i cali+ -j cali-from-wl-dispatch', '-o cali+ -j cali-to-wl-dispatch'],
      'cali-from-wl-dispatch': ['-j DROP'],
      'cali-to-wl-dispatch': ['-j DROP'],
    },
    hooks: [{ chain: 'FORWARD', rule: '-j cali-FORWARD' }],
  };

  it('creates chains, rules and the hook from nothing', () => {
    const plan = planTable(desired, parseIptablesSave(saveOf('filter', { FORWARD: [] })).get('filter'));
    expect(plan.lines.slice(0, 3)).toEqual([
      ':cali-FORWARD - [0:0]',
      ':cali-from-wl-dispatch - [0:0]',
      ':cali-to-wl-dispatch - [0:0]',
    ]);
    expect(plan.lines).toContain(
      `-I cali-FORWARD 1 ${withHash('cali-FORWARD', '-i cali+ -j cali-from-wl-dispatch')}`,
    );
    expect(plan.lines).toContain(`-I FORWARD 1 ${withHash('FORWARD', '-j cali-FORWARD')}`);
    expect(renderRestore([plan])).toMatch(/^\*filter\n[\s\S]*\nCOMMIT\n$/);
  });

  it('is a no-op when the kernel already matches, even with foreign rules around', () => {
    const save = saveOf('filter', {
      FORWARD: ['-j KUBE-FORWARD', withHash('FORWARD', '-j cali-FORWARD'), '-j ACCEPT'],
      'KUBE-FORWARD': ['-j ACCEPT'],
      'cali-FORWARD': desired.chains['cali-FORWARD']!.map((r) => withHash('cali-FORWARD', r)),
      'cali-from-wl-dispatch': [withHash('cali-from-wl-dispatch', '-j DROP')],
      'cali-to-wl-dispatch': [withHash('cali-to-wl-dispatch', '-j DROP')],
    });
    const plan = planTable(desired, parseIptablesSave(save).get('filter'));
    expect(plan.lines).toEqual([]);
    expect(renderRestore([plan])).toBe('');
  });

  it('inserts one rule without rewriting the unchanged ones around it', () => {
    const chain = 'cali-tw-cali1234';
    const current = ['-m conntrack --ctstate INVALID -j DROP', '-j cali-pri-kns.default', '-j DROP'];
    const save = saveOf('filter', { [chain]: current.map((r) => withHash(chain, r)) });
    const next = [current[0]!, '-j cali-pi-np.default.allow', current[1]!, current[2]!];
    const plan = planTable(
      { table: 'filter', chains: { [chain]: next } },
      parseIptablesSave(save).get('filter'),
    );
    expect(plan.lines).toEqual([`-I ${chain} 2 ${withHash(chain, '-j cali-pi-np.default.allow')}`]);
  });

  it('deletes bottom-up and inserts top-down so rule numbers stay valid', () => {
    const chain = 'cali-x';
    const save = saveOf('filter', {
      [chain]: ['-j A', '-j B', '-j C', '-j D'].map((r) => withHash(chain, r)),
    });
    const plan = planTable(
      { table: 'filter', chains: { [chain]: ['-j A', '-j X', '-j C', '-j Y'] } },
      parseIptablesSave(save).get('filter'),
    );
    expect(plan.lines.map((l) => l.split(' -m')[0])).toEqual([
      '-D cali-x 4',
      '-D cali-x 2',
      '-I cali-x 2',
      '-I cali-x 4',
    ]);
  });

  it('distinguishes identical rules by occurrence and removes unhashed rules from owned chains', () => {
    const chain = 'cali-y';
    const save = saveOf('filter', {
      [chain]: [withHash(chain, '-j RETURN', 0), '-j LOG', withHash(chain, '-j RETURN', 1)],
    });
    const plan = planTable(
      { table: 'filter', chains: { [chain]: ['-j RETURN', '-j RETURN'] } },
      parseIptablesSave(save).get('filter'),
    );
    expect(plan.lines).toEqual(['-D cali-y 2']);
  });

  it('flushes all stale owned chains before deleting them, and removes stale hooks only', () => {
    const save = saveOf('filter', {
      INPUT: [withHash('INPUT', '-j cali-INPUT'), '-j f2b'],
      'cali-INPUT': [withHash('cali-INPUT', '-j cali-wl-to-host')],
      'cali-wl-to-host': [withHash('cali-wl-to-host', '-j DROP')],
    });
    const plan = planTable({ table: 'filter', chains: {} }, parseIptablesSave(save).get('filter'));
    expect(plan.lines).toEqual([
      '-D INPUT 1',
      '-F cali-wl-to-host',
      '-F cali-INPUT',
      '-X cali-INPUT',
      '-X cali-wl-to-host',
    ]);
  });

  it('keeps hooks in the given order and appends append-mode hooks', () => {
    const plan = planTable(
      {
        table: 'filter',
        chains: { 'cali-a': [], 'cali-b': [] },
        hooks: [
          { chain: 'FORWARD', rule: '-j cali-a' },
          { chain: 'FORWARD', rule: '-j cali-b' },
          { chain: 'FORWARD', rule: '-m mark --mark 0x10000/0x10000 -j ACCEPT', position: 'append' },
        ],
      },
      undefined,
    );
    const hooks = plan.lines.filter((l) => l.includes('FORWARD'));
    expect(hooks[0]).toContain('-j cali-b');
    expect(hooks[1]).toContain('-j cali-a');
    expect(hooks[2]).toMatch(/^-A FORWARD .* -j ACCEPT$/);
  });

  it('rejects chains outside the owned prefix or longer than 28 characters', () => {
    expect(() => planTable({ table: 'filter', chains: { FORWARD: [] } }, undefined)).toThrow(/owned prefix/);
    expect(() =>
      planTable({ table: 'filter', chains: { ['cali-'.padEnd(29, 'x')]: [] } }, undefined),
    ).toThrow(/28/);
  });

  it('parses comments with and without quotes', () => {
    const h = ruleHash('c', 'r');
    const t = parseIptablesSave(
      `*filter\n:cali-c - [0:0]\n-A cali-c -p tcp -m comment --comment ${h} -j ACCEPT\nCOMMIT\n`,
    );
    expect(t.get('filter')?.chains.get('cali-c')?.[0]?.hash).toBe(h);
  });
});
