/**
 * The configured peers, one session each, and the listening socket that hands incoming
 * connections to them: what goes into each OPEN (capabilities, timers) and the TCP-MD5 keys on
 * the listener.
 */
import net from 'node:net';
import { FsmState } from '../fsm/fsm.ts';
import { Session, type SessionHandlers } from '../session/session.ts';
import type { SocketOptions } from '../session/socket-options.ts';
import { BGP_PORT } from '../wire/constants.ts';
import type { RouteRefreshMessage, UpdateMessage } from '../wire/messages.ts';
import type { Capability } from '../wire/open.ts';
import { normalizeIp, parseIp } from '../wire/prefix.ts';
import { newPeerEntry, type PeerEntry, type SpeakerCore } from './peer.ts';
import { BgpConfigError, type PeerConfig } from './types.ts';

/** What happens on a peer's session, with the peer it belongs to. */
export interface PeerEvents {
  established(p: PeerEntry): void;
  down(p: PeerEntry, info: { graceful: boolean; reason: string }): void;
  update(p: PeerEntry, m: UpdateMessage): void;
  routeRefresh(p: PeerEntry, m: RouteRefreshMessage): void;
  stateChanged(p: PeerEntry, from: FsmState, to: FsmState, lastError: string | undefined): void;
}

export class PeerRegistry {
  readonly #core: SpeakerCore;
  readonly #socketOptions: SocketOptions | undefined;
  readonly #events: PeerEvents;
  readonly #gracefulRestart: () => Capability | undefined;
  readonly #peers = new Map<string, PeerEntry>();
  #server: net.Server | undefined;

  constructor(opts: {
    core: SpeakerCore;
    socketOptions: SocketOptions | undefined;
    events: PeerEvents;
    /** The graceful-restart capability for the next OPEN (its R bit changes over time). */
    gracefulRestart: () => Capability | undefined;
  }) {
    this.#core = opts.core;
    this.#socketOptions = opts.socketOptions;
    this.#events = opts.events;
    this.#gracefulRestart = opts.gracefulRestart;
  }

  get(address: string): PeerEntry | undefined {
    return this.#peers.get(normalizeIp(address));
  }

  values(): IterableIterator<PeerEntry> {
    return this.#peers.values();
  }

  addresses(): string[] {
    return [...this.#peers.keys()];
  }

  /** Start listening (if configured), then every idle session. */
  async listen(): Promise<void> {
    const l = this.#core.config.listen;
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

  async closeListener(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  /** Register a peer and start its session (once listening, when the speaker listens). */
  add(cfg: PeerConfig): PeerEntry {
    const address = normalizeIp(cfg.address);
    if (!parseIp(address)) throw new BgpConfigError(`peers[${cfg.address}].address: not an IP address`);
    if (this.#peers.has(address)) throw new BgpConfigError(`peers[${address}]: already configured`);
    const config = { ...cfg, address };
    const entry = newPeerEntry(config) as PeerEntry;
    entry.session = this.#makeSession(entry);
    this.#peers.set(address, entry);
    this.#installListenerKey(config);
    const listen = this.#core.config.listen;
    if (this.#server || listen === false || listen === undefined) entry.session.start();
    return entry;
  }

  /** Unregister a peer; its session and routes are the caller's to end. */
  take(address: string): PeerEntry | undefined {
    const key = normalizeIp(address);
    const p = this.#peers.get(key);
    if (p) this.#peers.delete(key);
    return p;
  }

  /** Unregister every peer at once. */
  takeAll(): PeerEntry[] {
    const all = [...this.#peers.values()];
    this.#peers.clear();
    return all;
  }

  removeListenerKey(cfg: PeerConfig): void {
    if (this.#server && cfg.password)
      this.#socketOptions?.setListenerMd5(this.#server, cfg.address, undefined);
  }

  #installListenerKey(cfg: PeerConfig): void {
    if (!cfg.password || !this.#server) return;
    if (!this.#socketOptions) {
      this.#core.log.error(
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
      this.#core.log.info({ remote: addr }, 'connection from an unconfigured address refused');
      socket.destroy();
      return;
    }
    p.session.acceptIncoming(socket);
  }

  #makeSession(entry: PeerEntry): Session {
    const speaker = this.#core.config;
    const cfg = entry.config;
    const families = cfg.families ?? ['ipv4', 'ipv6'];
    const capabilities = (): Capability[] => {
      const caps: Capability[] = families.map((f) => ({
        kind: 'multiprotocol',
        afi: f === 'ipv4' ? 1 : 2,
        safi: 1,
      }));
      caps.push({ kind: 'route-refresh' }, { kind: 'enhanced-route-refresh' });
      caps.push({ kind: 'four-octet-as', asNumber: cfg.localAsNumber ?? speaker.asNumber });
      const gr = this.#gracefulRestart();
      if (gr) caps.push(gr);
      // RFC 8950: we accept IPv4 routes with an IPv6 next hop.
      if (families.includes('ipv4'))
        caps.push({ kind: 'extended-next-hop', entries: [{ afi: 1, safi: 1, nextHopAfi: 2 }] });
      const addPathSend = cfg.addPathSend ?? cfg.routeReflectorClient ?? false;
      if (cfg.addPathReceive || addPathSend) {
        // RFC 7911 §4: bit 1 receive, bit 2 send.
        const mode = ((cfg.addPathReceive ? 1 : 0) | (addPathSend ? 2 : 0)) as 1 | 2 | 3;
        caps.push({
          kind: 'add-path',
          entries: families.map((f) => ({ afi: f === 'ipv4' ? 1 : 2, safi: 1, mode })),
        });
      }
      caps.push({ kind: 'extended-message' });
      return caps;
    };
    const timers: Record<string, number> = {
      holdTime: cfg.holdTime ?? 90,
      connectRetryTime: cfg.connectRetryTime ?? speaker.connectRetryTime ?? 120,
      idleHoldTime: Math.min(cfg.connectRetryTime ?? 5, 5),
    };
    if (cfg.keepaliveTime !== undefined) timers['keepaliveTime'] = cfg.keepaliveTime;
    const sessionConfig: ConstructorParameters<typeof Session>[0]['config'] = {
      peerAddress: cfg.address,
      peerAs: cfg.asNumber,
      port: cfg.port ?? BGP_PORT,
      localAs: cfg.localAsNumber ?? speaker.asNumber,
      routerId: speaker.routerId,
      passive: cfg.passive ?? false,
      timers,
      capabilities,
    };
    if (cfg.localAddress) sessionConfig.localAddress = cfg.localAddress;
    if (cfg.password) sessionConfig.password = cfg.password;
    if (cfg.ttl) sessionConfig.ttl = cfg.ttl;
    if (cfg.gtsm) sessionConfig.gtsm = cfg.gtsm;
    if (cfg.gtsmHops) sessionConfig.gtsmHops = cfg.gtsmHops;
    const ev = this.#events;
    const handlers: SessionHandlers = {
      established: () => ev.established(entry),
      down: (_s, info) => ev.down(entry, info),
      update: (_s, m) => ev.update(entry, m),
      routeRefresh: (_s, m) => ev.routeRefresh(entry, m),
      stateChanged: (s, from, to) => ev.stateChanged(entry, from, to, s.lastError),
    };
    const opts: ConstructorParameters<typeof Session>[0] = {
      config: sessionConfig,
      clock: this.#core.clock,
      logger: this.#core.log,
      handlers,
    };
    if (this.#socketOptions) opts.socketOptions = this.#socketOptions;
    return new Session(opts);
  }
}
