/**
 * Whole messages: the 19-octet header (RFC 4271 §4.1), UPDATE (§4.3), NOTIFICATION (§4.5),
 * KEEPALIVE (§4.4) and ROUTE-REFRESH (RFC 2918, RFC 7313), plus UPDATE packing.
 */
import {
  type AttributeProblem,
  ByteWriter,
  type DecodeContext,
  decodeAttributes,
  type EncodeContext,
  encodeAttributes,
  encodeMpNextHop,
  type MpReach,
  type MpUnreach,
  type PathAttributes,
  writeAttribute,
} from './attributes.ts';
import { BgpError } from './bgp-error.ts';
import {
  Afi,
  AttrFlag,
  AttrType,
  ErrorCode,
  type FamilyKey,
  HEADER_LENGTH,
  HeaderSubcode,
  MAX_MESSAGE_LENGTH,
  MessageType,
  UpdateSubcode,
} from './constants.ts';
import { decodeOpen, encodeOpenBody, type OpenMessage } from './open.ts';
import { decodeNlri, type Nlri, nlriSize, parsePrefix, writeIpv4PrefixNlri, writeNlri } from './prefix.ts';

export interface UpdateMessage {
  type: 'update';
  /** IPv4 unicast withdrawals from the Withdrawn Routes field. */
  withdrawn: Nlri[];
  attributes: PathAttributes;
  /** IPv4 unicast NLRI from the message tail. */
  nlri: Nlri[];
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  /** RFC 7606 §2: the reachability in this UPDATE must be handled as withdrawn. */
  treatAsWithdraw: boolean;
  /** Repaired or withdraw-causing attribute errors, for logging. */
  problems: AttributeProblem[];
  /** RFC 4724 §2: set when this UPDATE is an End-of-RIB marker for the family. */
  endOfRib?: FamilyKey;
}

export interface NotificationMessage {
  type: 'notification';
  code: number;
  subcode: number;
  data: Uint8Array;
}

export interface KeepaliveMessage {
  type: 'keepalive';
}

export interface RouteRefreshMessage {
  type: 'route-refresh';
  afi: number;
  safi: number;
  /** RFC 7313 §3: 0 normal request, 1 BoRR, 2 EoRR. */
  subtype: number;
}

export type BgpMessage =
  | OpenMessage
  | UpdateMessage
  | NotificationMessage
  | KeepaliveMessage
  | RouteRefreshMessage;

const MARKER = new Uint8Array(16).fill(0xff);

function headerError(code: string, subcode: number, msg: string, data: Uint8Array): BgpError {
  return new BgpError(code, ErrorCode.MessageHeader, subcode, msg, data);
}

/**
 * Validate a header at `off`: marker, length bounds and type (RFC 4271 §6.1). Returns the length.
 */
export function checkHeader(b: Uint8Array, off: number, maxLength: number): number {
  for (let i = 0; i < 16; i++) {
    if (b[off + i] !== 0xff) {
      throw headerError(
        'BGP_HEADER_NOT_SYNCHRONIZED',
        HeaderSubcode.NotSynchronized,
        'bad marker',
        new Uint8Array(0),
      );
    }
  }
  const length = (b[off + 16]! << 8) | b[off + 17]!;
  const type = b[off + 18]!;
  const lengthField = b.slice(off + 16, off + 18);
  const min: Record<number, number> = { 1: 29, 2: 23, 3: 21, 4: 19, 5: 23 };
  const minimum = min[type];
  if (minimum === undefined) {
    throw headerError(
      'BGP_HEADER_BAD_TYPE',
      HeaderSubcode.BadType,
      `message type ${type}`,
      new Uint8Array([type]),
    );
  }
  // OPEN and KEEPALIVE stay within 4096 even with extended messages (RFC 8654 §4).
  const max = type === MessageType.Open || type === MessageType.Keepalive ? MAX_MESSAGE_LENGTH : maxLength;
  if (length < minimum || length > max || (type === MessageType.Keepalive && length !== 19)) {
    throw headerError(
      'BGP_HEADER_BAD_LENGTH',
      HeaderSubcode.BadLength,
      `length ${length} for type ${type}`,
      lengthField,
    );
  }
  return length;
}

