/**
 * rtnetlink message bodies (everything after the nlmsghdr), built and parsed by hand: the npm
 * `netlink` package moves the bytes, but has no typed veth/vxlan/ipip info, multipath or FDB.
 * Pure: no sockets here. Layouts follow include/uapi/linux/{rtnetlink,if_link,if_addr,neighbour,
 * veth,if_tunnel}.h; netlink is host-endian, and this package runs on little-endian hosts only
 * (x86-64, arm64), which `assertLittleEndian` checks once.
 */
import { endianness } from 'node:os';
import { KernelError } from './errors.ts';
import {
  bytesToIp,
  bytesToMac,
  formatPrefix,
  type IpFamily,
  ipToBytes,
  macToBytes,
  parsePrefix,
} from './ip-address.ts';

export function assertLittleEndian(): void {
  if (endianness() !== 'LE') {
    throw new KernelError('Invalid', {
      operation: 'building netlink messages: big-endian hosts are not supported',
    });
  }
}

// uapi/linux/netlink.h
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;

// uapi/linux/rtnetlink.h message types
export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWNEIGH: 28,
  DELNEIGH: 29,
  GETNEIGH: 30,
} as const;

// uapi/linux/rtnetlink.h enum rtnetlink_groups (group numbers, not bit masks)
export const RTNLGRP = {
  LINK: 1,
  NEIGH: 3,
  IPV4_IFADDR: 5,
  IPV4_ROUTE: 7,
  IPV6_IFADDR: 9,
  IPV6_ROUTE: 11,
} as const;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

// uapi/linux/if_link.h
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINK = 5;
const IFLA_MASTER = 10;
const IFLA_OPERSTATE = 16;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1; // uapi/linux/veth.h: payload is a struct ifinfomsg followed by IFLA_* attributes
const IFLA_VXLAN_ID = 1;
const IFLA_VXLAN_LINK = 3;
const IFLA_VXLAN_LOCAL = 4;
const IFLA_VXLAN_LEARNING = 7;
const IFLA_VXLAN_PORT = 15; // network byte order
const IFLA_VXLAN_LOCAL6 = 17;
const IFLA_IPTUN_LINK = 1;
const IFLA_IPTUN_LOCAL = 2;
const IFLA_IPTUN_REMOTE = 3;
const IFLA_IPTUN_TTL = 4;
const IFLA_IPTUN_PMTUDISC = 10;
// uapi/linux/if.h
export const IFF_UP = 0x1;
// uapi/linux/if_addr.h
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_LABEL = 3;
const IFA_FLAGS = 8;
export const IFA_F_NODAD = 0x02;
// uapi/linux/rtnetlink.h route attributes
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_PREFSRC = 7;
const RTA_MULTIPATH = 9;
const RTA_TABLE = 15;
export const RTNH_F_ONLINK = 0x4;
export const RTM_F_CLONED = 0x200;
const RT_TABLE_COMPAT = 252;
export const RT_TABLE_MAIN = 254;
// uapi/linux/neighbour.h
const NDA_DST = 1;
const NDA_LLADDR = 2;
const NDA_VNI = 7;
export const NUD_PERMANENT = 0x80;
export const NUD_NOARP = 0x40;
export const NTF_SELF = 0x02;

export const RouteTypes = {
  unspec: 0,
  unicast: 1,
  local: 2,
  broadcast: 3,
  anycast: 4,
  multicast: 5,
  blackhole: 6,
  unreachable: 7,
  prohibit: 8,
  throw: 9,
} as const;
export type RouteType = keyof typeof RouteTypes;

export const RouteScopes = { universe: 0, site: 200, link: 253, host: 254, nowhere: 255 } as const;
export type RouteScope = keyof typeof RouteScopes;

/**
 * rtm_protocol RTPROT_BOOT (uapi/linux/rtnetlink.h): what a route added without a protocol carries,
 * as with `ip route add`. Which protocols mean what to Calico is @calico-ts/datastore's RouteProtocol.
 */
