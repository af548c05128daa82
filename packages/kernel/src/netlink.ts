/**
 * One long-lived NETLINK_ROUTE socket per network namespace. The socket is created with the main
 * thread briefly inside the target namespace (see namespace.ts), so every request acts there
 * without spawning a process.
 */
import { createNetlink, type NetlinkMessage, type NetlinkSocket } from 'netlink';
import { errnoName, KernelError, NetlinkError } from './errors.ts';
import { formatPrefix, parsePrefix } from './ip-address.ts';
import { logger } from './logger.ts';
import { type NetNamespace, runInNamespace } from './namespace.ts';
import {
  type Address,
  type AddressSpec,
  AF_BRIDGE,
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  assertLittleEndian,
  buildAddress,
  buildFdb,
  buildIpipLink,
  buildLinkChange,
  buildLinkSelector,
  buildNeighbour,
  buildRoute,
  buildSimpleLink,
  buildVethLink,
  buildVxlanLink,
  type FdbSpec,
  type IpipSpec,
  ifaddrmsg,
  ifinfomsg,
  type Link,
  type LinkChange,
  type LinkCommon,
  type Neighbour,
  type NeighbourSpec,
  NLM_F_ACK,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  NLMSG_ERROR,
  ndmsg,
  parseAddress,
  parseErrno,
  parseLink,
  parseNeighbour,
  parseRoute,
  type Route,
  type RouteSpec,
  type RouteType,
  RTM,
  RTNLGRP,
  rtmsg,
  type VxlanSpec,
} from './netlink-codec.ts';

const NETLINK_ROUTE = 0;
/**
 * Messages in flight per socket (a plain request is one, a batch counts each of its messages).
 * Each ACK or error is queued on our receive buffer; the kernel drops (ENOBUFS) rather than blocks
 * when it is full (netlink_ack → netlink_unicast with MSG_DONTWAIT), so pipelining is bounded:
 * 256 acks of ~1 KiB truesize fit the 416 KiB a default rmem_max allows.
 */
const WINDOW = 256;
/** Messages and bytes packed into one sendmsg by `batch`. */
const BATCH_MESSAGES = 128;
const BATCH_BYTES = 64 << 10;
const NLMSG_HDRLEN = 16;
const SOCKET_BUFFER = 4 << 20;

/** One message of a batch: what `request` takes, without waiting for its own reply. */
export interface BatchItem {
  type: number;
  body: Buffer;
  /** NLM_F_CREATE, NLM_F_REPLACE, …; NLM_F_REQUEST is added, NLM_F_ACK is managed by `batch`. */
  flags: number;
  /** Names the change in its error: `adding route 10.0.0.1/32 via 192.0.2.2`. */
  operation: string;
}

/** A batch's outcome, in the order given: undefined where the kernel applied the message. */
export type BatchResult = (NetlinkError | undefined)[];

/** One sendmsg of a batch waiting for its last message's ACK. */
interface Chunk {
  items: readonly BatchItem[];
  results: BatchResult;
  /** seq → index into items, for every message of this chunk. */
  seqs: Map<number, number>;
  lastSeq: number;
  done(): void;
  fail(err: Error): void;
}

/** A link reference: index or name. */
export type LinkRef = number | string;

export interface VethOptions extends Omit<LinkCommon, 'netnsFd'> {
  peer: Omit<LinkCommon, 'netnsFd'> & { namespace?: NetNamespace | undefined };
}
export interface VxlanOptions extends Omit<VxlanSpec, 'linkIndex' | 'netnsFd'> {
  /** Underlay device (name or index). */
  dev?: LinkRef | undefined;
}
export interface IpipOptions extends Omit<IpipSpec, 'linkIndex' | 'netnsFd'> {
  dev?: LinkRef | undefined;
}
export interface LinkSettings extends Omit<LinkChange, 'master' | 'netnsFd'> {
  /** Master device to enslave to; null releases. */
  master?: LinkRef | null | undefined;
  /** Move the link into this namespace. */
  namespace?: NetNamespace | undefined;
}

