/**
 * Path attributes (RFC 4271 §4.3, §5) with RFC 7606 revised error handling: each attribute's
 * decoder reports a malformation and the table below says what it costs — the attribute
 * (attribute-discard), the routes in the UPDATE (treat-as-withdraw) or the session.
 */
import { BgpError } from './bgp-error.ts';
import {
  Afi,
  AS_TRANS,
  AsPathSegmentType,
  AttrFlag,
  AttrType,
  ErrorCode,
  type Origin,
  UpdateSubcode,
} from './constants.ts';
import { decodeNlri, formatIpv4, formatIpv6, type Nlri, parseIpv4, parseIpv6 } from './prefix.ts';

export interface AsPathSegment {
  type: AsPathSegmentType;
  asns: number[];
}

export interface UnknownAttribute {
  flags: number;
  code: number;
  value: Uint8Array;
}

export interface PathAttributes {
  origin?: Origin;
  /** Always the 4-octet view: AS4_PATH is merged in on 2-octet sessions (RFC 6793 §4.2.3). */
  asPath?: AsPathSegment[];
  nextHop?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: { asNumber: number; address: string };
  /** RFC 1997, each as a 32-bit number (high 16 bits AS, low 16 bits value). */
  communities?: number[];
  /** RFC 8092, each as "global:local1:local2". */
  largeCommunities?: string[];
  /** RFC 4456 */
  originatorId?: string;
  clusterList?: string[];
  /** Unrecognised optional transitive attributes, passed on with the Partial bit (RFC 4271 §5). */
  unknown?: UnknownAttribute[];
}

export interface MpReach {
  afi: number;
  safi: number;
  nextHop: string;
  /** RFC 2545 §3: the second, link-local address of a 32-octet IPv6 next hop. */
  linkLocalNextHop?: string;
  nlri: Nlri[];
}

export interface MpUnreach {
  afi: number;
  safi: number;
  withdrawn: Nlri[];
}

export type ErrorAction = 'attribute-discard' | 'treat-as-withdraw';

export interface AttributeProblem {
  attrType: number;
  action: ErrorAction;
  reason: string;
}

export interface DecodeContext {
  fourOctetAs: boolean;
  /** Families ("afi/safi") where the peer sends RFC 7911 path identifiers. */
  addPathReceive?: ReadonlySet<string>;
}

export interface DecodedAttributes {
  attributes: PathAttributes;
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  problems: AttributeProblem[];
  seen: Set<number>;
}

/** Expected flag bits (Optional, Transitive) for the attributes we know. */
const KNOWN_FLAGS: Record<number, number> = {
  [AttrType.Origin]: AttrFlag.Transitive,
  [AttrType.AsPath]: AttrFlag.Transitive,
  [AttrType.NextHop]: AttrFlag.Transitive,
  [AttrType.Med]: AttrFlag.Optional,
  [AttrType.LocalPref]: AttrFlag.Transitive,
  [AttrType.AtomicAggregate]: AttrFlag.Transitive,
  [AttrType.Aggregator]: AttrFlag.Optional | AttrFlag.Transitive,
  [AttrType.Communities]: AttrFlag.Optional | AttrFlag.Transitive,
  [AttrType.OriginatorId]: AttrFlag.Optional,
  [AttrType.ClusterList]: AttrFlag.Optional,
  [AttrType.MpReachNlri]: AttrFlag.Optional,
  [AttrType.MpUnreachNlri]: AttrFlag.Optional,
  [AttrType.As4Path]: AttrFlag.Optional | AttrFlag.Transitive,
  [AttrType.As4Aggregator]: AttrFlag.Optional | AttrFlag.Transitive,
  [AttrType.LargeCommunity]: AttrFlag.Optional | AttrFlag.Transitive,
};

/** RFC 7606 §7: the action for a malformed instance of each attribute. */
const MALFORMED_ACTION: Record<number, ErrorAction> = {
  [AttrType.Origin]: 'treat-as-withdraw', // §7.1
  [AttrType.AsPath]: 'treat-as-withdraw', // §7.2
  [AttrType.NextHop]: 'treat-as-withdraw', // §7.3
  [AttrType.Med]: 'treat-as-withdraw', // §7.4
  [AttrType.LocalPref]: 'treat-as-withdraw', // §7.5
  [AttrType.AtomicAggregate]: 'attribute-discard', // §7.6
  [AttrType.Aggregator]: 'attribute-discard', // §7.7
  [AttrType.Communities]: 'treat-as-withdraw', // §7.8
  [AttrType.OriginatorId]: 'treat-as-withdraw', // §7.9
  [AttrType.ClusterList]: 'treat-as-withdraw', // §7.10
  [AttrType.As4Path]: 'attribute-discard', // RFC 6793 §6 / RFC 7606 §7.2
  [AttrType.As4Aggregator]: 'attribute-discard',
  [AttrType.LargeCommunity]: 'treat-as-withdraw', // RFC 8092 §6
};