export const RTPROT_BOOT = 3;

// ---------------------------------------------------------------------------------------------
// attributes

const align4 = (n: number): number => (n + 3) & ~3;

/** One struct nlattr: u16 length (header + payload, unpadded), u16 type, payload padded to 4. */
export function attr(type: number, payload: Uint8Array): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc(align4(len));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  out.set(payload, 4);
  return out;
}

export const u8 = (v: number): Buffer => Buffer.from([v & 0xff]);
export function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}
export function be16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}
export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}
export const cstring = (s: string): Buffer => Buffer.concat([Buffer.from(s, 'utf8'), Buffer.alloc(1)]);

/** Parse a run of attributes; later duplicates win (the kernel never sends duplicates we use). */
export function parseAttrs(buf: Buffer, offset = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let o = offset;
  while (o + 4 <= buf.length) {
    const len = buf.readUInt16LE(o);
    if (len < 4 || o + len > buf.length) break;
    // NLA_F_NESTED / NLA_F_NET_BYTEORDER live in the top two bits of the type.
    out.set(buf.readUInt16LE(o + 2) & 0x3fff, buf.subarray(o + 4, o + len));
    o += align4(len);
  }
  return out;
}

const str = (b: Buffer | undefined): string | undefined =>
  b === undefined ? undefined : b.toString('utf8', 0, b.indexOf(0) >= 0 ? b.indexOf(0) : b.length);
const readU32 = (b: Buffer | undefined): number | undefined =>
  b && b.length >= 4 ? b.readUInt32LE(0) : undefined;

// ---------------------------------------------------------------------------------------------
// links

/** struct ifinfomsg: family u8, pad u8, type u16, index i32, flags u32, change u32 (16 bytes). */
export function ifinfomsg(index = 0, flags = 0, change = 0, family = AF_UNSPEC): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags >>> 0, 8);
  b.writeUInt32LE(change >>> 0, 12);
  return b;
}

export interface LinkCommon {
  name: string;
  mtu?: number | undefined;
  mac?: string | undefined;
  /** Create the link directly in this namespace (fd of an open namespace handle). */
  netnsFd?: number | undefined;
}

function commonLinkAttrs(spec: LinkCommon): Buffer[] {
  const out = [attr(IFLA_IFNAME, cstring(spec.name))];
  if (spec.mtu !== undefined) out.push(attr(IFLA_MTU, u32(spec.mtu)));
  if (spec.mac !== undefined) out.push(attr(IFLA_ADDRESS, macToBytes(spec.mac)));
  if (spec.netnsFd !== undefined) out.push(attr(IFLA_NET_NS_FD, u32(spec.netnsFd)));
  return out;
}

function linkInfo(kind: string, data?: Buffer[]): Buffer {
  const parts = [attr(IFLA_INFO_KIND, cstring(kind))];
  if (data) parts.push(attr(IFLA_INFO_DATA, Buffer.concat(data)));
  return attr(IFLA_LINKINFO, Buffer.concat(parts));
}

export interface VethSpec extends LinkCommon {
  peer: LinkCommon;
}

/** RTM_NEWLINK body for a veth pair; the peer may be created straight into another namespace. */
export function buildVethLink(spec: VethSpec): Buffer {
  const peer = Buffer.concat([ifinfomsg(), ...commonLinkAttrs(spec.peer)]);
  return Buffer.concat([
    ifinfomsg(),
    ...commonLinkAttrs(spec),
    linkInfo('veth', [attr(VETH_INFO_PEER, peer)]),
  ]);
}

export interface VxlanSpec extends LinkCommon {
  vni: number;
  /** UDP destination port; Calico uses 4789 (IANA), the kernel default is 8472. */
  port?: number | undefined;
  /** Source address of encapsulated packets (the node IP). */
  local?: string | undefined;
  /** Underlay device index. */
  linkIndex?: number | undefined;
  /** MAC learning from received packets; Calico programs FDB entries itself, so off by default. */
  learning?: boolean | undefined;
}