export interface RouteFilter {
  family?: 4 | 6 | undefined;
  /** Table number, or 'all'; default 254 (main). */
  table?: number | 'all' | undefined;
  protocol?: number | undefined;
  dev?: LinkRef | undefined;
  type?: RouteType | undefined;
  dst?: string | undefined;
}

export interface AddressFilter {
  family?: 4 | 6 | undefined;
  dev?: LinkRef | undefined;
}

export interface RouteInput extends Omit<RouteSpec, 'dev' | 'nexthops'> {
  dev?: LinkRef | undefined;
  nexthops?: { gateway?: string; dev?: LinkRef; weight?: number; onlink?: boolean }[] | undefined;
}

export type NetlinkEvent =
  | { kind: 'link'; action: 'new' | 'del'; link: Link }
  | { kind: 'address'; action: 'new' | 'del'; address: Address }
  | { kind: 'route'; action: 'new' | 'del'; route: Route }
  | { kind: 'neighbour'; action: 'new' | 'del'; neighbour: Neighbour };

export type EventGroup = 'link' | 'address' | 'route' | 'neighbour';

export interface Subscription {
  close(): void;
}

function describeRoute(spec: RouteInput): string {
  const parts = [spec.type && spec.type !== 'unicast' ? `${spec.type} ${spec.dst}` : spec.dst];
  if (spec.gateway) parts.push(`via ${spec.gateway}`);
  if (spec.dev !== undefined) parts.push(`dev ${spec.dev}`);
  if (spec.nexthops?.length) parts.push(`nexthops ${spec.nexthops.map((n) => n.gateway ?? n.dev).join(',')}`);
  if (spec.table !== undefined && spec.table !== 254) parts.push(`table ${spec.table}`);
  if (spec.protocol !== undefined) parts.push(`proto ${spec.protocol}`);
  return parts.join(' ');
}

function openSocket(ns: NetNamespace | undefined): NetlinkSocket {
  assertLittleEndian();
  const make = () =>
    createNetlink(NETLINK_ROUTE, { recvBufferSize: SOCKET_BUFFER, sendBufferSize: SOCKET_BUFFER });
  return ns ? runInNamespace(ns, make, 'opening a netlink socket') : make();
}

export class Netlink {
  /** Namespace name for error messages; undefined for our own namespace. */
  readonly namespace: string | undefined;
  readonly #ns: NetNamespace | undefined;
  readonly #socket: NetlinkSocket;
  #inFlight = 0;
  readonly #waiting: { n: number; go: () => void }[] = [];
  #closed = false;
  /** Batch messages awaiting an error or their chunk's ACK, by sequence number. */
  readonly #chunks = new Map<number, Chunk>();