class Malformed {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

function sessionReset(code: string, subcode: number, msg: string, data?: Uint8Array): BgpError {
  return new BgpError(code, ErrorCode.Update, subcode, msg, data);
}

const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number) =>
  ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

function decodeAsPath(v: Uint8Array, asSize: 2 | 4): AsPathSegment[] {
  const segs: AsPathSegment[] = [];
  let p = 0;
  while (p < v.length) {
    if (p + 2 > v.length) throw new Malformed('AS_PATH segment header truncated');
    const type = v[p]!;
    const count = v[p + 1]!;
    if (type < 1 || type > 4) throw new Malformed(`AS_PATH segment type ${type}`);
    if (count === 0) throw new Malformed('AS_PATH segment of zero length');
    const end = p + 2 + count * asSize;
    if (end > v.length) throw new Malformed('AS_PATH segment overruns the attribute');
    const asns = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      const o = p + 2 + i * asSize;
      asns[i] = asSize === 4 ? u32(v, o) : u16(v, o);
    }
    segs.push({ type: type as AsPathSegmentType, asns });
    p = end;
  }
  return segs;
}

/** RFC 4271 §9.1.2.2 (a): a set counts 1, confederation segments 0. */
export function asPathLength(path: readonly AsPathSegment[] | undefined): number {
  if (!path) return 0;
  let n = 0;
  for (const s of path) {
    if (s.type === AsPathSegmentType.Sequence) n += s.asns.length;
    else if (s.type === AsPathSegmentType.Set) n += 1;
  }
  return n;
}

/** RFC 6793 §4.2.3: rebuild the real path from AS_PATH (2-octet) and AS4_PATH. */
function mergeAs4Path(asPath: AsPathSegment[], as4Path: AsPathSegment[]): AsPathSegment[] {
  const as4 = as4Path.filter(
    (s) => s.type === AsPathSegmentType.Sequence || s.type === AsPathSegmentType.Set,
  );
  const n2 = asPathLength(asPath);
  const n4 = asPathLength(as4);
  if (n2 < n4) return asPath;
  let keep = n2 - n4;
  const head: AsPathSegment[] = [];
  for (const s of asPath) {
    if (keep <= 0 && (s.type === AsPathSegmentType.Sequence || s.type === AsPathSegmentType.Set)) break;
    if (s.type === AsPathSegmentType.Sequence) {
      const take = Math.min(keep, s.asns.length);
      head.push({ type: s.type, asns: s.asns.slice(0, take) });
      keep -= take;
    } else if (s.type === AsPathSegmentType.Set) {
      head.push(s);
      keep -= 1;
    } else head.push(s);
  }
  return [...head, ...as4];
}

function decodeMpNextHop(afi: number, nh: Uint8Array): { nextHop: string; linkLocalNextHop?: string } {
  if (nh.length === 4) return { nextHop: formatIpv4(nh) };
  if (nh.length === 16) return { nextHop: formatIpv6(nh) };
  if (nh.length === 32) return { nextHop: formatIpv6(nh), linkLocalNextHop: formatIpv6(nh, 16) };
  // RFC 8950 §3 allows 16/32 for IPv4 NLRI too; anything else is malformed.
  throw sessionReset(
    'BGP_UPDATE_BAD_MP_NEXT_HOP',
    UpdateSubcode.OptionalAttribute,
    `MP_REACH_NLRI next hop of ${nh.length} octets for AFI ${afi}`,
  );
}

/**
 * Decode the path attribute field of an UPDATE. Throws BgpError only for errors that RFC 7606
 * keeps as session resets; everything else is reported in `problems`.
 */
