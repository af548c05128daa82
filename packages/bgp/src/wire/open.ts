/** OPEN (RFC 4271 §4.2) and its capabilities (RFC 5492). */
import { BgpError } from './bgp-error.ts';
import { AS_TRANS, CapabilityCode, ErrorCode, OpenSubcode } from './constants.ts';
import { formatIpv4, parseIpv4 } from './prefix.ts';

export interface AfiSafi {
  afi: number;
  safi: number;
}

export type AddPathMode = 1 | 2 | 3; // RFC 7911 §4: 1 receive, 2 send, 3 both

export type Capability =
  | { kind: 'multiprotocol'; afi: number; safi: number }
  | { kind: 'route-refresh' }
  | { kind: 'enhanced-route-refresh' }
  | { kind: 'extended-message' }
  | { kind: 'four-octet-as'; asNumber: number }
  | {
      kind: 'graceful-restart';
      /** R bit: the sender has restarted (RFC 4724 §3). */
      restarting: boolean;
      /** N bit (RFC 8538). */
      notification: boolean;
      restartTime: number;
      families: { afi: number; safi: number; forwardingPreserved: boolean }[];
    }
  | { kind: 'extended-next-hop'; entries: { afi: number; safi: number; nextHopAfi: number }[] }
  | { kind: 'add-path'; entries: { afi: number; safi: number; mode: AddPathMode }[] }
  | { kind: 'unknown'; code: number; value: Uint8Array };

export interface OpenMessage {
  type: 'open';
  version: number;
  /** The 2-octet My Autonomous System field (AS_TRANS when the real AS is 4-octet). */
  myAs: number;
  holdTime: number;
  bgpId: string;
  capabilities: Capability[];
}

function openError(code: string, subcode: number, msg: string, data?: Uint8Array): BgpError {
  return new BgpError(code, ErrorCode.Open, subcode, msg, data);
}

function capabilityError(code: number, msg: string): BgpError {
  return new BgpError('BGP_OPEN_MALFORMED_CAPABILITY', ErrorCode.Open, 0, `capability ${code}: ${msg}`);
}

export function decodeCapability(code: number, v: Uint8Array): Capability {
  const u16 = (o: number) => (v[o]! << 8) | v[o + 1]!;
  const u32 = (o: number) => ((v[o]! << 24) | (v[o + 1]! << 16) | (v[o + 2]! << 8) | v[o + 3]!) >>> 0;
  switch (code) {
    case CapabilityCode.Multiprotocol:
      if (v.length !== 4) throw capabilityError(code, `length ${v.length}, expected 4`);
      return { kind: 'multiprotocol', afi: u16(0), safi: v[3]! };
    case CapabilityCode.RouteRefresh:
      return { kind: 'route-refresh' };
    case CapabilityCode.EnhancedRouteRefresh:
      return { kind: 'enhanced-route-refresh' };
    case CapabilityCode.ExtendedMessage:
      return { kind: 'extended-message' };
    case CapabilityCode.FourOctetAs:
      if (v.length !== 4) throw capabilityError(code, `length ${v.length}, expected 4`);
      return { kind: 'four-octet-as', asNumber: u32(0) };
    case CapabilityCode.GracefulRestart: {
      if (v.length < 2 || (v.length - 2) % 4 !== 0) throw capabilityError(code, `length ${v.length}`);
      const flags = v[0]! >> 4;
      const families = [];
      for (let o = 2; o < v.length; o += 4) {
        families.push({ afi: u16(o), safi: v[o + 2]!, forwardingPreserved: (v[o + 3]! & 0x80) !== 0 });
      }
      return {
        kind: 'graceful-restart',
        restarting: (flags & 0x8) !== 0,
        notification: (flags & 0x4) !== 0,
        restartTime: u16(0) & 0x0fff,
        families,
      };
    }
    case CapabilityCode.ExtendedNextHop: {
      if (v.length % 6 !== 0) throw capabilityError(code, `length ${v.length}`);
      const entries = [];
      for (let o = 0; o < v.length; o += 6)
        entries.push({ afi: u16(o), safi: u16(o + 2), nextHopAfi: u16(o + 4) });
      return { kind: 'extended-next-hop', entries };
    }
    case CapabilityCode.AddPath: {
      if (v.length % 4 !== 0) throw capabilityError(code, `length ${v.length}`);
      const entries = [];
      for (let o = 0; o < v.length; o += 4) {
        const mode = v[o + 3]!;
        if (mode < 1 || mode > 3) throw capabilityError(code, `send/receive ${mode}`);
        entries.push({ afi: u16(o), safi: v[o + 2]!, mode: mode as AddPathMode });
      }
      return { kind: 'add-path', entries };
    }
    default:
      return { kind: 'unknown', code, value: v.slice() };
  }
}

