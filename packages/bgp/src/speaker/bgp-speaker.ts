/**
 * BgpSpeaker composes sessions and RIBs (BIRD's protocol-over-core): per peer an Adj-RIB-In,
 * an Adj-RIB-Out and import/export policy, one Loc-RIB with best-path selection, and the
 * graceful-restart bookkeeping of RFC 4724. The parts live beside this file: the peer registry
 * (listening, sessions), import, the Adj-RIB-Out (export and packing) and graceful restart.
 */
import { EventEmitter } from 'node:events';
import { type Logger, pino } from 'pino';
import { type Clock, systemClock } from '../fsm/clock.ts';
import { FsmState } from '../fsm/fsm.ts';
import { AttrInterner, LOCAL_SOURCE, type Route } from '../rib/attr-set.ts';
import { type BestPathChange, LocRib } from '../rib/loc-rib.ts';
import { CompiledPolicy, formatAsPath, formatCommunity } from '../rib/policy.ts';
import type { SocketOptions } from '../session/socket-options.ts';
import type { PathAttributes } from '../wire/attributes.ts';
import { CeaseSubcode, ErrorCode, type FamilyKey } from '../wire/constants.ts';
import { encodeRouteRefresh, type RouteRefreshMessage } from '../wire/messages.ts';
import { parseIp, parsePrefix } from '../wire/prefix.ts';
import { AdjRibOut } from './adj-rib-out.ts';
import { GracefulRestart } from './graceful-restart.ts';
import { RouteImport } from './import.ts';
import { FAMILY_KEY, type PeerEntry, type SpeakerCore } from './peer.ts';
import { PeerRegistry } from './peer-registry.ts';
import {
  BgpConfigError,
  type Family,
  type OriginateOptions,
  type PeerConfig,
  type RouteEntry,
  type SpeakerConfig,
  type SpeakerEvents,
  type SpeakerStatus,
} from './types.ts';

