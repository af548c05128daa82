import { describe, expect, it } from 'vitest';
import { normaliseMember, parseIpsetSave, planIpsets, tempSetName } from './ipset.ts';

const save = `create cali40pods hash:net family inet hashsize 1024 maxelem 1048576 bucketsize 12 initval 0x1
add cali40pods 10.65.0.1
add cali40pods 10.65.1.0/26
create cali40ports hash:ip,port family inet hashsize 1024 maxelem 1048576 bucketsize 12 initval 0x2
add cali40ports 10.65.0.1,tcp:80
create cali40old hash:ip family inet hashsize 1024 maxelem 1048576 bucketsize 12 initval 0x3
create KUBE-X hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x4
add KUBE-X 10.0.0.1
`;

describe('ipset planning', () => {
  it('normalises members the way ipset save prints them', () => {
    expect(normaliseMember('hash:net', '10.65.0.1/32')).toBe('10.65.0.1');
    expect(normaliseMember('hash:net', '2001:db8:0::/122')).toBe('2001:db8::/122');
    expect(normaliseMember('hash:ip,port', '10.65.0.1,TCP:80')).toBe('10.65.0.1,tcp:80');
  });

  it('reads only owned sets', () => {
    const sets = parseIpsetSave(save);
    expect([...sets.keys()]).toEqual(['cali40pods', 'cali40ports', 'cali40old']);
    expect([...(sets.get('cali40pods')?.members ?? [])]).toEqual(['10.65.0.1', '10.65.1.0/26']);
  });

  it('turns a member change into add/del deltas only', () => {
    const plan = planIpsets(
      [
        { name: 'cali40pods', type: 'hash:net', family: 'inet', members: ['10.65.0.1/32', '10.65.2.0/26'] },
        { name: 'cali40ports', type: 'hash:ip,port', family: 'inet', members: ['10.65.0.1,tcp:80'] },
        { name: 'cali40old', type: 'hash:ip', family: 'inet', members: [] },
      ],
      parseIpsetSave(save),
    );
    expect(plan.lines).toEqual(['del cali40pods 10.65.1.0/26', 'add cali40pods 10.65.2.0/26']);
    expect(plan.stale).toEqual([]);
  });

  it('creates missing sets, rebuilds a changed maxelem through a temporary set and swap, reports stale', () => {
    const plan = planIpsets(
      [
        { name: 'cali40pods', type: 'hash:net', family: 'inet', members: ['10.65.0.1'], maxelem: 2048 },
        { name: 'cali60new', type: 'hash:ip', family: 'inet6', members: ['2001:db8::1'] },
      ],
      parseIpsetSave(save),
    );
    const tmp = tempSetName('cali40pods', 'inet');
    expect(tmp).toBe('cali4tpods');
    expect(plan.lines).toEqual([
      `create ${tmp} hash:net family inet maxelem 2048`,
      `add ${tmp} 10.65.0.1`,
      `swap ${tmp} cali40pods`,
      `destroy ${tmp}`,
      'create cali60new hash:ip family inet6 maxelem 1048576',
      'add cali60new 2001:db8::1',
    ]);
    expect(plan.stale).toEqual(['cali40ports', 'cali40old']);
    const retype = planIpsets(
      [{ name: 'cali40old', type: 'hash:net', family: 'inet', members: [] }],
      parseIpsetSave(save),
    );
    expect(retype.lines).toEqual([
      'destroy cali40old',
      'create cali40old hash:net family inet maxelem 1048576',
    ]);
    expect(planIpsets([], parseIpsetSave(save), true).lines).toEqual([
      'destroy cali40pods',
      'destroy cali40ports',
      'destroy cali40old',
    ]);
  });
});
