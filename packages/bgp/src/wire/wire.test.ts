import { describe, expect, it } from 'vitest';
import { BgpError } from './bgp-error.ts';
import { AttrFlag, AttrType, CeaseSubcode, ErrorCode } from './constants.ts';
import { MessageFramer } from './framer.ts';
import {
  decodeMessage,
  encodeEndOfRib,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  encodeUpdate,
  packUpdates,
  packWithdrawals,
  type UpdateMessage,
} from './messages.ts';
import { type Capability, negotiate, type OpenMessage } from './open.ts';
import { formatIpv6, normalizeIp, parseIpv6, parsePrefix, writeIpv4PrefixNlri, writeNlri } from './prefix.ts';

const ctx4 = { fourOctetAs: true };
const ctx2 = { fourOctetAs: false };

function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}

function updateFrame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(19 + body.length).fill(0xff, 0, 16);
  out[16] = out.length >> 8;
  out[17] = out.length & 0xff;
  out[18] = 2;
  out.set(body, 19);
  return out;
}

/** UPDATE body from raw attribute bytes and IPv4 NLRI bytes. */
function rawUpdate(attrs: Uint8Array, nlri: Uint8Array, withdrawn = new Uint8Array(0)): Uint8Array {
  const body = new Uint8Array(4 + withdrawn.length + attrs.length + nlri.length);
  body[0] = withdrawn.length >> 8;
  body[1] = withdrawn.length & 0xff;
  body.set(withdrawn, 2);
  let p = 2 + withdrawn.length;
  body[p++] = attrs.length >> 8;
  body[p++] = attrs.length & 0xff;
  body.set(attrs, p);
  body.set(nlri, p + attrs.length);
  return updateFrame(body);
}

const ORIGIN_IGP = hex('40 01 01 00');
const ASPATH_4 = hex('40 02 06 02 01 00 00 fd e9'); // sequence [65001]
const NH = hex('40 03 04 c0 00 02 01');
const NLRI_240 = hex('20 f0 00 00 01'); // 240.0.0.1/32

