/**
 * The reflector: one BgpSpeaker (the same core calico-node runs) whose clients and identity come
 * from flags or, live, from the datastore. It originates nothing and writes no kernel routes: it
 * only reflects (RFC 4456), out of the data path.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BgpSpeaker,
  type PeerConfig,
  type RouteEntry,
  type SocketOptions,
  type SpeakerStatus,
} from '@calico-ts/bgp';
import { computePeers, DEFAULT_SECRETS_DIR, localNode, SnapshotWatch } from '@calico-ts/bgp-agent';
import type { Datastore } from '@calico-ts/datastore';
import { type Logger, pino } from 'pino';
import type { ReflectorConfig, StaticPeer } from './config.ts';

export interface ReflectorStatus extends SpeakerStatus {
  clusterId: string | null;
  ready: boolean;
  /** Why the reflector is not ready, e.g. its Node resource is missing. */
  problems: string[];
  /** What in the datastore could not be applied (a bad BGPPeer selector, a duplicate peering). */
  warnings: string[];
  clients: string[];
  updateGroups: { members: string[]; routes: number; addPath: boolean }[];
}

export interface ReflectorOptions {
  config: ReflectorConfig;
  /** Required when the config's identity comes from the datastore. */
  datastore?: Datastore;
  logger?: Logger;
  /** TCP-MD5 and TTL (multihop, GTSM) for sessions; without it those peers cannot connect. */
  socketOptions?: SocketOptions;
  /** `password.secretKeyRef` {name, key} is read from `<secretsDir>/<name>/<key>`. */
  secretsDir?: string;
}

interface Identity {
  routerId: string;
  asNumber: number;
  clusterId: string;
  listenPort: number;
}

