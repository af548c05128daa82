import { describe, expect, it } from 'vitest';
import {
  blockCount,
  blockOf,
  canonicalIp,
  formatCidr,
  formatIp,
  nthBlock,
  parseCidr,
  parseIp,
  tryParseIp,
} from './cidr.ts';
import { isIpamError } from './errors.ts';

describe('addresses', () => {
  it('round-trips IPv4 and canonicalises IPv6 (RFC 5952)', () => {
    expect(formatIp(parseIp('10.244.3.7').value, 4)).toBe('10.244.3.7');
    expect(canonicalIp('FD00:0:0:0:0:0:0:1')).toBe('fd00::1');
    expect(canonicalIp('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonicalIp('::')).toBe('::');
    expect(canonicalIp('::ffff:10.0.0.1')).toBe('::ffff:a00:1');
    expect(canonicalIp('1:2:3:4:5:6:7:8')).toBe('1:2:3:4:5:6:7:8');
  });

  it('rejects malformed addresses', () => {
    for (const bad of ['10.0.0', '10.0.0.256', '1::2::3', '1:2:3:4:5:6:7:8:9', 'fd00::g', '']) {
      expect(tryParseIp(bad), bad).toBeUndefined();
    }
    try {
      parseIp('nope');
      expect.unreachable();
    } catch (err) {
      expect(isIpamError(err, 'InvalidArgument')).toBe(true);
    }
  });
});

describe('CIDRs and blocks', () => {
  it('finds the block of an address and the n-th block of a pool', () => {
    const ip = parseIp('10.244.1.77');
    expect(formatCidr(blockOf(4, ip.value, 26))).toBe('10.244.1.64/26');
    const pool = parseCidr('10.244.0.0/16');
    expect(blockCount(pool, 26)).toBe(1024n);
    expect(formatCidr(nthBlock(pool, 26, 5n))).toBe('10.244.1.64/26');
    const v6 = parseCidr('fd00:10::/64');
    expect(blockCount(v6, 122)).toBe(1n << 58n);
    expect(formatCidr(nthBlock(v6, 122, 1n))).toBe('fd00:10::40/122');
  });

  it('masks or refuses host bits', () => {
    expect(formatCidr(parseCidr('10.0.0.5/24'))).toBe('10.0.0.0/24');
    expect(() => parseCidr('10.0.0.5/24', { requireMasked: true })).toThrow(
      /host bits set: expected 10.0.0.0\/24/,
    );
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/not a CIDR/);
  });
});
