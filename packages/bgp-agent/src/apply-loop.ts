/**
 * The agent's apply loop: snapshot → intent (`computeIntent`, pure) → one BgpSpeaker and the
 * kernel. Peers are added, updated or removed without touching unchanged sessions; prefixes are
 * originated or withdrawn; learned best paths (plus blackholes for this node's blocks, unless
 * Felix programs those) are written by the KernelRouteWriter as the difference from what it finds
 * in the kernel. One round runs at a time; changes arriving meanwhile run in the next round.
 *
 * After a restart (routes of ours already in the kernel) the speaker sets the graceful-restart R
 * bit and old routes stay until every peer has sent End-of-RIB or the restart time has passed
 * (RFC 4724 §4.1), so traffic keeps flowing while we come back.
 */
import {
  type BestPathChange,
  BgpSpeaker,
  FsmState,
  type PeerConfig,
  type SocketOptions,
  type SpeakerStatus,
} from '@calico-ts/bgp';
import type { Logger } from 'pino';
import type { AgentPeerStatus } from './agent-control.ts';
import { type BgpIntent, computeIntent, type IntendedPeer } from './intent.ts';
import { type KernelRouteState, learnedNextHops, planKernelRoutes } from './kernel/route-plan.ts';
import type { KernelRouteWriter } from './kernel/route-writer.ts';
import { desiredKernelRoutes, type LearnedRoute, ownedKernelRoute } from './kernel-routes.ts';
import type { SecretResolver } from './peers.ts';
import type { AgentSnapshot } from './snapshot.ts';

export interface ApplyLoopOptions {
  nodeName: string;
  logger: Logger;
  /** The current datastore state, read at the start of each round. */
  snapshot: () => AgentSnapshot;
  /** No round runs before this is true (the first datastore listing). */
  synced: () => boolean;
  readSecret: SecretResolver;
  routes: KernelRouteWriter;
  socketOptions: SocketOptions;
  holdTime?: number | undefined;
  connectRetryTime?: number | undefined;
  /** confd's CALICO_ROUTER_ID: an IPv4 address or `hash`; the node's IPv4 address when unset. */
  routerId?: string | undefined;
  blackholes: boolean;
  convergenceTimeoutMs?: number | undefined;
}

/**
 * Calico's BIRD template: `connect retry time 5` (seconds between attempts while a peer is down).
 * Its `connect delay time 2` has no counterpart: the speaker dials as soon as a session starts.
 */
const DEFAULT_CONNECT_RETRY_TIME = 5;

interface RunningSpeaker {
  /** What the speaker was built from; a change needs a new speaker. */
  identity: string;
  speaker: BgpSpeaker;
}

export class ApplyLoop {
  readonly #o: ApplyLoopOptions;
  readonly #log: Logger;
  #speaker: RunningSpeaker | undefined;
  #intent: BgpIntent | undefined;
  #peers = new Map<string, IntendedPeer>();
  #exported = new Map<string, string>();
  #since = new Map<string, number>();
  readonly #learned = new Map<string, string[]>();
  #installed = 0;
  #blackholes = 0;
  /** False while routes from before a restart wait for the peers to resend theirs. */
  #converged = true;
  #endOfRib = new Set<string>();
  #configDirty = true;
  #kernelDirty = true;
  #roundStartedAt: number | undefined;
  /** Destinations of the kernel routes the last round wanted. */
  #wanted = new Set<string>();
  #running: Promise<void> | undefined;
  #timers: NodeJS.Timeout[] = [];
  #stopped = false;
  #lastError: string | undefined;

  constructor(options: ApplyLoopOptions) {
    this.#o = options;
    this.#log = options.logger;
  }

  /** Look for routes a previous run left; if there are any, we are restarting. */
  async adoptKernelRoutes(): Promise<void> {
    const adopted = await this.#ownedKernelRoutes();
    if (adopted.length === 0) return;
    this.#converged = false;
    this.#log.info({ routes: adopted.length }, 'kernel routes from a previous run kept until peers resend');
  }

  /** The datastore changed: recompute the intent. */
  configChanged(): void {
    this.#configDirty = true;
    this.#kick();
  }

  /** Recompute everything and compare with the kernel again (repairs drift, rereads secrets). */
  resync(): void {
    this.#configDirty = true;
    this.#kernelDirty = true;
    this.#kick();
  }