/** Decode one complete message (header included). Throws only BgpError. */
export function decodeMessage(
  frame: Uint8Array,
  ctx: DecodeContext & { maxMessageLength?: number },
): BgpMessage {
  const length = checkHeader(frame, 0, ctx.maxMessageLength ?? MAX_MESSAGE_LENGTH);
  if (length !== frame.length) {
    throw headerError(
      'BGP_HEADER_BAD_LENGTH',
      HeaderSubcode.BadLength,
      `frame ${frame.length} ≠ length ${length}`,
      frame.slice(16, 18),
    );
  }
  const body = frame.subarray(HEADER_LENGTH);
  try {
    switch (frame[18]) {
      case MessageType.Open:
        return decodeOpen(body);
      case MessageType.Update:
        return decodeUpdate(body, ctx);
      case MessageType.Notification:
        return { type: 'notification', code: body[0]!, subcode: body[1]!, data: body.slice(2) };
      case MessageType.Keepalive:
        return { type: 'keepalive' };
      default: {
        if (body.length !== 4) {
          // RFC 7313 §5: ROUTE-REFRESH Message Error, Invalid Message Length.
          throw new BgpError(
            'BGP_ROUTE_REFRESH_BAD_LENGTH',
            ErrorCode.RouteRefresh,
            1,
            `ROUTE-REFRESH of ${length} octets`,
            frame.slice(),
          );
        }
        return { type: 'route-refresh', afi: (body[0]! << 8) | body[1]!, subtype: body[2]!, safi: body[3]! };
      }
    }
  } catch (e) {
    if (e instanceof BgpError) throw e;
    // Defence in depth: anything unexpected is still a typed protocol error.
    throw new BgpError('BGP_DECODE_FAILED', ErrorCode.MessageHeader, 0, `decode failed: ${String(e)}`);
  }
}

function malformedList(msg: string): BgpError {
  return new BgpError(
    'BGP_UPDATE_MALFORMED_ATTRIBUTE_LIST',
    ErrorCode.Update,
    UpdateSubcode.MalformedAttributeList,
    msg,
  );
}

export function decodeUpdate(b: Uint8Array, ctx: DecodeContext): UpdateMessage {
  if (b.length < 4) throw malformedList('UPDATE shorter than 4 octets');
  const wl = (b[0]! << 8) | b[1]!;
  if (2 + wl + 2 > b.length) throw malformedList(`withdrawn routes length ${wl} overruns the message`);
  const addPath4 = ctx.addPathReceive?.has('1/1') ?? false;
  const withdrawn = decodeNlri(b, 2, 2 + wl, Afi.Ipv4, addPath4);
  const al = (b[2 + wl]! << 8) | b[3 + wl]!;
  const aStart = 4 + wl;
  if (aStart + al > b.length) throw malformedList(`total path attribute length ${al} overruns the message`);
  const decoded = decodeAttributes(b, aStart, aStart + al, ctx);
  const nlri = decodeNlri(b, aStart + al, b.length, Afi.Ipv4, addPath4);
  const { attributes, problems } = decoded;
  const reach = nlri.length > 0 || (decoded.mpReach?.nlri.length ?? 0) > 0;
  if (reach) {
    // RFC 7606 §3(d): a missing well-known mandatory attribute is treat-as-withdraw.
    const missing: [number, boolean][] = [
      [AttrType.Origin, attributes.origin !== undefined],
      [AttrType.AsPath, attributes.asPath !== undefined],
      [AttrType.NextHop, nlri.length === 0 || attributes.nextHop !== undefined],
    ];
    for (const [code, ok] of missing) {
      if (!ok && !problems.some((p) => p.attrType === code)) {
        problems.push({
          attrType: code,
          action: 'treat-as-withdraw',
          reason: `missing well-known attribute ${code}`,
        });
      }
    }
  }
  const msg: UpdateMessage = {
    type: 'update',
    withdrawn,
    attributes,
    nlri,
    treatAsWithdraw: problems.some((p) => p.action === 'treat-as-withdraw'),
    problems,
  };
  if (decoded.mpReach) msg.mpReach = decoded.mpReach;
  if (decoded.mpUnreach) msg.mpUnreach = decoded.mpUnreach;
  // RFC 4724 §2: End-of-RIB is an UPDATE with nothing but (for non-IPv4) an empty MP_UNREACH.
  if (withdrawn.length === 0 && nlri.length === 0) {
    if (al === 0) msg.endOfRib = '1/1';
    else if (decoded.seen.size === 1 && decoded.mpUnreach && decoded.mpUnreach.withdrawn.length === 0) {
      msg.endOfRib = `${decoded.mpUnreach.afi}/${decoded.mpUnreach.safi}`;
    }
  }
  return msg;
}

