/**
 * Felix: syncer → calculation graph → event sequencer → Linux dataplane, in one object that
 * calico-node hosts. Datastore updates arriving in the same tick are handled as one batch; the
 * dataplane applies once per batch (serialised, coalesced), on link changes, and on the refresh
 * timers from FelixConfiguration (routeRefreshInterval, iptablesRefreshInterval).
 */
import { EventEmitter } from 'node:events';
import type { Datastore } from '@calico-ts/datastore';
import {
  execInNamespace,
  type NetlinkEvent,
  type NetNamespace,
  NflogReader,
  type Subscription,
} from '@calico-ts/kernel';
import { CalcGraph } from './calc/calc-graph.ts';
import type { DataplaneUpdate } from './calc/dataplane-update.ts';
import type { FelixConfigOverrides } from './config.ts';
import { conntrackDeleteArgs, PolicyChangeTracker } from './dataplane/conntrack-flush.ts';
import { NFLOG_GROUP } from './dataplane/drop-log.ts';
import { type DropLogServer, serveDropLog } from './dataplane/drop-log-server.ts';
import { DropRecorder } from './dataplane/drop-recorder.ts';
import { type ApplyStats, InternalDataplane } from './dataplane/internal-dataplane.ts';
import type { DataplaneKernel } from './dataplane/kernel-port.ts';
import { LinuxKernel } from './dataplane/linux-kernel.ts';
import { defaultLogger, type Logger } from './logger.ts';
import { Syncer, type SyncStatus } from './syncer.ts';

export interface FelixOptions {
  datastore: Datastore;
  nodeName: string;
  /** Network namespace to program (a node in the lab); our own when omitted. */
  netns?: NetNamespace;
  /** Host-level configuration that wins over FelixConfiguration resources. */
  config?: FelixConfigOverrides;
  logger?: Logger;
  /** Another kernel (the in-memory one for tests and benchmarks); LinuxKernel on `netns` otherwise. */
  kernel?: DataplaneKernel;
  /** Serve the drop records on this unix socket (`calico drops`); not served when omitted. */
  dropLogSocket?: string;
  /** Receives every intent batch (for tests, or an external dataplane). */
  onIntent?: (batch: readonly DataplaneUpdate[]) => void;
}

export interface FelixStatus {
  syncStatus: SyncStatus | 'stopped';
  /** When the dataplane was first programmed after in-sync (ISO time), if it has been. */
  inSyncSince: string | undefined;
  /** The dataplane has applied the complete intent at least once and is not failing. */
  ready: boolean;
  lastApplyDurationMs: number | undefined;
  applyCount: number;
  /**
   * How long the dataplane apply in progress has been running (ms), undefined when the loop is
   * idle: a watchdog's view of the main loop (Calico's InternalDataplaneMainLoop liveness).
   */
  applyRunningMs: number | undefined;
  resyncCount: number;
  endpoints: number;
  routes: number;
  ipsets: number;
  /** Profiles local endpoints name that do not exist: those endpoints get no allow from them. */
  missingProfiles: string[];
  /** Problems from the last apply, e.g. a missing kernel module; empty when healthy. */
  errors: string[];
}

export interface FelixEvents {
  /** The dataplane finished its first apply after the datastore was in sync. */
  ready: [];
  applied: [ApplyStats];
  error: [Error];
}

/** Wait after a failed apply before trying again (Felix retries dirty state on a ticker). */
const RETRY_MS = 1000;
/** How often the sysctls we own are read back (a few procfs reads per workload interface). */
export const SYSCTL_CHECK_MS = 1000;
/** How often our iptables hooks and top-level chains are listed (not a read-back of the tables). */
export const IPTABLES_CHECK_MS = 5000;

