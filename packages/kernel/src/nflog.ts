/**
 * Packets logged by iptables' NFLOG target, read over netlink (NETLINK_NETFILTER, subsystem
 * nfnetlink_log; include/uapi/linux/netfilter/nfnetlink_log.h). The socket binds one or more
 * NFLOG groups in a namespace and receives each logged packet as an NFULNL_MSG_PACKET message
 * carrying the rule's prefix, the interfaces and the first bytes of the packet. No text is
 * scraped: the codec below reads the attributes and the IP/TCP/UDP/ICMP headers.
 */
import { EventEmitter } from 'node:events';
import { createNetlink, type NetlinkSocket } from 'netlink';
import { NetlinkError } from './errors.ts';
import { bytesToIp } from './ip-address.ts';
import { logger } from './logger.ts';
import { type NetNamespace, runInNamespace } from './namespace.ts';

const NETLINK_NETFILTER = 12;
const NFNL_SUBSYS_ULOG = 4;
const NFULNL_MSG_PACKET = 0;
const NFULNL_MSG_CONFIG = 1;
/** nfnetlink message types are `subsystem << 8 | message`. */
const MSG_PACKET = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
const MSG_CONFIG = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;

const NFULNL_CFG_CMD_BIND = 1;
const NFULNL_CFG_CMD_UNBIND = 2;
const NFULA_CFG_CMD = 1;
const NFULA_CFG_MODE = 2;
const NFULA_CFG_TIMEOUT = 4;
const NFULA_CFG_QTHRESH = 5;
const NFULNL_COPY_PACKET = 2;

/** Packet attributes (enum nfulnl_attr_type). */
const NFULA = {
  packetHdr: 1,
  mark: 2,
  timestamp: 3,
  inDev: 4,
  outDev: 5,
  payload: 9,
  prefix: 10,
} as const;

const NLA_TYPE_MASK = 0x3fff;
const AF_UNSPEC = 0;
/** Bytes of each packet copied to us: IPv6 header plus a TCP header with room to spare. */
const COPY_RANGE = 128;
const SOCKET_BUFFER = 4 << 20;

/** One packet as NFLOG delivered it. */
export interface NflogPacket {
  /** The NFLOG group (`--nflog-group`). */
  group: number;
  /** `--nflog-prefix`, '' when the rule gave none. */
  prefix: string;
  /** Netfilter hook (0 PREROUTING, 1 INPUT, 2 FORWARD, 3 OUTPUT, 4 POSTROUTING). */
  hook: number;
  /** Ethertype of the packet (0x0800 IPv4, 0x86dd IPv6). */
  hwProtocol: number;
  mark: number | undefined;
  inIfindex: number | undefined;
  outIfindex: number | undefined;
  /** Kernel timestamp when the packet had one, else undefined. */
  timestamp: Date | undefined;
  /** The packet from its IP header on, cut to the copy range. */
  payload: Buffer;
}

/** The headers of a logged packet that name its flow. */
export interface PacketHeaders {
  family: 4 | 6;
  /** IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 132 SCTP…). */
  protocol: number;
  srcIp: string;
  dstIp: string;
  srcPort: number | undefined;
  dstPort: number | undefined;
  icmpType: number | undefined;
  icmpCode: number | undefined;
}

function attributes(buf: Buffer, start: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = start;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    out.set(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, buf.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}

/**
 * One NFULNL_MSG_PACKET body (after the netlink header): `struct nfgenmsg` (family, version,
 * big-endian group) then attributes, whose values nfnetlink_log writes in network byte order.
 */
export function parseNflogPacket(body: Buffer): NflogPacket {
  if (body.length < 4) throw new Error(`nflog message of ${body.length} bytes is shorter than nfgenmsg`);
  const group = body.readUInt16BE(2);
  const attrs = attributes(body, 4);
  const hdr = attrs.get(NFULA.packetHdr);
  const u32 = (type: number) => {
    const v = attrs.get(type);
    return v && v.length >= 4 ? v.readUInt32BE(0) : undefined;
  };
  const ts = attrs.get(NFULA.timestamp);
  const prefix = attrs.get(NFULA.prefix);
  const nul = prefix ? prefix.indexOf(0) : -1;
  return {
    group,
    prefix: prefix ? prefix.subarray(0, nul < 0 ? prefix.length : nul).toString('utf8') : '',
    hwProtocol: hdr && hdr.length >= 2 ? hdr.readUInt16BE(0) : 0,
    hook: hdr && hdr.length >= 3 ? hdr[2]! : 0,
    mark: u32(NFULA.mark),
    inIfindex: u32(NFULA.inDev),
    outIfindex: u32(NFULA.outDev),
    timestamp:
      ts && ts.length >= 16
        ? new Date(Number(ts.readBigUInt64BE(0)) * 1000 + Math.floor(Number(ts.readBigUInt64BE(8)) / 1000))
        : undefined,
    payload: Buffer.from(attrs.get(NFULA.payload) ?? Buffer.alloc(0)),
  };
}

const PORT_PROTOCOLS = new Set([6, 17, 132, 136]);
/** IPv6 extension headers skipped to reach the transport header (RFC 8200 §4). */
const IPV6_EXTENSIONS = new Set([0, 43, 60]);

/** The IP and transport headers at the start of `payload`; undefined when it holds no IP header. */
export function decodePacketHeaders(payload: Buffer): PacketHeaders | undefined {
  if (payload.length < 1) return undefined;
  const version = payload[0]! >> 4;
  let protocol: number;
  let l4: number;
  let srcIp: string;
  let dstIp: string;
  if (version === 4) {
    if (payload.length < 20) return undefined;
    const ihl = (payload[0]! & 0x0f) * 4;
    protocol = payload[9]!;
    srcIp = bytesToIp(payload.subarray(12, 16));
    dstIp = bytesToIp(payload.subarray(16, 20));
    // A later fragment carries no transport header.
    l4 = (payload.readUInt16BE(6) & 0x1fff) === 0 ? ihl : payload.length;
  } else if (version === 6) {
    if (payload.length < 40) return undefined;
    protocol = payload[6]!;
    srcIp = bytesToIp(payload.subarray(8, 24));
    dstIp = bytesToIp(payload.subarray(24, 40));
    l4 = 40;
    while (IPV6_EXTENSIONS.has(protocol) && l4 + 2 <= payload.length) {
      protocol = payload[l4]!;
      l4 += (payload[l4 + 1]! + 1) * 8;
    }
  } else {
    return undefined;
  }
  const headers: PacketHeaders = {
    family: version === 4 ? 4 : 6,
    protocol,
    srcIp,
    dstIp,
    srcPort: undefined,
    dstPort: undefined,
    icmpType: undefined,
    icmpCode: undefined,
  };
  if (PORT_PROTOCOLS.has(protocol) && l4 + 4 <= payload.length) {
    headers.srcPort = payload.readUInt16BE(l4);
    headers.dstPort = payload.readUInt16BE(l4 + 2);
  } else if ((protocol === 1 || protocol === 58) && l4 + 2 <= payload.length) {
    headers.icmpType = payload[l4]!;
    headers.icmpCode = payload[l4 + 1]!;
  }
  return headers;
}

function nfgenmsg(family: number, group: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt8(family, 0);
  b.writeUInt8(0, 1); // NFNETLINK_V0
  b.writeUInt16BE(group, 2);
  return b;
}

function attr(type: number, value: Buffer): Buffer {
  const len = 4 + value.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  value.copy(b, 4);
  return b;
}

const be32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
};