describe('addresses and prefixes', () => {
  it('formats IPv6 per RFC 5952 and parses the forms it prints', () => {
    for (const s of [
      '::',
      '::1',
      '2001:db8::',
      '2001:db8:1::/64'.split('/')[0]!,
      'fe80::1:2',
      '2001:db8:0:1:1:1:1:1',
      '::ffff:192.0.2.1',
    ]) {
      const b = parseIpv6(s)!;
      expect(b).toBeDefined();
      expect(parseIpv6(formatIpv6(b))).toEqual(b);
    }
    expect(formatIpv6(parseIpv6('2001:0db8:0000:0000:0001:0000:0000:0001')!)).toBe('2001:db8::1:0:0:1');
    expect(normalizeIp('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(parsePrefix('10.0.0.1/24')).toBeUndefined(); // host bits set
    expect(parsePrefix('10.0.0.0/33')).toBeUndefined();
    expect(parsePrefix('2001:db8::/32')?.length).toBe(32);
  });

  it('writes an IPv4 prefix as NLRI straight from its text, exactly as parsePrefix + writeNlri do', () => {
    const direct = new Uint8Array(8);
    const viaParse = new Uint8Array(8);
    for (const s of [
      '0.0.0.0/0',
      '10.0.0.0/8',
      '10.128.0.0/9',
      '192.0.2.0/24',
      '240.1.2.3/32',
      '1.2.3.4/30',
    ]) {
      const end = writeIpv4PrefixNlri(s, direct, 1);
      expect(end).toBe(writeNlri(viaParse, 1, parsePrefix(s)!, 0, false));
      expect(direct.subarray(1, end)).toEqual(viaParse.subarray(1, end));
    }
    // Not canonical IPv4 prefixes: the caller falls back to parsePrefix (and its error).
    for (const s of [
      '10.0.0.1/24',
      '10.0.0.0/33',
      '256.0.0.0/8',
      '10.0.0/8',
      '10.0.0.0.0/8',
      '10.0.0.0',
      '10.0.0.0/',
      '2001:db8::/32',
      '1.2.3.4/032',
      'a.b.c.d/8',
      '01234.0.0.0/8',
    ]) {
      expect(writeIpv4PrefixNlri(s, direct, 0)).toBe(-1);
    }
  });
});

describe('OPEN', () => {
  const caps: Capability[] = [
    { kind: 'multiprotocol', afi: 1, safi: 1 },
    { kind: 'multiprotocol', afi: 2, safi: 1 },
    { kind: 'route-refresh' },
    { kind: 'enhanced-route-refresh' },
    { kind: 'four-octet-as', asNumber: 4200000001 },
    {
      kind: 'graceful-restart',
      restarting: true,
      notification: false,
      restartTime: 120,
      families: [{ afi: 1, safi: 1, forwardingPreserved: true }],
    },
    { kind: 'extended-next-hop', entries: [{ afi: 1, safi: 1, nextHopAfi: 2 }] },
    { kind: 'add-path', entries: [{ afi: 1, safi: 1, mode: 3 }] },
    { kind: 'extended-message' },
    { kind: 'unknown', code: 73, value: hex('0361626300') },
  ];

  it('round-trips every capability and puts AS_TRANS in My AS for 4-octet ASes', () => {
    const bytes = encodeOpen({ myAs: 4200000001, holdTime: 90, bgpId: '192.0.2.1', capabilities: caps });
    const m = decodeMessage(bytes, ctx4) as OpenMessage;
    expect(m.type).toBe('open');
    expect(m.myAs).toBe(23456);
    expect(m.holdTime).toBe(90);
    expect(m.bgpId).toBe('192.0.2.1');
    expect(m.capabilities).toEqual(caps);
  });

  it('negotiates the common families, hold time min and the real peer AS', () => {
    const remote = decodeMessage(
      encodeOpen({ myAs: 23456, holdTime: 9, bgpId: '192.0.2.2', capabilities: caps.slice(0, 5) }),
      ctx4,
    ) as OpenMessage;
    const n = negotiate(caps, 90, remote);
    expect([...n.families].sort()).toEqual(['1/1', '2/1']);
    expect(n.holdTime).toBe(9);
    expect(n.peerAs).toBe(4200000001);
    expect(n.fourOctetAs).toBe(true);
    expect(n.enhancedRouteRefresh).toBe(true);
    expect(n.addPathSend.size).toBe(0);
  });

  it('rejects version 3 with Unsupported Version Number and the version we speak', () => {
    const bytes = encodeOpen({ myAs: 1, holdTime: 90, bgpId: '192.0.2.1', capabilities: [] });
    bytes[19] = 3;
    const e = catchError(() => decodeMessage(bytes, ctx4));
    expect([e.errorCode, e.errorSubcode]).toEqual([2, 1]);
    expect([...e.data]).toEqual([0, 4]);
  });
});

function catchError(f: () => unknown): BgpError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(BgpError);
    return e as BgpError;
  }
  throw new Error('expected a BgpError');
}

