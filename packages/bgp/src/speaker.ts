/**
 * BgpSpeaker composes sessions and RIBs (BIRD's protocol-over-core): per peer an Adj-RIB-In,
 * an Adj-RIB-Out and import/export policy, one Loc-RIB with best-path selection, and
 * the graceful-restart bookkeeping of RFC 4724.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { type Logger, pino } from 'pino';
import { type Clock, systemClock, type TimerHandle } from './fsm/clock.ts';
import { FsmState } from './fsm/fsm.ts';
import { AttrInterner, type AttrSet, LOCAL_SOURCE, type Route, type RouteSource } from './rib/attr-set.ts';
import { AdjRibIn, type BestPathChange, LocRib } from './rib/loc-rib.ts';
import { CompiledPolicy, formatAsPath, formatCommunity, type Policy } from './rib/policy.ts';
import {
  type ExportTarget,
  exportAttributes,
  importViolation,
  type LocalIdentity,
  sanitizeImported,
} from './rib/route-rules.ts';
import { Session } from './session/session.ts';
import type { SocketOptions } from './session/socket-options.ts';
import type { PathAttributes } from './wire/attributes.ts';
import {
  BGP_PORT,
  CeaseSubcode,
  ErrorCode,
  type FamilyKey,
  MAX_EXTENDED_MESSAGE_LENGTH,
  MAX_MESSAGE_LENGTH,
} from './wire/constants.ts';
import {
  encodeEndOfRib,
  encodeRouteRefresh,
  packUpdates,
  packWithdrawals,
  type RouteRefreshMessage,
  type UpdateMessage,
} from './wire/messages.ts';
import type { Capability } from './wire/open.ts';
import { normalizeIp, parseIp, parsePrefix, prefixAfi } from './wire/prefix.ts';

export type Family = 'ipv4' | 'ipv6';
const FAMILY_KEY: Record<Family, FamilyKey> = { ipv4: '1/1', ipv6: '2/1' };

export interface PeerConfig {
  address: string;
  asNumber: number;
  /** TCP port of the peer (default 179). */
  port?: number;
  /** Source address for outgoing connections. */
  localAddress?: string;
  /** RFC 2385 TCP-MD5 key; needs a SocketOptions implementation. */
  password?: string;
  holdTime?: number;
  keepaliveTime?: number;
  connectRetryTime?: number;
  passive?: boolean;
  routeReflectorClient?: boolean;
  /** eBGP multihop TTL. */
  ttl?: number;
  /** RFC 5082 GTSM (TTL 255, minimum 254). */
  gtsm?: boolean;
  families?: Family[];
  /** Rewrite the next hop to ourselves on iBGP too. */
  nextHopSelf?: boolean;
  /** Next hop for IPv4 / IPv6 routes when the session's address family differs. */
  nextHopV4?: string;
  nextHopV6?: string;
  /** RFC 7911: accept path identifiers from this peer. */
  addPathReceive?: boolean;
  importPolicy?: Policy;
  exportPolicy?: Policy;
}

export interface GracefulRestartConfig {
  /** Advertise the capability and act as helper for restarting peers (default true). */
  enabled?: boolean;
  /** Seconds peers should keep our routes while we restart (default 120). */
  restartTime?: number;
  /** We are restarting now: set the R bit in OPENs for the first restartTime seconds. */
  restarting?: boolean;
  /** Forwarding state (kernel routes) survives our restart: the F bit (default true). */
  forwardingPreserved?: boolean;
  /** Seconds stale routes stay after the peer is back, waiting for End-of-RIB (default 360). */
  staleTime?: number;
}

export interface SpeakerConfig {
  routerId: string;
  asNumber: number;
  clusterId?: string;
  /** Where to accept connections; false for none. */
  listen?: { address: string; port: number } | false;
  multipath?: boolean;
  gracefulRestart?: GracefulRestartConfig;
  connectRetryTime?: number;
}

export interface OriginateOptions {
  nextHop?: string;
  communities?: string[];
  largeCommunities?: string[];
  med?: number;
  localPref?: number;
}

export interface PeerStatus {
  address: string;
  asNumber: number;
  state: FsmState;
  uptimeSeconds: number;
  /** Prefixes announced by the peer (cumulative). */
  received: number;
  /** Prefixes currently accepted into the Loc-RIB from this peer. */
  accepted: number;
  /** Prefixes currently advertised to the peer. */
  sent: number;
  lastError: string | null;
  routerId: string | null;
  localAddress: string | null;
  holdTime: number | null;
  families: string[];
  stale: number;
}

export interface RouteEntry {
  prefix: string;
  nextHop: string;
  asPath: string;
  communities: string[];
  best: boolean;
  peer: string;
  localPref: number | null;
  med: number | null;
  origin: 'igp' | 'egp' | 'incomplete';
  stale: boolean;
}

