/**
 * The node's BGP agent: confd + BIRD's job done live. It watches the datastore (one watch over the
 * kinds it needs, relisting on resync), recomputes the intent on every change and applies the
 * difference to one BgpSpeaker (peers added, updated or removed without touching unchanged
 * sessions; prefixes originated or withdrawn), and programs learned best paths plus blackholes for
 * its own blocks into the kernel of its namespace. Graceful restart is on: stopping closes the
 * sessions without NOTIFICATION and leaves the kernel routes, so peers keep our routes and
 * traffic keeps flowing while we restart (RFC 4724 §4, BIRD's `persist` + `graceful restart`).
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { join } from 'node:path';
import type { AnyResource, Datastore, KindName, Watch } from '@calico-ts/datastore';
import {
  connectTcp,
  type Route as KernelRoute,
  listenTcp,
  Netlink,
  NetNamespace,
  setIpMinTtl,
  setIpTtl,
  setTcpMd5Key,
} from '@calico-ts/kernel';
import { type Logger, pino } from 'pino';
import { FsmState } from '../fsm/fsm.ts';
import type { BestPathChange } from '../rib/loc-rib.ts';
import type { SocketOptions } from '../session/socket-options.ts';
import { BgpSpeaker, type PeerConfig } from '../speaker.ts';
import { closeControlSocket, DEFAULT_CONTROL_SOCKET, serveControlSocket } from './control-socket.ts';
import { type BgpIntent, computeIntent, type IntendedPeer } from './intent.ts';
import {
  CALICO_ROUTE_PROTOCOL,
  desiredKernelRoutes,
  type KernelRouteIntent,
  type KernelRouteState,
  type LearnedRoute,
  ownedKernelRoute,
  planKernelRoutes,
} from './kernel-routes.ts';
import type { PeerType } from './peers.ts';
import type { AgentSnapshot } from './snapshot.ts';

export const AGENT_KINDS = [
  'Node',
  'BGPConfiguration',
  'BGPPeer',
  'BGPFilter',
  'IPPool',
  'BlockAffinity',
  'WorkloadEndpoint',
] as const satisfies readonly KindName[];

export const DEFAULT_SECRETS_DIR = '/etc/calico/secrets';

export interface BgpAgentOptions {
  datastore: Datastore;
  nodeName: string;
  /** Network namespace (name under /run/netns, a path, or a handle) for sockets and routes; ours when omitted. */
  netns?: string | NetNamespace | undefined;
  logger?: Logger | undefined;
  /** Control socket path (default /var/run/calico/bgp.ctl); false for none. */
  statusSocket?: string | false | undefined;
  /** `password.secretKeyRef` {name, key} is read from `<secretsDir>/<name>/<key>` (default /etc/calico/secrets). */
  secretsDir?: string | undefined;
  /** Hold time offered to every peer (seconds; the speaker's default, 90, when omitted). */
  holdTime?: number | undefined;
  /** Seconds between connection attempts (BIRD template: `connect retry time 5`). */
  connectRetryTime?: number | undefined;
  /** rtnetlink protocol of the routes we install (default 12, `proto bird` as in Calico). */
  routeProtocol?: number | undefined;
  /**
   * Install blackhole routes for this node's blocks (default true). calico-node turns it off:
   * there Felix programs them, as in Calico.
   */
  blackholes?: boolean | undefined;
  /** After a restart, how long to keep routes from before while peers resend (default: restart time). */
  convergenceTimeoutMs?: number | undefined;
  /** Full recomputation and kernel comparison this often (default 30 s; repairs drift, rereads secrets). */
  resyncIntervalMs?: number | undefined;
  /** How long start() waits for the first datastore listing (default 30 s). */
  startTimeoutMs?: number | undefined;
}

export type BirdProtocolState = 'up' | 'start' | 'down';

export interface AgentPeerStatus {
  /** BIRD protocol name (`Mesh_192_0_2_12`). */
  name: string;
  address: string;
  port: number;
  type: PeerType;
  family: 'ipv4' | 'ipv6';
  asNumber: number;
  /** calicoctl's STATE column: BIRD's protocol state. */
  state: BirdProtocolState;
  /** ISO time of the last state change. */
  since: string;
  /** calicoctl's INFO column: the BGP state, plus the last error while not Established. */
  info: string;
  fsmState: FsmState;
  routesReceived: number;
  routesAccepted: number;
  routesSent: number;
}

export interface BgpAgentStatus {
  live: boolean;
  ready: boolean;
  nodeName: string;
  routerId: string | undefined;
  asNumber: number | undefined;
  listenPort: number | undefined;
  /** False until the first datastore listing arrived. */
  synced: boolean;
  datastoreConnected: boolean;
  peers: AgentPeerStatus[];
  routes: { exported: number; learned: number; installed: number; blackholes: number };
  problems: string[];
  lastError: string | undefined;
}