export function decodeAttributes(
  b: Uint8Array,
  start: number,
  end: number,
  ctx: DecodeContext,
): DecodedAttributes {
  const attributes: PathAttributes = {};
  const problems: AttributeProblem[] = [];
  const seen = new Set<number>();
  let mpReach: MpReach | undefined;
  let mpUnreach: MpUnreach | undefined;
  let as4Path: AsPathSegment[] | undefined;
  let as4Aggregator: { asNumber: number; address: string } | undefined;
  const asSize = ctx.fourOctetAs ? 4 : 2;
  let p = start;
  while (p < end) {
    if (p + 3 > end) {
      // RFC 7606 §4: an attribute header that does not fit means the rest cannot be trusted.
      problems.push({ attrType: 0, action: 'treat-as-withdraw', reason: 'attribute header truncated' });
      break;
    }
    const flags = b[p]!;
    const code = b[p + 1]!;
    const ext = (flags & AttrFlag.ExtendedLength) !== 0;
    if (ext && p + 4 > end) {
      problems.push({ attrType: code, action: 'treat-as-withdraw', reason: 'attribute header truncated' });
      break;
    }
    const len = ext ? u16(b, p + 2) : b[p + 2]!;
    const vStart = p + (ext ? 4 : 3);
    const vEnd = vStart + len;
    if (vEnd > end) {
      if (code === AttrType.MpReachNlri || code === AttrType.MpUnreachNlri) {
        throw sessionReset(
          'BGP_UPDATE_ATTRIBUTE_LENGTH',
          UpdateSubcode.AttributeLength,
          `attribute ${code} overruns the attribute field`,
        );
      }
      problems.push({
        attrType: code,
        action: 'treat-as-withdraw',
        reason: `attribute ${code} overruns the attribute field`,
      });
      break;
    }
    p = vEnd;
    const v = b.subarray(vStart, vEnd);
    if (seen.has(code)) {
      // RFC 7606 §3(g): MP attributes twice reset the session; others keep the first instance.
      if (code === AttrType.MpReachNlri || code === AttrType.MpUnreachNlri) {
        throw sessionReset(
          'BGP_UPDATE_MALFORMED_ATTRIBUTE_LIST',
          UpdateSubcode.MalformedAttributeList,
          `attribute ${code} appears twice`,
        );
      }
      problems.push({ attrType: code, action: 'attribute-discard', reason: `duplicate attribute ${code}` });
      continue;
    }
    seen.add(code);
    const expected = KNOWN_FLAGS[code];
    if (expected === undefined) {
      if ((flags & AttrFlag.Optional) === 0) {
        // RFC 4271 §6.3: an unrecognised well-known attribute.
        throw sessionReset(
          'BGP_UPDATE_UNRECOGNIZED_WELL_KNOWN',
          UpdateSubcode.UnrecognizedWellKnown,
          `unrecognised well-known attribute ${code}`,
          b.slice(vStart - (ext ? 4 : 3), vEnd),
        );
      }
      if (flags & AttrFlag.Transitive) {
        const unknown = attributes.unknown ?? [];
        unknown.push({ flags: flags | AttrFlag.Partial, code, value: v.slice() });
        attributes.unknown = unknown;
      }
      // Optional non-transitive and unrecognised: quietly ignored.
      continue;
    }
    try {
      // RFC 7606 §3(c): wrong Optional/Transitive bits make the attribute malformed.
      if ((flags & (AttrFlag.Optional | AttrFlag.Transitive)) !== expected) {
        throw new Malformed(`attribute ${code} flags 0x${flags.toString(16)}`);
      }
      switch (code) {
        case AttrType.Origin:
          if (len !== 1) throw new Malformed(`ORIGIN length ${len}`);
          if (v[0]! > 2) throw new Malformed(`ORIGIN value ${v[0]}`);
          attributes.origin = v[0] as Origin;
          break;
        case AttrType.AsPath:
          attributes.asPath = decodeAsPath(v, asSize);
          break;
        case AttrType.NextHop:
          if (len !== 4) throw new Malformed(`NEXT_HOP length ${len}`);
          // RFC 4271 §6.3: a semantically wrong next hop (0/8, class D/E) means the route is ignored.
          if (v[0] === 0 || v[0]! >= 224)
            throw new Malformed(`NEXT_HOP ${formatIpv4(v)} is not a unicast address`);
          attributes.nextHop = formatIpv4(v);
          break;
        case AttrType.Med:
          if (len !== 4) throw new Malformed(`MULTI_EXIT_DISC length ${len}`);
          attributes.med = u32(v, 0);
          break;
        case AttrType.LocalPref:
          if (len !== 4) throw new Malformed(`LOCAL_PREF length ${len}`);
          attributes.localPref = u32(v, 0);
          break;
        case AttrType.AtomicAggregate:
          if (len !== 0) throw new Malformed(`ATOMIC_AGGREGATE length ${len}`);
          attributes.atomicAggregate = true;
          break;
        case AttrType.Aggregator:
          if (len !== 4 + asSize) throw new Malformed(`AGGREGATOR length ${len}`);
          attributes.aggregator = {
            asNumber: asSize === 4 ? u32(v, 0) : u16(v, 0),
            address: formatIpv4(v, asSize),
          };
          break;
        case AttrType.Communities: {
          if (len === 0 || len % 4 !== 0) throw new Malformed(`COMMUNITIES length ${len}`);
          const cs: number[] = [];
          for (let o = 0; o < len; o += 4) cs.push(u32(v, o));
          attributes.communities = cs;
          break;
        }
        case AttrType.LargeCommunity: {
          if (len === 0 || len % 12 !== 0) throw new Malformed(`LARGE_COMMUNITY length ${len}`);
          const cs: string[] = [];
          for (let o = 0; o < len; o += 12) cs.push(`${u32(v, o)}:${u32(v, o + 4)}:${u32(v, o + 8)}`);
          attributes.largeCommunities = cs;
          break;
        }
        case AttrType.OriginatorId:
          if (len !== 4) throw new Malformed(`ORIGINATOR_ID length ${len}`);
          attributes.originatorId = formatIpv4(v);
          break;
        case AttrType.ClusterList: {
          if (len === 0 || len % 4 !== 0) throw new Malformed(`CLUSTER_LIST length ${len}`);
          const ids: string[] = [];
          for (let o = 0; o < len; o += 4) ids.push(formatIpv4(v, o));
          attributes.clusterList = ids;
          break;
        }
        case AttrType.As4Path:
          // RFC 6793 §4.1: a NEW speaker ignores AS4_PATH from another NEW speaker.
          if (ctx.fourOctetAs) {
            problems.push({
              attrType: code,
              action: 'attribute-discard',
              reason: 'AS4_PATH on a 4-octet session',
            });
            break;
          }
          as4Path = decodeAsPath(v, 4);
          break;
        case AttrType.As4Aggregator:
          if (len !== 8) throw new Malformed(`AS4_AGGREGATOR length ${len}`);
          if (!ctx.fourOctetAs) as4Aggregator = { asNumber: u32(v, 0), address: formatIpv4(v, 4) };
          break;
        case AttrType.MpReachNlri:
          mpReach = decodeMpReach(v, ctx);
          break;
        case AttrType.MpUnreachNlri:
          mpUnreach = decodeMpUnreach(v, ctx);
          break;
      }
    } catch (e) {
      if (!(e instanceof Malformed)) throw e;
      if (code === AttrType.MpReachNlri || code === AttrType.MpUnreachNlri) {
        // RFC 7606 §7.11: without a parsable MP attribute the session goes down.
        throw sessionReset('BGP_UPDATE_OPTIONAL_ATTRIBUTE', UpdateSubcode.OptionalAttribute, e.reason);
      }
      problems.push({
        attrType: code,
        action: MALFORMED_ACTION[code] ?? 'treat-as-withdraw',
        reason: e.reason,
      });
      // A discarded attribute must not linger half-decoded.
      if (code === AttrType.As4Path) as4Path = undefined;
    }
  }
  if (!ctx.fourOctetAs) {
    // RFC 6793 §4.2.3: AS4 attributes count only when AGGREGATOR (if any) carries AS_TRANS.
    const aggTrans = attributes.aggregator === undefined || attributes.aggregator.asNumber === AS_TRANS;
    if (attributes.aggregator && as4Aggregator && attributes.aggregator.asNumber === AS_TRANS) {
      attributes.aggregator = as4Aggregator;
    }
    if (as4Path && attributes.asPath && aggTrans)
      attributes.asPath = mergeAs4Path(attributes.asPath, as4Path);
  }
  const result: DecodedAttributes = { attributes, problems, seen };
  if (mpReach) result.mpReach = mpReach;
  if (mpUnreach) result.mpUnreach = mpUnreach;
  return result;
}