// ---------------------------------------------------------------------------------------------
// Encoding

function frame(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_LENGTH + body.length);
  out.set(MARKER);
  const len = out.length;
  out[16] = len >> 8;
  out[17] = len & 0xff;
  out[18] = type;
  out.set(body, HEADER_LENGTH);
  return out;
}

export function encodeOpen(m: Omit<OpenMessage, 'type' | 'version'>): Uint8Array {
  return frame(MessageType.Open, encodeOpenBody(m));
}

export function encodeKeepalive(): Uint8Array {
  return frame(MessageType.Keepalive, new Uint8Array(0));
}

export function encodeNotification(
  code: number,
  subcode: number,
  data: Uint8Array = new Uint8Array(0),
): Uint8Array {
  // Data beyond the 4096 limit is cut rather than making the NOTIFICATION itself invalid.
  const d = data.subarray(0, MAX_MESSAGE_LENGTH - HEADER_LENGTH - 2);
  const body = new Uint8Array(2 + d.length);
  body[0] = code;
  body[1] = subcode;
  body.set(d, 2);
  return frame(MessageType.Notification, body);
}

export function encodeRouteRefresh(afi: number, safi: number, subtype = 0): Uint8Array {
  return frame(MessageType.RouteRefresh, new Uint8Array([afi >> 8, afi & 0xff, subtype, safi]));
}

/** RFC 4724 §2 End-of-RIB marker. */
export function encodeEndOfRib(afi: number, safi: number): Uint8Array {
  if (afi === Afi.Ipv4 && safi === 1) return frame(MessageType.Update, new Uint8Array(4));
  const w = new ByteWriter(16);
  w.u16(0);
  const attrs = new ByteWriter(8);
  writeAttribute(
    attrs,
    AttrFlag.Optional,
    AttrType.MpUnreachNlri,
    new Uint8Array([afi >> 8, afi & 0xff, safi]),
  );
  w.u16(attrs.len);
  w.bytes(attrs.done());
  return frame(MessageType.Update, w.done());
}

/** Encode one UPDATE as given (no splitting); for tests and small messages. */
export function encodeUpdate(
  u: Pick<UpdateMessage, 'withdrawn' | 'attributes' | 'nlri'> & { mpReach?: MpReach; mpUnreach?: MpUnreach },
  ctx: EncodeContext,
): Uint8Array {
  const ap = (f: string) => ctx.addPathSend?.has(f) ?? false;
  const w = new ByteWriter(256);
  const nlriBytes = (list: Nlri[], addPath: boolean) => {
    const x = new ByteWriter(64);
    for (const n of list) {
      const p = parsePrefix(n.prefix);
      if (!p) throw new BgpError('BGP_ENCODE_BAD_PREFIX', 0, 0, `not a canonical prefix: ${n.prefix}`);
      x.ensure(nlriSize(p, addPath));
      x.len = writeNlri(x.buf, x.len, p, n.pathId, addPath);
    }
    return x.done();
  };
  const wd = nlriBytes(u.withdrawn, ap('1/1'));
  w.u16(wd.length);
  w.bytes(wd);
  const attrs = new ByteWriter(256);
  if (u.mpReach) {
    const r = u.mpReach;
    const nh = encodeMpNextHop(r.nextHop, r.linkLocalNextHop);
    const v = new ByteWriter(64);
    v.u16(r.afi);
    v.u8(r.safi);
    v.u8(nh.length);
    v.bytes(nh);
    v.u8(0);
    v.bytes(nlriBytes(r.nlri, ap(`${r.afi}/${r.safi}`)));
    writeAttribute(attrs, AttrFlag.Optional, AttrType.MpReachNlri, v.done());
  }
  if (u.mpUnreach) {
    const r = u.mpUnreach;
    const v = new ByteWriter(64);
    v.u16(r.afi);
    v.u8(r.safi);
    v.bytes(nlriBytes(r.withdrawn, ap(`${r.afi}/${r.safi}`)));
    writeAttribute(attrs, AttrFlag.Optional, AttrType.MpUnreachNlri, v.done());
  }
  const hasReach = u.nlri.length > 0 || u.mpReach !== undefined;
  if (hasReach) attrs.bytes(encodeAttributes(u.attributes, ctx, u.nlri.length > 0));
  w.u16(attrs.len);
  w.bytes(attrs.done());
  w.bytes(nlriBytes(u.nlri, ap('1/1')));
  const out = frame(MessageType.Update, w.done());
  const max = ctx.maxMessageLength ?? MAX_MESSAGE_LENGTH;
  if (out.length > max)
    throw new BgpError('BGP_ENCODE_TOO_LARGE', 0, 0, `UPDATE of ${out.length} octets exceeds ${max}`);
  return out;
}

