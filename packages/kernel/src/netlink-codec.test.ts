import { describe, expect, it } from 'vitest';
import {
  attr,
  buildAddress,
  buildFdb,
  buildIpipLink,
  buildLinkChange,
  buildNeighbour,
  buildRoute,
  buildVethLink,
  buildVxlanLink,
  parseAddress,
  parseAttrs,
  parseErrno,
  parseLink,
  parseNeighbour,
  parseRoute,
} from './netlink-codec.ts';

const hex = (b: Buffer): string => b.toString('hex');

describe('netlink attributes', () => {
  it('pads payloads to 4 bytes but records the unpadded length', () => {
    const a = attr(3, Buffer.from('eth0\0'));
    expect(hex(a)).toBe('0900' + '0300' + '6574683000' + '000000');
    expect(parseAttrs(a).get(3)?.toString()).toBe('eth0\0');
  });

  it('strips NLA_F_NESTED from parsed types', () => {
    const nested = Buffer.from(attr(18, Buffer.alloc(0)));
    nested.writeUInt16LE(18 | 0x8000, 2);
    expect([...parseAttrs(nested).keys()]).toEqual([18]);
  });
});

describe('link messages', () => {
  it('builds a veth whose peer carries its own ifinfomsg and IFLA_NET_NS_FD', () => {
    const body = buildVethLink({ name: 'cali1', mtu: 1450, peer: { name: 'eth0', netnsFd: 42 } });
    const top = parseAttrs(body, 16);
    expect(top.get(3)?.toString()).toBe('cali1\0');
    expect(top.get(4)?.readUInt32LE(0)).toBe(1450);
    const info = parseAttrs(top.get(18) as Buffer);
    expect(info.get(1)?.toString()).toBe('veth\0');
    const peer = parseAttrs(info.get(2) as Buffer).get(1) as Buffer; // VETH_INFO_PEER
    const peerAttrs = parseAttrs(peer, 16);
    expect(peerAttrs.get(3)?.toString()).toBe('eth0\0');
    expect(peerAttrs.get(28)?.readUInt32LE(0)).toBe(42);
  });

  it('builds VXLAN info: VNI, port in network order, local, learning off, underlay', () => {
    const body = buildVxlanLink({ name: 'vxlan.calico', vni: 4096, local: '192.0.2.11', linkIndex: 7 });
    const info = parseAttrs(parseAttrs(body, 16).get(18) as Buffer);
    const data = parseAttrs(info.get(2) as Buffer);
    expect(data.get(1)?.readUInt32LE(0)).toBe(4096);
    expect(hex(data.get(15) as Buffer)).toBe('12b5'); // 4789 big-endian
    expect(hex(data.get(4) as Buffer)).toBe('c000020b');
    expect(data.get(7)?.readUInt8(0)).toBe(0);
    expect(data.get(3)?.readUInt32LE(0)).toBe(7);
  });

  it('builds IPIP info with pmtudisc so a ttl of 0 (inherit) is accepted', () => {
    const data = parseAttrs(
      parseAttrs(parseAttrs(buildIpipLink({ name: 'tunl0' }), 16).get(18) as Buffer).get(2) as Buffer,
    );
    expect(data.get(4)?.readUInt8(0)).toBe(0);
    expect(data.get(10)?.readUInt8(0)).toBe(1);
  });

  it('sets IFF_UP only in the change mask it touches', () => {
    const up = buildLinkChange(5, { up: true });
    expect([up.readInt32LE(4), up.readUInt32LE(8), up.readUInt32LE(12)]).toEqual([5, 1, 1]);
    const mtuOnly = buildLinkChange(5, { mtu: 1400 });
    expect([mtuOnly.readUInt32LE(8), mtuOnly.readUInt32LE(12)]).toEqual([0, 0]);
    const down = buildLinkChange(5, { up: false, master: 0 });
    expect([down.readUInt32LE(8), down.readUInt32LE(12)]).toEqual([0, 1]);
    expect(parseAttrs(down, 16).get(10)?.readUInt32LE(0)).toBe(0);
  });

  it('parses a link with kind and VXLAN data back', () => {
    const body = buildVxlanLink({ name: 'vx', vni: 9, port: 8472, mac: '66:00:00:00:00:01', mtu: 1450 });
    body.writeInt32LE(12, 4);
    const link = parseLink(body);
    expect(link).toMatchObject({
      index: 12,
      name: 'vx',
      kind: 'vxlan',
      mtu: 1450,
      mac: '66:00:00:00:00:01',
      up: false,
    });
    expect(link.vxlan).toMatchObject({ vni: 9, port: 8472, learning: false });
  });
});