export interface SpeakerStatus {
  routerId: string;
  asNumber: number;
  listen: { address: string; port: number } | null;
  routes: number;
  peers: PeerStatus[];
}

export interface PeerStateEvent {
  address: string;
  from: FsmState;
  to: FsmState;
  lastError: string | undefined;
}

export interface SpeakerEvents {
  'peer-state': [PeerStateEvent];
  /** Best-path changes, batched per UPDATE; the kernel sink installs these. */
  'best-path': [BestPathChange[]];
  'end-of-rib': [{ peer: string; family: FamilyKey }];
}

interface PeerEntry {
  config: PeerConfig;
  session: Session;
  source: RouteSource | undefined;
  adjIn: AdjRibIn;
  /** Post-policy routes of this peer in the Loc-RIB, by AdjRibIn key. */
  accepted: Map<string, Route>;
  /** RFC 4724: routes from the previous session kept through the peer's restart. */
  stale: Map<string, Route>;
  staleTimer: TimerHandle | undefined;
  adjOut: Map<string, AttrSet>;
  /** Export results per (source, attribute set, AFI) while policy ignores prefixes. */
  exportCache: Map<RouteSource, Map<AttrSet, AttrSet | null>>[];
  pendingOut: Map<string, AttrSet | null>;
  flushScheduled: boolean;
  importPolicy: CompiledPolicy;
  exportPolicy: CompiledPolicy;
  received: number;
  /** Families where an enhanced route refresh (RFC 7313) is in progress. */
  refreshing: Set<FamilyKey>;
  /** EoRR messages owed to the peer once pending routes are out. */
  endOfRefresh: [number, number][];
  sentEndOfRib: boolean;
}

/** Prefixes packed per event-loop turn (about 25 UPDATEs of /32s). */
const FLUSH_SLICE = 20_000;

export class BgpConfigError extends Error {
  readonly code = 'BGP_CONFIG_INVALID';
}

export class BgpSpeaker extends EventEmitter<SpeakerEvents> {
  readonly config: SpeakerConfig;
  readonly locRib: LocRib;
  #me: LocalIdentity;
  #peers = new Map<string, PeerEntry>();
  #interner = new AttrInterner();
  #server: net.Server | undefined;
  #log: Logger;
  #clock: Clock;
  #socketOptions: SocketOptions | undefined;
  #startedAt: number;
  #originated = new Map<string, Route>();

