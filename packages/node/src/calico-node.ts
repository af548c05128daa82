import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import {
  CalicoIpamPlugin,
  CalicoPlugin,
  CniServer,
  IpamAdapter,
  LinuxWorkloadDataplane,
} from '@calico-ts/cni';
import {
  type Datastore,
  ENCAPSULATION_OVERHEAD,
  isDatastoreError,
  poolEncapsulation,
} from '@calico-ts/datastore';
import { Felix, type FelixStatus } from '@calico-ts/felix';
import { Ipam } from '@calico-ts/ipam';
import type { Logger } from 'pino';
import type { NodeConfig } from './config.ts';
import {
  DatastoreReachability,
  HealthAggregator,
  type HealthReport,
  loopLiveness,
  serveHealth,
} from './health.ts';
import { NodeMetrics, serveMetrics } from './metrics.ts';
import { type StartupResult, startup } from './startup.ts';
import { ipamTunnelAllocator } from './tunnel-allocator.ts';

/** What calico-node needs from a BGP agent (the implementation lives in @calico-ts/bgp-agent). */
export interface BgpAgentLike {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): { ready?: boolean; live?: boolean; roundRunningMs?: number | undefined };
  /** Ready once every BGP session is Established; else which peer is not and why (Calico's rule). */
  readiness?(): { ready: boolean; detail?: string };
}

export type BgpAgentFactory = (options: {
  datastore: Datastore;
  nodeName: string;
  logger: Logger;
}) => BgpAgentLike;

export interface CalicoNodeOptions {
  config: NodeConfig;
  datastore: Datastore;
  logger: Logger;
  /** Builds the BGP agent when the networking backend is `bird` (Calico's name for "BGP on"). */
  bgpAgent?: BgpAgentFactory;
}

/**
 * One calico-node process: start-up, then Felix, the BGP agent and the CNI server, sharing one
 * datastore connection, with health and metrics. Stopping leaves the dataplane as it is, so a
 * restart does not disturb established traffic.
 */
export class CalicoNode {
  readonly #o: CalicoNodeOptions;
  readonly health = new HealthAggregator();
  readonly metrics = new NodeMetrics();
  #felix: Felix | undefined;
  #agent: BgpAgentLike | undefined;
  #cni: CniServer | undefined;
  #cniDataplane: LinuxWorkloadDataplane | undefined;
  #servers: Server[] = [];
  #reachability: DatastoreReachability | undefined;
  #startup: StartupResult | undefined;

  constructor(options: CalicoNodeOptions) {
    this.#o = options;
  }

  get felix(): Felix | undefined {
    return this.#felix;
  }

  get startupResult(): StartupResult | undefined {
    return this.#startup;
  }

  async start(): Promise<void> {
    const { config: cfg, datastore, logger: log } = this.#o;
    // Health first: a probe during start-up must see "not ready", not "connection refused".
    let started = false;
    this.health.register('calico-node', () => ({ live: true, ready: started }));
    if (cfg.healthEnabled) this.#servers.push(await serveHealth(this.health, cfg.healthHost, cfg.healthPort));
    if (cfg.metricsEnabled)
      this.#servers.push(await serveMetrics(this.metrics, cfg.metricsHost, cfg.metricsPort));

    // Not ready while the datastore does not answer (checked by one small read).
    this.#reachability = new DatastoreReachability(() =>
      datastore.get('ClusterInformation', 'default').catch((err: unknown) => {
        // An answer, even "not found", means the datastore is reachable.
        if (!isDatastoreError(err, 'NotFound')) throw err;
      }),
    );
    this.health.register('datastore', () => this.#reachability?.report() ?? { live: true, ready: true });

    const ipam = new Ipam(datastore, { logger: log.child({ component: 'ipam' }) });
    this.#startup = await startup(
      cfg,
      datastore,
      ipamTunnelAllocator(ipam),
      log.child({ component: 'startup' }),
    );