export class BgpSpeaker extends EventEmitter<SpeakerEvents> {
  readonly config: SpeakerConfig;
  readonly locRib: LocRib;
  readonly #core: SpeakerCore;
  readonly #registry: PeerRegistry;
  readonly #gr: GracefulRestart;
  readonly #import: RouteImport;
  readonly #out: AdjRibOut;
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
    // Every path change, not only best-path ones: ADD-PATH senders advertise them all.
    this.locRib = new LocRib({ multipath: config.multipath ?? false, everyPath: true });
    this.#core = {
      config,
      me: {
        asNumber: config.asNumber,
        routerId: config.routerId,
        clusterId: config.clusterId ?? config.routerId,
      },
      locRib: this.locRib,
      interner: new AttrInterner(),
      log: deps.logger ?? pino({ level: 'silent' }),
      clock: deps.clock ?? systemClock,
      propagate: (changes) => this.#propagate(changes),
    };
    this.#gr = new GracefulRestart(this.#core);
    this.#import = new RouteImport(this.#core, this.#gr, (p, family) =>
      this.emit('end-of-rib', { peer: p.config.address, family }),
    );
    this.#out = new AdjRibOut(this.#core);
    this.#registry = new PeerRegistry({
      core: this.#core,
      socketOptions: deps.socketOptions,
      gracefulRestart: () => this.#gr.capability(),
      events: {
        established: (p) => this.#onEstablished(p),
        down: (p, info) => this.#onDown(p, info),
        update: (p, m) => this.#import.update(p, m),
        routeRefresh: (p, m) => this.#onRouteRefresh(p, m),
        stateChanged: (p, from, to, lastError) =>
          this.emit('peer-state', { address: p.config.address, from, to, lastError }),
      },
    });
  }

  /** Start listening (if configured). Peers added before or after start connect on their own. */
  async start(): Promise<void> {
    await this.#registry.listen();
  }

  /** The port actually bound (useful with port 0). */
  get listenPort(): number | undefined {
    return this.#registry.listenPort;
  }

  /**
   * Stop every session. `graceful`: close the connections without NOTIFICATION so peers with
   * graceful restart keep our routes (RFC 4724) while we restart; otherwise send Cease.
   */
  async stop(opts: { graceful?: boolean } = {}): Promise<void> {
    if (opts.graceful) {
      for (const p of this.#registry.takeAll()) {
        p.session.abort();
        this.#gr.cancelTimer(p);
      }
    }
    for (const address of this.#registry.addresses()) this.removePeer(address);
    await this.#registry.closeListener();
  }

  addPeer(cfg: PeerConfig): void {
    this.#registry.add(cfg);
  }

  removePeer(address: string): void {
    const p = this.#registry.take(address);
    if (!p) return;
    p.session.stop({ code: ErrorCode.Cease, subcode: CeaseSubcode.PeerDeconfigured });
    this.#import.withdrawAll(p, true);
    this.#registry.removeListenerKey(p.config);
  }

  /**
   * Apply a changed peer config. Policy-only changes keep the session (routes are re-evaluated,
   * RFC 2918 soft reconfiguration style); anything that changes the OPEN restarts it.
   */
  updatePeer(cfg: PeerConfig): void {
    const p = this.#registry.get(cfg.address);
    if (!p) {
      this.addPeer(cfg);
      return;
    }
    const next = { ...cfg, address: p.config.address };
    const sessionKeys: (keyof PeerConfig)[] = [
      'asNumber',
      'localAsNumber',
      'port',
      'localAddress',
      'password',
      'holdTime',
      'keepaliveTime',
      'connectRetryTime',
      'passive',
      'ttl',
      'gtsm',
      'gtsmHops',
      'families',
      'addPathReceive',
      'addPathSend',
      'routeReflectorClient',
    ];
    const restart = sessionKeys.some((k) => JSON.stringify(p.config[k]) !== JSON.stringify(next[k]));
    if (restart) {
      this.removePeer(next.address);
      this.addPeer(next);
      return;
    }
    const importChanged =
      JSON.stringify([p.config.importPolicy, p.config.allowLocalAs]) !==
      JSON.stringify([next.importPolicy, next.allowLocalAs]);
    const exportChanged =
      JSON.stringify([
        p.config.exportPolicy,
        p.config.nextHopSelf,
        p.config.nextHopKeep,
        p.config.nextHopV4,
        p.config.nextHopV6,
      ]) !==
      JSON.stringify([next.exportPolicy, next.nextHopSelf, next.nextHopKeep, next.nextHopV4, next.nextHopV6]);
    p.config = next;
    p.importPolicy = new CompiledPolicy(next.importPolicy);
    if (importChanged) this.#import.reimport(p);
    if (exportChanged) this.#out.readvertise(p);
  }

  peers(): PeerConfig[] {
    return [...this.#registry.values()].map((p) => p.config);
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
      attrs: this.#core.interner.intern(attrs),
      source: LOCAL_SOURCE,
      stale: false,
    };
    this.#originated.set(prefix, route);
    const c = this.locRib.add(route);
    if (c) this.#core.propagate([c]);
  }

  withdraw(prefix: string): void {
    if (!this.#originated.delete(prefix)) return;
    const c = this.locRib.remove(prefix, LOCAL_SOURCE);
    if (c) this.#core.propagate([c]);
  }

  originated(): string[] {
    return [...this.#originated.keys()];
  }

  /** Ask a peer to resend its routes (RFC 2918). */
  refresh(address: string, family?: Family): void {
    const p = this.#registry.get(address);
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
    const now = this.#core.clock.now();
    const listen = this.config.listen
      ? { ...this.config.listen, port: this.listenPort ?? this.config.listen.port }
      : null;
    return {
      routerId: this.config.routerId,
      asNumber: this.config.asNumber,
      listen,
      routes: this.locRib.size,
      peers: [...this.#registry.values()].map((p) => {
        const s = p.session;
        return {
          address: p.config.address,
          asNumber: p.config.asNumber,
          state: s.state,
          uptimeSeconds: s.establishedAt !== undefined ? Math.floor((now - s.establishedAt) / 1000) : 0,
          received: p.received,
          accepted: p.accepted.size,
          sent: this.#out.sent(p),
          lastError: s.lastError ?? null,
          lastErrorKind: s.state === FsmState.Established ? null : (s.lastErrorKind ?? null),
          routerId: s.remoteOpen?.bgpId ?? null,
          localAddress: s.localAddress ?? null,
          holdTime: s.state === FsmState.Established ? s.fsm.negotiatedHold : null,
          families: s.state === FsmState.Established ? [...(s.negotiated?.families ?? [])] : [],
          stale: p.stale.size,
        };
      }),
    };
  }

  /**
   * The update groups: peers whose sessions get the same UPDATEs share one Adj-RIB-Out and one
   * encoding of each UPDATE. `routes` counts the group's advertised paths.
   */
  updateGroups(): { members: string[]; routes: number; addPath: boolean }[] {
    return this.#out.groups().map((g) => ({
      members: [...g.members].map((p) => p.config.address),
      routes: g.advertised,
      addPath: g.addPath.size > 0,
    }));
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

  // --- session events ------------------------------------------------------------------------

  #onEstablished(p: PeerEntry): void {
    const s = p.session;
    const peerAs = s.negotiated!.peerAs;
    p.source = Object.freeze({
      peerAddress: p.config.address,
      peerAs,
      routerId: s.remoteOpen!.bgpId,
      ibgp: peerAs === (p.config.localAsNumber ?? this.config.asNumber),
      rrClient: p.config.routeReflectorClient ?? false,
      local: false,
    });
    p.received = 0;
    this.#gr.peerUp(p);
    this.#out.sessionUp(p);
  }

  #onDown(p: PeerEntry, info: { graceful: boolean; reason: string }): void {
    this.#out.sessionDown(p);
    p.refreshing.clear();
    if (this.#gr.enabled && info.graceful) this.#gr.keepThroughRestart(p);
    else this.#import.withdrawAll(p, true);
    p.source = undefined;
  }

  #onRouteRefresh(p: PeerEntry, m: RouteRefreshMessage): void {
    const family = `${m.afi}/${m.safi}` as FamilyKey;
    if (m.subtype === 0) this.#out.resend(p, m);
    else if (m.subtype === 1) this.#gr.beginRefresh(p, family);
    else if (m.subtype === 2) this.#gr.endRefresh(p, family);
  }

  #propagate(changes: BestPathChange[]): void {
    const best = changes.filter((c) => !c.pathsOnly);
    if (best.length) this.emit('best-path', best);
    this.#out.propagate(changes);
  }
}
