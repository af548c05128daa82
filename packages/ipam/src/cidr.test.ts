import { formatIp, formatMaskedCidr } from '@calico-ts/datastore';
import { describe, expect, it } from 'vitest';
import { blockCount, blockOf, cidrFromText, ipFromText, nthBlock } from './cidr.ts';
import { isIpamError } from './errors.ts';

function invalidArgument(run: () => unknown): boolean {
  try {
    run();
  } catch (err) {
    return isIpamError(err, 'InvalidArgument');
  }
  return false;
}

describe('addresses', () => {
  it('parses caller addresses into the datastore model (canonical text back, RFC 5952)', () => {
    const ip = ipFromText('10.244.3.7');
    expect(ip).toEqual({ family: 4, value: 0x0af40307n });
    expect(formatIp(ip.family, ip.value)).toBe('10.244.3.7');
    expect(formatIp(6, ipFromText('FD00:0:0:0:0:0:0:1').value)).toBe('fd00::1');
  });

  it('rejects malformed addresses with InvalidArgument', () => {
    for (const bad of ['10.0.0', '10.0.0.256', '1::2::3', '1:2:3:4:5:6:7:8:9', 'fd00::g', '', 'nope']) {
      expect(
        invalidArgument(() => ipFromText(bad)),
        bad,
      ).toBe(true);
    }
  });
});

describe('CIDRs and blocks', () => {
  it('finds the block of an address and the n-th block of a pool', () => {
    expect(formatMaskedCidr(blockOf(ipFromText('10.244.1.77'), 26))).toBe('10.244.1.64/26');
    const pool = cidrFromText('10.244.0.0/16');
    expect(blockCount(pool, 26)).toBe(1024n);
    expect(formatMaskedCidr(nthBlock(pool, 26, 5n))).toBe('10.244.1.64/26');
    const v6 = cidrFromText('fd00:10::/64');
    expect(blockCount(v6, 122)).toBe(1n << 58n);
    expect(formatMaskedCidr(nthBlock(v6, 122, 1n))).toBe('fd00:10::40/122');
  });

  it('masks or refuses host bits', () => {
    expect(cidrFromText('10.0.0.5/24')).toEqual({ family: 4, address: 0x0a000000n, prefixLength: 24 });
    expect(() => cidrFromText('10.0.0.5/24', { requireMasked: true })).toThrow(
      /host bits set: expected 10.0.0.0\/24/,
    );
    expect(() => cidrFromText('10.0.0.0/33')).toThrow(/not a CIDR/);
    expect(invalidArgument(() => cidrFromText('10.0.0.0'))).toBe(true);
  });
});