describe('UPDATE', () => {
  it('round-trips every attribute on a 4-octet session', () => {
    const u = {
      withdrawn: [{ prefix: '240.1.0.0/16', pathId: 0 }],
      nlri: [
        { prefix: '240.0.0.1/32', pathId: 0 },
        { prefix: '198.18.0.0/15', pathId: 0 },
      ],
      attributes: {
        origin: 0 as const,
        asPath: [
          { type: 3 as const, asns: [65010] },
          { type: 2 as const, asns: [65001, 4200000001] },
          { type: 1 as const, asns: [7, 8] },
        ],
        nextHop: '192.0.2.1',
        med: 50,
        localPref: 200,
        atomicAggregate: true,
        aggregator: { asNumber: 4200000001, address: '192.0.2.9' },
        communities: [65000 * 65536 + 100, 0xffffff01],
        largeCommunities: ['4200000001:1:2'],
        originatorId: '192.0.2.7',
        clusterList: ['192.0.2.8', '192.0.2.9'],
        unknown: [
          { flags: AttrFlag.Optional | AttrFlag.Transitive | AttrFlag.Partial, code: 99, value: hex('0102') },
        ],
      },
    };
    const m = decodeMessage(encodeUpdate(u, ctx4), ctx4) as UpdateMessage;
    expect(m.problems).toEqual([]);
    expect(m.treatAsWithdraw).toBe(false);
    expect(m.withdrawn).toEqual(u.withdrawn);
    expect(m.nlri).toEqual(u.nlri);
    expect(m.attributes).toEqual(u.attributes);
  });

  it('uses AS_TRANS and AS4_PATH on 2-octet sessions and merges them back (RFC 6793)', () => {
    const attributes = {
      origin: 0 as const,
      asPath: [{ type: 2 as const, asns: [65001, 4200000001, 65002] }],
      nextHop: '192.0.2.1',
      aggregator: { asNumber: 4200000001, address: '192.0.2.9' },
    };
    const bytes = encodeUpdate(
      { withdrawn: [], nlri: [{ prefix: '240.0.0.0/8', pathId: 0 }], attributes },
      ctx2,
    );
    const asBytes = Buffer.from(bytes).toString('hex');
    expect(asBytes).toContain('fde95ba0fdea'); // 65001, AS_TRANS, 65002 as 2-octet
    const m = decodeMessage(bytes, ctx2) as UpdateMessage;
    expect(m.attributes.asPath).toEqual(attributes.asPath);
    expect(m.attributes.aggregator).toEqual(attributes.aggregator);
  });

  it('carries IPv6 in MP_REACH with a link-local next hop and withdraws in MP_UNREACH', () => {
    const bytes = encodeUpdate(
      {
        withdrawn: [],
        nlri: [],
        attributes: { origin: 0, asPath: [] },
        mpReach: {
          afi: 2,
          safi: 1,
          nextHop: '2001:db8::1',
          linkLocalNextHop: 'fe80::1',
          nlri: [{ prefix: '2001:db8:1::/64', pathId: 0 }],
        },
        mpUnreach: { afi: 2, safi: 1, withdrawn: [{ prefix: '2001:db8:2::/48', pathId: 0 }] },
      },
      ctx4,
    );
    const m = decodeMessage(bytes, ctx4) as UpdateMessage;
    expect(m.mpReach).toEqual({
      afi: 2,
      safi: 1,
      nextHop: '2001:db8::1',
      linkLocalNextHop: 'fe80::1',
      nlri: [{ prefix: '2001:db8:1::/64', pathId: 0 }],
    });
    expect(m.mpUnreach?.withdrawn).toEqual([{ prefix: '2001:db8:2::/48', pathId: 0 }]);
  });

  it('decodes ADD-PATH identifiers only where negotiated', () => {
    const ap = { fourOctetAs: true, addPathSend: new Set(['1/1']), addPathReceive: new Set(['1/1']) };
    const bytes = encodeUpdate(
      {
        withdrawn: [],
        nlri: [{ prefix: '240.0.0.0/24', pathId: 7 }],
        attributes: { origin: 0, asPath: [], nextHop: '192.0.2.1' },
      },
      ap,
    );
    expect((decodeMessage(bytes, ap) as UpdateMessage).nlri).toEqual([{ prefix: '240.0.0.0/24', pathId: 7 }]);
  });

  it('recognises End-of-RIB for IPv4 and IPv6', () => {
    expect((decodeMessage(encodeEndOfRib(1, 1), ctx4) as UpdateMessage).endOfRib).toBe('1/1');
    expect((decodeMessage(encodeEndOfRib(2, 1), ctx4) as UpdateMessage).endOfRib).toBe('2/1');
  });

  it('packs 100k /32s sharing attributes into ~800 per 4096-octet UPDATE', () => {
    const routes = Array.from({ length: 100_000 }, (_, i) => ({
      prefix: `240.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`,
    }));
    const msgs = packUpdates({
      afi: 1,
      safi: 1,
      attributes: { origin: 0, asPath: [{ type: 2, asns: [64512] }] },
      nextHop: '192.0.2.1',
      routes,
      ctx: ctx4,
    });
    expect(msgs.length).toBeLessThanOrEqual(130);
    let n = 0;
    for (const b of msgs) {
      expect(b.length).toBeLessThanOrEqual(4096);
      n += (decodeMessage(b, ctx4) as UpdateMessage).nlri.length;
    }
    expect(n).toBe(100_000);
    const v6 = packUpdates({
      afi: 2,
      safi: 1,
      attributes: { origin: 0, asPath: [] },
      nextHop: '2001:db8::1',
      routes: Array.from({ length: 2000 }, (_, i) => ({ prefix: `2001:db8:${i.toString(16)}::/48` })),
      ctx: ctx4,
    });
    expect(v6.reduce((s, b) => s + (decodeMessage(b, ctx4) as UpdateMessage).mpReach!.nlri.length, 0)).toBe(
      2000,
    );
    const big = packUpdates({
      afi: 1,
      safi: 1,
      attributes: { origin: 0, asPath: [] },
      nextHop: '192.0.2.1',
      routes,
      ctx: { ...ctx4, maxMessageLength: 65535 },
    });
    expect(big.length).toBeLessThan(10);
    const wd = packWithdrawals({ afi: 1, safi: 1, routes, ctx: ctx4 });
    expect(wd.reduce((s, b) => s + (decodeMessage(b, ctx4) as UpdateMessage).withdrawn.length, 0)).toBe(
      100_000,
    );
    const wd6 = packWithdrawals({ afi: 2, safi: 1, routes: [{ prefix: '2001:db8::/32' }], ctx: ctx4 });
    expect((decodeMessage(wd6[0]!, ctx4) as UpdateMessage).mpUnreach?.withdrawn).toHaveLength(1);
  });
});