export interface PackRoute {
  prefix: string;
  pathId?: number;
}

/** Encoded NLRI of a list of routes, back to back; route k ends at `ends[k]`. */
interface NlriRun {
  bytes: Uint8Array;
  ends: Uint32Array;
}

/**
 * Encode every route's NLRI once into one buffer (an IPv4 prefix straight from its text), so
 * packing needs no per-prefix objects; messages then copy contiguous slices of it.
 */
function encodeAll(routes: readonly PackRoute[], addPath: boolean): NlriRun {
  // At most a 4-octet path id, the length octet and 16 address octets per route.
  const bytes = new Uint8Array(routes.length * 21);
  const ends = new Uint32Array(routes.length);
  let p = 0;
  for (let k = 0; k < routes.length; k++) {
    const r = routes[k]!;
    const start = p;
    if (addPath) {
      const id = r.pathId ?? 0;
      bytes[p++] = id >>> 24;
      bytes[p++] = (id >>> 16) & 0xff;
      bytes[p++] = (id >>> 8) & 0xff;
      bytes[p++] = id & 0xff;
    }
    const q = writeIpv4PrefixNlri(r.prefix, bytes, p);
    if (q >= 0) p = q;
    else {
      const parsed = parsePrefix(r.prefix);
      if (!parsed) throw new BgpError('BGP_ENCODE_BAD_PREFIX', 0, 0, `not a canonical prefix: ${r.prefix}`);
      p = writeNlri(bytes, start, parsed, r.pathId ?? 0, addPath);
    }
    ends[k] = p;
  }
  return { bytes, ends };
}

/** The last route index (exclusive) from `i` whose NLRI fit in `room` octets. */
function fitFrom(run: NlriRun, i: number, room: number): number {
  const start = i === 0 ? 0 : run.ends[i - 1]!;
  let j = i;
  while (j < run.ends.length && run.ends[j]! - start <= room) j++;
  return j;
}

/**
 * Pack routes that share one attribute set into as few UPDATEs as fit the size limit.
 * IPv4 routes with an IPv4 next hop use the classic NLRI field; everything else MP_REACH_NLRI.
 */
