import { describe, expect, it } from 'vitest';
import { chooseUnderlay, underlayAddressing, underlayConflict } from './underlay.ts';

// This machine's view as `ip -j` shows it on the CI hosts: eth0 in TEST-NET-1.
const host = [
  { cidr: '192.0.2.2/24', source: 'address 192.0.2.2/24 on eth0' },
  { cidr: '192.0.2.1/32', source: 'gateway 192.0.2.1 of route default' },
  { cidr: '172.17.0.0/16', source: 'route 172.17.0.0/16 dev docker0' },
];

describe('the lab underlay', () => {
  it('addresses gateway .1 and node i .<10+i> in any prefix that holds the nodes', () => {
    const a = underlayAddressing('203.0.113.77/24', 3);
    expect([a.cidr, a.gateway, a.nodeIpv4(1), a.nodeIpv4(3)]).toEqual([
      '203.0.113.0/24',
      '203.0.113.1',
      '203.0.113.11',
      '203.0.113.13',
    ]);
    expect(underlayAddressing('198.18.0.0/16').nodeIpv4(300)).toBe('198.18.1.54');
    expect(() => underlayAddressing('10.0.0.0/27', 30)).toThrow(
      'underlay 10.0.0.0/27 holds 20 nodes; 30 were asked for',
    );
    expect(() => underlayAddressing('banana')).toThrow('expected an IPv4 CIDR');
  });

  it('puts hosts that are not nodes (dedicated reflectors) between the gateway and node 1', () => {
    const a = underlayAddressing('203.0.113.0/24', 3);
    expect([a.hostIpv4(1), a.hostIpv4(2), a.hostIpv4(9)]).toEqual([
      '203.0.113.2',
      '203.0.113.3',
      '203.0.113.10',
    ]);
    expect(() => a.hostIpv4(10)).toThrow('underlay host 10: expected 1 to 9');
    expect(() => a.hostIpv4(0)).toThrow('underlay host 0: expected 1 to 9');
  });

  it("names the host's address or route an underlay overlaps, and picks a free documentation range", () => {
    expect(underlayConflict('192.0.2.0/24', host)?.source).toBe('address 192.0.2.2/24 on eth0');
    expect(underlayConflict('172.17.5.0/24', host)?.source).toBe('route 172.17.0.0/16 dev docker0');
    expect(underlayConflict('198.51.100.0/24', host)).toBeUndefined();
    expect(chooseUnderlay(host)).toBe('198.51.100.0/24');
    expect(chooseUnderlay([...host, { cidr: '198.51.100.0/24', source: 'route' }])).toBe('203.0.113.0/24');
    expect(() => chooseUnderlay(host, ['192.0.2.0/24'])).toThrow('pass --underlay CIDR');
  });
});
