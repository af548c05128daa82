import { describe, expect, it } from 'vitest';
import { bytesToIp, bytesToMac, ipToBytes, macToBytes, parsePrefix } from './ip-address.ts';

describe('ip addresses', () => {
  it.each([
    ['2001:db8::1', '20010db8000000000000000000000001'],
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['fe80::', 'fe800000000000000000000000000000'],
    ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
  ])('round-trips %s', (ip, hex) => {
    expect(ipToBytes(ip).toString('hex')).toBe(hex);
    expect(bytesToIp(Buffer.from(hex, 'hex'))).toBe(ip);
  });

  it('compresses the longest zero run, first on a tie (RFC 5952 §4.2.3)', () => {
    expect(bytesToIp(ipToBytes('2001:0:0:1:0:0:0:1'))).toBe('2001:0:0:1::1');
    expect(bytesToIp(ipToBytes('2001:db8:0:0:1:0:0:1'))).toBe('2001:db8::1:0:0:1');
    expect(bytesToIp(ipToBytes('2001:db8:0:1:1:1:1:1'))).toBe('2001:db8:0:1:1:1:1:1');
  });

  it('parses prefixes, host addresses and default', () => {
    expect(parsePrefix('10.0.0.0/26')).toMatchObject({ family: 4, length: 26 });
    expect(parsePrefix('192.0.2.1')).toMatchObject({ family: 4, length: 32 });
    expect(parsePrefix('default', 6)).toMatchObject({ family: 6, address: '::', length: 0 });
    expect(() => parsePrefix('10.0.0.0/33')).toThrow(/parsing prefix/);
    expect(() => parsePrefix('10.0.0/8')).toThrow(/parsing IP address/);
  });

  it('converts MAC addresses', () => {
    expect(macToBytes('ee:ee:ee:ee:ee:ee').toString('hex')).toBe('eeeeeeeeeeee');
    expect(bytesToMac(Buffer.from('0200000000ff', 'hex'))).toBe('02:00:00:00:00:ff');
    expect(() => macToBytes('ee:ee')).toThrow(/MAC/);
  });
});