interface SpeakerIdentity {
  key: string;
  speaker: BgpSpeaker;
}

const resourceKey = (r: AnyResource) => `${r.metadata.namespace ?? ''}/${r.metadata.name}`;

export class BgpAgent {
  readonly #o: BgpAgentOptions;
  readonly #log: Logger;
  readonly #protocol: number;
  #ns: NetNamespace | undefined;
  #ownsNs = false;
  #netlink: Netlink | undefined;
  #watch: Watch | undefined;
  #watchLoop: Promise<void> | undefined;
  #control: Server | undefined;
  #timers: NodeJS.Timeout[] = [];
  readonly #state = new Map<KindName, Map<string, AnyResource>>();
  #synced = false;
  #firstSync: { promise: Promise<void>; resolve: () => void };
  #datastoreConnected = false;
  #speaker: SpeakerIdentity | undefined;
  #intent: BgpIntent | undefined;
  #peers = new Map<string, IntendedPeer>();
  #exported = new Map<string, string>();
  #since = new Map<string, number>();
  readonly #learned = new Map<string, string[]>();
  #installed = 0;
  #blackholes = 0;
  readonly #blackholesEnabled: boolean;
  /** Routes found in the kernel at start: we are restarting and keep them until peers resend. */
  #converged = true;
  #endOfRib = new Set<string>();
  #configDirty = true;
  #kernelDirty = true;
  #running: Promise<void> | undefined;
  #stopped = false;
  #lastError: string | undefined;

  constructor(options: BgpAgentOptions) {
    this.#o = options;
    this.#log = options.logger ?? pino({ level: 'silent' });
    this.#protocol = options.routeProtocol ?? CALICO_ROUTE_PROTOCOL;
    this.#blackholesEnabled = options.blackholes ?? true;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#firstSync = { promise, resolve };
  }

