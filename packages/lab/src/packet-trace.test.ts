import { describe, expect, it } from 'vitest';
import { parseTraceLine, traceMatchExpression, traceTableScript } from './packet-trace.ts';

describe('parseTraceLine', () => {
  it('reads a packet line: interfaces and IP length', () => {
    const e = parseTraceLine(
      'trace id 2309ba15 ip filter FORWARD packet: iif "cali44c7791d104" oif "eth0" ether saddr f2:92:99:4f:c3:9c ip saddr 10.244.162.0 ip daddr 10.244.186.192 ip length 60 tcp sport 48956 tcp dport 80',
    );
    expect(e).toMatchObject({
      id: '2309ba15',
      family: 'ip',
      table: 'filter',
      chain: 'FORWARD',
      type: 'packet',
      iif: 'cali44c7791d104',
      oif: 'eth0',
      length: 60,
    });
  });

  it('reads a rule line: handle, verdict and jump target, text without counters kept verbatim', () => {
    const e = parseTraceLine(
      'trace id 49f3051c ip filter cali-fw-cali44c7791d104 rule  counter packets 1 bytes 60 jump cali-pro-kns.demo # handle 79 (verdict jump cali-pro-kns.demo)',
    );
    expect(e).toMatchObject({
      chain: 'cali-fw-cali44c7791d104',
      type: 'rule',
      handle: 79,
      verdict: 'jump',
      target: 'cali-pro-kns.demo',
      text: 'counter packets 1 bytes 60 jump cali-pro-kns.demo',
    });
    expect(
      parseTraceLine(
        'trace id 1 ip filter cali-pi-x rule meta mark & 0x1 == 0x1 drop # handle 87 (verdict drop)',
      ),
    ).toMatchObject({
      verdict: 'drop',
      handle: 87,
    });
  });

  it('reads a chain policy line and ignores anything else', () => {
    expect(parseTraceLine('trace id 9 ip raw PREROUTING policy accept meta mark 0x00080000')).toMatchObject({
      type: 'policy',
      verdict: 'accept',
    });
    expect(
      parseTraceLine('# Warning: table ip filter is managed by iptables-nft, do not touch!'),
    ).toBeUndefined();
    expect(parseTraceLine('')).toBeUndefined();
  });
});

describe('traceMatchExpression', () => {
  it('matches only the first packet of a TCP probe, by addresses and both ports', () => {
    expect(
      traceMatchExpression({
        src: '10.0.0.1',
        dst: '10.0.0.2',
        protocol: 'tcp',
        srcPort: 40000,
        dstPort: 80,
      }),
    ).toBe(
      'ip saddr 10.0.0.1 ip daddr 10.0.0.2 meta l4proto tcp tcp sport 40000 tcp dport 80 tcp flags & (syn | ack) == syn',
    );
  });

  it('matches echo requests for ICMP and UDP by destination port', () => {
    expect(traceMatchExpression({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'icmp' })).toBe(
      'ip saddr 10.0.0.1 ip daddr 10.0.0.2 icmp type echo-request',
    );
    expect(traceMatchExpression({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'udp', dstPort: 53 })).toBe(
      'ip saddr 10.0.0.1 ip daddr 10.0.0.2 meta l4proto udp udp dport 53',
    );
  });

  it('refuses an address that is not IPv4, naming the field', () => {
    expect(() =>
      traceMatchExpression({ src: '10.0.0.1; flush ruleset', dst: '10.0.0.2', protocol: 'icmp' }),
    ).toThrow(/trace src "10.0.0.1; flush ruleset": expected an IPv4 address/);
  });
});

describe('traceTableScript', () => {
  it('hooks prerouting and output before every other table', () => {
    const script = traceTableScript(
      'calico_trace_1',
      { src: '10.0.0.1', dst: '10.0.0.2', protocol: 'icmp' },
      20001,
    );
    expect(script).toContain('type filter hook prerouting priority -400; policy accept;');
    expect(script).toContain('icmp type echo-request meta nftrace set 1');
    expect(script).toContain('ip daddr 127.0.0.1 tcp dport 20001-20512 ');
  });

  it('refuses a table name nft would not take', () => {
    expect(() =>
      traceTableScript('bad name', { src: '10.0.0.1', dst: '10.0.0.2', protocol: 'icmp' }, 1),
    ).toThrow(/trace table "bad name"/);
  });
});