export function buildVxlanLink(spec: VxlanSpec): Buffer {
  const data = [attr(IFLA_VXLAN_ID, u32(spec.vni))];
  if (spec.linkIndex !== undefined) data.push(attr(IFLA_VXLAN_LINK, u32(spec.linkIndex)));
  if (spec.local !== undefined) {
    const fam = parsePrefix(spec.local).family;
    data.push(attr(fam === 4 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, ipToBytes(spec.local)));
  }
  data.push(attr(IFLA_VXLAN_LEARNING, u8(spec.learning ? 1 : 0)));
  data.push(attr(IFLA_VXLAN_PORT, be16(spec.port ?? 4789)));
  return Buffer.concat([ifinfomsg(), ...commonLinkAttrs(spec), linkInfo('vxlan', data)]);
}

export interface IpipSpec extends LinkCommon {
  local?: string | undefined;
  remote?: string | undefined;
  linkIndex?: number | undefined;
  ttl?: number | undefined;
}

export function buildIpipLink(spec: IpipSpec): Buffer {
  const data: Buffer[] = [];
  if (spec.linkIndex !== undefined) data.push(attr(IFLA_IPTUN_LINK, u32(spec.linkIndex)));
  if (spec.local !== undefined) data.push(attr(IFLA_IPTUN_LOCAL, ipToBytes(spec.local)));
  if (spec.remote !== undefined) data.push(attr(IFLA_IPTUN_REMOTE, ipToBytes(spec.remote)));
  data.push(attr(IFLA_IPTUN_TTL, u8(spec.ttl ?? 0)));
  // ttl 0 (inherit) requires path-MTU discovery on (ip_tunnel_core: "ttl inherit requires pmtudisc").
  data.push(attr(IFLA_IPTUN_PMTUDISC, u8(1)));
  return Buffer.concat([ifinfomsg(), ...commonLinkAttrs(spec), linkInfo('ipip', data)]);
}

/** RTM_NEWLINK body for a link without kind-specific data (bridge, dummy). */
export function buildSimpleLink(kind: string, spec: LinkCommon): Buffer {
  return Buffer.concat([ifinfomsg(), ...commonLinkAttrs(spec), linkInfo(kind)]);
}

export interface LinkChange {
  up?: boolean | undefined;
  mtu?: number | undefined;
  mac?: string | undefined;
  /** Enslave to this master index; 0 releases. */
  master?: number | undefined;
  name?: string | undefined;
  netnsFd?: number | undefined;
}

export function buildLinkChange(index: number, change: LinkChange): Buffer {
  const parts = [ifinfomsg(index, change.up ? IFF_UP : 0, change.up === undefined ? 0 : IFF_UP)];
  if (change.name !== undefined) parts.push(attr(IFLA_IFNAME, cstring(change.name)));
  if (change.mtu !== undefined) parts.push(attr(IFLA_MTU, u32(change.mtu)));
  if (change.mac !== undefined) parts.push(attr(IFLA_ADDRESS, macToBytes(change.mac)));
  if (change.master !== undefined) parts.push(attr(IFLA_MASTER, u32(change.master)));
  if (change.netnsFd !== undefined) parts.push(attr(IFLA_NET_NS_FD, u32(change.netnsFd)));
  return Buffer.concat(parts);
}

/** RTM_GETLINK / RTM_DELLINK body selecting one link by index or by name. */
export function buildLinkSelector(ref: number | string): Buffer {
  if (typeof ref === 'number') return ifinfomsg(ref);
  return Buffer.concat([ifinfomsg(0), attr(IFLA_IFNAME, cstring(ref))]);
}

