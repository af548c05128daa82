import { describe, expect, it } from 'vitest';
import { decodePacketHeaders, parseNflogPacket } from './nflog.ts';

/** A TCP SYN 10.0.0.1:40000 → 10.0.0.2:80 (IPv4 header without options). */
function tcpSyn(): Buffer {
  const b = Buffer.alloc(40);
  b[0] = 0x45;
  b.writeUInt16BE(40, 2);
  b[8] = 64;
  b[9] = 6;
  Buffer.from([10, 0, 0, 1]).copy(b, 12);
  Buffer.from([10, 0, 0, 2]).copy(b, 16);
  b.writeUInt16BE(40000, 20);
  b.writeUInt16BE(80, 22);
  return b;
}

function nla(type: number, value: Buffer): Buffer {
  const b = Buffer.alloc((4 + value.length + 3) & ~3);
  b.writeUInt16LE(4 + value.length, 0);
  b.writeUInt16LE(type, 2);
  value.copy(b, 4);
  return b;
}

describe('nflog codec', () => {
  it('reads group, prefix, hook, interfaces and payload from a packet message', () => {
    const hdr = Buffer.from([0x08, 0x00, 2, 0]);
    const msg = Buffer.concat([
      Buffer.from([2, 0, 0, 1]),
      nla(1, hdr),
      nla(5, Buffer.from([0, 0, 0, 9])),
      nla(10, Buffer.from('TI|default\0')),
      nla(9, tcpSyn()),
    ]);
    const p = parseNflogPacket(msg);
    expect(p).toMatchObject({ group: 1, prefix: 'TI|default', hook: 2, hwProtocol: 0x800, outIfindex: 9 });
    expect(p.inIfindex).toBeUndefined();
    expect(decodePacketHeaders(p.payload)).toEqual({
      family: 4,
      protocol: 6,
      srcIp: '10.0.0.1',
      dstIp: '10.0.0.2',
      srcPort: 40000,
      dstPort: 80,
      icmpType: undefined,
      icmpCode: undefined,
    });
  });

  it('gives no transport ports for a later fragment and nothing for a non-IP payload', () => {
    const frag = tcpSyn();
    frag.writeUInt16BE(100, 6);
    expect(decodePacketHeaders(frag)).toMatchObject({ protocol: 6, srcPort: undefined, dstPort: undefined });
    expect(decodePacketHeaders(Buffer.from([0x00, 1, 2]))).toBeUndefined();
  });
});