  /**
   * The kernel reported a route change in our table: one of our routes that we still want was
   * deleted, or replaced by someone else's route. Compared with the kernel again at once, so a
   * route deleted by hand is back within the second. Our own writes never match these cases.
   */
  kernelRouteChanged(action: 'new' | 'del', dst: string, protocol: number): void {
    if (!this.#wanted.has(dst)) return;
    const ours = protocol === this.#o.routes.protocol;
    if (action === 'del' ? !ours : ours) return;
    this.#kernelDirty = true;
    this.#kick();
  }

  /** Resolves when the round in progress (if any) has finished. */
  async idle(): Promise<void> {
    await this.#running;
  }

  /**
   * Stop applying and stop the speaker: gracefully (no NOTIFICATION, routes stay in the kernel)
   * or, with `withdraw`, with Cease and our routes removed from the kernel.
   */
  async stop(opts: { withdraw?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    await this.#running?.catch(() => {});
    const s = this.#speaker?.speaker;
    this.#speaker = undefined;
    if (s) await s.stop({ graceful: !opts.withdraw });
    if (opts.withdraw) {
      const { failures } = await this.#o.routes.apply({
        replace: [],
        remove: await this.#ownedKernelRoutes(),
      });
      for (const f of failures) this.#log.warn({ err: f.error, dst: f.dst }, 'could not remove route');
    }
  }

  get intent(): BgpIntent | undefined {
    return this.#intent;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  get hasSpeaker(): boolean {
    return this.#speaker !== undefined;
  }

  speakerStatus(): SpeakerStatus | undefined {
    return this.#speaker?.speaker.status();
  }

  /** Sessions as calicoctl shows BIRD's protocols. */
  peerStatus(speakerStatus: SpeakerStatus | undefined): AgentPeerStatus[] {
    const byAddress = new Map((speakerStatus?.peers ?? []).map((p) => [p.address, p]));
    const peers: AgentPeerStatus[] = [];
    for (const peer of this.#peers.values()) {
      const s = byAddress.get(peer.config.address);
      const fsmState = s?.state ?? FsmState.Idle;
      const up = fsmState === FsmState.Established;
      peers.push({
        name: peer.name,
        address: peer.config.address,
        port: peer.config.port ?? this.#intent?.node?.listenPort ?? 179,
        type: peer.type,
        family: peer.family,
        asNumber: peer.config.asNumber,
        state: up ? 'up' : 'start',
        since: new Date(this.#since.get(peer.config.address) ?? Date.now()).toISOString(),
        info: up || !s?.lastError ? fsmState : `${fsmState} ${s.lastError}`,
        fsmState,
        reason: up
          ? null
          : (s?.lastError ?? (peer.config.passive ? 'waiting for the peer to connect (passive)' : null)),
        reasonKind: up ? null : (s?.lastErrorKind ?? null),
        routesReceived: s?.received ?? 0,
        routesAccepted: s?.accepted ?? 0,
        routesSent: s?.sent ?? 0,
      });
    }
    return peers;
  }

  routeCounts(): { exported: number; learned: number; installed: number; blackholes: number } {
    return {
      exported: this.#exported.size,
      learned: this.#learned.size,
      installed: this.#installed,
      blackholes: this.#blackholes,
    };
  }

  /** How long the round in progress has been running (ms); undefined when idle (for a watchdog). */
  get roundRunningMs(): number | undefined {
    return this.#roundStartedAt === undefined ? undefined : performance.now() - this.#roundStartedAt;
  }

  #kick(): void {
    if (this.#running || this.#stopped || !this.#o.synced()) return;
    this.#roundStartedAt = performance.now();
    this.#running = (async () => {
      try {
        this.#lastError = undefined;
        while ((this.#configDirty || this.#kernelDirty) && !this.#stopped) {
          if (this.#configDirty) {
            this.#configDirty = false;
            await this.#applyConfig();
          }
          if (this.#kernelDirty) {
            this.#kernelDirty = false;
            await this.#applyKernel();
          }
        }
      } catch (err) {
        this.#lastError = (err as Error).message;
        this.#log.error({ err }, 'BGP agent apply failed; retrying on the next change or resync');
      } finally {
        this.#running = undefined;
        this.#roundStartedAt = undefined;
      }
    })();
  }