describe('RFC 7606 error handling', () => {
  const decode = (attrs: Uint8Array, nlri = NLRI_240) =>
    decodeMessage(rawUpdate(attrs, nlri), ctx4) as UpdateMessage;
  const cat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

  it('treats ORIGIN=5 as withdraw (§7.1)', () => {
    const m = decode(cat(hex('40 01 01 05'), ASPATH_4, NH));
    expect(m.treatAsWithdraw).toBe(true);
    expect(m.nlri).toEqual([{ prefix: '240.0.0.1/32', pathId: 0 }]);
    expect(m.problems[0]?.action).toBe('treat-as-withdraw');
  });

  it('treats a multicast or zero NEXT_HOP as withdraw (RFC 4271 §6.3)', () => {
    expect(decode(cat(ORIGIN_IGP, ASPATH_4, hex('40 03 04 e0 00 00 01'))).treatAsWithdraw).toBe(true);
    expect(decode(cat(ORIGIN_IGP, ASPATH_4, hex('40 03 04 00 00 00 00'))).treatAsWithdraw).toBe(true);
  });

  it('treats a missing mandatory attribute as withdraw (§3 d)', () => {
    expect(decode(cat(ORIGIN_IGP, ASPATH_4)).treatAsWithdraw).toBe(true);
  });

  it('discards a malformed ATOMIC_AGGREGATE and AGGREGATOR but keeps the routes (§7.6, §7.7)', () => {
    const m = decode(cat(ORIGIN_IGP, ASPATH_4, NH, hex('40 06 01 00'), hex('c0 07 03 00 00 01')));
    expect(m.treatAsWithdraw).toBe(false);
    expect(m.problems.map((p) => p.action)).toEqual(['attribute-discard', 'attribute-discard']);
    expect(m.attributes.atomicAggregate).toBeUndefined();
  });

  it('keeps the first of duplicate attributes (§3 g)', () => {
    const m = decode(cat(ORIGIN_IGP, hex('40 01 01 02'), ASPATH_4, NH));
    expect(m.attributes.origin).toBe(0);
    expect(m.treatAsWithdraw).toBe(false);
  });

  it('treats wrong flags on a well-known attribute as malformed (§3 c)', () => {
    expect(decode(cat(hex('c0 01 01 00'), ASPATH_4, NH)).treatAsWithdraw).toBe(true);
  });

  it('passes unknown optional transitive attributes with Partial and drops non-transitive ones', () => {
    const m = decode(cat(ORIGIN_IGP, ASPATH_4, NH, hex('c0 63 01 aa'), hex('80 64 01 bb')));
    expect(m.attributes.unknown).toEqual([{ flags: 0xe0, code: 0x63, value: hex('aa') }]);
  });

  it('resets the session on an unrecognised well-known attribute, bad NLRI, duplicate MP_REACH', () => {
    let e = catchError(() => decode(cat(ORIGIN_IGP, ASPATH_4, NH, hex('40 63 00'))));
    expect([e.errorCode, e.errorSubcode]).toEqual([ErrorCode.Update, 2]);
    e = catchError(() => decode(cat(ORIGIN_IGP, ASPATH_4, NH), hex('21 f0 00 00 01 00')));
    expect([e.errorCode, e.errorSubcode]).toEqual([3, 10]);
    const mp = hex('80 0f 03 00 02 01');
    e = catchError(() => decode(cat(mp, mp), new Uint8Array(0)));
    expect([e.errorCode, e.errorSubcode]).toEqual([3, 1]);
  });

  it('resets on an attribute-length field overrunning the message (3/1)', () => {
    const f = rawUpdate(cat(ORIGIN_IGP), new Uint8Array(0));
    f[19 + 3] = 200;
    expect(catchError(() => decodeMessage(f, ctx4)).errorSubcode).toBe(1);
  });
});