export function encodeCapability(c: Capability): Uint8Array {
  const body = (code: number, bytes: number[] | Uint8Array): Uint8Array => {
    const out = new Uint8Array(2 + bytes.length);
    out[0] = code;
    out[1] = bytes.length;
    out.set(bytes, 2);
    return out;
  };
  const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
  const u32 = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  switch (c.kind) {
    case 'multiprotocol':
      return body(CapabilityCode.Multiprotocol, [...u16(c.afi), 0, c.safi]);
    case 'route-refresh':
      return body(CapabilityCode.RouteRefresh, []);
    case 'enhanced-route-refresh':
      return body(CapabilityCode.EnhancedRouteRefresh, []);
    case 'extended-message':
      return body(CapabilityCode.ExtendedMessage, []);
    case 'four-octet-as':
      return body(CapabilityCode.FourOctetAs, u32(c.asNumber));
    case 'graceful-restart': {
      const flags = (c.restarting ? 0x8 : 0) | (c.notification ? 0x4 : 0);
      const head = ((flags << 12) | (c.restartTime & 0x0fff)) & 0xffff;
      const bytes = [...u16(head)];
      for (const f of c.families) bytes.push(...u16(f.afi), f.safi, f.forwardingPreserved ? 0x80 : 0);
      return body(CapabilityCode.GracefulRestart, bytes);
    }
    case 'extended-next-hop':
      return body(
        CapabilityCode.ExtendedNextHop,
        c.entries.flatMap((e) => [...u16(e.afi), ...u16(e.safi), ...u16(e.nextHopAfi)]),
      );
    case 'add-path':
      return body(
        CapabilityCode.AddPath,
        c.entries.flatMap((e) => [...u16(e.afi), e.safi, e.mode]),
      );
    case 'unknown':
      return body(c.code, c.value);
  }
}

/** Decode an OPEN body (after the 19-octet header). */
export function decodeOpen(b: Uint8Array): OpenMessage {
  if (b.length < 10) {
    throw new BgpError(
      'BGP_HEADER_BAD_LENGTH',
      ErrorCode.MessageHeader,
      2,
      `OPEN body of ${b.length} octets`,
    );
  }
  const version = b[0]!;
  if (version !== 4) {
    // RFC 4271 §6.2: data is the largest supported version.
    throw openError(
      'BGP_OPEN_UNSUPPORTED_VERSION',
      OpenSubcode.UnsupportedVersion,
      `BGP version ${version}`,
      new Uint8Array([0, 4]),
    );
  }
  const myAs = (b[1]! << 8) | b[2]!;
  const holdTime = (b[3]! << 8) | b[4]!;
  const bgpId = formatIpv4(b, 5);
  const optLen = b[9]!;
  if (10 + optLen !== b.length) {
    throw openError(
      'BGP_OPEN_BAD_LENGTH',
      0,
      `optional parameters length ${optLen} disagrees with the message`,
    );
  }
  const capabilities: Capability[] = [];
  let p = 10;
  while (p < b.length) {
    if (p + 2 > b.length) throw openError('BGP_OPEN_BAD_PARAMETER', 0, 'optional parameter header truncated');
    const type = b[p]!;
    const len = b[p + 1]!;
    const end = p + 2 + len;
    if (end > b.length) throw openError('BGP_OPEN_BAD_PARAMETER', 0, `optional parameter ${type} overruns`);
    if (type !== 2) {
      throw openError(
        'BGP_OPEN_UNSUPPORTED_PARAMETER',
        OpenSubcode.UnsupportedOptionalParameter,
        `optional parameter type ${type}`,
      );
    }
    let q = p + 2;
    while (q < end) {
      if (q + 2 > end) throw openError('BGP_OPEN_BAD_PARAMETER', 0, 'capability header truncated');
      const code = b[q]!;
      const clen = b[q + 1]!;
      if (q + 2 + clen > end) throw openError('BGP_OPEN_BAD_PARAMETER', 0, `capability ${code} overruns`);
      capabilities.push(decodeCapability(code, b.subarray(q + 2, q + 2 + clen)));
      q += 2 + clen;
    }
    p = end;
  }
  return { type: 'open', version, myAs, holdTime, bgpId, capabilities };
}