export class Felix extends EventEmitter<FelixEvents> {
  readonly nodeName: string;
  readonly #log: Logger;
  readonly #kernel: DataplaneKernel;
  readonly #ownsKernel: boolean;
  readonly #graph: CalcGraph;
  readonly #dataplane: InternalDataplane;
  readonly #syncer: Syncer;
  readonly #onIntent: FelixOptions['onIntent'];
  #flushScheduled = false;
  /** Missing profiles as last logged (comma-joined). */
  #missingProfiles = '';
  #applying: Promise<void> | undefined;
  #applyAgain = false;
  #deferred: (() => void)[] = [];
  #stopped = true;
  #inSyncSince: string | undefined;
  #lastApply: ApplyStats | undefined;
  #applyCount = 0;
  #errors: string[] = [];
  #timers: NodeJS.Timeout[] = [];
  #retryTimer: NodeJS.Timeout | undefined;
  #refreshIntervals = '';
  #subscription: Subscription | undefined;
  readonly #netns: NetNamespace | undefined;
  /** Drop records from the NFLOG groups policy drops log to (drop-log.ts). */
  readonly drops: DropRecorder;
  #nflog: NflogReader | undefined;
  #nflogOpening: Promise<void> | undefined;
  #dropLogError: string | undefined;
  readonly #dropLogSocket: string | undefined;
  #dropLogServer: Promise<DropLogServer | undefined> | undefined;
  readonly #policyChanges = new PolicyChangeTracker();
  /** Kernel events that arrived during an apply: judged against its outcome once it ends. */
  #kernelEvents: NetlinkEvent[] = [];
  #checkTimers: NodeJS.Timeout[] = [];
  #checkingIptables = false;
  #applyStartedAt: number | undefined;