    if (cfg.felixEnabled) {
      const felix = new Felix({
        datastore,
        nodeName: cfg.nodeName,
        logger: log.child({ component: 'felix' }),
        ...(cfg.iptablesBackend ? { config: { iptablesBackend: cfg.iptablesBackend } } : {}),
      });
      this.#felix = felix;
      felix.on('applied', (stats) => {
        this.metrics.applyLatency.observe(stats.durationMs / 1000);
        const s = felix.status();
        this.metrics.routes.set(s.routes);
        this.metrics.localEndpoints.set(s.endpoints);
        this.metrics.inSync.set(s.syncStatus === 'in-sync' ? 1 : 0);
        this.metrics.resyncs.inc(Math.max(0, s.resyncCount - this.#resyncsSeen));
        this.#resyncsSeen = s.resyncCount;
      });
      this.health.register('felix', () =>
        felixHealth(felix.status(), cfg.healthTimeouts.InternalDataplaneMainLoop),
      );
      await felix.start();
    }

    if (cfg.networkingBackend === 'bird' && this.#o.bgpAgent) {
      const agent = this.#o.bgpAgent({
        datastore,
        nodeName: cfg.nodeName,
        logger: log.child({ component: 'bgp' }),
      });
      this.#agent = agent;
      this.health.register('bgp', () => {
        const s = agent.status();
        const r = agent.readiness?.() ?? { ready: s.ready ?? true };
        return { live: s.live ?? true, ready: r.ready, ...(r.detail ? { detail: r.detail } : {}) };
      });
      await agent.start();
    }

    if (cfg.cniEnabled) {
      const dataplane = new LinuxWorkloadDataplane();
      this.#cniDataplane = dataplane;
      const port = new IpamAdapter(ipam, datastore);
      const calico = new CalicoPlugin({
        nodeName: cfg.nodeName,
        datastore,
        ipam: port,
        dataplane,
        defaultMtu: await this.#podMtu(),
        logger: log.child({ component: 'cni' }),
      });
      const calicoIpam = new CalicoIpamPlugin({ ipam: port, nodeName: cfg.nodeName });
      const timed =
        (h: (r: Parameters<CalicoPlugin['handle']>[0]) => ReturnType<CalicoPlugin['handle']>) =>
        async (r: Parameters<CalicoPlugin['handle']>[0]) => {
          const end = this.metrics.cniLatency.startTimer({ command: r.command });
          try {
            const out = await h(r);
            this.metrics.cniRequests.inc({ command: r.command, result: 'ok' });
            return out;
          } catch (err) {
            this.metrics.cniRequests.inc({ command: r.command, result: 'error' });
            throw err;
          } finally {
            end();
          }
        };
      this.#cni = new CniServer({
        socketPath: cfg.cniSocket,
        logger: log.child({ component: 'cni' }),
        handlers: {
          calico: timed((r) => calico.handle(r)),
          'calico-ipam': timed((r) => calicoIpam.handle(r)),
        },
      });
      await this.#cni.listen();
    }
    started = true;
    this.#reachability?.start();
    log.info(
      {
        node: cfg.nodeName,
        ipv4: this.#startup.ipv4?.cidr,
        backend: cfg.networkingBackend,
        cniSocket: cfg.cniSocket,
      },
      'calico-node started',
    );
  }

  #resyncsSeen = 0;

  /**
   * Pod MTU: the underlay interface's MTU less the encapsulation overhead of the enabled pools'
   * tunnel (VXLAN before IPIP), as Felix computes it for /var/lib/calico/mtu.
   */
  async #podMtu(): Promise<number> {
    const iface = this.#startup?.ipv4?.iface;
    let mtu = 1500;
    if (iface) {
      try {
        mtu = Number(readFileSync(`/sys/class/net/${iface}/mtu`, 'utf8').trim()) || 1500;
      } catch {
        // Keep the default: the interface may be gone or /sys not ours.
      }
    }
    const { items } = await this.#o.datastore.list('IPPool');
    const tunnels = new Set(items.filter((p) => !p.spec.disabled).map((p) => poolEncapsulation(p.spec).type));
    if (tunnels.has('vxlan')) return mtu - ENCAPSULATION_OVERHEAD.vxlan;
    if (tunnels.has('ipip')) return mtu - ENCAPSULATION_OVERHEAD.ipip;
    return mtu;
  }

  /** Graceful stop: stops serving and watching; routes, interfaces and rules stay in the kernel. */
  async stop(): Promise<void> {
    this.#reachability?.stop();
    await this.#cni?.close();
    this.#cniDataplane?.close();
    await this.#agent?.stop();
    await this.#felix?.stop();
    for (const s of this.#servers) await new Promise<void>((resolve) => s.close(() => resolve()));
    this.#servers = [];
  }
}

/**
 * Felix's health as calico-node reports it: ready once the dataplane was programmed and the last
 * apply had no errors; live unless one dataplane apply has run past `timeoutMs` (the watchdog).
 */
export function felixHealth(s: FelixStatus, timeoutMs: number): HealthReport {
  const loop = loopLiveness('Felix dataplane loop', s.applyRunningMs, timeoutMs);
  const details = [...(loop.detail ? [loop.detail] : []), ...s.errors];
  return { live: loop.live, ready: s.ready, ...(details.length > 0 ? { detail: details.join('; ') } : {}) };
}