export class Reflector {
  readonly #o: ReflectorOptions;
  readonly #log: Logger;
  #speaker: BgpSpeaker | undefined;
  #identity: Identity | undefined;
  #watch: SnapshotWatch | undefined;
  #problems: string[] = [];
  #warnings: string[] = [];
  #listenError: string | undefined;
  #applying: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: ReflectorOptions) {
    this.#o = options;
    this.#log = options.logger ?? pino({ level: 'silent' });
  }

  get speaker(): BgpSpeaker | undefined {
    return this.#speaker;
  }

  /** Start serving; with the datastore, resolves once the first listing was applied. */
  async start(timeoutMs = 30_000): Promise<void> {
    const src = this.#o.config.source;
    if (src.kind === 'flags') {
      const peers = [
        ...src.clients.map((p) => this.#staticPeer(p, src.asNumber, true)),
        ...src.peers.map((p) => this.#staticPeer(p, src.asNumber, false)),
      ];
      await this.#apply(
        { routerId: src.routerId, asNumber: src.asNumber, clusterId: src.clusterId, listenPort: 179 },
        peers,
      );
      return;
    }
    const datastore = this.#o.datastore;
    if (!datastore) throw new Error('calico-reflector: --node needs a datastore');
    const watch = new SnapshotWatch({
      datastore,
      logger: this.#log,
      onChange: () => this.#recompute(),
    });
    this.#watch = watch;
    watch.start();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      watch.firstSync,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no datastore listing within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    await this.#applying;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#watch?.close();
    await this.#applying;
    await this.#speaker?.stop();
    this.#speaker = undefined;
  }

  /** Live: the process works. Ready: listening, and (from the datastore) in sync with it. */
  health(): { live: boolean; ready: boolean; detail?: string } {
    const problems = this.problems();
    const ready = this.#speaker !== undefined && problems.length === 0;
    return problems.length
      ? { live: this.#listenError === undefined, ready, detail: problems.join('; ') }
      : { live: true, ready };
  }

  problems(): string[] {
    const out = [...this.#problems];
    if (this.#listenError) out.push(this.#listenError);
    const w = this.#watch;
    if (w && !w.synced) out.push('datastore not in sync yet');
    else if (w && !w.connected) out.push(w.lastError ?? 'datastore disconnected');
    return out;
  }

  status(): ReflectorStatus {
    const s = this.#speaker;
    const base: SpeakerStatus = s?.status() ?? {
      routerId: this.#identity?.routerId ?? '',
      asNumber: this.#identity?.asNumber ?? 0,
      listen: null,
      routes: 0,
      peers: [],
    };
    const problems = this.problems();
    return {
      ...base,
      clusterId: this.#identity?.clusterId ?? null,
      ready: s !== undefined && problems.length === 0,
      problems,
      warnings: [...this.#warnings],
      clients: (s?.peers() ?? []).filter((p) => p.routeReflectorClient).map((p) => p.address),
      updateGroups: s?.updateGroups() ?? [],
    };
  }

  routes(q: { prefix?: string; bestOnly?: boolean } = {}): RouteEntry[] {
    return this.#speaker?.routes(q) ?? [];
  }

  #staticPeer(p: StaticPeer, ownAs: number, client: boolean): PeerConfig {
    const c: PeerConfig = {
      address: p.address,
      asNumber: p.asNumber ?? ownAs,
      routeReflectorClient: client,
      connectRetryTime: this.#o.config.connectRetryTime,
    };
    if (p.port !== undefined) c.port = p.port;
    // Dial from the address we listen on, so the peer sees the address it has configured.
    const listen = this.#o.config.listen.address;
    if (listen !== '0.0.0.0' && listen !== '::' && listen.includes(':') === p.address.includes(':'))
      c.localAddress = listen;
    if (this.#o.config.holdTime !== undefined) c.holdTime = this.#o.config.holdTime;
    return c;
  }

  #recompute(): void {
    if (this.#stopped) return;
    const src = this.#o.config.source;
    if (src.kind !== 'datastore' || !this.#watch?.synced) return;
    const snap = this.#watch.snapshot();
    const me = localNode(snap, src.node);
    if (!me?.routerId) {
      this.#problems = [
        me
          ? `Node ${src.node}: spec.bgp.ipv4Address is not set, expected the reflector's address`
          : `Node ${src.node}: not found in the datastore`,
      ];
      this.#log.warn({ node: src.node, problem: this.#problems[0] }, 'not reflecting');
      return;
    }
    const { peers, problems } = computePeers(snap, me, this.#readSecret);
    this.#warnings = problems;
    this.#problems = [];
    if (!me.clusterId)
      this.#problems.push(
        `Node ${src.node}: spec.bgp.routeReflectorClusterID is not set, so no peer is a client`,
      );
    const configs = peers.map((d) => {
      const c: PeerConfig = { ...d.config };
      c.connectRetryTime ??= this.#o.config.connectRetryTime;
      if (this.#o.config.holdTime !== undefined) c.holdTime ??= this.#o.config.holdTime;
      return c;
    });
    const identity: Identity = {
      routerId: me.routerId,
      asNumber: me.asNumber,
      clusterId: me.clusterId ?? me.routerId,
      listenPort: me.listenPort,
    };
    this.#applying = this.#applying.then(() => this.#apply(identity, configs));
  }

  /** Make the speaker match: a new one when the identity changed, then the peers' differences. */
  async #apply(identity: Identity, peers: PeerConfig[]): Promise<void> {
    if (this.#stopped) return;
    if (JSON.stringify(identity) !== JSON.stringify(this.#identity)) {
      if (this.#speaker) {
        this.#log.info({ from: this.#identity, to: identity }, 'identity changed: restarting the speaker');
        await this.#speaker.stop();
        this.#speaker = undefined;
      }
      const listen = this.#o.config.listen;
      const speaker = new BgpSpeaker(
        {
          routerId: identity.routerId,
          asNumber: identity.asNumber,
          clusterId: identity.clusterId,
          // Keep every path a client sends, so ADD-PATH clients get ECMP sets through us.
          multipath: true,
          listen: { address: listen.address, port: listen.port ?? identity.listenPort },
          connectRetryTime: this.#o.config.connectRetryTime,
        },
        {
          logger: this.#log,
          ...(this.#o.socketOptions ? { socketOptions: this.#o.socketOptions } : {}),
        },
      );
      speaker.on('peer-state', (e) =>
        this.#log.info({ peer: e.address, from: e.from, to: e.to, lastError: e.lastError }, 'peer state'),
      );
      try {
        await speaker.start();
        this.#listenError = undefined;
      } catch (err) {
        this.#listenError = `cannot listen on ${listen.address}:${listen.port ?? identity.listenPort}: ${(err as Error).message}`;
        this.#log.error({ err }, 'BGP listen failed');
        throw err;
      }
      this.#speaker = speaker;
      this.#identity = identity;
      this.#log.info(identity, 'reflecting');
    }
    const speaker = this.#speaker!;
    const wanted = new Set(peers.map((p) => p.address));
    for (const p of speaker.peers()) if (!wanted.has(p.address)) speaker.removePeer(p.address);
    for (const p of peers) speaker.updatePeer(p);
  }

  #readSecret = (name: string, key: string): string | undefined => {
    try {
      // Kubernetes mounts a secret's keys as files; a trailing newline is not part of the value.
      return readFileSync(join(this.#o.secretsDir ?? DEFAULT_SECRETS_DIR, name, key), 'utf8').replace(
        /\r?\n$/,
        '',
      );
    } catch {
      return undefined;
    }
  };
}
