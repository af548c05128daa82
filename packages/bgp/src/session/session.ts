/**
 * A session is one peer's FSM, its TCP connection and the codec (RFC 4271 §8). It handles the
 * OPEN exchange, connection collisions (§6.8) and turns bytes into events; what the routes mean
 * is the speaker's business.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import type { Clock } from '../fsm/clock.ts';
import { Fsm, type FsmEvent, FsmState, type FsmTimers, type Notification } from '../fsm/fsm.ts';
import { BgpError } from '../wire/bgp-error.ts';
import { CeaseSubcode, ErrorCode, MAX_EXTENDED_MESSAGE_LENGTH, OpenSubcode } from '../wire/constants.ts';
import { MessageFramer } from '../wire/framer.ts';
import {
  type BgpMessage,
  decodeMessage,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  type RouteRefreshMessage,
  type UpdateMessage,
} from '../wire/messages.ts';
import { type Capability, type Negotiated, negotiate, type OpenMessage } from '../wire/open.ts';
import { normalizeIp, parseIpv4 } from '../wire/prefix.ts';
import {
  type ConnectAttempt,
  connectTimeout,
  laterError,
  receivedNotification,
  type SessionError,
  socketFailure,
} from './session-error.ts';
import type { SocketOptions } from './socket-options.ts';

export interface SessionConfig {
  peerAddress: string;
  peerAs: number;
  port: number;
  localAddress?: string;
  localAs: number;
  routerId: string;
  passive: boolean;
  password?: string;
  /** Outgoing TTL (eBGP multihop); with gtsm the TTL is 255 and min TTL 254 (RFC 5082). */
  ttl?: number;
  gtsm?: boolean;
  /** With gtsm: the peer is at most this many hops away (min TTL 256 − hops; unset: 254). */
  gtsmHops?: number;
  timers: Partial<FsmTimers>;
  capabilities: () => Capability[];
}

export interface SessionHandlers {
  established(s: Session): void;
  /** `graceful`: the peer may be restarting (RFC 4724 §4.2), keep its routes stale. */
  down(s: Session, info: { graceful: boolean; reason: string }): void;
  update(s: Session, m: UpdateMessage): void;
  routeRefresh(s: Session, m: RouteRefreshMessage): void;
  stateChanged(s: Session, from: FsmState, to: FsmState): void;
}

export interface SessionCounters {
  messagesIn: number;
  messagesOut: number;
  updatesIn: number;
  updatesOut: number;
}

function ipNumber(s: string): number {
  const b = parseIpv4(s);
  return b ? ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0 : 0;
}

/**
 * RFC 4271 §6.8: of two connections between the same pair, the one initiated by the side with
 * the higher BGP Identifier survives. `existingIsOutgoing`: we opened the connection already in
 * OpenSent/OpenConfirm; the other one is the peer's new inbound connection.
 */
export function resolveCollision(
  localId: string,
  remoteId: string,
  existingIsOutgoing: boolean,
): 'keep-existing' | 'take-new' {
  const localWins = ipNumber(localId) > ipNumber(remoteId);
  return localWins === existingIsOutgoing ? 'keep-existing' : 'take-new';
}

interface PendingInbound {
  socket: net.Socket;
  framer: MessageFramer;
  open?: Uint8Array;
}

export class Session {
  readonly fsm: Fsm;
  config: SessionConfig;
  negotiated: Negotiated | undefined;
  remoteOpen: OpenMessage | undefined;
  localAddress: string | undefined;
  establishedAt: number | undefined;
  counters: SessionCounters = { messagesIn: 0, messagesOut: 0, updatesIn: 0, updatesOut: 0 };
  #socket: net.Socket | undefined;
  #framer = new MessageFramer();
  #handlers: SessionHandlers;
  #log: Logger;
  #clock: Clock;
  #socketOptions: SocketOptions | undefined;
  #localCaps: Capability[] = [];
  #pending: PendingInbound | undefined;
  #sentNotification = false;
  #gracefulCandidate = false;

  constructor(opts: {
    config: SessionConfig;
    clock: Clock;
    handlers: SessionHandlers;
    logger: Logger;
    socketOptions?: SocketOptions;
  }) {
    this.config = opts.config;
    this.#handlers = opts.handlers;
    this.#log = opts.logger;
    this.#clock = opts.clock;
    if (opts.socketOptions) this.#socketOptions = opts.socketOptions;
    this.fsm = new Fsm({
      clock: opts.clock,
      passive: opts.config.passive,
      timers: opts.config.timers,
      io: {
        connect: () => this.#connect(),
        dropConnection: () => this.#drop(),
        sendOpen: () => this.#sendOpen(),
        sendKeepalive: () => this.#write(encodeKeepalive()),
        sendNotification: (n) => this.#sendNotification(n),
        stateChanged: (from, to, event) => this.#stateChanged(from, to, event),
      },
    });
  }