export interface Link {
  index: number;
  name: string;
  /** IFLA_INFO_KIND: 'veth', 'vxlan', 'bridge', 'dummy', 'ipip'…; undefined for physical/loopback. */
  kind: string | undefined;
  mtu: number;
  mac: string | undefined;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** RFC 2863 operational state name: 'up', 'down', 'lowerlayerdown', 'unknown', … */
  operState: string;
  flags: number;
  masterIndex: number | undefined;
  /** IFLA_LINK: peer index (veth, possibly in another namespace) or underlay. */
  linkIndex: number | undefined;
  vxlan:
    | {
        vni: number;
        port: number;
        local: string | undefined;
        learning: boolean;
        linkIndex: number | undefined;
      }
    | undefined;
}

const operStates = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'];

export function parseLink(body: Buffer): Link {
  const index = body.readInt32LE(4);
  const flags = body.readUInt32LE(8);
  const a = parseAttrs(body, 16);
  let kind: string | undefined;
  let vxlan: Link['vxlan'];
  const info = a.get(IFLA_LINKINFO);
  if (info) {
    const ia = parseAttrs(info);
    kind = str(ia.get(IFLA_INFO_KIND));
    const data = ia.get(IFLA_INFO_DATA);
    if (kind === 'vxlan' && data) {
      const va = parseAttrs(data);
      const local = va.get(IFLA_VXLAN_LOCAL) ?? va.get(IFLA_VXLAN_LOCAL6);
      vxlan = {
        vni: readU32(va.get(IFLA_VXLAN_ID)) ?? 0,
        port: va.get(IFLA_VXLAN_PORT)?.readUInt16BE(0) ?? 0,
        local: local ? bytesToIp(local) : undefined,
        learning: (va.get(IFLA_VXLAN_LEARNING)?.readUInt8(0) ?? 0) === 1,
        linkIndex: readU32(va.get(IFLA_VXLAN_LINK)) || undefined,
      };
    }
  }
  const mac = a.get(IFLA_ADDRESS);
  const oper = a.get(IFLA_OPERSTATE)?.readUInt8(0) ?? 0;
  return {
    index,
    name: str(a.get(IFLA_IFNAME)) ?? '',
    kind,
    mtu: readU32(a.get(IFLA_MTU)) ?? 0,
    mac: mac && mac.length === 6 ? bytesToMac(mac) : undefined,
    up: (flags & IFF_UP) !== 0,
    operState: operStates[oper] ?? String(oper),
    flags,
    masterIndex: readU32(a.get(IFLA_MASTER)) || undefined,
    linkIndex: readU32(a.get(IFLA_LINK)),
    vxlan,
  };
}

// ---------------------------------------------------------------------------------------------
// addresses

const familyOf = (f: IpFamily): number => (f === 4 ? AF_INET : AF_INET6);
const ipFamilyOf = (af: number): IpFamily => (af === AF_INET6 ? 6 : 4);

/** struct ifaddrmsg: family u8, prefixlen u8, flags u8, scope u8, index u32 (8 bytes). */
export function ifaddrmsg(family: number, prefixLen: number, index: number, scope = 0, flags = 0): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefixLen, 1);
  b.writeUInt8(flags & 0xff, 2);
  b.writeUInt8(scope, 3);
  b.writeUInt32LE(index, 4);
  return b;
}

export interface AddressSpec {
  index: number;
  /** 'a.b.c.d/len' or 'x::y/len' */
  cidr: string;
  /** IPv6: skip duplicate address detection, so the address is usable at once. */
  nodad?: boolean | undefined;
  scope?: RouteScope | undefined;
}

export function buildAddress(spec: AddressSpec): Buffer {
  const p = parsePrefix(spec.cidr);
  const flags = spec.nodad ? IFA_F_NODAD : 0;
  return Buffer.concat([
    ifaddrmsg(familyOf(p.family), p.length, spec.index, RouteScopes[spec.scope ?? 'universe'], flags),
    attr(IFA_LOCAL, p.bytes),
    attr(IFA_ADDRESS, p.bytes),
    attr(IFA_FLAGS, u32(flags)),
  ]);
}

export interface Address {
  index: number;
  family: IpFamily;
  address: string;
  prefixLen: number;
  /** 'address/prefixLen' */
  cidr: string;
  scope: number;
  label: string | undefined;
}