  async start(): Promise<void> {
    const o = this.#o;
    if (typeof o.netns === 'string') {
      this.#ns = NetNamespace.open(o.netns);
      this.#ownsNs = true;
    } else this.#ns = o.netns;
    this.#netlink = Netlink.open(this.#ns);
    const adopted = await this.#ownedKernelRoutes();
    if (adopted.length > 0) {
      // A previous run left its routes: keep them (and tell peers we restart) until they resend.
      this.#converged = false;
      this.#log.info({ routes: adopted.length }, 'kernel routes from a previous run kept until peers resend');
    }
    const socketPath = o.statusSocket ?? DEFAULT_CONTROL_SOCKET;
    if (socketPath !== false) {
      this.#control = await serveControlSocket(socketPath, (req) => {
        if (req.command !== 'status') throw new Error(`unknown command "${req.command}" (expected "status")`);
        return { status: this.status() };
      });
    }
    this.#watch = o.datastore.watch({ kinds: AGENT_KINDS });
    this.#watchLoop = this.#consume(this.#watch);
    const interval = o.resyncIntervalMs ?? 30_000;
    this.#timers.push(
      setInterval(() => {
        this.#configDirty = true;
        this.#kernelDirty = true;
        this.#kick();
      }, interval).unref(),
    );
    const timeout = o.startTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([
      this.#firstSync.promise.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeout))),
    ]);
    clearTimeout(timer);
    if (!waited)
      this.#log.warn(
        { timeoutMs: timeout },
        'no datastore listing yet; continuing, BGP starts when it arrives',
      );
    else await this.#running;
  }

  /**
   * Stop watching and close sessions. By default without NOTIFICATION and leaving kernel routes:
   * a restart then disturbs nothing (graceful restart). `withdraw`: send Cease so peers drop our
   * routes at once, and remove the routes we installed.
   */
  async stop(opts: { withdraw?: boolean } = {}): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    await this.#watch?.close();
    await this.#watchLoop?.catch(() => {});
    await this.#running?.catch(() => {});
    const s = this.#speaker?.speaker;
    this.#speaker = undefined;
    if (s) await s.stop({ graceful: !opts.withdraw });
    if (opts.withdraw && this.#netlink) {
      for (const r of await this.#ownedKernelRoutes()) await this.#deleteKernelRoute(r);
    }
    const path = this.#o.statusSocket ?? DEFAULT_CONTROL_SOCKET;
    if (this.#control && path !== false) await closeControlSocket(this.#control, path);
    this.#netlink?.close();
    if (this.#ownsNs) this.#ns?.close();
  }

  status(): BgpAgentStatus {
    const speakerStatus = this.#speaker?.speaker.status();
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
        routesReceived: s?.received ?? 0,
        routesAccepted: s?.accepted ?? 0,
        routesSent: s?.sent ?? 0,
      });
    }
    const node = this.#intent?.node;
    return {
      live: !this.#stopped,
      ready: this.#synced && !this.#stopped && (node?.routerId === undefined || this.#speaker !== undefined),
      nodeName: this.#o.nodeName,
      routerId: node?.routerId,
      asNumber: node?.asNumber,
      listenPort: speakerStatus?.listen?.port,
      synced: this.#synced,
      datastoreConnected: this.#datastoreConnected,
      peers,
      routes: {
        exported: this.#exported.size,
        learned: this.#learned.size,
        installed: this.#installed,
        blackholes: this.#blackholes,
      },
      problems: this.#intent?.problems ?? [],
      lastError: this.#lastError,
    };
  }

  // --- datastore ------------------------------------------------------------------------------

  async #consume(watch: Watch): Promise<void> {
    try {
      for await (const ev of watch) {
        if (ev.type === 'status') {
          this.#datastoreConnected = ev.state === 'connected';
          if (ev.error) this.#log.warn({ error: ev.error }, `datastore ${ev.state}`);
          continue;
        }
        if (ev.type === 'bookmark') continue;
        if (ev.type === 'resync') {
          this.#state.clear();
          for (const item of ev.items) this.#put(item);
          this.#datastoreConnected = true;
          if (!this.#synced) {
            this.#synced = true;
            this.#log.info({ objects: ev.items.length }, 'datastore in sync');
          }
        } else if (ev.type === 'deleted') {
          this.#state.get(ev.kind)?.delete(resourceKey(ev.old));
        } else this.#put(ev.new);
        this.#configDirty = true;
        this.#kick();
        if (ev.type === 'resync') this.#firstSync.resolve();
      }
    } catch (err) {
      if (!this.#stopped) {
        this.#lastError = `datastore watch failed: ${(err as Error).message}`;
        this.#log.error({ err }, 'datastore watch failed');
      }
    }
  }

  #put(r: AnyResource): void {
    const kind = r.kind as KindName;
    const m = this.#state.get(kind) ?? new Map<string, AnyResource>();
    this.#state.set(kind, m);
    m.set(resourceKey(r), r);
  }

  #snapshot(): AgentSnapshot {
    const of = <K extends KindName>(k: K) => [...(this.#state.get(k)?.values() ?? [])] as never[];
    return {
      nodes: of('Node'),
      bgpConfigurations: of('BGPConfiguration'),
      bgpPeers: of('BGPPeer'),
      bgpFilters: of('BGPFilter'),
      ipPools: of('IPPool'),
      blockAffinities: of('BlockAffinity'),
      workloadEndpoints: of('WorkloadEndpoint'),
    };
  }

  #readSecret = (name: string, key: string): string | undefined => {
    try {
      // Kubernetes mounts a secret's keys as files; a trailing newline from `echo` is not part of it.
      return readFileSync(join(this.#o.secretsDir ?? DEFAULT_SECRETS_DIR, name, key), 'utf8').replace(
        /\r?\n$/,
        '',
      );
    } catch {
      return undefined;
    }
  };

  // --- apply loop -----------------------------------------------------------------------------

  /** One apply at a time; changes arriving meanwhile run in the next round. */
  #kick(): void {
    if (this.#running || this.#stopped || !this.#synced) return;
    this.#running = (async () => {
      try {
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
        this.#lastError = undefined;
      } catch (err) {
        this.#lastError = (err as Error).message;
        this.#log.error({ err }, 'BGP agent apply failed; retrying on the next change or resync');
      } finally {
        this.#running = undefined;
      }
    })();
  }

  async #applyConfig(): Promise<void> {
    const intent = computeIntent(this.#snapshot(), this.#o.nodeName, this.#readSecret);
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
      intent.restartTime,
      !!node.ipv6,
    ]);
    if (this.#speaker?.key !== identity) {
      await this.#dropSpeaker();
      this.#speaker = { key: identity, speaker: await this.#startSpeaker(intent) };
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
      intent.exports.map((e) => [e.prefix, JSON.stringify([e.communities, e.largeCommunities])]),
    );
    for (const prefix of this.#exported.keys()) {
      if (exports.has(prefix)) continue;
      speaker.withdraw(prefix);
      this.#exported.delete(prefix);
    }
    for (const e of intent.exports) {
      const key = exports.get(e.prefix)!;
      if (this.#exported.get(e.prefix) === key) continue;
      speaker.originate(e.prefix, { communities: e.communities, largeCommunities: e.largeCommunities });
      this.#exported.set(e.prefix, key);
    }
    this.#kernelDirty = true;
  }

  #peerConfig(peer: IntendedPeer): PeerConfig {
    const config: PeerConfig = { ...peer.config };
    if (this.#o.holdTime !== undefined) config.holdTime = this.#o.holdTime;
    config.connectRetryTime = this.#o.connectRetryTime ?? 5;
    return config;
  }

  async #startSpeaker(intent: BgpIntent): Promise<BgpSpeaker> {
    const node = intent.node!;
    const speaker = new BgpSpeaker(
      {
        routerId: node.routerId!,
        asNumber: node.asNumber,
        ...(node.clusterId ? { clusterId: node.clusterId } : {}),
        // A dual-stack listener takes IPv4 peers as ::ffff:a.b.c.d.
        listen: { address: node.ipv6 ? '::' : '0.0.0.0', port: node.listenPort },
        multipath: true,
        gracefulRestart: { enabled: true, restartTime: intent.restartTime, restarting: !this.#converged },
        connectRetryTime: this.#o.connectRetryTime ?? 5,
      },
      { logger: this.#log.child({ component: 'speaker' }), socketOptions: this.#socketOptions() },
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

  #socketOptions(): SocketOptions {
    const namespace = this.#ns;
    return {
      connect: (o) => connectTcp({ ...o, namespace, timeoutMs: 10_000 }),
      listen: ({ host, port }) => listenTcp({ host, port, namespace }),
      setListenerMd5: (server, peer, key) => setTcpMd5Key(server, peer, key),
      setTtl: (socket, ttl) => setIpTtl(socket, ttl),
      setMinTtl: (socket, minTtl) => setIpMinTtl(socket, minTtl),
    };
  }

  // --- kernel ---------------------------------------------------------------------------------

  #onBestPath(changes: BestPathChange[]): void {
    let changed = false;
    for (const c of changes) {
      const best = c.best;
      if (!best || best.source.local) {
        changed = this.#learned.delete(c.prefix) || changed;
        continue;
      }
      const paths = c.multipath.length > 0 ? c.multipath : [best];
      const hops = [...new Set(paths.map((r) => r.attrs.nextHop))].sort();
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
    const nl = this.#netlink!;
    const links = new Map((await nl.listLinks()).map((l) => [l.index, l.name]));
    const programIpip = this.#intent?.programClusterRoutes === 'Enabled';
    const out: KernelRouteState[] = [];
    for (const family of [4, 6] as const) {
      for (const r of await nl.listRoutes({ family, protocol: this.#protocol })) {
        const state = toState(r, links);
        if (ownedKernelRoute(state, this.#protocol, programIpip)) out.push(state);
      }
    }
    return out;
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
        blackholes: this.#blackholesEnabled,
      },
      learned,
    );
    const owned = await this.#ownedKernelRoutes();
    const plan = planKernelRoutes(routes, owned, !this.#converged);
    let failures = 0;
    for (const r of plan.replace) {
      try {
        await this.#netlink!.replaceRoute(kernelInput(r, this.#protocol));
      } catch (err) {
        failures++;
        this.#log.warn({ err, dst: r.dst }, 'could not program route; retrying on the next resync');
      }
    }
    for (const r of plan.remove) await this.#deleteKernelRoute(r);
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
    if (failures > 0) this.#lastError = `${failures} route(s) could not be programmed`;
  }

  async #deleteKernelRoute(r: KernelRouteState): Promise<void> {
    try {
      const gateway = r.nexthops.length === 1 ? r.nexthops[0]!.gateway : undefined;
      await this.#netlink!.deleteRoute(
        {
          dst: r.dst,
          type: r.type === 'blackhole' ? 'blackhole' : 'unicast',
          ...(gateway ? { gateway } : {}),
        },
        { ifExists: true },
      );
    } catch (err) {
      this.#log.warn({ err, dst: r.dst }, 'could not remove route');
    }
  }
}

function toState(r: KernelRoute, links: Map<number, string>): KernelRouteState {
  const name = (i: number | undefined) => (i === undefined ? undefined : links.get(i));
  const nexthops =
    r.nexthops.length > 0
      ? r.nexthops.map((n) => ({ gateway: n.gateway, dev: name(n.dev), onlink: n.onlink }))
      : r.gateway !== undefined
        ? [{ gateway: r.gateway, dev: name(r.dev), onlink: r.onlink }]
        : [];
  return { dst: r.dst, type: r.type, protocol: r.protocol, nexthops };
}

function kernelInput(r: KernelRouteIntent, protocol: number): Parameters<Netlink['replaceRoute']>[0] {
  if (r.type === 'blackhole') return { dst: r.dst, type: 'blackhole', protocol };
  if (r.nexthops.length === 1) {
    const n = r.nexthops[0]!;
    return { dst: r.dst, gateway: n.gateway, dev: n.dev, onlink: n.onlink, protocol };
  }
  // ECMP: one multipath route (RTA_MULTIPATH), as BIRD's `merge paths on`.
  return {
    dst: r.dst,
    protocol,
    nexthops: r.nexthops.map((n) => ({ gateway: n.gateway, dev: n.dev, onlink: n.onlink })),
  };
}