  constructor(options: FelixOptions) {
    super();
    this.nodeName = options.nodeName;
    this.#log = (options.logger ?? defaultLogger).child({ node: options.nodeName });
    this.#ownsKernel = options.kernel === undefined;
    this.#kernel =
      options.kernel ??
      new LinuxKernel(
        options.netns,
        options.config?.iptablesBackend ? { iptablesBackend: options.config.iptablesBackend } : {},
      );
    this.#onIntent = options.onIntent;
    this.#netns = options.netns;
    this.#dropLogSocket = options.dropLogSocket;
    this.drops = new DropRecorder({ nodeName: options.nodeName });
    this.#graph = new CalcGraph({ nodeName: options.nodeName, overrides: options.config ?? {} });
    this.#dataplane = new InternalDataplane({
      kernel: this.#kernel,
      nodeName: options.nodeName,
      logger: this.#log,
    });
    this.#syncer = new Syncer({
      datastore: options.datastore,
      logger: this.#log,
      callbacks: {
        onStatus: (s) => {
          this.#graph.onStatus(s);
          this.#scheduleFlush();
        },
        onUpdates: (u) => {
          this.drops.onSyncerUpdates(u);
          this.#graph.onUpdates(u);
          this.#scheduleFlush();
        },
      },
    });
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#subscription = this.#kernel.subscribe?.((e) => this.#onNetlink(e));
    this.#dataplane.watchKernelEvents(this.#subscription !== undefined);
    this.#startChecks();
    this.#syncer.start();
    if (this.#ownsKernel) this.#nflogOpening = this.#openDropLog();
    if (this.#dropLogSocket) {
      const path = this.#dropLogSocket;
      this.#dropLogServer = serveDropLog(path, this.nodeName, this.drops).catch((err: Error) => {
        this.#log.warn({ err, path }, 'cannot serve drop records');
        return undefined;
      });
    }
    this.#log.info('Felix started');
  }

  /** Stops watching and programming; the dataplane stays as it is so traffic keeps flowing. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#subscription?.close();
    this.#dataplane.watchKernelEvents(false);
    await this.#nflogOpening;
    this.#nflog?.close();
    this.#nflog = undefined;
    await (await this.#dropLogServer)?.close();
    this.#dropLogServer = undefined;
    for (const t of this.#checkTimers) clearInterval(t);
    this.#checkTimers = [];
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    clearTimeout(this.#retryTimer);
    await this.#syncer.stop();
    await this.#applying;
    if (this.#ownsKernel) (this.#kernel as LinuxKernel).close();
    this.#log.info('Felix stopped; dataplane left in place');
  }

  status(): FelixStatus {
    const counts = this.#dataplane.counts();
    return {
      syncStatus: this.#stopped ? 'stopped' : (this.#syncer.status ?? 'waiting'),
      inSyncSince: this.#inSyncSince,
      ready: this.#inSyncSince !== undefined && this.#errors.length === 0,
      lastApplyDurationMs: this.#lastApply?.durationMs,
      applyCount: this.#applyCount,
      applyRunningMs:
        this.#applyStartedAt === undefined ? undefined : performance.now() - this.#applyStartedAt,
      resyncCount: this.#syncer.resyncCount,
      ...counts,
      missingProfiles: this.#graph.missingProfiles(),
      errors: this.#dropLogError ? [...this.#errors, this.#dropLogError] : [...this.#errors],
    };
  }

  /** Resolves once the dataplane has been programmed after the first in-sync. */
  async whenReady(): Promise<void> {
    await this.#nflogOpening;
    if (this.#inSyncSince) return;
    await new Promise<void>((resolve) => this.once('ready', resolve));
  }

  /**
   * With `policyConntrackFlush`, deletes the conntrack entries of local endpoints whose policy the
   * apply just changed (conntrack-flush.ts), so established flows meet the new policy. Nothing is
   * deleted for the first apply (a restart changes no policy) or when the apply failed.
   */
  async #flushConntrack(applied: boolean): Promise<void> {
    const ips = this.#policyChanges.take();
    if (!applied || !this.#inSyncSince || !this.#dataplane.config.policyConntrackFlush) return;
    for (const ip of ips) {
      for (const args of conntrackDeleteArgs(ip)) {
        try {
          // Exit 1 with "0 flow entries have been deleted" when there was nothing to delete.
          const r = await execInNamespace(this.#netns, 'conntrack', args);
          if (r.exitCode !== 0 && !/0 flow entries/.test(r.stderr))
            this.#log.warn({ ip, stderr: r.stderr.trim() }, 'conntrack delete failed');
        } catch (err) {
          this.#log.warn({ err, ip }, 'cannot run conntrack; established flows keep their old verdict');
        }
      }
    }
    if (ips.length > 0) this.#log.info({ endpoints: ips }, 'conntrack entries deleted after a policy change');
  }

  /**
   * Binds the NFLOG groups of policy drops in Felix's namespace. Failing to (another reader has
   * them) leaves policy enforced and is reported in status().errors.
   */
  async #openDropLog(): Promise<void> {
    try {
      const reader = await NflogReader.open({
        namespace: this.#netns,
        groups: [NFLOG_GROUP.ingress, NFLOG_GROUP.egress],
      });
      if (this.#stopped) {
        reader.close();
        return;
      }
      reader.on('packet', (p) => this.drops.onPacket(p));
      reader.on('error', (err) => this.#log.warn({ err }, 'drop log reader fell behind; records lost'));
      this.#nflog = reader;
      this.#dropLogError = undefined;
    } catch (err) {
      this.#dropLogError = `drop logs unavailable: ${(err as Error).message}`;
      this.#log.warn({ err }, 'cannot read the NFLOG groups of drop logs');
    }
  }

  /**
   * A link, address or route changed in the kernel. During an apply most events are our own
   * writes, so they wait and are judged against what that apply left (see #scheduleApply).
   */
  #onNetlink(event: NetlinkEvent): void {
    if (this.#stopped) return;
    if (this.#applying) {
      this.#kernelEvents.push(event);
      return;
    }
    if (this.#dataplane.onKernelEvent(event)) this.#scheduleApply();
  }

  /**
   * Self-healing beyond netlink events: the sysctls we own are read every second, our iptables
   * hooks and top-level chains listed every few seconds; what drifted is rewritten at once.
   */
  #startChecks(): void {
    const sysctls = setInterval(() => {
      if (this.#applying || !this.#dataplane.checkSysctls()) return;
      this.#log.warn('a sysctl we own was changed; restoring it');
      this.#scheduleApply();
    }, SYSCTL_CHECK_MS);
    const iptables = setInterval(() => void this.#checkIptables(), IPTABLES_CHECK_MS);
    sysctls.unref();
    iptables.unref();
    this.#checkTimers = [sysctls, iptables];
  }

  async #checkIptables(): Promise<void> {
    if (this.#applying || this.#checkingIptables || this.#stopped) return;
    this.#checkingIptables = true;
    const applies = this.#applyCount;
    try {
      const drift = await this.#dataplane.checkIptables();
      // A check that overlapped an apply may have seen it half done: the next check decides.
      if (drift === undefined || this.#stopped || this.#applying || this.#applyCount !== applies) return;
      this.#log.warn({ drift }, 'our iptables rules were changed; reading the tables back to repair them');
      this.#dataplane.refreshIptables();
      this.#scheduleApply();
    } catch (err) {
      this.#log.warn({ err }, 'iptables check failed');
    } finally {
      this.#checkingIptables = false;
    }
  }

  /**
   * Changes to the dataplane's desired state wait while an apply is running: the managers clear
   * their dirty marks when they finish, so a change made mid-apply would be forgotten and never
   * programmed. Deferred changes are handed over just before the next apply starts.
   */
  #toDataplane(change: () => void): void {
    if (this.#applying) this.#deferred.push(change);
    else change();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#stopped) return;
    this.#flushScheduled = true;
    // Everything the syncer delivers in this tick becomes one batch.
    setImmediate(() => {
      this.#flushScheduled = false;
      if (this.#stopped) return;
      const batch = this.#graph.flush();
      if (batch.length === 0) return;
      const missing = this.#graph.missingProfiles().join(',');
      if (missing !== this.#missingProfiles) {
        this.#missingProfiles = missing;
        if (missing !== '')
          this.#log.warn(
            { profiles: missing.split(',') },
            'endpoints name profiles that do not exist; they allow nothing',
          );
      }
      this.#onIntent?.(batch);
      this.drops.onIntent(batch);
      this.#toDataplane(() => {
        this.#policyChanges.onIntent(batch);
        this.#dataplane.onUpdates(batch);
        this.#rearmTimers();
      });
      this.#scheduleApply();
    });
  }

  #scheduleApply(): void {
    if (this.#stopped) return;
    if (this.#applying) {
      this.#applyAgain = true;
      return;
    }
    // Hand over what arrived during the last apply, before this one starts.
    for (const change of this.#deferred.splice(0)) change();
    this.#applyStartedAt = performance.now();
    this.#applying = this.#runApply().finally(() => {
      this.#applying = undefined;
      this.#applyStartedAt = undefined;
      for (const event of this.#kernelEvents.splice(0))
        if (this.#dataplane.onKernelEvent(event)) this.#applyAgain = true;
      if (this.#applyAgain) {
        this.#applyAgain = false;
        this.#scheduleApply();
      }
    });
  }

  async #runApply(): Promise<void> {
    try {
      const stats = await this.#dataplane.apply();
      if (!stats) return;
      if (this.#ownsKernel) await this.#flushConntrack(stats.errors.length === 0);
      this.#applyCount++;
      this.#lastApply = stats;
      this.#errors = stats.errors;
      if (!this.#inSyncSince) {
        this.#inSyncSince = new Date().toISOString();
        this.#log.info({ ms: Math.round(stats.durationMs) }, 'dataplane in sync');
        this.emit('ready');
      }
      this.emit('applied', stats);
      if (stats.errors.length > 0 || this.#dataplane.pending) this.#retryLater();
    } catch (err) {
      this.#errors = [(err as Error).message];
      this.#log.error({ err }, 'dataplane apply failed; will retry');
      this.emit('error', err as Error);
      this.#dataplane.refreshIptables();
      this.#retryLater();
    }
  }

  #retryLater(): void {
    if (this.#retryTimer || this.#stopped) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#toDataplane(() => this.#dataplane.refreshRoutes());
      this.#scheduleApply();
    }, RETRY_MS);
    this.#retryTimer.unref();
  }

  #rearmTimers(): void {
    const cfg = this.#dataplane.config;
    const key = `${cfg.routeRefreshInterval}/${cfg.iptablesRefreshInterval}`;
    if (key === this.#refreshIntervals) return;
    this.#refreshIntervals = key;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    const every = (seconds: number, fn: () => void) => {
      if (seconds <= 0) return;
      const t = setInterval(() => {
        this.#toDataplane(fn);
        this.#scheduleApply();
      }, seconds * 1000);
      t.unref();
      this.#timers.push(t);
    };
    every(cfg.routeRefreshInterval, () => this.#dataplane.refreshRoutes());
    every(cfg.iptablesRefreshInterval, () => this.#dataplane.refreshIptables());
  }
}