function decodeMpReach(v: Uint8Array, ctx: DecodeContext): MpReach {
  if (v.length < 5) throw new Malformed(`MP_REACH_NLRI length ${v.length}`);
  const afi = u16(v, 0);
  const safi = v[2]!;
  const nhLen = v[3]!;
  if (5 + nhLen > v.length) throw new Malformed('MP_REACH_NLRI next hop overruns');
  if (afi !== Afi.Ipv4 && afi !== Afi.Ipv6) throw new Malformed(`MP_REACH_NLRI AFI ${afi}`);
  const nh = decodeMpNextHop(afi, v.subarray(4, 4 + nhLen));
  // One reserved octet follows the next hop (RFC 4760 §3).
  const nlriStart = 5 + nhLen;
  const addPath = ctx.addPathReceive?.has(`${afi}/${safi}`) ?? false;
  let nlri: Nlri[];
  try {
    nlri = decodeNlri(v, nlriStart, v.length, afi, addPath);
  } catch (e) {
    throw new Malformed(e instanceof Error ? e.message : 'bad NLRI');
  }
  const out: MpReach = { afi, safi, nextHop: nh.nextHop, nlri };
  if (nh.linkLocalNextHop) out.linkLocalNextHop = nh.linkLocalNextHop;
  return out;
}

