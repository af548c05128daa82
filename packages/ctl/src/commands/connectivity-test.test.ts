import { describe, expect, it } from 'vitest';
import { checkResult, outsideAddress, renderConnectivity } from './connectivity-test.ts';

describe('checkResult', () => {
  it('fails on any failure, skips when nothing was tried, passes otherwise', () => {
    expect(checkResult('bgp', 6, [{ what: 'n1 → n2', cause: 'firewall' }], 'x').status).toBe('fail');
    expect(checkResult('bgp', 0, [], 'nothing', ['n3 (underlay failed)'])).toEqual({
      check: 'bgp',
      status: 'skip',
      detail: 'nothing; skipped n3 (underlay failed)',
      failures: [],
    });
    expect(checkResult('mtu', 2, [], '2 pairs').status).toBe('pass');
  });
});

describe('outsideAddress', () => {
  it('takes an address near the top of the underlay subnet', () => {
    expect(outsideAddress('198.51.100.0/24')).toBe('198.51.100.250/24');
    expect(outsideAddress('203.0.113.64/26')).toBe('203.0.113.122/26');
  });

  it('refuses a subnet too small or not a CIDR, naming it', () => {
    expect(() => outsideAddress('198.51.100.0/30')).toThrow(/underlay 198.51.100.0\/30: too small/);
    expect(() => outsideAddress('nope')).toThrow(/underlay "nope": expected an IPv4 CIDR/);
  });
});

describe('renderConnectivity', () => {
  it('prints each failure with its likely cause and the failed checks last', () => {
    const text = renderConnectivity({
      cluster: 'c',
      passed: false,
      durationMs: 12_300,
      checks: [
        { check: 'underlay', status: 'pass', detail: 'ok', failures: [] },
        {
          check: 'mtu',
          status: 'fail',
          detail: '1/2 failed',
          failures: [{ what: 'n1 → n2', cause: 'MTU black hole' }],
        },
      ],
    });
    expect(text).toContain('connectivity test of cluster c (12.3 s)');
    expect(text).toContain('likely cause: MTU black hole');
    expect(text.trim().split('\n').at(-1)).toBe('FAILED: mtu');
  });
});