  // --- speaker --------------------------------------------------------------------------------

  async #applyConfig(): Promise<void> {
    const intent = computeIntent(this.#o.snapshot(), this.#o.nodeName, this.#o.readSecret, {
      routerId: this.#o.routerId,
    });
    const previousProblems = this.#intent?.problems.join('\n');
    this.#intent = intent;
    if (intent.problems.join('\n') !== previousProblems && intent.problems.length > 0) {
      this.#log.warn({ problems: intent.problems }, 'BGP configuration not applied in full');
    }
    const node = intent.node;
    if (!node?.routerId) {
      await this.#dropSpeaker();
      this.#kernelDirty = true;
      return;
    }
    const identity = JSON.stringify([
      node.routerId,
      node.asNumber,
      node.clusterId,
      node.listenPort,
      intent.listenAddress,
      intent.restartTime,
      !!node.ipv6,
    ]);
    if (this.#speaker?.identity !== identity) {
      await this.#dropSpeaker();
      this.#speaker = { identity, speaker: await this.#startSpeaker(intent) };
    }
    const speaker = this.#speaker.speaker;
    const wanted = new Map(intent.peers.map((p) => [p.config.address, p]));
    for (const [address, old] of this.#peers) {
      if (wanted.get(address)) continue;
      this.#log.info({ peer: old.name }, 'removing BGP peer');
      speaker.removePeer(address);
      this.#peers.delete(address);
      this.#since.delete(address);
    }
    for (const [address, peer] of wanted) {
      const config = this.#peerConfig(peer);
      const old = this.#peers.get(address);
      if (!old) {
        this.#log.info(
          { peer: peer.name, type: peer.type, passive: config.passive ?? false },
          'adding BGP peer',
        );
        speaker.addPeer(config);
        this.#since.set(address, Date.now());
      } else if (JSON.stringify(this.#peerConfig(old)) !== JSON.stringify(config)) {
        this.#log.info({ peer: peer.name }, 'updating BGP peer');
        speaker.updatePeer(config);
      }
      this.#peers.set(address, peer);
    }
    const exports = new Map(
      intent.exports.map((e) => [e.prefix, JSON.stringify([e.communities, e.largeCommunities, e.localPref])]),
    );
    for (const prefix of this.#exported.keys()) {
      if (exports.has(prefix)) continue;
      speaker.withdraw(prefix);
      this.#exported.delete(prefix);
    }
    for (const e of intent.exports) {
      const key = exports.get(e.prefix)!;
      if (this.#exported.get(e.prefix) === key) continue;
      speaker.originate(e.prefix, {
        communities: e.communities,
        largeCommunities: e.largeCommunities,
        localPref: e.localPref,
      });
      this.#exported.set(e.prefix, key);
    }
    this.#kernelDirty = true;
  }

  #peerConfig(peer: IntendedPeer): PeerConfig {
    const config: PeerConfig = { ...peer.config };
    if (this.#o.holdTime !== undefined) config.holdTime = this.#o.holdTime;
    config.connectRetryTime = this.#o.connectRetryTime ?? DEFAULT_CONNECT_RETRY_TIME;
    return config;
  }

  async #startSpeaker(intent: BgpIntent): Promise<BgpSpeaker> {
    const node = intent.node!;
    const speaker = new BgpSpeaker(
      {
        routerId: node.routerId!,
        asNumber: node.asNumber,
        ...(node.clusterId ? { clusterId: node.clusterId } : {}),
        // bindMode NodeIP: the node's address (IPv4-only nodes; a dual-stack node needs both
        // families on one listener). Otherwise a dual-stack listener takes IPv4 peers as ::ffff:a.b.c.d.
        listen: {
          address: node.ipv6 ? '::' : (intent.listenAddress ?? '0.0.0.0'),
          port: node.listenPort,
        },
        multipath: true,
        gracefulRestart: { enabled: true, restartTime: intent.restartTime, restarting: !this.#converged },
        connectRetryTime: this.#o.connectRetryTime ?? DEFAULT_CONNECT_RETRY_TIME,
      },
      { logger: this.#log.child({ component: 'speaker' }), socketOptions: this.#o.socketOptions },
    );
    speaker.on('best-path', (changes) => this.#onBestPath(changes));
    speaker.on('peer-state', (e) => {
      this.#since.set(e.address, Date.now());
      const name = this.#peers.get(e.address)?.name ?? e.address;
      if (e.to === FsmState.Established || e.from === FsmState.Established) {
        this.#log.info({ peer: name, from: e.from, to: e.to, error: e.lastError }, 'BGP session state');
      }
    });
    speaker.on('end-of-rib', ({ peer, family }) => {
      if (family !== '1/1' && family !== '2/1') return;
      this.#endOfRib.add(peer);
      this.#checkConverged();
    });
    this.#peers.clear();
    this.#exported.clear();
    this.#learned.clear();
    await speaker.start();
    this.#log.info(
      { routerId: node.routerId, asNumber: node.asNumber, port: node.listenPort },
      'BGP speaker started',
    );
    if (!this.#converged) {
      const ms = this.#o.convergenceTimeoutMs ?? intent.restartTime * 1000;
      this.#timers.push(
        setTimeout(() => {
          if (this.#converged) return;
          this.#log.info('graceful restart: peers did not all resend in time; removing routes from before');
          this.#converged = true;
          this.#kernelDirty = true;
          this.#kick();
        }, ms).unref(),
      );
    }
    return speaker;
  }

  async #dropSpeaker(): Promise<void> {
    const s = this.#speaker?.speaker;
    this.#speaker = undefined;
    this.#peers.clear();
    this.#exported.clear();
    this.#learned.clear();
    if (s) await s.stop({ graceful: true });
  }

  /** Converged after a restart once every peer sent End-of-RIB (RFC 4724 §4.1). */
  #checkConverged(): void {
    if (this.#converged) return;
    if ([...this.#peers.keys()].every((a) => this.#endOfRib.has(a))) {
      this.#log.info('graceful restart: every peer resent its routes');
      this.#converged = true;
      this.#kernelDirty = true;
      this.#kick();
    }
  }

  // --- kernel ---------------------------------------------------------------------------------

  #onBestPath(changes: BestPathChange[]): void {
    let changed = false;
    for (const c of changes) {
      const hops = learnedNextHops(c);
      if (hops === undefined) {
        changed = this.#learned.delete(c.prefix) || changed;
        continue;
      }
      if (JSON.stringify(this.#learned.get(c.prefix)) === JSON.stringify(hops)) continue;
      this.#learned.set(c.prefix, hops);
      changed = true;
    }
    if (changed) {
      this.#kernelDirty = true;
      this.#kick();
    }
  }

  async #ownedKernelRoutes(): Promise<KernelRouteState[]> {
    const routes = this.#o.routes;
    const programIpip = this.#intent?.programClusterRoutes === 'Enabled';
    return (await routes.list()).filter((r) => ownedKernelRoute(r, routes.protocol, programIpip));
  }

  async #applyKernel(): Promise<void> {
    const intent = this.#intent;
    if (!intent?.node) return;
    const learned: LearnedRoute[] = [...this.#learned].map(([prefix, nextHops]) => ({ prefix, nextHops }));
    const { routes } = desiredKernelRoutes(
      {
        me: intent.node,
        pools: intent.pools,
        localBlocks: intent.localBlocks,
        programClusterRoutes: intent.programClusterRoutes,
        blackholes: this.#o.blackholes,
        staticRoutes: intent.staticRoutes,
      },
      learned,
    );
    const plan = planKernelRoutes(routes, await this.#ownedKernelRoutes(), !this.#converged);
    this.#wanted = new Set(routes.keys());
    const result = await this.#o.routes.apply(plan);
    let replaceFailures = 0;
    for (const f of result.failures) {
      if (f.action === 'replace') {
        replaceFailures++;
        this.#log.warn({ err: f.error, dst: f.dst }, 'could not program route; retrying on the next resync');
      } else this.#log.warn({ err: f.error, dst: f.dst }, 'could not remove route');
    }
    if (plan.replace.length || plan.remove.length) {
      this.#log.debug(
        { replaced: plan.replace.length, removed: plan.remove.length },
        'kernel routes updated',
      );
    }
    let installed = 0;
    let blackholes = 0;
    for (const r of routes.values()) r.type === 'blackhole' ? blackholes++ : installed++;
    this.#installed = installed;
    this.#blackholes = blackholes;
    if (replaceFailures > 0) this.#lastError = `${replaceFailures} route(s) could not be programmed`;
  }
}