describe('address, route and neighbour messages', () => {
  it('builds an IPv6 address with IFA_F_NODAD and parses it back', () => {
    const body = buildAddress({ index: 3, cidr: '2001:db8::11/64', nodad: true });
    expect(body.readUInt8(0)).toBe(10);
    expect(body.readUInt8(1)).toBe(64);
    expect(body.readUInt8(2)).toBe(0x02);
    expect(parseAddress(body)).toMatchObject({ index: 3, family: 6, cidr: '2001:db8::11/64' });
  });

  it('builds a Calico block route: proto 80, table main, universe scope via gateway', () => {
    const body = buildRoute({ dst: '10.65.0.0/26', gateway: '192.0.2.12', protocol: 80, metric: 5 });
    expect([...body.subarray(0, 8)]).toEqual([2, 26, 0, 0, 254, 80, 0, 1]);
    const r = parseRoute(body);
    expect(r).toMatchObject({
      dst: '10.65.0.0/26',
      gateway: '192.0.2.12',
      protocol: 80,
      metric: 5,
      table: 254,
      type: 'unicast',
    });
  });

  it('gives a route without a protocol RTPROT_BOOT (3), as `ip route add` does; deletes carry none', () => {
    expect(buildRoute({ dst: '10.65.0.1/32', dev: 9 }).readUInt8(5)).toBe(3);
    expect(parseRoute(buildRoute({ dst: '10.65.0.1/32', dev: 9 })).protocol).toBe(3);
    expect(buildRoute({ dst: '10.65.0.1/32', dev: 9, protocol: 80 }, true).readUInt8(5)).toBe(0);
  });

  it('gives device routes link scope, blackholes universe scope, big tables RTA_TABLE + compat', () => {
    expect(buildRoute({ dst: '10.65.0.1/32', dev: 9 }).readUInt8(6)).toBe(253);
    const bh = buildRoute({ dst: '10.65.0.0/26', type: 'blackhole', table: 1000 });
    expect([bh.readUInt8(4), bh.readUInt8(6), bh.readUInt8(7)]).toEqual([252, 0, 6]);
    expect(parseRoute(bh).table).toBe(1000);
    const def6 = buildRoute({ dst: 'default', gateway: 'fe80::1', dev: 2 });
    expect([def6.readUInt8(0), def6.readUInt8(1)]).toEqual([10, 0]);
    expect(parseAttrs(def6, 12).has(1)).toBe(false); // no RTA_DST for /0
  });

  it('encodes multipath next hops with weight − 1 in rtnh_hops', () => {
    const body = buildRoute({
      dst: '10.0.0.0/24',
      nexthops: [
        { gateway: '192.0.2.1', dev: 2, weight: 1 },
        { gateway: '192.0.2.2', dev: 3, weight: 4, onlink: true },
      ],
    });
    const mp = parseAttrs(body, 12).get(9) as Buffer;
    expect(mp.readUInt16LE(0)).toBe(16); // rtnexthop (8) + RTA_GATEWAY (8)
    expect(mp.readUInt8(16 + 3)).toBe(3);
    expect(mp.readUInt8(16 + 2)).toBe(4); // RTNH_F_ONLINK
    expect(parseRoute(body).nexthops).toEqual([
      { gateway: '192.0.2.1', dev: 2, weight: 1, onlink: false },
      { gateway: '192.0.2.2', dev: 3, weight: 4, onlink: true },
    ]);
  });

  it('builds permanent neighbours and NTF_SELF FDB entries', () => {
    const n = buildNeighbour({ dev: 4, address: '10.244.2.0', mac: '66:00:00:00:00:02' });
    expect(parseNeighbour(n)).toMatchObject({
      family: 2,
      dev: 4,
      address: '10.244.2.0',
      mac: '66:00:00:00:00:02',
      permanent: true,
    });
    const f = buildFdb({ dev: 4, mac: '66:00:00:00:00:02', dst: '192.0.2.12' });
    expect(parseNeighbour(f)).toMatchObject({ family: 7, flags: 2, address: '192.0.2.12', permanent: true });
  });

  it('reads errno from NLMSG_ERROR', () => {
    const e = Buffer.alloc(20);
    e.writeInt32LE(-17, 0);
    expect(parseErrno(e)).toBe(17);
  });
});