export function parseAddress(body: Buffer): Address {
  const family = ipFamilyOf(body.readUInt8(0));
  const prefixLen = body.readUInt8(1);
  const a = parseAttrs(body, 8);
  const bytes = a.get(IFA_LOCAL) ?? a.get(IFA_ADDRESS) ?? Buffer.alloc(family === 4 ? 4 : 16);
  const address = bytesToIp(bytes);
  return {
    index: body.readUInt32LE(4),
    family,
    address,
    prefixLen,
    cidr: `${address}/${prefixLen}`,
    scope: body.readUInt8(3),
    label: str(a.get(IFA_LABEL)),
  };
}

// ---------------------------------------------------------------------------------------------
// routes

/** struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type (u8 each), flags u32. */
export function rtmsg(fields: {
  family: number;
  dstLen?: number;
  table?: number;
  protocol?: number;
  scope?: number;
  type?: number;
  flags?: number;
}): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(fields.family, 0);
  b.writeUInt8(fields.dstLen ?? 0, 1);
  b.writeUInt8(fields.table ?? 0, 4);
  b.writeUInt8(fields.protocol ?? 0, 5);
  b.writeUInt8(fields.scope ?? 0, 6);
  b.writeUInt8(fields.type ?? 0, 7);
  b.writeUInt32LE(fields.flags ?? 0, 8);
  return b;
}

export interface NextHop {
  gateway?: string | undefined;
  /** Output interface index. */
  dev?: number | undefined;
  /** ECMP weight 1…256 (default 1). */
  weight?: number | undefined;
  onlink?: boolean | undefined;
}

export interface RouteSpec {
  /** 'a.b.c.d/len', 'x::/len' or 'default' (family from the gateway, else IPv4). */
  dst: string;
  type?: RouteType | undefined;
  gateway?: string | undefined;
  /** Output interface index. */
  dev?: number | undefined;
  /** Routing table (default 254, main). */
  table?: number | undefined;
  /** rtm_protocol: who owns the route (default RTPROT_BOOT, as `ip route add`). */
  protocol?: number | undefined;
  /** Default: link for a unicast route without gateway, host for local, universe otherwise. */
  scope?: RouteScope | undefined;
  /** Preferred source address (RTA_PREFSRC). */
  src?: string | undefined;
  /** RTA_PRIORITY, shown as "metric" by iproute2. */
  metric?: number | undefined;
  onlink?: boolean | undefined;
  /** ECMP next hops (RTA_MULTIPATH); excludes gateway/dev. */
  nexthops?: NextHop[] | undefined;
}

function routeFamily(spec: RouteSpec): IpFamily {
  const hint = spec.gateway ?? spec.nexthops?.find((n) => n.gateway)?.gateway ?? spec.src;
  const fallback: IpFamily = hint ? parsePrefix(hint).family : 4;
  return parsePrefix(spec.dst, fallback).family;
}

/**
 * RTM_NEWROUTE / RTM_DELROUTE body. For deletes only dst, table, type, gateway/dev and metric
 * narrow the match (the kernel's fib_table_delete ignores the zero fields).
 */