export interface NflogReaderOptions {
  /** Namespace whose NFLOG groups to read; our own when omitted. */
  namespace?: NetNamespace | undefined;
  /** NFLOG groups to bind (each can be bound by one socket per namespace). */
  groups: readonly number[];
}

interface ReaderEvents {
  packet: [NflogPacket];
  error: [Error];
}

/**
 * Reads NFLOG groups in a namespace. `packet` fires for every logged packet; `error` when the
 * socket fails (ENOBUFS: the kernel dropped records because we fell behind).
 */
export class NflogReader extends EventEmitter<ReaderEvents> {
  readonly groups: readonly number[];
  readonly namespace: string | undefined;
  readonly #socket: NetlinkSocket;
  #closed = false;

  private constructor(socket: NetlinkSocket, options: NflogReaderOptions) {
    super();
    this.#socket = socket;
    this.groups = [...options.groups];
    this.namespace = options.namespace?.name;
    socket.on('message', (msgs) => {
      for (const m of msgs) {
        if (m.type !== MSG_PACKET) continue;
        try {
          this.emit('packet', parseNflogPacket(m.data));
        } catch (err) {
          logger.warn({ err, ns: this.namespace }, 'unreadable nflog message');
        }
      }
    });
    socket.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
      else logger.warn({ err, ns: this.namespace }, 'nflog socket error');
    });
  }

  /** Opens the socket in the namespace and binds the groups (copying whole headers, no batching). */
  static async open(options: NflogReaderOptions): Promise<NflogReader> {
    const make = () =>
      createNetlink(NETLINK_NETFILTER, { recvBufferSize: SOCKET_BUFFER, sendBufferSize: SOCKET_BUFFER });
    const socket = options.namespace
      ? runInNamespace(options.namespace, make, 'opening an nflog socket')
      : make();
    const reader = new NflogReader(socket, options);
    try {
      for (const group of options.groups) await reader.#bind(group);
    } catch (err) {
      reader.close();
      throw err;
    }
    return reader;
  }

  async #config(group: number, attrs: Buffer[], operation: string): Promise<void> {
    try {
      await this.#socket.request(MSG_CONFIG, [nfgenmsg(AF_UNSPEC, group), ...attrs], { timeout: 5000 });
    } catch (err) {
      const errno = (err as { code?: string }).code;
      throw new NetlinkError({ operation, namespace: this.namespace, errno, cause: err });
    }
  }

  async #bind(group: number): Promise<void> {
    if (!Number.isInteger(group) || group < 0 || group > 0xffff)
      throw new RangeError(`nflog group ${group}: expected an integer 0-65535`);
    await this.#config(
      group,
      [attr(NFULA_CFG_CMD, Buffer.from([NFULNL_CFG_CMD_BIND, 0, 0, 0]))],
      `binding nflog group ${group}`,
    );
    // copy_range (be32), copy_mode (u8), pad; each packet is sent at once (queue threshold 1,
    // no flush timeout), so a record is never held back waiting for others.
    const mode = Buffer.alloc(6);
    mode.writeUInt32BE(COPY_RANGE, 0);
    mode.writeUInt8(NFULNL_COPY_PACKET, 4);
    await this.#config(
      group,
      [attr(NFULA_CFG_MODE, mode), attr(NFULA_CFG_QTHRESH, be32(1)), attr(NFULA_CFG_TIMEOUT, be32(0))],
      `configuring nflog group ${group}`,
    );
  }

  /** Unbinds the groups and closes the socket (closing alone also releases them). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const group of this.groups) {
      this.#socket.send(
        MSG_CONFIG,
        [nfgenmsg(AF_UNSPEC, group), attr(NFULA_CFG_CMD, Buffer.from([NFULNL_CFG_CMD_UNBIND, 0, 0, 0]))],
        { flags: 1 },
        () => {},
      );
    }
    this.#socket.close();
  }
}