  get state(): FsmState {
    return this.fsm.state;
  }

  start(): void {
    this.fsm.start();
  }

  stop(notification?: Notification): void {
    if (notification && this.#socket && this.fsm.state !== FsmState.Idle) {
      this.#sendNotification(notification);
    }
    this.#rejectPending(CeaseSubcode.AdminShutdown);
    this.fsm.stop();
  }

  /**
   * Close without a NOTIFICATION (RFC 4724 §4: the peer then keeps our routes through our
   * restart), and stay down.
   */
  abort(): void {
    this.#rejectPending(CeaseSubcode.AdminShutdown);
    const s = this.#socket;
    if (s) {
      this.#detach(s, false);
      s.destroy();
    }
    this.fsm.stop();
  }

  /** Send raw, already-encoded messages (UPDATEs from the speaker's packer). */
  send(messages: Uint8Array[], updates = true): boolean {
    let ok = true;
    // Corked, a batch leaves in one writev (a few TCP segments) instead of one write and one
    // segment per message: a reflector hands each client hundreds of small UPDATEs at once.
    const s = this.#socket;
    const cork = messages.length > 1 && s !== undefined && !s.destroyed;
    if (cork) s.cork();
    for (const m of messages) ok = this.#write(m) && ok;
    if (cork) s.uncork();
    if (updates) this.counters.updatesOut += messages.length;
    return ok;
  }

  /** Call `fn` once the socket's write buffer has drained (or right away without a socket). */
  onceDrained(fn: () => void): void {
    const s = this.#socket;
    if (!s?.writableNeedDrain) {
      setImmediate(fn);
      return;
    }
    s.once('drain', fn);
  }

  get socket(): net.Socket | undefined {
    return this.#socket;
  }

  /** An inbound TCP connection from this peer's address (RFC 4271 §6.8 collision rules). */
  acceptIncoming(socket: net.Socket): void {
    const st = this.fsm.state;
    this.#applyTtl(socket);
    if (st === FsmState.Established) {
      // RFC 4724 §4.2: a new connection from a GR-capable peer in Established means it restarted.
      if (this.negotiated?.peerGracefulRestart && this.negotiated.peerGracefulRestart.families.length > 0) {
        this.#log.info(
          { peer: this.config.peerAddress },
          'peer reconnected while Established: graceful restart',
        );
        this.#gracefulCandidate = true;
        this.fsm.handle('TcpConnectionFails', { reason: 'peer restarted (new connection)' });
        this.#adopt(socket);
        return;
      }
      // Without graceful restart, wait for the new connection's OPEN (below, #pendingData).
    }
    if (st === FsmState.OpenSent || st === FsmState.OpenConfirm || st === FsmState.Established) {
      // Keep it aside until its OPEN tells us the peer's BGP identifier.
      this.#rejectPending(CeaseSubcode.ConnectionCollision);
      const pending: PendingInbound = { socket, framer: new MessageFramer() };
      this.#pending = pending;
      socket.on('data', (d: Buffer) => this.#pendingData(pending, d));
      socket.on('error', () => {});
      socket.on('close', () => {
        if (this.#pending === pending) this.#pending = undefined;
      });
      return;
    }
    this.#adopt(socket);
  }

  #adopt(socket: net.Socket, bufferedOpen?: Uint8Array): void {
    if (this.#socket && this.#socket !== socket) this.#detach(this.#socket, true);
    this.#attach(socket);
    if (this.fsm.state === FsmState.Idle) this.fsm.handle('AutomaticStartPassive');
    this.fsm.handle('TcpConnectionConfirmed');
    if (bufferedOpen) this.#onFrame(bufferedOpen);
  }

  #pendingData(p: PendingInbound, d: Buffer): void {
    if (this.#pending !== p) return;
    let frames: Uint8Array[];
    try {
      frames = p.framer.push(d);
    } catch {
      this.#rejectPending(CeaseSubcode.ConnectionRejected);
      return;
    }
    const first = frames[0];
    if (!first) return;
    let open: BgpMessage;
    try {
      open = decodeMessage(first, { fourOctetAs: false });
    } catch {
      this.#rejectPending(CeaseSubcode.ConnectionRejected);
      return;
    }
    if (open.type !== 'open') {
      this.#rejectPending(CeaseSubcode.ConnectionRejected);
      return;
    }
    if (this.fsm.state === FsmState.Established) {
      // A peer opens a new session only when it has none with us: it restarted, and the old
      // connection is dead or about to be (its FIN lost, the peer's old kernel gone). RFC 4271
      // §6.8 would keep the old connection until its hold timer expires, tens of seconds for the
      // peer to get nothing; take the new one instead, as a graceful-restart helper does
      // (RFC 4724 §4.2) — with graceful restart negotiated the routes are kept stale.
      this.#log.info({ peer: this.config.peerAddress }, 'peer opened a new session while Established');
      this.#pending = undefined;
      p.socket.removeAllListeners('data');
      this.#gracefulCandidate = (this.negotiated?.peerGracefulRestart?.families.length ?? 0) > 0;
      this.fsm.handle('TcpConnectionFails', { reason: 'peer restarted (new session)' });
      this.#outgoing = false;
      this.#adopt(p.socket, first.slice());
      return;
    }
    const keepExisting =
      resolveCollision(this.config.routerId, open.bgpId, this.#outgoing) === 'keep-existing';
    this.#log.info({ peer: this.config.peerAddress, keepExisting }, 'connection collision');
    if (keepExisting) {
      this.#rejectPending(CeaseSubcode.ConnectionCollision);
      return;
    }
    this.#pending = undefined;
    p.socket.removeAllListeners('data');
    this.fsm.handle('OpenCollisionDump');
    this.#outgoing = false;
    this.#adopt(p.socket, first.slice());
  }

  #outgoing = false;

  #rejectPending(subcode: number): void {
    const p = this.#pending;
    if (!p) return;
    this.#pending = undefined;
    this.#reject(p.socket, subcode);
  }

  #reject(socket: net.Socket, subcode: number): void {
    socket.on('error', () => {});
    socket.end(encodeNotification(ErrorCode.Cease, subcode));
    this.#clock.setTimer(2000, () => socket.destroy());
  }