export function buildRoute(spec: RouteSpec, forDelete = false): Buffer {
  const family = routeFamily(spec);
  const dst = parsePrefix(spec.dst, family);
  const type = spec.type ?? 'unicast';
  const table = spec.table ?? RT_TABLE_MAIN;
  const hasGateway = spec.gateway !== undefined || (spec.nexthops ?? []).some((n) => n.gateway !== undefined);
  const scope =
    spec.scope ?? (type === 'local' ? 'host' : type === 'unicast' && !hasGateway ? 'link' : 'universe');
  const head = rtmsg({
    family: familyOf(family),
    dstLen: dst.length,
    // Tables above 255 only fit in RTA_TABLE; rtm_table then carries RT_TABLE_COMPAT as iproute2 does.
    table: table > 255 ? RT_TABLE_COMPAT : table,
    protocol: forDelete ? 0 : (spec.protocol ?? RTPROT_BOOT),
    scope: forDelete ? RouteScopes.nowhere : RouteScopes[scope],
    type: RouteTypes[type],
    flags: spec.onlink ? RTNH_F_ONLINK : 0,
  });
  const parts = [head, attr(RTA_TABLE, u32(table))];
  if (dst.length > 0) parts.push(attr(RTA_DST, dst.bytes));
  if (spec.gateway !== undefined) parts.push(attr(RTA_GATEWAY, ipToBytes(spec.gateway)));
  if (spec.dev !== undefined) parts.push(attr(RTA_OIF, u32(spec.dev)));
  if (spec.src !== undefined) parts.push(attr(RTA_PREFSRC, ipToBytes(spec.src)));
  if (spec.metric !== undefined) parts.push(attr(RTA_PRIORITY, u32(spec.metric)));
  if (spec.nexthops && spec.nexthops.length > 0) {
    parts.push(attr(RTA_MULTIPATH, Buffer.concat(spec.nexthops.map(buildNextHop))));
  }
  return Buffer.concat(parts);
}

/** struct rtnexthop: len u16, flags u8, hops u8 (weight − 1), ifindex i32, then attributes. */
function buildNextHop(nh: NextHop): Buffer {
  const attrs = nh.gateway !== undefined ? attr(RTA_GATEWAY, ipToBytes(nh.gateway)) : Buffer.alloc(0);
  const b = Buffer.alloc(8);
  b.writeUInt16LE(8 + attrs.length, 0);
  b.writeUInt8(nh.onlink ? RTNH_F_ONLINK : 0, 2);
  b.writeUInt8((nh.weight ?? 1) - 1, 3);
  b.writeInt32LE(nh.dev ?? 0, 4);
  return Buffer.concat([b, attrs]);
}

export interface RouteNextHop {
  gateway: string | undefined;
  dev: number | undefined;
  weight: number;
  onlink: boolean;
}

export interface Route {
  family: IpFamily;
  /** Destination prefix ('0.0.0.0/0' / '::/0' for default). */
  dst: string;
  type: RouteType;
  table: number;
  protocol: number;
  scope: number;
  gateway: string | undefined;
  dev: number | undefined;
  src: string | undefined;
  metric: number | undefined;
  onlink: boolean;
  nexthops: RouteNextHop[];
  /** RTM_F_CLONED: a cache entry (IPv6 exceptions), not a configured route. */
  cloned: boolean;
}

const routeTypeNames = Object.fromEntries(Object.entries(RouteTypes).map(([k, v]) => [v, k])) as Record<
  number,
  RouteType
>;

export function parseRoute(body: Buffer): Route {
  const family = ipFamilyOf(body.readUInt8(0));
  const dstLen = body.readUInt8(1);
  const flags = body.readUInt32LE(8);
  const a = parseAttrs(body, 12);
  const dstBytes = a.get(RTA_DST) ?? Buffer.alloc(family === 4 ? 4 : 16);
  const gw = a.get(RTA_GATEWAY);
  const src = a.get(RTA_PREFSRC);
  const nexthops: RouteNextHop[] = [];
  const mp = a.get(RTA_MULTIPATH);
  if (mp) {
    let o = 0;
    while (o + 8 <= mp.length) {
      const len = mp.readUInt16LE(o);
      if (len < 8) break;
      const na = parseAttrs(mp.subarray(o + 8, o + len));
      const ngw = na.get(RTA_GATEWAY);
      const nflags = mp.readUInt8(o + 2);
      nexthops.push({
        gateway: ngw ? bytesToIp(ngw) : undefined,
        dev: mp.readInt32LE(o + 4) || undefined,
        weight: mp.readUInt8(o + 3) + 1,
        onlink: (nflags & RTNH_F_ONLINK) !== 0,
      });
      o += align4(len);
    }
  }
  return {
    family,
    dst: formatPrefix(dstBytes, dstLen),
    type: routeTypeNames[body.readUInt8(7)] ?? 'unspec',
    table: readU32(a.get(RTA_TABLE)) ?? body.readUInt8(4),
    protocol: body.readUInt8(5),
    scope: body.readUInt8(6),
    gateway: gw ? bytesToIp(gw) : undefined,
    dev: readU32(a.get(RTA_OIF)),
    src: src ? bytesToIp(src) : undefined,
    metric: readU32(a.get(RTA_PRIORITY)),
    onlink: (flags & RTNH_F_ONLINK) !== 0,
    nexthops,
    cloned: (flags & RTM_F_CLONED) !== 0,
  };
}

