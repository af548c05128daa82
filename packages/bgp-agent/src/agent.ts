/**
 * The node's BGP agent: confd + BIRD's job done live. A watch loop (`SnapshotWatch`) keeps the
 * datastore objects BGP depends on; on every change the apply loop (`ApplyLoop`) recomputes the
 * intent and applies the difference to one BgpSpeaker and, through the KernelRouteWriter, to the
 * kernel of the agent's network namespace. Graceful restart is on: stopping closes the sessions
 * without NOTIFICATION and leaves the kernel routes, so peers keep our routes and traffic keeps
 * flowing while we restart (RFC 4724 §4, BIRD's `persist` + `graceful restart`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ControlServer, serveControl } from '@calico-ts/bgp';
import { type Datastore, RouteProtocol } from '@calico-ts/datastore';
import { NetNamespace, type Subscription } from '@calico-ts/kernel';
import { type Logger, pino } from 'pino';
import {
  type AgentControlMethods,
  type BgpAgentStatus,
  DEFAULT_AGENT_CONTROL_SOCKET,
} from './agent-control.ts';
import { ApplyLoop } from './apply-loop.ts';
import { KernelRouteWriter } from './kernel/route-writer.ts';
import { kernelSocketOptions } from './kernel/socket-options.ts';
import { bgpReadiness, NodeStatusReporter } from './node-status-report.ts';
import { SnapshotWatch } from './snapshot-watch.ts';

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
  /** Router id as calico-node's CALICO_ROUTER_ID: an IPv4 address or `hash` (default: the node's IPv4). */
  routerId?: string | undefined;
  /** rtnetlink protocol of the routes we install (default `RouteProtocol.bird`, as in Calico). */
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
  /**
   * Write the sessions to the datastore as the CalicoNodeStatus named after the node: at once on
   * a change of state or reason, and every `periodMs` (default 10 s) besides. Off when omitted.
   */
  nodeStatus?: { periodMs?: number; pollMs?: number } | false | undefined;
}

export class BgpAgent {
  readonly #o: BgpAgentOptions;
  readonly #log: Logger;
  #ns: NetNamespace | undefined;
  #ownsNs = false;
  #routes: KernelRouteWriter | undefined;
  #watch: SnapshotWatch | undefined;
  #apply: ApplyLoop | undefined;
  #control: ControlServer | undefined;
  #resyncTimer: NodeJS.Timeout | undefined;
  #routeEvents: Subscription | undefined;
  #reporter: NodeStatusReporter | undefined;
  #stopped = false;

  constructor(options: BgpAgentOptions) {
    this.#o = options;
    this.#log = options.logger ?? pino({ level: 'silent' });
  }

  async start(): Promise<void> {
    const o = this.#o;
    if (typeof o.netns === 'string') {
      this.#ns = NetNamespace.open(o.netns);
      this.#ownsNs = true;
    } else this.#ns = o.netns;
    const routes = new KernelRouteWriter({
      namespace: this.#ns,
      protocol: o.routeProtocol ?? RouteProtocol.bird,
    });
    this.#routes = routes;
    const watch = new SnapshotWatch({
      datastore: o.datastore,
      logger: this.#log,
      onChange: () => this.#apply?.configChanged(),
    });
    this.#watch = watch;
    const apply = new ApplyLoop({
      nodeName: o.nodeName,
      logger: this.#log,
      snapshot: () => watch.snapshot(),
      synced: () => watch.synced,
      readSecret: this.#readSecret,
      routes,
      socketOptions: kernelSocketOptions(this.#ns),
      holdTime: o.holdTime,
      connectRetryTime: o.connectRetryTime,
      routerId: o.routerId,
      blackholes: o.blackholes ?? true,
      convergenceTimeoutMs: o.convergenceTimeoutMs,
    });
    this.#apply = apply;
    await apply.adoptKernelRoutes();
    this.#routeEvents = routes.watch((action, r) => apply.kernelRouteChanged(action, r.dst, r.protocol));
    const socketPath = o.statusSocket ?? DEFAULT_AGENT_CONTROL_SOCKET;
    if (socketPath !== false) {
      this.#control = await serveControl<AgentControlMethods>(
        socketPath,
        { status: () => this.status() },
        { name: 'BGP agent' },
      );
    }
    watch.start();
    if (o.nodeStatus) {
      this.#reporter = new NodeStatusReporter({
        datastore: o.datastore,
        nodeName: o.nodeName,
        status: () => this.status(),
        logger: this.#log.child({ part: 'node-status' }),
        ...o.nodeStatus,
      });
      this.#reporter.start();
    }
    this.#resyncTimer = setInterval(() => apply.resync(), o.resyncIntervalMs ?? 30_000).unref();
    const timeout = o.startTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const synced = await Promise.race([
      watch.firstSync.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeout))),
    ]);
    clearTimeout(timer);
    if (!synced)
      this.#log.warn(
        { timeoutMs: timeout },
        'no datastore listing yet; continuing, BGP starts when it arrives',
      );
    else await apply.idle();
  }

  /**
   * Stop watching and close sessions. By default without NOTIFICATION and leaving kernel routes:
   * a restart then disturbs nothing (graceful restart). `withdraw`: send Cease so peers drop our
   * routes at once, and remove the routes we installed.
   */
  async stop(opts: { withdraw?: boolean } = {}): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#resyncTimer);
    await this.#reporter?.stop();
    this.#routeEvents?.close();
    await this.#watch?.close();
    await this.#apply?.stop(opts);
    await this.#control?.close();
    await this.#routes?.close();
    if (this.#ownsNs) this.#ns?.close();
  }

  status(): BgpAgentStatus {
    const apply = this.#apply;
    const watch = this.#watch;
    const speakerStatus = apply?.speakerStatus();
    const node = apply?.intent?.node;
    const synced = watch?.synced ?? false;
    const roundRunningMs = apply?.roundRunningMs;
    return {
      live: !this.#stopped,
      ...(roundRunningMs !== undefined ? { roundRunningMs } : {}),
      ready: synced && !this.#stopped && (node?.routerId === undefined || (apply?.hasSpeaker ?? false)),
      nodeName: this.#o.nodeName,
      routerId: node?.routerId,
      asNumber: node?.asNumber,
      listenPort: speakerStatus?.listen?.port,
      synced,
      datastoreConnected: watch?.connected ?? false,
      peers: apply?.peerStatus(speakerStatus) ?? [],
      routes: apply?.routeCounts() ?? { exported: 0, learned: 0, installed: 0, blackholes: 0 },
      problems: apply?.intent?.problems ?? [],
      lastError: apply?.lastError ?? watch?.lastError,
    };
  }

  /**
   * calico-node's BGP readiness: ready once every session it answers for is Established; else the
   * detail names each peer that is not, with its reason.
   */
  readiness(): { ready: boolean; detail?: string } {
    return bgpReadiness(this.status());
  }

  /** Write the CalicoNodeStatus now (with `nodeStatus` on). */
  async reportNodeStatus(): Promise<void> {
    await this.#reporter?.flush();
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
}