  private constructor(ns: NetNamespace | undefined) {
    this.#ns = ns;
    this.namespace = ns?.name;
    this.#socket = openSocket(ns);
    // Replies to batch messages are not registered with the library's request map, so it hands
    // them here; they are matched to their message by sequence number.
    this.#socket.on('message', (msgs) => {
      for (const m of msgs) if (m.type === NLMSG_ERROR) this.#batchReply(m.seq, parseErrno(m.data));
    });
    // A receive error (ENOBUFS: replies were dropped) means a batch can no longer tell which of
    // its messages failed: each waiting chunk fails as a whole.
    this.#socket.on('error', (err) => {
      const errno = (err as { code?: string }).code;
      logger.warn({ err, ns: this.namespace }, 'netlink socket error');
      for (const chunk of new Set(this.#chunks.values())) {
        chunk.fail(
          new NetlinkError({
            operation: 'receiving batch replies',
            namespace: this.namespace,
            errno,
            cause: err,
          }),
        );
      }
    });
  }

  /** A socket acting in `ns` (or in our own namespace when omitted). */
  static open(ns?: NetNamespace): Netlink {
    return new Netlink(ns);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
  }

  // -------------------------------------------------------------------------------------------
  // transport

  async #acquire(n = 1): Promise<void> {
    if (this.#waiting.length === 0 && this.#inFlight + n <= WINDOW) {
      this.#inFlight += n;
      return;
    }
    await new Promise<void>((go) => this.#waiting.push({ n, go }));
  }

  #release(n = 1): void {
    this.#inFlight -= n;
    for (let w = this.#waiting[0]; w && this.#inFlight + w.n <= WINDOW; w = this.#waiting[0]) {
      this.#waiting.shift();
      this.#inFlight += w.n;
      w.go();
    }
  }

  /** Send one request and return its reply messages; NLMSG_ERROR with errno ≠ 0 becomes a NetlinkError. */
  async request(type: number, body: Buffer, flags: number, operation: string): Promise<NetlinkMessage[]> {
    if (this.#closed) throw new NetlinkError({ operation, namespace: this.namespace, errno: 'EBADF' });
    await this.#acquire();
    let msgs: NetlinkMessage[];
    try {
      [msgs] = await this.#socket.request(type, body, { flags, checkError: false });
    } catch (err) {
      const errno = (err as { code?: string }).code;
      throw new NetlinkError({ operation, namespace: this.namespace, errno, cause: err });
    } finally {
      this.#release();
    }
    const first = msgs[0];
    if (first && first.type === NLMSG_ERROR) {
      const errno = parseErrno(first.data);
      if (errno !== 0)
        throw new NetlinkError({ operation, namespace: this.namespace, errno: errnoName(errno) });
      return [];
    }
    return msgs;
  }

  /**
   * Many changes in few syscalls: up to 128 messages (64 KiB) per sendmsg, which the kernel
   * applies one after another in that call. Only the last message of each sendmsg asks for an ACK;
   * the kernel still answers any message that fails with an error carrying its sequence number,
   * queued before that ACK, so when the ACK arrives every message of the sendmsg is known to have
   * been applied or to have failed with that errno. A failed message does not stop the ones after
   * it. Resolves with one entry per item, in order; rejects only when the socket itself fails.
   */
  async batch(items: readonly BatchItem[]): Promise<BatchResult> {
    if (this.#closed)
      throw new NetlinkError({ operation: 'sending a batch', namespace: this.namespace, errno: 'EBADF' });
    const results: BatchResult = new Array(items.length).fill(undefined);
    const sends: Promise<void>[] = [];
    for (let start = 0; start < items.length; ) {
      let end = start;
      let bytes = 0;
      while (end < items.length && end - start < BATCH_MESSAGES) {
        const size = NLMSG_HDRLEN + align4(items[end]!.body.length);
        if (end > start && bytes + size > BATCH_BYTES) break;
        bytes += size;
        end++;
      }
      sends.push(this.#sendChunk(items, results, start, end, bytes));
      start = end;
    }
    await Promise.all(sends);
    return results;
  }

  async #sendChunk(
    all: readonly BatchItem[],
    results: BatchResult,
    start: number,
    end: number,
    bytes: number,
  ): Promise<void> {
    await this.#acquire(end - start);
    try {
      if (this.#closed)
        throw new NetlinkError({ operation: 'sending a batch', namespace: this.namespace, errno: 'EBADF' });
      const raw = this.#socket.socket;
      const port = raw.address().port;
      const buf = Buffer.alloc(bytes);
      const seqs = new Map<number, number>();
      let off = 0;
      let lastSeq = 0;
      for (let i = start; i < end; i++) {
        const item = all[i]!;
        const seq = this.#socket.generateSeq();
        const flags = item.flags | NLM_F_REQUEST | (i === end - 1 ? NLM_F_ACK : 0);
        buf.writeUInt32LE(NLMSG_HDRLEN + item.body.length, off);
        buf.writeUInt16LE(item.type, off + 4);
        buf.writeUInt16LE(flags, off + 6);
        buf.writeUInt32LE(seq, off + 8);
        buf.writeUInt32LE(port, off + 12);
        item.body.copy(buf, off + NLMSG_HDRLEN);
        off += NLMSG_HDRLEN + align4(item.body.length);
        seqs.set(seq, i);
        lastSeq = seq;
      }
      await new Promise<void>((resolve, reject) => {
        const chunk: Chunk = {
          items: all,
          results,
          seqs,
          lastSeq,
          done: () => {
            this.#forget(chunk);
            resolve();
          },
          fail: (err) => {
            this.#forget(chunk);
            reject(err);
          },
        };
        for (const seq of seqs.keys()) this.#chunks.set(seq, chunk);
        // Keep the process alive while replies are due (the library only does so for its own requests).
        this.#socket.ref(true);
        raw.send(buf, undefined, (err) => {
          if (err)
            chunk.fail(
              new NetlinkError({
                operation: `sending ${end - start} messages (${all[start]!.operation}, …)`,
                namespace: this.namespace,
                errno: err.code,
                cause: err,
              }),
            );
        });
      });
    } finally {
      this.#release(end - start);
    }
  }

  #forget(chunk: Chunk): void {
    for (const seq of chunk.seqs.keys()) this.#chunks.delete(seq);
    if (this.#chunks.size === 0) this.#socket.ref(false);
  }

  #batchReply(seq: number, errno: number): void {
    const chunk = this.#chunks.get(seq);
    if (!chunk) return;
    if (errno !== 0) {
      const i = chunk.seqs.get(seq)!;
      chunk.results[i] = new NetlinkError({
        operation: chunk.items[i]!.operation,
        namespace: this.namespace,
        errno: errnoName(errno),
      });
    }
    if (seq === chunk.lastSeq) chunk.done();
  }

  async #dump(type: number, body: Buffer, operation: string): Promise<Buffer[]> {
    const msgs = await this.request(type, body, NLM_F_DUMP, operation);
    // Dumps answer RTM_GETx with RTM_NEWx messages (GETx = NEWx + 2 in rtnetlink.h).
    return msgs.filter((m) => m.type === type - 2).map((m) => m.data);
  }

  // -------------------------------------------------------------------------------------------
  // links

  async listLinks(): Promise<Link[]> {
    const bodies = await this.#dump(RTM.GETLINK, ifinfomsg(), 'listing links');
    return bodies.map(parseLink);
  }

  /** The link, or undefined if none has that name/index. */
  async findLink(ref: LinkRef): Promise<Link | undefined> {
    try {
      return await this.getLink(ref);
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === 'ENODEV') return undefined;
      throw err;
    }
  }

  /** The link; throws NetlinkError ENODEV when absent. */
  async getLink(ref: LinkRef): Promise<Link> {
    const msgs = await this.request(RTM.GETLINK, buildLinkSelector(ref), 0, `getting link ${ref}`);
    const msg = msgs.find((m) => m.type === RTM.NEWLINK);
    if (!msg)
      throw new NetlinkError({
        operation: `getting link ${ref}`,
        namespace: this.namespace,
        errno: 'ENODEV',
      });
    return parseLink(msg.data);
  }

  async #index(ref: LinkRef): Promise<number> {
    return typeof ref === 'number' ? ref : (await this.getLink(ref)).index;
  }

  async #create(kind: string, name: string, body: Buffer, label = name): Promise<Link> {
    const operation = `creating ${kind} link ${label}`;
    try {
      await this.request(RTM.NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL, operation);
    } catch (err) {
      // rtnl_newlink: no rtnl_link_ops for the kind even after request_module("rtnl-link-<kind>").
      if (err instanceof NetlinkError && err.errno === 'EOPNOTSUPP') {
        throw new KernelError(
          'ModuleMissing',
          { errno: err.errno, operation, namespace: this.namespace, cause: err },
          `${kind} module not available: ${operation}${this.namespace ? ` in netns ${this.namespace}` : ''} (the kernel has no "${kind}" link type; load the ${kind} module)`,
        );
      }
      throw err;
    }
    logger.debug({ ns: this.namespace, kind, name }, 'link created');
    return this.getLink(name);
  }

  /** A veth pair; the peer is created directly in `peer.namespace` (IFLA_NET_NS_FD) if given. */
  async createVeth(opts: VethOptions): Promise<Link> {
    const { namespace, ...peer } = opts.peer;
    const body = buildVethLink({ ...opts, peer: { ...peer, netnsFd: namespace?.fd } });
    const label = `${opts.name} peer ${peer.name}${namespace ? ` in netns ${namespace.name}` : ''}`;
    return this.#create('veth', opts.name, body, label);
  }

  async createVxlan(opts: VxlanOptions): Promise<Link> {
    const linkIndex = opts.dev === undefined ? undefined : await this.#index(opts.dev);
    return this.#create('vxlan', opts.name, buildVxlanLink({ ...opts, linkIndex }));
  }

  /** IPIP tunnel (Calico's tunl0). Fails with code 'ModuleMissing' where the ipip module is absent. */
  async createIpip(opts: IpipOptions): Promise<Link> {
    const linkIndex = opts.dev === undefined ? undefined : await this.#index(opts.dev);
    return this.#create('ipip', opts.name, buildIpipLink({ ...opts, linkIndex }));
  }

  async createBridge(opts: Omit<LinkCommon, 'netnsFd'>): Promise<Link> {
    return this.#create('bridge', opts.name, buildSimpleLink('bridge', opts));
  }

  async createDummy(opts: Omit<LinkCommon, 'netnsFd'>): Promise<Link> {
    return this.#create('dummy', opts.name, buildSimpleLink('dummy', opts));
  }

  /** Change state, MTU, MAC, master, name or namespace of a link. */
  async setLink(ref: LinkRef, settings: LinkSettings): Promise<void> {
    const index = await this.#index(ref);
    const master =
      settings.master === undefined
        ? undefined
        : settings.master === null
          ? 0
          : await this.#index(settings.master);
    const what = Object.entries(settings)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'object' && v !== null ? String(v) : v}`)
      .join(' ');
    await this.request(
      RTM.NEWLINK,
      buildLinkChange(index, { ...settings, master, netnsFd: settings.namespace?.fd }),
      0,
      `setting link ${ref} ${what}`,
    );
  }

  async deleteLink(ref: LinkRef, options: { ifExists?: boolean } = {}): Promise<void> {
    try {
      await this.request(RTM.DELLINK, buildLinkSelector(ref), 0, `deleting link ${ref}`);
    } catch (err) {
      if (options.ifExists && err instanceof NetlinkError && err.errno === 'ENODEV') return;
      throw err;
    }
  }

  // -------------------------------------------------------------------------------------------
  // addresses

  async addAddress(
    dev: LinkRef,
    cidr: string,
    options: Omit<AddressSpec, 'index' | 'cidr'> & { replace?: boolean } = {},
  ): Promise<void> {
    const index = await this.#index(dev);
    const flags = NLM_F_CREATE | (options.replace ? NLM_F_REPLACE : NLM_F_EXCL);
    await this.request(
      RTM.NEWADDR,
      buildAddress({ ...options, index, cidr }),
      flags,
      `adding address ${cidr} to ${dev}`,
    );
  }

  async deleteAddress(dev: LinkRef, cidr: string): Promise<void> {
    const index = await this.#index(dev);
    await this.request(RTM.DELADDR, buildAddress({ index, cidr }), 0, `deleting address ${cidr} from ${dev}`);
  }

  async listAddresses(filter: AddressFilter = {}): Promise<Address[]> {
    const family = filter.family === 4 ? AF_INET : filter.family === 6 ? AF_INET6 : AF_UNSPEC;
    const bodies = await this.#dump(RTM.GETADDR, ifaddrmsg(family, 0, 0), 'listing addresses');
    const index = filter.dev === undefined ? undefined : await this.#index(filter.dev);
    return bodies
      .map(parseAddress)
      .filter(
        (a) => (index === undefined || a.index === index) && (!filter.family || a.family === filter.family),
      );
  }

  // -------------------------------------------------------------------------------------------
  // routes

  async #routeSpec(input: RouteInput): Promise<RouteSpec> {
    const dev = input.dev === undefined ? undefined : await this.#index(input.dev);
    const nexthops = input.nexthops
      ? await Promise.all(
          input.nexthops.map(async (n) => ({
            ...n,
            dev: n.dev === undefined ? undefined : await this.#index(n.dev),
          })),
        )
      : undefined;
    return { ...input, dev, nexthops };
  }

  /** Add a route; EEXIST if one with the same key (dst, table, tos, metric) exists. */
  async addRoute(route: RouteInput): Promise<void> {
    const spec = await this.#routeSpec(route);
    await this.request(
      RTM.NEWROUTE,
      buildRoute(spec),
      NLM_F_CREATE | NLM_F_EXCL,
      `adding route ${describeRoute(route)}`,
    );
  }

  /** Add or replace the route with the same key (what Felix does: netlink RouteReplace). */
  async replaceRoute(route: RouteInput): Promise<void> {
    const spec = await this.#routeSpec(route);
    await this.request(
      RTM.NEWROUTE,
      buildRoute(spec),
      NLM_F_CREATE | NLM_F_REPLACE,
      `replacing route ${describeRoute(route)}`,
    );
  }

  async deleteRoute(route: RouteInput, options: { ifExists?: boolean } = {}): Promise<void> {
    const spec = await this.#routeSpec(route);
    try {
      await this.request(RTM.DELROUTE, buildRoute(spec, true), 0, `deleting route ${describeRoute(route)}`);
    } catch (err) {
      if (options.ifExists && err instanceof NetlinkError && err.errno === 'ESRCH') return;
      throw err;
    }
  }

  /**
   * Add or replace many routes at once (see `batch`): one result per route, in order, undefined
   * where it was programmed, else the NetlinkError naming that route and the errno.
   */
  async replaceRoutes(routes: readonly RouteInput[]): Promise<BatchResult> {
    return this.#routeBatch(routes, RTM.NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, 'replacing');
  }

  /** Add many routes at once; a route whose key exists fails alone with EEXIST. */
  async addRoutes(routes: readonly RouteInput[]): Promise<BatchResult> {
    return this.#routeBatch(routes, RTM.NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, 'adding');
  }

  /** Delete many routes at once; with `ifExists` a route already gone (ESRCH) counts as deleted. */
  async deleteRoutes(
    routes: readonly RouteInput[],
    options: { ifExists?: boolean } = {},
  ): Promise<BatchResult> {
    const results = await this.#routeBatch(routes, RTM.DELROUTE, 0, 'deleting');
    return options.ifExists ? results.map((e) => (e?.errno === 'ESRCH' ? undefined : e)) : results;
  }

  async #routeBatch(
    routes: readonly RouteInput[],
    type: number,
    flags: number,
    verb: string,
  ): Promise<BatchResult> {
    // Each device name is looked up once for the whole batch, not once per route.
    const names = new Set<string>();
    for (const r of routes) {
      if (typeof r.dev === 'string') names.add(r.dev);
      for (const n of r.nexthops ?? []) if (typeof n.dev === 'string') names.add(n.dev);
    }
    // A name that is not there fails its routes alone (ENODEV), as one request per route would.
    const index = new Map<string, number | undefined>();
    await Promise.all([...names].map(async (n) => index.set(n, (await this.findLink(n))?.index)));
    const dev = (ref: LinkRef | undefined) => (typeof ref === 'string' ? index.get(ref) : ref);
    const missing = (r: RouteInput) =>
      [r.dev, ...(r.nexthops ?? []).map((n) => n.dev)].find(
        (d) => typeof d === 'string' && index.get(d) === undefined,
      );
    const results: BatchResult = new Array(routes.length).fill(undefined);
    const items: BatchItem[] = [];
    const at: number[] = [];
    routes.forEach((r, i) => {
      const operation = `${verb} route ${describeRoute(r)}`;
      const gone = missing(r);
      if (gone !== undefined) {
        results[i] = new NetlinkError({ operation, namespace: this.namespace, errno: 'ENODEV' });
        return;
      }
      const spec: RouteSpec = {
        ...r,
        dev: dev(r.dev),
        nexthops: r.nexthops?.map((n) => ({ ...n, dev: dev(n.dev) })),
      };
      items.push({ type, body: buildRoute(spec, type === RTM.DELROUTE), flags, operation });
      at.push(i);
    });
    const sent = await this.batch(items);
    sent.forEach((e, k) => {
      results[at[k]!] = e;
    });
    return results;
  }

  async listRoutes(filter: RouteFilter = {}): Promise<Route[]> {
    const family = filter.family === 4 ? AF_INET : filter.family === 6 ? AF_INET6 : AF_UNSPEC;
    const bodies = await this.#dump(RTM.GETROUTE, rtmsg({ family }), 'listing routes');
    const table = filter.table ?? 254;
    const dev = filter.dev === undefined ? undefined : await this.#index(filter.dev);
    const dst = filter.dst === undefined ? undefined : normalisePrefix(filter.dst, filter.family);
    return bodies
      .map(parseRoute)
      .filter(
        (r) =>
          !r.cloned &&
          (table === 'all' || r.table === table) &&
          (filter.family === undefined || r.family === filter.family) &&
          (filter.protocol === undefined || r.protocol === filter.protocol) &&
          (filter.type === undefined || r.type === filter.type) &&
          (dev === undefined || r.dev === dev || r.nexthops.some((n) => n.dev === dev)) &&
          (dst === undefined || r.dst === dst),
      );
  }

  // -------------------------------------------------------------------------------------------
  // neighbours (ARP/NDP) and FDB

  async #neighbourSpec(dev: LinkRef, address: string, mac?: string): Promise<NeighbourSpec> {
    return { dev: await this.#index(dev), address, mac };
  }

  /** Add a permanent neighbour entry; EEXIST if present. */
  async addNeighbour(dev: LinkRef, address: string, mac: string): Promise<void> {
    const spec = await this.#neighbourSpec(dev, address, mac);
    await this.request(
      RTM.NEWNEIGH,
      buildNeighbour(spec),
      NLM_F_CREATE | NLM_F_EXCL,
      `adding neighbour ${address} lladdr ${mac} dev ${dev}`,
    );
  }

  async replaceNeighbour(dev: LinkRef, address: string, mac: string): Promise<void> {
    const spec = await this.#neighbourSpec(dev, address, mac);
    await this.request(
      RTM.NEWNEIGH,
      buildNeighbour(spec),
      NLM_F_CREATE | NLM_F_REPLACE,
      `replacing neighbour ${address} lladdr ${mac} dev ${dev}`,
    );
  }

  async deleteNeighbour(dev: LinkRef, address: string): Promise<void> {
    const spec = await this.#neighbourSpec(dev, address);
    await this.request(RTM.DELNEIGH, buildNeighbour(spec), 0, `deleting neighbour ${address} dev ${dev}`);
  }

  async listNeighbours(filter: { dev?: LinkRef; family?: 4 | 6 } = {}): Promise<Neighbour[]> {
    const family = filter.family === 4 ? AF_INET : filter.family === 6 ? AF_INET6 : AF_UNSPEC;
    const bodies = await this.#dump(RTM.GETNEIGH, ndmsg(family, 0), 'listing neighbours');
    const dev = filter.dev === undefined ? undefined : await this.#index(filter.dev);
    return bodies
      .map(parseNeighbour)
      .filter(
        (n) =>
          n.family !== AF_BRIDGE &&
          (dev === undefined || n.dev === dev) &&
          (family === AF_UNSPEC || n.family === family),
      );
  }

  /**
   * Add or replace an FDB entry on a VXLAN device: frames for `mac` go to the VTEP `dst`.
   * `append` adds another destination for the same MAC (flooding to several VTEPs via 00:00:…).
   */
  async replaceFdb(
    dev: LinkRef,
    mac: string,
    dst: string,
    options: { append?: boolean; vni?: number } = {},
  ): Promise<void> {
    const spec: FdbSpec = { dev: await this.#index(dev), mac, dst, vni: options.vni };
    const flags = NLM_F_CREATE | (options.append ? NLM_F_APPEND : NLM_F_REPLACE);
    await this.request(RTM.NEWNEIGH, buildFdb(spec), flags, `setting fdb ${mac} dst ${dst} dev ${dev}`);
  }

  async deleteFdb(dev: LinkRef, mac: string, dst?: string): Promise<void> {
    const spec: FdbSpec = { dev: await this.#index(dev), mac, dst };
    await this.request(
      RTM.DELNEIGH,
      buildFdb(spec),
      0,
      `deleting fdb ${mac}${dst ? ` dst ${dst}` : ''} dev ${dev}`,
    );
  }

  async listFdb(filter: { dev?: LinkRef } = {}): Promise<Neighbour[]> {
    const bodies = await this.#dump(RTM.GETNEIGH, ndmsg(AF_BRIDGE, 0), 'listing fdb');
    const dev = filter.dev === undefined ? undefined : await this.#index(filter.dev);
    return bodies
      .map(parseNeighbour)
      .filter((n) => n.family === AF_BRIDGE && (dev === undefined || n.dev === dev));
  }

  // -------------------------------------------------------------------------------------------
  // change events

  /**
   * Listen to link/address/route/neighbour changes in this namespace (rtnetlink multicast
   * groups). A separate socket, so events never interleave with request replies. The socket
   * keeps the process alive until the subscription is closed.
   */
  subscribe(groups: readonly EventGroup[], listener: (event: NetlinkEvent) => void): Subscription {
    const socket = openSocket(this.#ns);
    const ids: Record<EventGroup, number[]> = {
      link: [RTNLGRP.LINK],
      address: [RTNLGRP.IPV4_IFADDR, RTNLGRP.IPV6_IFADDR],
      route: [RTNLGRP.IPV4_ROUTE, RTNLGRP.IPV6_ROUTE],
      neighbour: [RTNLGRP.NEIGH],
    };
    for (const g of groups) for (const id of ids[g]) socket.addMembership(id);
    socket.ref(true);
    socket.on('message', (msgs) => {
      for (const m of msgs) {
        const event = toEvent(m);
        if (event && groups.includes(event.kind)) {
          try {
            listener(event);
          } catch (err) {
            logger.error({ err, ns: this.namespace }, 'netlink event listener threw');
          }
        }
      }
    });
    socket.on('error', (err) => logger.warn({ err, ns: this.namespace }, 'netlink event socket error'));
    return {
      close: () => {
        socket.close();
      },
    };
  }
}

function toEvent(m: NetlinkMessage): NetlinkEvent | undefined {
  switch (m.type) {
    case RTM.NEWLINK:
    case RTM.DELLINK:
      return { kind: 'link', action: m.type === RTM.NEWLINK ? 'new' : 'del', link: parseLink(m.data) };
    case RTM.NEWADDR:
    case RTM.DELADDR:
      return {
        kind: 'address',
        action: m.type === RTM.NEWADDR ? 'new' : 'del',
        address: parseAddress(m.data),
      };
    case RTM.NEWROUTE:
    case RTM.DELROUTE:
      return { kind: 'route', action: m.type === RTM.NEWROUTE ? 'new' : 'del', route: parseRoute(m.data) };
    case RTM.NEWNEIGH:
    case RTM.DELNEIGH:
      return {
        kind: 'neighbour',
        action: m.type === RTM.NEWNEIGH ? 'new' : 'del',
        neighbour: parseNeighbour(m.data),
      };
    default:
      return undefined;
  }
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function normalisePrefix(text: string, family?: 4 | 6): string {
  const p = parsePrefix(text, family ?? 4);
  return formatPrefix(p.bytes, p.length);
}