  /** RFC 5082 §3: the lowest TTL a peer `gtsmHops` hops away can arrive with (254 unset). */
  #minTtl(): number {
    const hops = this.config.gtsmHops;
    return hops === undefined ? 254 : 256 - Math.min(Math.max(hops, 1), 255);
  }

  #applyTtl(socket: net.Socket): void {
    const so = this.#socketOptions;
    if (!so) return;
    if (this.config.gtsm) {
      so.setTtl(socket, 255);
      so.setMinTtl(socket, this.#minTtl());
    } else if (this.config.ttl) so.setTtl(socket, this.config.ttl);
  }

  #connect(): void {
    if (this.#socket) this.#detach(this.#socket, true);
    const { peerAddress: host, port, localAddress, password } = this.config;
    this.#outgoing = true;
    const so = this.#socketOptions;
    const ttl = this.config.gtsm ? 255 : this.config.ttl;
    if (password || (ttl && so)) {
      if (!so) {
        this.fsm.handle('TcpConnectionFails', {
          reason: 'TCP-MD5 password configured but no SocketOptions implementation is available',
        });
        return;
      }
      const opts: Parameters<SocketOptions['connect']>[0] = { host, port };
      if (localAddress) opts.localAddress = localAddress;
      if (password) opts.md5Key = password;
      if (ttl) opts.ttl = ttl;
      if (this.config.gtsm) opts.minTtl = this.#minTtl();
      const token = Symbol('connect');
      this.#connectToken = token;
      this.#connectPending = true;
      so.connect(opts).then(
        (socket) => {
          if (
            this.#connectToken !== token ||
            (this.fsm.state !== FsmState.Connect && this.fsm.state !== FsmState.Active)
          ) {
            socket.destroy();
            return;
          }
          this.#connectPending = false;
          this.#attach(socket);
          this.fsm.handle('TcpCrAcked');
        },
        (e: Error) => {
          if (this.#connectToken !== token) return;
          this.#connectPending = false;
          this.fsm.handle('TcpConnectionFails', {
            error: this.#laterError(socketFailure(e, this.#attempt())),
          });
        },
      );
      return;
    }
    const socket = net.connect(localAddress ? { host, port, localAddress } : { host, port });
    this.#connectPending = true;
    this.#attach(socket, true);
  }

  #connectToken: symbol | undefined;
  /** An outgoing connection is waiting for the peer's SYN-ACK. */
  #connectPending = false;
  #socketError: SessionError | undefined;

  #attempt(): ConnectAttempt {
    const c = this.config;
    return { peer: c.peerAddress, port: c.port, localAddress: c.localAddress, password: !!c.password };
  }

  /** The error to report next, keeping an earlier cause the new failure follows from. */
  #laterError(next: SessionError): SessionError {
    const kind = this.fsm.lastErrorKind;
    const prev = kind && this.fsm.lastError ? { kind, message: this.fsm.lastError } : undefined;
    return laterError(prev, next);
  }

  #attach(socket: net.Socket, connecting = false): void {
    this.#socket = socket;
    this.#framer = new MessageFramer();
    this.#sentNotification = false;
    this.#socketError = undefined;
    socket.setNoDelay(true);
    const onConnect = () => {
      if (this.#socket !== socket) return;
      this.#connectPending = false;
      this.localAddress = socket.localAddress ? normalizeIp(socket.localAddress) : undefined;
      this.fsm.handle('TcpCrAcked');
    };
    if (connecting) socket.once('connect', onConnect);
    else this.localAddress = socket.localAddress ? normalizeIp(socket.localAddress) : undefined;
    socket.on('data', (d: Buffer) => {
      if (this.#socket !== socket) return;
      this.#onData(d);
    });
    socket.on('error', (e) => {
      if (this.#socket !== socket) return;
      this.#socketError = socketFailure(e, this.#attempt());
    });
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.#connectPending = false;
      const error = this.#socketError ?? {
        kind: 'connection-closed' as const,
        message: 'connection closed by the peer without a NOTIFICATION',
      };
      this.fsm.handle('TcpConnectionFails', { error: this.#laterError(error) });
    });
  }

  #detach(socket: net.Socket, destroy: boolean): void {
    socket.removeAllListeners('data');
    socket.removeAllListeners('close');
    socket.removeAllListeners('connect');
    socket.on('error', () => {});
    if (destroy) socket.destroy();
    if (this.#socket === socket) this.#socket = undefined;
  }

  #drop(): void {
    // The connect-retry timer fired with our SYN still unanswered (the FSM stays in Connect).
    if (this.#connectPending && this.fsm.state === FsmState.Connect) {
      const e = this.#laterError(connectTimeout(this.#attempt()));
      this.fsm.lastError = e.message;
      this.fsm.lastErrorKind = e.kind;
    }
    this.#connectPending = false;
    this.#connectToken = undefined;
    const s = this.#socket;
    if (!s) return;
    this.#detach(s, false);
    // Let a NOTIFICATION written just before reach the peer, then close.
    s.end();
    this.#clock.setTimer(2000, () => s.destroy());
  }

  #write(b: Uint8Array): boolean {
    const s = this.#socket;
    if (!s || s.destroyed) return false;
    this.counters.messagesOut++;
    return s.write(b);
  }

  #sendOpen(): void {
    this.#localCaps = this.config.capabilities();
    this.#write(
      encodeOpen({
        myAs: this.config.localAs,
        holdTime: this.config.timers.holdTime ?? 90,
        bgpId: this.config.routerId,
        capabilities: this.#localCaps,
      }),
    );
  }

  #sendNotification(n: Notification): void {
    this.#sentNotification = true;
    this.#write(encodeNotification(n.code, n.subcode, n.data));
  }

  #stateChanged(from: FsmState, to: FsmState, event: FsmEvent): void {
    this.#log.info(
      { peer: this.config.peerAddress, from, to, event, lastError: this.fsm.lastError },
      'BGP state change',
    );
    if (to === FsmState.Established) {
      // The last error stays on show; it is no longer the cause of anything that follows.
      this.fsm.lastErrorKind = undefined;
      this.establishedAt = this.#clock.now();
      this.#handlers.established(this);
    }
    if (from === FsmState.Established) {
      this.establishedAt = undefined;
      // RFC 4724 §4.2: only a session that ended without a NOTIFICATION leaves stale routes.
      const grFamilies = this.negotiated?.peerGracefulRestart?.families.length ?? 0;
      const graceful =
        grFamilies > 0 &&
        (this.#gracefulCandidate || (event === 'TcpConnectionFails' && !this.#sentNotification));
      this.#gracefulCandidate = false;
      this.#handlers.down(this, { graceful, reason: this.fsm.lastError ?? event });
    }
    this.#handlers.stateChanged(this, from, to);
  }

  #onData(d: Uint8Array): void {
    let frames: Uint8Array[];
    try {
      frames = this.#framer.push(d);
    } catch (e) {
      this.#protocolError(e, 'BgpHeaderErr');
      return;
    }
    for (const f of frames) {
      if (!this.#socket) return;
      this.#onFrame(f);
    }
  }

  #onFrame(f: Uint8Array): void {
    this.counters.messagesIn++;
    const n = this.negotiated;
    let m: BgpMessage;
    try {
      m = decodeMessage(f, {
        fourOctetAs: n?.fourOctetAs ?? false,
        addPathReceive: n?.addPathReceive ?? new Set(),
        maxMessageLength: this.#framer.maxMessageLength,
      });
    } catch (e) {
      const type = f[18];
      this.#protocolError(e, type === 1 ? 'BgpOpenMsgErr' : type === 2 ? 'UpdateMsgErr' : 'BgpHeaderErr');
      return;
    }
    switch (m.type) {
      case 'open':
        this.#onOpen(m);
        break;
      case 'keepalive':
        this.fsm.handle('KeepAliveMsg');
        break;
      case 'update':
        this.counters.updatesIn++;
        this.fsm.handle('UpdateMsg');
        if (this.fsm.state === FsmState.Established) this.#handlers.update(this, m);
        break;
      case 'notification': {
        const error = this.#laterError(receivedNotification(m.code, m.subcode, m.data));
        this.#log.warn(
          {
            peer: this.config.peerAddress,
            code: m.code,
            subcode: m.subcode,
            data: m.data.length ? Buffer.from(m.data).toString('hex') : undefined,
          },
          error.message,
        );
        const verErr = m.code === ErrorCode.Open && m.subcode === OpenSubcode.UnsupportedVersion;
        this.#sentNotification = true; // a NOTIFICATION either way ends GR eligibility
        this.fsm.handle(verErr ? 'NotifMsgVerErr' : 'NotifMsg', { error });
        break;
      }
      case 'route-refresh':
        this.fsm.handle('RouteRefreshMsg');
        if (this.fsm.state === FsmState.Established) this.#handlers.routeRefresh(this, m);
        break;
    }
  }

  #protocolError(e: unknown, event: FsmEvent): void {
    const err = e instanceof BgpError ? e : new BgpError('BGP_INTERNAL', ErrorCode.Cease, 0, String(e));
    this.#log.warn({ peer: this.config.peerAddress, code: err.code, err: err.message }, 'protocol error');
    this.fsm.handle(event, {
      notification: { code: err.errorCode, subcode: err.errorSubcode, data: err.data },
      reason: `${err.code}: ${err.message}`,
    });
  }

  #onOpen(m: OpenMessage): void {
    if (this.fsm.state !== FsmState.OpenSent) {
      this.fsm.handle('BgpOpen'); // an FSM error in any other state
      return;
    }
    const fail = (subcode: number, msg: string, data?: Uint8Array) =>
      this.fsm.handle('BgpOpenMsgErr', {
        notification: data ? { code: ErrorCode.Open, subcode, data } : { code: ErrorCode.Open, subcode },
        reason: msg,
      });
    const localHold = this.config.timers.holdTime ?? 90;
    const neg = negotiate(this.#localCaps, localHold, m);
    // RFC 4271 §6.2 OPEN checks.
    if (neg.peerAs !== this.config.peerAs) {
      fail(
        OpenSubcode.BadPeerAs,
        `the peer's OPEN says AS ${neg.peerAs}, configured AS ${this.config.peerAs}`,
      );
      return;
    }
    if (m.holdTime === 1 || m.holdTime === 2) {
      fail(OpenSubcode.UnacceptableHoldTime, `hold time ${m.holdTime}`);
      return;
    }
    const id = ipNumber(m.bgpId);
    if (id === 0 || (neg.peerAs === this.config.localAs && m.bgpId === this.config.routerId)) {
      fail(OpenSubcode.BadBgpId, `BGP identifier ${m.bgpId}`);
      return;
    }
    // RFC 4271 §6.8 collision: a second connection already in OpenConfirm is handled via pending.
    this.remoteOpen = m;
    this.negotiated = neg;
    this.#framer.maxMessageLength = neg.extendedMessage ? MAX_EXTENDED_MESSAGE_LENGTH : 4096;
    this.fsm.handle('BgpOpen', { holdTime: neg.holdTime });
  }

  /** Where the FSM last failed, for status. */
  get lastError(): string | undefined {
    return this.fsm.lastError;
  }

  /** The kind of `lastError` while it still explains the session being down. */
  get lastErrorKind(): SessionError['kind'] | undefined {
    return this.fsm.lastErrorKind;
  }
}