function decodeMpUnreach(v: Uint8Array, ctx: DecodeContext): MpUnreach {
  if (v.length < 3) throw new Malformed(`MP_UNREACH_NLRI length ${v.length}`);
  const afi = u16(v, 0);
  const safi = v[2]!;
  if (afi !== Afi.Ipv4 && afi !== Afi.Ipv6) throw new Malformed(`MP_UNREACH_NLRI AFI ${afi}`);
  const addPath = ctx.addPathReceive?.has(`${afi}/${safi}`) ?? false;
  try {
    return { afi, safi, withdrawn: decodeNlri(v, 3, v.length, afi, addPath) };
  } catch (e) {
    throw new Malformed(e instanceof Error ? e.message : 'bad NLRI');
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

export interface EncodeContext {
  fourOctetAs: boolean;
  /** Families where we send path identifiers. */
  addPathSend?: ReadonlySet<string>;
  /** 4096, or 65535 after RFC 8654 negotiation. */
  maxMessageLength?: number;
}

class ByteWriter {
  buf: Uint8Array;
  len = 0;
  constructor(size = 256) {
    this.buf = new Uint8Array(size);
  }
  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  u8(x: number): void {
    this.ensure(1);
    this.buf[this.len++] = x & 0xff;
  }
  u16(x: number): void {
    this.ensure(2);
    this.buf[this.len++] = (x >> 8) & 0xff;
    this.buf[this.len++] = x & 0xff;
  }
  u32(x: number): void {
    this.ensure(4);
    this.buf[this.len++] = (x >>> 24) & 0xff;
    this.buf[this.len++] = (x >>> 16) & 0xff;
    this.buf[this.len++] = (x >>> 8) & 0xff;
    this.buf[this.len++] = x & 0xff;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function ipv4Bytes(s: string, what: string): Uint8Array {
  const b = parseIpv4(s);
  if (!b) throw new BgpError('BGP_ENCODE_BAD_ADDRESS', 0, 0, `${what}: ${s} is not an IPv4 address`);
  return b;
}

function attr(w: ByteWriter, flags: number, code: number, value: Uint8Array): void {
  if (value.length > 255) {
    w.u8(flags | AttrFlag.ExtendedLength);
    w.u8(code);
    w.u16(value.length);
  } else {
    w.u8(flags & ~AttrFlag.ExtendedLength);
    w.u8(code);
    w.u8(value.length);
  }
  w.bytes(value);
}

function encodeAsPath(path: readonly AsPathSegment[], asSize: 2 | 4, confed: boolean): Uint8Array {
  const w = new ByteWriter();
  for (const s of path) {
    if (!confed && (s.type === AsPathSegmentType.ConfedSequence || s.type === AsPathSegmentType.ConfedSet))
      continue;
    // A segment holds at most 255 ASes; longer sequences split.
    for (let i = 0; i < s.asns.length || (i === 0 && s.asns.length === 0); i += 255) {
      const chunk = s.asns.slice(i, i + 255);
      if (chunk.length === 0) break;
      w.u8(s.type);
      w.u8(chunk.length);
      for (const as of chunk) {
        if (asSize === 4) w.u32(as);
        else w.u16(as > 0xffff ? AS_TRANS : as);
      }
    }
  }
  return w.done();
}

/** Encode every attribute except the MP ones, in type-code order. */
export function encodeAttributes(a: PathAttributes, ctx: EncodeContext, includeNextHop: boolean): Uint8Array {
  const w = new ByteWriter(128);
  const v = new ByteWriter(64);
  const put = (flags: number, code: number, fill: (x: ByteWriter) => void) => {
    v.len = 0;
    fill(v);
    attr(w, flags, code, v.buf.subarray(0, v.len));
  };
  const T = AttrFlag.Transitive;
  const OT = AttrFlag.Optional | AttrFlag.Transitive;
  const O = AttrFlag.Optional;
  if (a.origin !== undefined) put(T, AttrType.Origin, (x) => x.u8(a.origin!));
  const path = a.asPath ?? [];
  attr(w, T, AttrType.AsPath, encodeAsPath(path, ctx.fourOctetAs ? 4 : 2, true));
  if (includeNextHop && a.nextHop !== undefined)
    put(T, AttrType.NextHop, (x) => x.bytes(ipv4Bytes(a.nextHop!, 'NEXT_HOP')));
  if (a.med !== undefined) put(O, AttrType.Med, (x) => x.u32(a.med!));
  if (a.localPref !== undefined) put(T, AttrType.LocalPref, (x) => x.u32(a.localPref!));
  if (a.atomicAggregate) put(T, AttrType.AtomicAggregate, () => {});
  if (a.aggregator) {
    const ag = a.aggregator;
    put(OT, AttrType.Aggregator, (x) => {
      if (ctx.fourOctetAs) x.u32(ag.asNumber);
      else x.u16(ag.asNumber > 0xffff ? AS_TRANS : ag.asNumber);
      x.bytes(ipv4Bytes(ag.address, 'AGGREGATOR'));
    });
  }
  if (a.communities?.length)
    put(OT, AttrType.Communities, (x) => {
      for (const c of a.communities!) x.u32(c);
    });
  if (a.originatorId)
    put(O, AttrType.OriginatorId, (x) => x.bytes(ipv4Bytes(a.originatorId!, 'ORIGINATOR_ID')));
  if (a.clusterList?.length) {
    put(O, AttrType.ClusterList, (x) => {
      for (const c of a.clusterList!) x.bytes(ipv4Bytes(c, 'CLUSTER_LIST'));
    });
  }
  if (!ctx.fourOctetAs) {
    // RFC 6793 §4.2.2: carry the real path when any AS does not fit in two octets.
    const wide = path.some((s) => s.asns.some((as) => as > 0xffff));
    if (wide) attr(w, OT, AttrType.As4Path, encodeAsPath(path, 4, false));
    if (a.aggregator && a.aggregator.asNumber > 0xffff) {
      put(OT, AttrType.As4Aggregator, (x) => {
        x.u32(a.aggregator!.asNumber);
        x.bytes(ipv4Bytes(a.aggregator!.address, 'AS4_AGGREGATOR'));
      });
    }
  }
  if (a.largeCommunities?.length) {
    put(OT, AttrType.LargeCommunity, (x) => {
      for (const c of a.largeCommunities!) for (const part of c.split(':')) x.u32(Number(part));
    });
  }
  for (const u of a.unknown ?? []) attr(w, u.flags, u.code, u.value);
  return w.done();
}

/** Next hop octets for MP_REACH_NLRI: 4 (IPv4), 16 (IPv6 global) or 32 (global + link-local). */
export function encodeMpNextHop(nextHop: string, linkLocal?: string): Uint8Array {
  if (!nextHop.includes(':')) return ipv4Bytes(nextHop, 'next hop');
  const g = parseIpv6(nextHop);
  if (!g) throw new BgpError('BGP_ENCODE_BAD_ADDRESS', 0, 0, `next hop: ${nextHop} is not an IPv6 address`);
  if (!linkLocal) return g;
  const ll = parseIpv6(linkLocal);
  if (!ll)
    throw new BgpError('BGP_ENCODE_BAD_ADDRESS', 0, 0, `next hop: ${linkLocal} is not an IPv6 address`);
  const out = new Uint8Array(32);
  out.set(g);
  out.set(ll, 16);
  return out;
}

export { attr as writeAttribute, ByteWriter, decodeNlri };