  constructor(
    config: SpeakerConfig,
    deps: { logger?: Logger; clock?: Clock; socketOptions?: SocketOptions } = {},
  ) {
    super();
    if (!parseIp(config.routerId) || config.routerId.includes(':')) {
      throw new BgpConfigError(`routerId: "${config.routerId}" is not an IPv4 address`);
    }
    this.config = config;
    this.#me = {
      asNumber: config.asNumber,
      routerId: config.routerId,
      clusterId: config.clusterId ?? config.routerId,
    };
    this.locRib = new LocRib({ multipath: config.multipath ?? false });
    this.#log = deps.logger ?? pino({ level: 'silent' });
    this.#clock = deps.clock ?? systemClock;
    if (deps.socketOptions) this.#socketOptions = deps.socketOptions;
    this.#startedAt = this.#clock.now();
  }

  /** Start listening (if configured). Peers added before or after start connect on their own. */
  async start(): Promise<void> {
    const l = this.config.listen;
    if (l && this.#socketOptions?.listen) {
      // The listening socket is made by the SocketOptions (e.g. inside a network namespace).
      const server = await this.#socketOptions.listen({ host: l.address, port: l.port });
      server.on('connection', (s: net.Socket) => this.#onIncoming(s));
      this.#server = server;
      for (const p of this.#peers.values()) this.#installListenerKey(p.config);
    } else if (l) {
      const server = net.createServer((s) => this.#onIncoming(s));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: l.address, port: l.port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.#server = server;
      for (const p of this.#peers.values()) this.#installListenerKey(p.config);
    }
    for (const p of this.#peers.values()) if (p.session.state === FsmState.Idle) p.session.start();
  }

  /** The port actually bound (useful with port 0). */
  get listenPort(): number | undefined {
    const a = this.#server?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  /**
   * Stop every session. `graceful`: close the connections without NOTIFICATION so peers with
   * graceful restart keep our routes (RFC 4724) while we restart; otherwise send Cease.
   */
  async stop(opts: { graceful?: boolean } = {}): Promise<void> {
    if (opts.graceful) {
      for (const p of this.#peers.values()) {
        p.session.abort();
        if (p.staleTimer) this.#clock.clearTimer(p.staleTimer);
      }
      this.#peers.clear();
    }
    for (const address of [...this.#peers.keys()]) this.removePeer(address);
    const s = this.#server;
    this.#server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  addPeer(cfg: PeerConfig): void {
    const address = normalizeIp(cfg.address);
    if (!parseIp(address)) throw new BgpConfigError(`peers[${cfg.address}].address: not an IP address`);
    if (this.#peers.has(address)) throw new BgpConfigError(`peers[${address}]: already configured`);
    const config = { ...cfg, address };
    const entry: PeerEntry = {
      config,
      session: undefined as unknown as Session,
      source: undefined,
      adjIn: new AdjRibIn(),
      accepted: new Map(),
      stale: new Map(),
      staleTimer: undefined,
      adjOut: new Map(),
      exportCache: [new Map(), new Map(), new Map()],
      pendingOut: new Map(),
      flushScheduled: false,
      importPolicy: new CompiledPolicy(config.importPolicy),
      exportPolicy: new CompiledPolicy(config.exportPolicy),
      received: 0,
      refreshing: new Set(),
      endOfRefresh: [],
      sentEndOfRib: false,
    };
    entry.session = this.#makeSession(entry);
    this.#peers.set(address, entry);
    this.#installListenerKey(config);
    if (this.#server || this.config.listen === false || this.config.listen === undefined)
      entry.session.start();
  }

  removePeer(address: string): void {
    const key = normalizeIp(address);
    const p = this.#peers.get(key);
    if (!p) return;
    this.#peers.delete(key);
    p.session.stop({ code: ErrorCode.Cease, subcode: CeaseSubcode.PeerDeconfigured });
    this.#flushPeerRoutes(p, true);
    if (this.#server && p.config.password) this.#socketOptions?.setListenerMd5(this.#server, key, undefined);
  }

  /**
   * Apply a changed peer config. Policy-only changes keep the session (routes are re-evaluated,
   * RFC 2918 soft reconfiguration style); anything that changes the OPEN restarts it.
   */
  updatePeer(cfg: PeerConfig): void {
    const key = normalizeIp(cfg.address);
    const p = this.#peers.get(key);
    if (!p) {
      this.addPeer(cfg);
      return;
    }
    const next = { ...cfg, address: key };
    const sessionKeys: (keyof PeerConfig)[] = [
      'asNumber',
      'port',
      'localAddress',
      'password',
      'holdTime',
      'keepaliveTime',
      'connectRetryTime',
      'passive',
      'ttl',
      'gtsm',
      'families',
      'addPathReceive',
      'routeReflectorClient',
    ];
    const restart = sessionKeys.some((k) => JSON.stringify(p.config[k]) !== JSON.stringify(next[k]));
    if (restart) {
      this.removePeer(key);
      this.addPeer(next);
      return;
    }
    const importChanged = JSON.stringify(p.config.importPolicy) !== JSON.stringify(next.importPolicy);
    const exportChanged =
      JSON.stringify([
        p.config.exportPolicy,
        p.config.nextHopSelf,
        p.config.nextHopV4,
        p.config.nextHopV6,
      ]) !== JSON.stringify([next.exportPolicy, next.nextHopSelf, next.nextHopV4, next.nextHopV6]);
    p.config = next;
    for (const c of p.exportCache) c.clear();
    p.importPolicy = new CompiledPolicy(next.importPolicy);
    p.exportPolicy = new CompiledPolicy(next.exportPolicy);
    if (importChanged) this.#reimport(p);
    if (exportChanged && p.session.state === FsmState.Established) this.#fullExport(p);
  }

  peers(): PeerConfig[] {
    return [...this.#peers.values()].map((p) => p.config);
  }

  /** Announce a prefix of our own (the next hop becomes the session address on export). */
  originate(prefix: string, opts: OriginateOptions = {}): void {
    const parsed = parsePrefix(prefix);
    if (!parsed) throw new BgpConfigError(`originate: "${prefix}" is not a canonical CIDR prefix`);
    const attrs: PathAttributes & { nextHop: string } = {
      origin: 0,
      asPath: [],
      nextHop: opts.nextHop ?? (parsed.afi === 1 ? '0.0.0.0' : '::'),
    };
    if (opts.med !== undefined) attrs.med = opts.med;
    if (opts.localPref !== undefined) attrs.localPref = opts.localPref;
    if (opts.communities?.length) {
      attrs.communities = opts.communities.map((c) => {
        const [a, b] = c.split(':').map(Number);
        return a! * 65536 + b!;
      });
    }
    if (opts.largeCommunities?.length) attrs.largeCommunities = opts.largeCommunities;
    const route: Route = {
      prefix,
      pathId: 0,
      attrs: this.#interner.intern(attrs),
      source: LOCAL_SOURCE,
      stale: false,
    };
    this.#originated.set(prefix, route);
    const c = this.locRib.add(route);
    if (c) this.#propagate([c]);
  }

  withdraw(prefix: string): void {
    if (!this.#originated.delete(prefix)) return;
    const c = this.locRib.remove(prefix, LOCAL_SOURCE);
    if (c) this.#propagate([c]);
  }

  originated(): string[] {
    return [...this.#originated.keys()];
  }

  /** Ask a peer to resend its routes (RFC 2918). */
  refresh(address: string, family?: Family): void {
    const p = this.#peers.get(normalizeIp(address));
    if (!p || p.session.state !== FsmState.Established || !p.session.negotiated?.routeRefresh) {
      throw new BgpConfigError(`refresh ${address}: no established session with route refresh`);
    }
    const fams = family ? [FAMILY_KEY[family]] : [...p.session.negotiated.families];
    for (const f of fams) {
      const [afi, safi] = f.split('/').map(Number);
      p.session.send([encodeRouteRefresh(afi!, safi!)], false);
    }
  }

  status(): SpeakerStatus {
    const now = this.#clock.now();
    const listen = this.config.listen
      ? { ...this.config.listen, port: this.listenPort ?? this.config.listen.port }
      : null;
    return {
      routerId: this.config.routerId,
      asNumber: this.config.asNumber,
      listen,
      routes: this.locRib.size,
      peers: [...this.#peers.values()].map((p) => {
        const s = p.session;
        return {
          address: p.config.address,
          asNumber: p.config.asNumber,
          state: s.state,
          uptimeSeconds: s.establishedAt !== undefined ? Math.floor((now - s.establishedAt) / 1000) : 0,
          received: p.received,
          accepted: p.accepted.size,
          sent: p.adjOut.size,
          lastError: s.lastError ?? null,
          routerId: s.remoteOpen?.bgpId ?? null,
          localAddress: s.localAddress ?? null,
          holdTime: s.state === FsmState.Established ? s.fsm.negotiatedHold : null,
          families: s.state === FsmState.Established ? [...(s.negotiated?.families ?? [])] : [],
          stale: p.stale.size,
        };
      }),
    };
  }

  /** The Loc-RIB as rows (every path; `best` marks the selected one). */
  routes(filter: { prefix?: string; bestOnly?: boolean } = {}): RouteEntry[] {
    const out: RouteEntry[] = [];
    const row = (r: Route, best: boolean): RouteEntry => ({
      prefix: r.prefix,
      nextHop: r.source.local ? 'self' : r.attrs.nextHop,
      asPath: formatAsPath(r.attrs.asPath),
      communities: [...(r.attrs.communities ?? []).map(formatCommunity), ...(r.attrs.largeCommunities ?? [])],
      best,
      peer: r.source.local ? 'local' : r.source.peerAddress,
      localPref: r.attrs.localPref ?? null,
      med: r.attrs.med ?? null,
      origin: (['igp', 'egp', 'incomplete'] as const)[r.attrs.origin ?? 2]!,
      stale: r.stale,
    });
    const visit = (prefix: string, d: { paths: Route[]; best: Route | undefined }) => {
      for (const r of d.paths) if (!filter.bestOnly || r === d.best) out.push(row(r, r === d.best));
      void prefix;
    };
    if (filter.prefix) {
      const d = this.locRib.get(filter.prefix);
      if (d) visit(filter.prefix, d);
    } else for (const [prefix, d] of this.locRib.entries()) visit(prefix, d);
    return out;
  }

  // -------------------------------------------------------------------------------------------

  #installListenerKey(cfg: PeerConfig): void {
    if (!cfg.password || !this.#server) return;
    if (!this.#socketOptions) {
      this.#log.error(
        { peer: cfg.address },
        'TCP-MD5 password configured but no SocketOptions implementation',
      );
      return;
    }
    this.#socketOptions.setListenerMd5(this.#server, cfg.address, cfg.password);
  }

  #onIncoming(socket: net.Socket): void {
    const addr = normalizeIp(socket.remoteAddress ?? '');
    const p = this.#peers.get(addr);
    if (!p) {
      this.#log.info({ remote: addr }, 'connection from an unconfigured address refused');
      socket.destroy();
      return;
    }
    p.session.acceptIncoming(socket);
  }

  #grCapability(): Capability | undefined {
    const gr = this.config.gracefulRestart;
    if (gr?.enabled === false) return undefined;
    const restartTime = gr?.restartTime ?? 120;
    const restarting = (gr?.restarting ?? false) && this.#clock.now() - this.#startedAt < restartTime * 1000;
    return {
      kind: 'graceful-restart',
      restarting,
      notification: false,
      restartTime,
      families: [
        { afi: 1, safi: 1, forwardingPreserved: gr?.forwardingPreserved ?? true },
        { afi: 2, safi: 1, forwardingPreserved: gr?.forwardingPreserved ?? true },
      ],
    };
  }

  #makeSession(entry: PeerEntry): Session {
    const cfg = entry.config;
    const families = cfg.families ?? ['ipv4', 'ipv6'];
    const capabilities = (): Capability[] => {
      const caps: Capability[] = families.map((f) => ({
        kind: 'multiprotocol',
        afi: f === 'ipv4' ? 1 : 2,
        safi: 1,
      }));
      caps.push({ kind: 'route-refresh' }, { kind: 'enhanced-route-refresh' });
      caps.push({ kind: 'four-octet-as', asNumber: this.config.asNumber });
      const gr = this.#grCapability();
      if (gr) caps.push(gr);
      // RFC 8950: we accept IPv4 routes with an IPv6 next hop.
      if (families.includes('ipv4'))
        caps.push({ kind: 'extended-next-hop', entries: [{ afi: 1, safi: 1, nextHopAfi: 2 }] });
      if (cfg.addPathReceive) {
        caps.push({
          kind: 'add-path',
          entries: families.map((f) => ({ afi: f === 'ipv4' ? 1 : 2, safi: 1, mode: 1 as const })),
        });
      }
      caps.push({ kind: 'extended-message' });
      return caps;
    };
    const timers: Record<string, number> = {
      holdTime: cfg.holdTime ?? 90,
      connectRetryTime: cfg.connectRetryTime ?? this.config.connectRetryTime ?? 120,
      connectRetryMaxTime: Math.max(cfg.connectRetryTime ?? this.config.connectRetryTime ?? 120, 120),
      idleHoldTime: Math.min(cfg.connectRetryTime ?? 5, 5),
    };
    if (cfg.keepaliveTime !== undefined) timers['keepaliveTime'] = cfg.keepaliveTime;
    const sessionConfig: ConstructorParameters<typeof Session>[0]['config'] = {
      peerAddress: cfg.address,
      peerAs: cfg.asNumber,
      port: cfg.port ?? BGP_PORT,
      localAs: this.config.asNumber,
      routerId: this.config.routerId,
      passive: cfg.passive ?? false,
      timers,
      capabilities,
    };
    if (cfg.localAddress) sessionConfig.localAddress = cfg.localAddress;
    if (cfg.password) sessionConfig.password = cfg.password;
    if (cfg.ttl) sessionConfig.ttl = cfg.ttl;
    if (cfg.gtsm) sessionConfig.gtsm = cfg.gtsm;
    const opts: ConstructorParameters<typeof Session>[0] = {
      config: sessionConfig,
      clock: this.#clock,
      logger: this.#log,
      handlers: {
        established: () => this.#onEstablished(entry),
        down: (_s, info) => this.#onDown(entry, info),
        update: (_s, m) => this.#onUpdate(entry, m),
        routeRefresh: (_s, m) => this.#onRouteRefresh(entry, m),
        stateChanged: (s, from, to) =>
          this.emit('peer-state', { address: cfg.address, from, to, lastError: s.lastError }),
      },
    };
    if (this.#socketOptions) opts.socketOptions = this.#socketOptions;
    return new Session(opts);
  }

  #onEstablished(p: PeerEntry): void {
    const s = p.session;
    const peerAs = s.negotiated!.peerAs;
    p.source = Object.freeze({
      peerAddress: p.config.address,
      peerAs,
      routerId: s.remoteOpen!.bgpId,
      ibgp: peerAs === this.config.asNumber,
      rrClient: p.config.routeReflectorClient ?? false,
      local: false,
    });
    p.received = 0;
    p.sentEndOfRib = false;
    for (const c of p.exportCache) c.clear();
    if (p.stale.size > 0) {
      // RFC 4724 §4.2: the peer is back; stale routes wait for its End-of-RIB (or staleTime).
      const staleTime = this.config.gracefulRestart?.staleTime ?? 360;
      this.#armStaleTimer(p, staleTime);
    }
    this.#fullExport(p);
  }

  #onDown(p: PeerEntry, info: { graceful: boolean; reason: string }): void {
    const gr = this.config.gracefulRestart?.enabled !== false && info.graceful;
    p.adjOut.clear();
    p.pendingOut.clear();
    p.flushScheduled = false;
    p.endOfRefresh = [];
    p.refreshing.clear();
    for (const c of p.exportCache) c.clear();
    if (gr) {
      const restartTime = p.session.negotiated?.peerGracefulRestart?.restartTime ?? 120;
      this.#log.info(
        { peer: p.config.address, routes: p.accepted.size, restartTime },
        'peer down: keeping routes stale (graceful restart)',
      );
      const changes: BestPathChange[] = [];
      for (const [k, r] of p.accepted) {
        r.stale = true;
        p.stale.set(k, r);
        const c = this.locRib.recompute(r.prefix);
        if (c) changes.push(c);
      }
      p.accepted.clear();
      p.adjIn.routes.clear();
      this.#armStaleTimer(p, restartTime);
      if (changes.length) this.#propagate(changes);
    } else {
      this.#flushPeerRoutes(p, true);
    }
    p.source = undefined;
  }

  #armStaleTimer(p: PeerEntry, seconds: number): void {
    if (p.staleTimer) this.#clock.clearTimer(p.staleTimer);
    p.staleTimer = this.#clock.setTimer(seconds * 1000, () => {
      p.staleTimer = undefined;
      this.#log.info({ peer: p.config.address, routes: p.stale.size }, 'stale routes expired');
      this.#dropStale(p);
    });
  }

  #dropStale(p: PeerEntry, family?: FamilyKey): void {
    const changes: BestPathChange[] = [];
    for (const [k, r] of p.stale) {
      if (family && FAMILY_KEY[prefixAfi(r.prefix) === 1 ? 'ipv4' : 'ipv6'] !== family) continue;
      p.stale.delete(k);
      const c = this.locRib.remove(r.prefix, r.source, r.pathId);
      if (c) changes.push(c);
    }
    if (p.stale.size === 0 && p.staleTimer) {
      this.#clock.clearTimer(p.staleTimer);
      p.staleTimer = undefined;
    }
    if (changes.length) this.#propagate(changes);
  }

  /** Remove everything a peer contributed (session gone for good). */
  #flushPeerRoutes(p: PeerEntry, includeStale: boolean): void {
    const changes: BestPathChange[] = [];
    for (const r of p.accepted.values()) {
      const c = this.locRib.remove(r.prefix, r.source, r.pathId);
      if (c) changes.push(c);
    }
    p.accepted.clear();
    p.adjIn.routes.clear();
    if (includeStale) {
      for (const r of p.stale.values()) {
        const c = this.locRib.remove(r.prefix, r.source, r.pathId);
        if (c) changes.push(c);
      }
      p.stale.clear();
      if (p.staleTimer) this.#clock.clearTimer(p.staleTimer);
      p.staleTimer = undefined;
    }
    if (changes.length) this.#propagate(changes);
  }

  #onUpdate(p: PeerEntry, m: UpdateMessage): void {
    const src = p.source;
    if (!src) return;
    const changes: BestPathChange[] = [];
    const withdraw = (prefix: string, pathId: number) => {
      const k = AdjRibIn.key(prefix, pathId);
      p.adjIn.routes.delete(k);
      const r = p.accepted.get(k);
      if (r) {
        p.accepted.delete(k);
        const c = this.locRib.remove(prefix, src, pathId);
        if (c) changes.push(c);
      }
      this.#clearStale(p, k, changes);
    };
    for (const n of m.withdrawn) withdraw(n.prefix, n.pathId);
    if (m.mpUnreach) for (const n of m.mpUnreach.withdrawn) withdraw(n.prefix, n.pathId);
    if (m.treatAsWithdraw) {
      // RFC 7606 §2: the announced routes are withdrawn and the session stays up.
      this.#log.warn(
        { peer: p.config.address, problems: m.problems },
        'malformed UPDATE treated as withdraw',
      );
      for (const n of m.nlri) withdraw(n.prefix, n.pathId);
      for (const n of m.mpReach?.nlri ?? []) withdraw(n.prefix, n.pathId);
    } else {
      if (m.problems.length)
        this.#log.info({ peer: p.config.address, problems: m.problems }, 'UPDATE attributes discarded');
      const base = sanitizeImported(m.attributes, src);
      const violation = importViolation(base, src, this.#me);
      const announce = (
        list: { prefix: string; pathId: number }[],
        nextHop: string | undefined,
        ll?: string,
      ) => {
        if (list.length === 0) return;
        if (!nextHop || violation) {
          for (const n of list) withdraw(n.prefix, n.pathId);
          p.received += list.length;
          return;
        }
        const full = ll ? { ...base, nextHop, linkLocalNextHop: ll } : { ...base, nextHop };
        const attrs = this.#interner.intern(full);
        const plain = p.importPolicy.empty;
        for (const n of list) {
          p.received++;
          const k = AdjRibIn.key(n.prefix, n.pathId);
          const received: Route = { prefix: n.prefix, pathId: n.pathId, attrs, source: src, stale: false };
          // Without an import policy the accepted routes are the Adj-RIB-In; keep no second copy.
          if (!plain) p.adjIn.routes.set(k, received);
          this.#accept(p, k, received, plain ? attrs : undefined, changes);
        }
      };
      announce(m.nlri, m.attributes.nextHop);
      if (m.mpReach) announce(m.mpReach.nlri, m.mpReach.nextHop, m.mpReach.linkLocalNextHop);
    }
    if (m.endOfRib) {
      // RFC 4724 §4.2: End-of-RIB ends the stale period for the family.
      if (p.stale.size) this.#dropStale(p, m.endOfRib);
      this.emit('end-of-rib', { peer: p.config.address, family: m.endOfRib });
    }
    if (changes.length) this.#propagate(changes);
  }

  #clearStale(p: PeerEntry, k: string, changes: BestPathChange[]): void {
    const old = p.stale.get(k);
    if (!old) return;
    p.stale.delete(k);
    const c = this.locRib.remove(old.prefix, old.source, old.pathId);
    if (c) changes.push(c);
  }

  /** Run import policy for one received route and put the result in the Loc-RIB. */
  #accept(
    p: PeerEntry,
    k: string,
    received: Route,
    unchanged: AttrSet | undefined,
    changes: BestPathChange[],
  ): void {
    let route: Route | undefined = received;
    if (!unchanged) {
      const out = p.importPolicy.apply(
        received.prefix,
        received.attrs as PathAttributes & { nextHop: string },
        this.config.asNumber,
      );
      if (!out) route = undefined;
      else if (out !== received.attrs) {
        const { key: _k, asPathLength: _l, neighborAs: _n, ...plain } = out as AttrSet;
        route = { ...received, attrs: this.#interner.intern(plain as PathAttributes & { nextHop: string }) };
      }
    }
    // A fresh route replaces the stale copy from before the restart.
    this.#clearStale(p, k, changes);
    if (!route) {
      if (p.accepted.delete(k)) {
        const c = this.locRib.remove(received.prefix, received.source, received.pathId);
        if (c) changes.push(c);
      }
      return;
    }
    p.accepted.set(k, route);
    const c = this.locRib.add(route);
    if (c) changes.push(c);
  }

  #reimport(p: PeerEntry): void {
    const changes: BestPathChange[] = [];
    // Routes accepted while there was no policy are their own Adj-RIB-In copy.
    if (p.adjIn.routes.size === 0) for (const [k, r] of p.accepted) p.adjIn.routes.set(k, r);
    for (const [k, r] of [...p.adjIn.routes])
      this.#accept(p, k, r, p.importPolicy.empty ? r.attrs : undefined, changes);
    if (p.importPolicy.empty) p.adjIn.routes.clear();
    if (changes.length) this.#propagate(changes);
  }

  #onRouteRefresh(p: PeerEntry, m: RouteRefreshMessage): void {
    const fam = `${m.afi}/${m.safi}` as FamilyKey;
    if (m.subtype === 0) {
      // RFC 2918 §4 / RFC 7313 §4: resend the Adj-RIB-Out, bracketed by BoRR/EoRR when enhanced.
      const enhanced = p.session.negotiated?.enhancedRouteRefresh ?? false;
      if (enhanced) p.session.send([encodeRouteRefresh(m.afi, m.safi, 1)], false);
      for (const prefix of [...p.adjOut.keys()]) {
        if (FAMILY_KEY[prefixAfi(prefix) === 1 ? 'ipv4' : 'ipv6'] === fam) p.adjOut.delete(prefix);
      }
      this.#exportAll(p, fam);
      // EoRR goes out once the re-sent routes have (see #flush).
      if (enhanced) p.endOfRefresh.push([m.afi, m.safi]);
      this.#flush(p);
      return;
    }
    if (m.subtype === 1) {
      // BoRR: everything currently held for the family is stale until EoRR (RFC 7313 §4).
      p.refreshing.add(fam);
      for (const [k, r] of p.accepted) {
        if (FAMILY_KEY[prefixAfi(r.prefix) === 1 ? 'ipv4' : 'ipv6'] !== fam) continue;
        r.stale = true;
        p.stale.set(k, r);
      }
      return;
    }
    if (m.subtype === 2 && p.refreshing.delete(fam)) {
      for (const [k, r] of p.stale)
        if (r.source === p.source && p.accepted.get(k) === r) p.accepted.delete(k);
      this.#dropStale(p, fam);
    }
  }

  // --- export ----------------------------------------------------------------------------------

  #exportTarget(p: PeerEntry, prefix: string): ExportTarget | undefined {
    const s = p.session;
    const n = s.negotiated;
    if (!n || !p.source) return undefined;
    const afi = prefixAfi(prefix);
    const local = s.localAddress ?? '';
    const localIsV6 = local.includes(':');
    let selfNextHop: string | undefined;
    if (afi === 1) {
      if (!n.families.has('1/1')) return undefined;
      selfNextHop =
        p.config.nextHopV4 ?? (localIsV6 ? (n.extendedNextHop.has('1/1') ? local : undefined) : local);
    } else {
      if (!n.families.has('2/1')) return undefined;
      selfNextHop = p.config.nextHopV6 ?? (localIsV6 ? local : local ? `::ffff:${local}` : undefined);
    }
    if (!selfNextHop) return undefined;
    const t: ExportTarget = {
      peerAddress: p.config.address,
      peerAs: n.peerAs,
      ibgp: p.source.ibgp,
      rrClient: p.source.rrClient,
      selfNextHop,
    };
    if (p.config.nextHopSelf) t.nextHopSelf = true;
    return t;
  }

  #exportOne(p: PeerEntry, prefix: string, best: Route | undefined): void {
    let attrs: AttrSet | null = null;
    if (best) {
      const afi = prefixAfi(prefix);
      const cacheable = p.exportPolicy.prefixIndependent;
      let bySource = cacheable ? p.exportCache[afi]!.get(best.source) : undefined;
      const hit = bySource?.get(best.attrs);
      if (hit !== undefined) attrs = hit;
      else {
        const t = this.#exportTarget(p, prefix);
        const raw = t ? exportAttributes(best, t, this.#me) : undefined;
        const filtered = raw ? p.exportPolicy.apply(prefix, raw, this.config.asNumber) : undefined;
        if (filtered) attrs = this.#interner.intern(filtered);
        if (cacheable) {
          if (!bySource) {
            bySource = new Map();
            p.exportCache[afi]!.set(best.source, bySource);
          }
          bySource.set(best.attrs, attrs);
        }
      }
    }
    const current = p.adjOut.get(prefix);
    if (attrs === null && current === undefined && !p.pendingOut.has(prefix)) return;
    if (attrs !== null && current === attrs && !p.pendingOut.has(prefix)) return;
    p.pendingOut.set(prefix, attrs);
    this.#scheduleFlush(p);
  }

  #exportAll(p: PeerEntry, family?: FamilyKey): void {
    for (const [prefix, d] of this.locRib.entries()) {
      if (family && FAMILY_KEY[prefixAfi(prefix) === 1 ? 'ipv4' : 'ipv6'] !== family) continue;
      this.#exportOne(p, prefix, d.best);
    }
  }

  #fullExport(p: PeerEntry): void {
    this.#exportAll(p);
    this.#scheduleFlush(p);
  }

  #propagate(changes: BestPathChange[]): void {
    this.emit('best-path', changes);
    for (const p of this.#peers.values()) {
      if (p.session.state !== FsmState.Established) continue;
      for (const c of changes) if (c.best !== c.previous) this.#exportOne(p, c.prefix, c.best);
    }
  }

  #scheduleFlush(p: PeerEntry): void {
    if (p.flushScheduled) return;
    p.flushScheduled = true;
    setImmediate(() => {
      p.flushScheduled = false;
      this.#flush(p);
    });
  }

  /**
   * Pack pending changes: withdrawals per family, announcements per (family, attribute set).
   * At most FLUSH_SLICE prefixes per turn; when the socket buffer is full the rest waits for
   * 'drain' (anchors §5.3), so a table dump neither blocks the event loop nor piles up in memory.
   */
  #flush(p: PeerEntry): void {
    const s = p.session;
    const n = s.negotiated;
    if (s.state !== FsmState.Established || !n) return;
    const ctx = {
      fourOctetAs: n.fourOctetAs,
      addPathSend: n.addPathSend,
      maxMessageLength: n.extendedMessage ? MAX_EXTENDED_MESSAGE_LENGTH : MAX_MESSAGE_LENGTH,
    };
    const withdrawals: Record<number, { prefix: string }[]> = { 1: [], 2: [] };
    const groups = new Map<AttrSet, { prefix: string }[]>();
    let taken = 0;
    for (const [prefix, attrs] of p.pendingOut) {
      if (taken++ >= FLUSH_SLICE) break;
      p.pendingOut.delete(prefix);
      if (attrs === null) {
        if (p.adjOut.delete(prefix)) withdrawals[prefixAfi(prefix)]!.push({ prefix });
        continue;
      }
      p.adjOut.set(prefix, attrs);
      const g = groups.get(attrs);
      if (g) g.push({ prefix });
      else groups.set(attrs, [{ prefix }]);
    }
    const out: Uint8Array[] = [];
    for (const afi of [1, 2]) {
      const routes = withdrawals[afi]!;
      if (routes.length) out.push(...packWithdrawals({ afi, safi: 1, routes, ctx }));
    }
    for (const [attrs, routes] of groups) {
      const afi = prefixAfi(routes[0]!.prefix);
      const { key: _k, asPathLength: _l, neighborAs: _n, nextHop, linkLocalNextHop, ...rest } = attrs;
      const opts: Parameters<typeof packUpdates>[0] = {
        afi,
        safi: 1,
        attributes: rest,
        nextHop,
        routes,
        ctx,
      };
      if (linkLocalNextHop) opts.linkLocalNextHop = linkLocalNextHop;
      out.push(...packUpdates(opts));
    }
    if (!p.sentEndOfRib && p.pendingOut.size === 0) {
      // RFC 4724 §2: End-of-RIB after the initial table for every family.
      p.sentEndOfRib = true;
      for (const f of n.families) {
        const [afi, safi] = f.split('/').map(Number);
        out.push(encodeEndOfRib(afi!, safi!));
      }
    }
    if (p.pendingOut.size === 0) {
      for (const [afi, safi] of p.endOfRefresh) out.push(encodeRouteRefresh(afi, safi, 2));
      p.endOfRefresh = [];
    }
    const writable = out.length ? s.send(out) : true;
    if (p.pendingOut.size === 0) return;
    if (writable) this.#scheduleFlush(p);
    else {
      p.flushScheduled = true;
      s.onceDrained(() => {
        p.flushScheduled = false;
        this.#flush(p);
      });
    }
  }
}