export function encodeOpenBody(m: Omit<OpenMessage, 'type' | 'version'> & { version?: number }): Uint8Array {
  const caps = m.capabilities.map(encodeCapability);
  // One optional parameter per capability keeps each under 255 octets.
  const params = caps.map((c) => {
    const p = new Uint8Array(2 + c.length);
    p[0] = 2;
    p[1] = c.length;
    p.set(c, 2);
    return p;
  });
  const optLen = params.reduce((n, p) => n + p.length, 0);
  if (optLen > 255) throw openError('BGP_OPEN_TOO_LARGE', 0, `optional parameters of ${optLen} octets`);
  const out = new Uint8Array(10 + optLen);
  out[0] = m.version ?? 4;
  const myAs = m.myAs > 0xffff ? AS_TRANS : m.myAs;
  out[1] = myAs >> 8;
  out[2] = myAs & 0xff;
  out[3] = m.holdTime >> 8;
  out[4] = m.holdTime & 0xff;
  const id = parseIpv4(m.bgpId);
  if (!id) throw openError('BGP_OPEN_BAD_BGP_ID', OpenSubcode.BadBgpId, `BGP identifier ${m.bgpId}`);
  out.set(id, 5);
  out[9] = optLen;
  let p = 10;
  for (const x of params) {
    out.set(x, p);
    p += x.length;
  }
  return out;
}

/** What both sides agreed on after the OPEN exchange. */
export interface Negotiated {
  fourOctetAs: boolean;
  /** Families both advertised (or IPv4 unicast when neither sent MP capabilities). */
  families: Set<string>;
  routeRefresh: boolean;
  enhancedRouteRefresh: boolean;
  extendedMessage: boolean;
  /** Families where we may receive / send path identifiers. */
  addPathReceive: Set<string>;
  addPathSend: Set<string>;
  /** IPv4 NLRI with an IPv6 next hop (RFC 8950), accepted from the peer. */
  extendedNextHop: Set<string>;
  peerGracefulRestart: Extract<Capability, { kind: 'graceful-restart' }> | undefined;
  /** The peer's real AS (4-octet capability, else My AS). */
  peerAs: number;
  holdTime: number;
}

export function negotiate(local: Capability[], localHold: number, remote: OpenMessage): Negotiated {
  const mp = (caps: Capability[]) =>
    new Set(caps.flatMap((c) => (c.kind === 'multiprotocol' ? [`${c.afi}/${c.safi}`] : [])));
  const lm = mp(local);
  const rm = mp(remote.capabilities);
  // RFC 4760 §8: a speaker without MP capabilities does IPv4 unicast only.
  if (lm.size === 0) lm.add('1/1');
  if (rm.size === 0) rm.add('1/1');
  const families = new Set([...lm].filter((f) => rm.has(f)));
  const has = (caps: Capability[], kind: Capability['kind']) => caps.some((c) => c.kind === kind);
  const rAs4 = remote.capabilities.find((c) => c.kind === 'four-octet-as');
  const addPathFor = (caps: Capability[]) => {
    const m = new Map<string, number>();
    for (const c of caps)
      if (c.kind === 'add-path') for (const e of c.entries) m.set(`${e.afi}/${e.safi}`, e.mode);
    return m;
  };
  const la = addPathFor(local);
  const ra = addPathFor(remote.capabilities);
  const addPathReceive = new Set<string>();
  const addPathSend = new Set<string>();
  for (const [f, mode] of la) {
    const r = ra.get(f) ?? 0;
    if (mode & 1 && r & 2) addPathReceive.add(f);
    if (mode & 2 && r & 1) addPathSend.add(f);
  }
  const enh = (caps: Capability[]) =>
    new Set(
      caps.flatMap((c) =>
        c.kind === 'extended-next-hop' ? c.entries.map((e) => `${e.afi}/${e.safi}/${e.nextHopAfi}`) : [],
      ),
    );
  const le = enh(local);
  const extendedNextHop = new Set(
    [...enh(remote.capabilities)].filter((e) => le.has(e)).map((e) => e.split('/').slice(0, 2).join('/')),
  );
  return {
    fourOctetAs: has(local, 'four-octet-as') && rAs4 !== undefined,
    families,
    routeRefresh: has(local, 'route-refresh') && has(remote.capabilities, 'route-refresh'),
    enhancedRouteRefresh:
      has(local, 'enhanced-route-refresh') && has(remote.capabilities, 'enhanced-route-refresh'),
    extendedMessage: has(local, 'extended-message') && has(remote.capabilities, 'extended-message'),
    addPathReceive,
    addPathSend,
    extendedNextHop,
    peerGracefulRestart: remote.capabilities.find((c) => c.kind === 'graceful-restart'),
    peerAs: rAs4 && rAs4.kind === 'four-octet-as' ? rAs4.asNumber : remote.myAs,
    // RFC 4271 §4.2: the smaller of the two; 0 means no keepalives at all.
    holdTime: Math.min(localHold, remote.holdTime),
  };
}
