import { describe, expect, it } from 'vitest';
import { defaultFelixConfig } from '../config.ts';
import { renderRule } from './chains.ts';
import { IpsetsManager } from './ipsets-manager.ts';
import { allocateMarkBits } from './mark-bits.ts';
import { staticFilter, staticRaw } from './static-chains.ts';

const marks = allocateMarkBits(0xffff0000);

describe('IPv6 dataplane pieces', () => {
  it('a policy set becomes cali40<id> with the IPv4 members and cali60<id> (inet6) with the IPv6 ones', () => {
    const m = new IpsetsManager();
    m.onUpdate({
      type: 'ipsetUpdate',
      id: 's:abc',
      ipsetType: 'hash:net',
      members: ['10.0.0.1/32', 'fd00::1/128'],
    });
    m.onUpdate({ type: 'ipsetDeltaUpdate', id: 's:abc', addedMembers: ['fd00::2/128'], removedMembers: [] });
    m.onUpdate({
      type: 'ipsetUpdate',
      id: 'network-ip-pools',
      ipsetType: 'hash:net',
      members: ['10.0.0.0/16'],
    });
    expect(m.desired(true)).toEqual([
      { name: 'cali40s:abc', type: 'hash:net', members: ['10.0.0.1/32'] },
      { name: 'cali60s:abc', type: 'hash:net', family: 6, members: ['fd00::1/128', 'fd00::2/128'] },
      { name: 'cali40network-ip-pools', type: 'hash:net', members: ['10.0.0.0/16'] },
    ]);
    // Without IPv6 only the IPv4 sets.
    expect(m.desired().map((s) => s.name)).toEqual(['cali40s:abc', 'cali40network-ip-pools']);
  });

  it('named-port members keep their family: an IPv6 address with a port goes to the cali60 set', () => {
    const m = new IpsetsManager();
    m.onUpdate({
      type: 'ipsetUpdate',
      id: 'n:xyz',
      ipsetType: 'hash:ip,port',
      members: ['10.0.0.1,tcp:80', 'fd00::1,tcp:80'],
    });
    expect(m.desired(true).map((s) => [s.name, s.members])).toEqual([
      ['cali40n:xyz', ['10.0.0.1,tcp:80']],
      ['cali60n:xyz', ['fd00::1,tcp:80']],
    ]);
  });

  it('the IPv6 static chains: ICMPv6 for workloads before their egress policy, no IPv4 tunnel rules', () => {
    const config = { ...defaultFelixConfig(), ipipEnabled: true, vxlanEnabled: true };
    const filter = staticFilter(config, marks, 6);
    const wlToHost = filter.chains.find((c) => c.name === 'cali-wl-to-host')!.rules.map(renderRule);
    expect(wlToHost.slice(0, 6)).toEqual(
      [130, 131, 132, 133, 135, 136].map((t) => `-p icmpv6 -m icmp6 --icmpv6-type ${t} -j ACCEPT`),
    );
    expect(wlToHost[6]).toBe('-j cali-from-wl-dispatch');
    const input = filter.chains.find((c) => c.name === 'cali-INPUT')!.rules.map(renderRule);
    expect(input.some((r) => r.includes('cali40'))).toBe(false);
    expect(staticFilter(config, marks, 4).chains.find((c) => c.name === 'cali-INPUT')!.rules.length).toBe(
      input.length + 4,
    );
    const raw = staticRaw(config, marks, 6)
      .chains.find((c) => c.name === 'cali-PREROUTING')!
      .rules.map(renderRule);
    expect(raw.some((r) => r.includes('NOTRACK'))).toBe(false);
  });
});