// ---------------------------------------------------------------------------------------------
// neighbours and bridge FDB

/** struct ndmsg: family u8, pad u8, pad u16, ifindex i32, state u16, flags u8, type u8 (12 bytes). */
export function ndmsg(family: number, index: number, state = 0, flags = 0): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt16LE(state, 8);
  b.writeUInt8(flags, 10);
  return b;
}

export interface NeighbourSpec {
  dev: number;
  /** Neighbour IP address. */
  address: string;
  /** Link-layer address; omit for deletes. */
  mac?: string | undefined;
}

/** A permanent ARP/NDP entry (NUD_PERMANENT), as Felix programs for workloads and VTEPs. */
export function buildNeighbour(spec: NeighbourSpec): Buffer {
  const ip = ipToBytes(spec.address);
  const parts = [ndmsg(ip.length === 4 ? AF_INET : AF_INET6, spec.dev, NUD_PERMANENT), attr(NDA_DST, ip)];
  if (spec.mac !== undefined) parts.push(attr(NDA_LLADDR, macToBytes(spec.mac)));
  return Buffer.concat(parts);
}

export interface FdbSpec {
  /** The VXLAN (or bridge port) device index. */
  dev: number;
  mac: string;
  /** Remote VTEP underlay address. */
  dst?: string | undefined;
  vni?: number | undefined;
}

/** AF_BRIDGE neighbour with NTF_SELF: an entry in the device's own FDB (vxlan_fdb_add). */
export function buildFdb(spec: FdbSpec): Buffer {
  const parts = [
    ndmsg(AF_BRIDGE, spec.dev, NUD_PERMANENT | NUD_NOARP, NTF_SELF),
    attr(NDA_LLADDR, macToBytes(spec.mac)),
  ];
  if (spec.dst !== undefined) parts.push(attr(NDA_DST, ipToBytes(spec.dst)));
  if (spec.vni !== undefined) parts.push(attr(NDA_VNI, u32(spec.vni)));
  return Buffer.concat(parts);
}

export interface Neighbour {
  family: number;
  dev: number;
  /** IP address (ARP/NDP) or, for FDB entries, the remote VTEP (NDA_DST) if any. */
  address: string | undefined;
  mac: string | undefined;
  state: number;
  flags: number;
  vni: number | undefined;
  permanent: boolean;
}

export function parseNeighbour(body: Buffer): Neighbour {
  const a = parseAttrs(body, 12);
  const dst = a.get(NDA_DST);
  const ll = a.get(NDA_LLADDR);
  const state = body.readUInt16LE(8);
  return {
    family: body.readUInt8(0),
    dev: body.readInt32LE(4),
    address: dst && (dst.length === 4 || dst.length === 16) ? bytesToIp(dst) : undefined,
    mac: ll && ll.length === 6 ? bytesToMac(ll) : undefined,
    state,
    flags: body.readUInt8(10),
    vni: readU32(a.get(NDA_VNI)),
    permanent: (state & NUD_PERMANENT) !== 0,
  };
}

/** errno carried by an NLMSG_ERROR body (0 = ACK). */
export function parseErrno(body: Buffer): number {
  return body.length >= 4 ? -body.readInt32LE(0) : 0;
}