export function packUpdates(opts: {
  afi: number;
  safi: number;
  attributes: PathAttributes;
  nextHop: string;
  linkLocalNextHop?: string;
  routes: readonly PackRoute[];
  ctx: EncodeContext;
}): Uint8Array[] {
  const { afi, safi, ctx } = opts;
  const max = ctx.maxMessageLength ?? MAX_MESSAGE_LENGTH;
  const family = `${afi}/${safi}`;
  const addPath = ctx.addPathSend?.has(family) ?? false;
  const legacy = afi === Afi.Ipv4 && safi === 1 && !opts.nextHop.includes(':');
  const attrBytes = encodeAttributes({ ...opts.attributes, nextHop: opts.nextHop }, ctx, legacy);
  const nh = legacy ? undefined : encodeMpNextHop(opts.nextHop, opts.linkLocalNextHop);
  // Fixed cost: header, two length fields, attributes, and the MP_REACH header (4-octet attr header).
  const fixed = HEADER_LENGTH + 4 + attrBytes.length + (nh ? 4 + 5 + nh.length : 0);
  const room = max - fixed;
  if (room <= 0) throw new BgpError('BGP_ENCODE_TOO_LARGE', 0, 0, `attributes alone take ${fixed} octets`);
  const run = encodeAll(opts.routes, addPath);
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < run.ends.length) {
    const j = fitFrom(run, i, room);
    const from = i === 0 ? 0 : run.ends[i - 1]!;
    const used = j === i ? 0 : run.ends[j - 1]! - from;
    if (j === i) throw new BgpError('BGP_ENCODE_TOO_LARGE', 0, 0, 'one prefix does not fit');
    const msg = new Uint8Array(fixed + used);
    msg.set(MARKER);
    msg[16] = msg.length >> 8;
    msg[17] = msg.length & 0xff;
    msg[18] = MessageType.Update;
    let p = HEADER_LENGTH;
    msg[p++] = 0;
    msg[p++] = 0;
    const totalAttr = attrBytes.length + (nh ? 4 + 5 + nh.length + used : 0);
    msg[p++] = totalAttr >> 8;
    msg[p++] = totalAttr & 0xff;
    if (nh) {
      // RFC 7606 §5.1: MP_REACH_NLRI goes first.
      const mpLen = 5 + nh.length + used;
      msg[p++] = AttrFlag.Optional | AttrFlag.ExtendedLength;
      msg[p++] = AttrType.MpReachNlri;
      msg[p++] = mpLen >> 8;
      msg[p++] = mpLen & 0xff;
      msg[p++] = afi >> 8;
      msg[p++] = afi & 0xff;
      msg[p++] = safi;
      msg[p++] = nh.length;
      msg.set(nh, p);
      p += nh.length;
      msg[p++] = 0;
      msg.set(run.bytes.subarray(from, from + used), p);
      p += used;
      msg.set(attrBytes, p);
      p += attrBytes.length;
    } else {
      msg.set(attrBytes, p);
      p += attrBytes.length;
      msg.set(run.bytes.subarray(from, from + used), p);
      p += used;
    }
    out.push(msg);
    i = j;
  }
  return out;
}

/** Pack withdrawals for one family into as few UPDATEs as fit. */
export function packWithdrawals(opts: {
  afi: number;
  safi: number;
  routes: readonly PackRoute[];
  ctx: EncodeContext;
}): Uint8Array[] {
  const { afi, safi, ctx } = opts;
  const max = ctx.maxMessageLength ?? MAX_MESSAGE_LENGTH;
  const addPath = ctx.addPathSend?.has(`${afi}/${safi}`) ?? false;
  const legacy = afi === Afi.Ipv4 && safi === 1;
  const fixed = HEADER_LENGTH + 4 + (legacy ? 0 : 4 + 3);
  const room = max - fixed;
  const run = encodeAll(opts.routes, addPath);
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < run.ends.length) {
    const j = fitFrom(run, i, room);
    const from = i === 0 ? 0 : run.ends[i - 1]!;
    const used = j === i ? 0 : run.ends[j - 1]! - from;
    if (j === i) throw new BgpError('BGP_ENCODE_TOO_LARGE', 0, 0, 'one prefix does not fit');
    const msg = new Uint8Array(fixed + used);
    msg.set(MARKER);
    msg[16] = msg.length >> 8;
    msg[17] = msg.length & 0xff;
    msg[18] = MessageType.Update;
    let p = HEADER_LENGTH;
    if (legacy) {
      msg[p++] = used >> 8;
      msg[p++] = used & 0xff;
      msg.set(run.bytes.subarray(from, from + used), p);
      p += used;
      msg[p++] = 0;
      msg[p++] = 0;
    } else {
      msg[p++] = 0;
      msg[p++] = 0;
      const total = 4 + 3 + used;
      msg[p++] = total >> 8;
      msg[p++] = total & 0xff;
      msg[p++] = AttrFlag.Optional | AttrFlag.ExtendedLength;
      msg[p++] = AttrType.MpUnreachNlri;
      msg[p++] = (3 + used) >> 8;
      msg[p++] = (3 + used) & 0xff;
      msg[p++] = afi >> 8;
      msg[p++] = afi & 0xff;
      msg[p++] = safi;
      msg.set(run.bytes.subarray(from, from + used), p);
      p += used;
    }
    out.push(msg);
    i = j;
  }
  return out;
}
