import { describe, expect, it } from 'vitest';
import {
  cidrContainsIp,
  cidrSize,
  formatMaskedCidr,
  maskedCidr,
  parseCidr,
  parseCidrOrIp,
  parseIp,
} from './ip.ts';

describe('CIDR helpers', () => {
  it('parseCidrOrIp takes a bare address as its full-length prefix and a CIDR as written', () => {
    expect(parseCidrOrIp('10.0.0.5')).toEqual({ family: 4, address: 0x0a000005n, prefixLength: 32 });
    expect(parseCidrOrIp('fd00::1')).toEqual({
      family: 6,
      address: (0xfd00n << 112n) | 1n,
      prefixLength: 128,
    });
    expect(parseCidrOrIp('10.0.0.5/24')).toEqual(parseCidr('10.0.0.5/24'));
    expect(parseCidrOrIp('10.0.0.256')).toBeUndefined();
    expect(parseCidrOrIp('10.0.0.0/33')).toBeUndefined();
  });

  it('maskedCidr clears host bits; cidrSize counts addresses', () => {
    const c = maskedCidr(parseCidr('10.0.0.5/26')!);
    expect(formatMaskedCidr(c)).toBe('10.0.0.0/26');
    expect(c.address).toBe(0x0a000000n);
    expect(cidrSize(c)).toBe(64n);
    expect(cidrSize(parseCidr('fd00::/122')!)).toBe(64n);
    expect(cidrSize(parseCidr('0.0.0.0/0')!)).toBe(1n << 32n);
  });

  it('cidrContainsIp is exact at both ends and never across families', () => {
    const block = parseCidr('10.0.0.64/26')!;
    expect(cidrContainsIp(block, parseIp('10.0.0.64')!)).toBe(true);
    expect(cidrContainsIp(block, parseIp('10.0.0.127')!)).toBe(true);
    expect(cidrContainsIp(block, parseIp('10.0.0.63')!)).toBe(false);
    expect(cidrContainsIp(block, parseIp('10.0.0.128')!)).toBe(false);
    expect(cidrContainsIp(parseCidr('::/0')!, parseIp('10.0.0.1')!)).toBe(false);
  });
});
