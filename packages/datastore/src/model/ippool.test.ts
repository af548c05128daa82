import { describe, expect, it } from 'vitest';
import { encapsulatedBetween, poolEncapsulation } from './ippool.ts';

describe('poolEncapsulation', () => {
  it('reads vxlanMode first, then ipipMode, else none', () => {
    expect(poolEncapsulation({ vxlanMode: 'Always', ipipMode: 'Never' })).toEqual({
      type: 'vxlan',
      mode: 'Always',
    });
    expect(poolEncapsulation({ vxlanMode: 'CrossSubnet', ipipMode: 'Never' })).toEqual({
      type: 'vxlan',
      mode: 'CrossSubnet',
    });
    expect(poolEncapsulation({ vxlanMode: 'Never', ipipMode: 'CrossSubnet' })).toEqual({
      type: 'ipip',
      mode: 'CrossSubnet',
    });
    expect(poolEncapsulation({ vxlanMode: 'Never', ipipMode: 'Never' })).toEqual({
      type: 'none',
      mode: 'Never',
    });
    // Validation refuses both; a stored one anyway is VXLAN, as Felix's route resolver decides.
    expect(poolEncapsulation({ vxlanMode: 'Always', ipipMode: 'Always' }).type).toBe('vxlan');
  });

  it('encapsulatedBetween: Always on every path, CrossSubnet only across subnets, none never', () => {
    const always = poolEncapsulation({ vxlanMode: 'Always', ipipMode: 'Never' });
    const cross = poolEncapsulation({ vxlanMode: 'Never', ipipMode: 'CrossSubnet' });
    const none = poolEncapsulation({ vxlanMode: 'Never', ipipMode: 'Never' });
    expect([encapsulatedBetween(always, true), encapsulatedBetween(always, false)]).toEqual([true, true]);
    expect([encapsulatedBetween(cross, true), encapsulatedBetween(cross, false)]).toEqual([false, true]);
    expect([encapsulatedBetween(none, true), encapsulatedBetween(none, false)]).toEqual([false, false]);
  });
});