describe('other messages and framing', () => {
  it('round-trips NOTIFICATION, KEEPALIVE and ROUTE-REFRESH', () => {
    expect(decodeMessage(encodeNotification(6, CeaseSubcode.AdminShutdown, hex('01')), ctx4)).toEqual({
      type: 'notification',
      code: 6,
      subcode: 2,
      data: hex('01'),
    });
    expect(decodeMessage(encodeKeepalive(), ctx4)).toEqual({ type: 'keepalive' });
    expect(decodeMessage(encodeRouteRefresh(2, 1, 1), ctx4)).toEqual({
      type: 'route-refresh',
      afi: 2,
      safi: 1,
      subtype: 1,
    });
  });

  it('frames a stream split at every byte, and rejects bad markers, lengths and types', () => {
    const stream = Uint8Array.from([...encodeKeepalive(), ...encodeRouteRefresh(1, 1), ...encodeKeepalive()]);
    const f = new MessageFramer();
    const got: number[] = [];
    for (const b of stream) for (const fr of f.push(Uint8Array.of(b))) got.push(fr[18]!);
    expect(got).toEqual([4, 5, 4]);
    // Any cut of a stream of UPDATEs of different sizes yields the same messages, byte for byte.
    const updates = packUpdates({
      afi: 1,
      safi: 1,
      attributes: { origin: 0, asPath: [] },
      nextHop: '192.0.2.1',
      routes: Array.from({ length: 3000 }, (_, i) => ({ prefix: `10.${i >> 8}.${i & 255}.0/24` })),
      ctx: ctx4,
    });
    const all = Uint8Array.from([
      ...encodeKeepalive(),
      ...updates.flatMap((u) => [...u]),
      ...encodeKeepalive(),
    ]);
    for (const cuts of [[1, 18, 19, 20], [4095, 4097, 9000], [5, 12_000], [all.length - 1]]) {
      const fr = new MessageFramer();
      const out: Uint8Array[] = [];
      let prev = 0;
      for (const c of [...cuts, all.length]) {
        out.push(...fr.push(all.slice(prev, c)).map((m) => m.slice()));
        prev = c;
      }
      expect(out.length).toBe(updates.length + 2);
      expect(Uint8Array.from(out.flatMap((m) => [...m]))).toEqual(all);
      expect(fr.buffered).toBe(0);
    }
    const bad = encodeKeepalive();
    bad[3] = 0;
    expect(catchError(() => new MessageFramer().push(bad)).errorSubcode).toBe(1);
    const long = encodeKeepalive();
    long[17] = 20;
    expect(catchError(() => new MessageFramer().push(long)).errorSubcode).toBe(2);
    const type = encodeKeepalive();
    type[18] = 9;
    expect(catchError(() => new MessageFramer().push(type)).data).toEqual(Uint8Array.of(9));
  });
});

void AttrType;
