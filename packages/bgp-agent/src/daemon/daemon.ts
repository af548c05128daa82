/**
 * calico-bgpd: one BgpSpeaker driven by a config file, a control socket, and SIGHUP reloads
 * that apply the peer diff without touching unchanged sessions.
 */

import {
  type BgpdConfig,
  type BgpdControlMethods,
  BgpSpeaker,
  type ControlServer,
  loadBgpdConfig,
  type PeerConfig,
  type ReloadResult,
  type RoutesQuery,
  type SocketOptions,
  serveControl,
} from '@calico-ts/bgp';
import { type Logger, pino } from 'pino';
import { type KernelExport, openKernelExport } from './kernel-export.ts';

function needsSocketOptions(c: BgpdConfig): boolean {
  return c.peers.some((p) => p.password !== undefined || p.ttl !== undefined || p.gtsm);
}

/** The wire carries any JSON: keep only well-formed query fields. */
function routesQuery(params: Partial<RoutesQuery>): RoutesQuery {
  const q: RoutesQuery = {};
  if (typeof params.prefix === 'string') q.prefix = params.prefix;
  if (params.bestOnly === true) q.bestOnly = true;
  return q;
}

function toPeerConfig(p: BgpdConfig['peers'][number]): PeerConfig {
  // Drop the undefined optionals zod leaves, so peer configs compare cleanly on reload.
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as unknown as PeerConfig;
}

export class Daemon {
  readonly configFile: string;
  readonly controlPath: string;
  config: BgpdConfig;
  speaker: BgpSpeaker;
  #log: Logger;
  #control: ControlServer | undefined;
  #export: KernelExport | undefined;

  private constructor(
    configFile: string,
    controlPath: string,
    config: BgpdConfig,
    speaker: BgpSpeaker,
    log: Logger,
  ) {
    this.configFile = configFile;
    this.controlPath = controlPath;
    this.config = config;
    this.speaker = speaker;
    this.#log = log;
  }

  /** Validate everything first (BgpdConfigError / KernelExportUnavailable → exit 2), then start. */
  static async start(opts: {
    configFile: string;
    controlPath: string;
    logger?: Logger;
    /** We are coming back from a restart: set the GR R bit (like `gobgpd -r`). */
    restarting?: boolean;
  }): Promise<Daemon> {
    const config = loadBgpdConfig(opts.configFile);
    const kernelExport = await openKernelExport(config.kernel);
    const log = opts.logger ?? pino({ level: config.logLevel });
    let socketOptions: SocketOptions | undefined;
    // Loaded only when a peer needs it, so a daemon without passwords or TTLs never loads the FFI.
    if (needsSocketOptions(config))
      socketOptions = (await import('../kernel/socket-options.ts')).kernelSocketOptions();
    const speakerConfig: ConstructorParameters<typeof BgpSpeaker>[0] = {
      routerId: config.routerId,
      asNumber: config.asNumber,
      listen: config.listen,
    };
    if (config.clusterId) speakerConfig.clusterId = config.clusterId;
    if (config.multipath !== undefined) speakerConfig.multipath = config.multipath;
    if (config.connectRetryTime !== undefined) speakerConfig.connectRetryTime = config.connectRetryTime;
    if (config.gracefulRestart) {
      speakerConfig.gracefulRestart = Object.fromEntries(
        Object.entries(config.gracefulRestart).filter(([, v]) => v !== undefined),
      );
    }
    if (opts.restarting)
      speakerConfig.gracefulRestart = { ...speakerConfig.gracefulRestart, restarting: true };
    const deps: ConstructorParameters<typeof BgpSpeaker>[1] = { logger: log };
    if (socketOptions) deps.socketOptions = socketOptions;
    const speaker = new BgpSpeaker(speakerConfig, deps);
    const d = new Daemon(opts.configFile, opts.controlPath, config, speaker, log);
    if (kernelExport) {
      d.#export = kernelExport;
      speaker.on('best-path', (changes) => {
        kernelExport
          .apply(changes)
          .catch((e: Error) => log.error({ err: e.message }, 'kernel route export failed'));
      });
    }
    for (const p of config.peers) speaker.addPeer(toPeerConfig(p));
    for (const p of config.originate) speaker.originate(p);
    await speaker.start();
    d.#control = await serveControl<BgpdControlMethods>(
      opts.controlPath,
      {
        status: () => d.speaker.status(),
        routes: (params) => d.speaker.routes(routesQuery(params)),
        reload: () => d.reload(),
      },
      { name: 'calico-bgpd' },
    );
    log.info(
      {
        routerId: config.routerId,
        asNumber: config.asNumber,
        listen: config.listen,
        peers: config.peers.length,
        control: opts.controlPath,
      },
      'calico-bgpd started',
    );
    return d;
  }

  /** Re-read the config and apply the difference; unchanged sessions stay up. */
  async reload(): Promise<ReloadResult> {
    const next = loadBgpdConfig(this.configFile);
    const restartNeeded: string[] = [];
    for (const k of [
      'routerId',
      'asNumber',
      'clusterId',
      'listen',
      'kernel',
      'multipath',
      'gracefulRestart',
    ] as const) {
      if (JSON.stringify(next[k]) !== JSON.stringify(this.config[k])) restartNeeded.push(k);
    }
    if (needsSocketOptions(next) && !needsSocketOptions(this.config)) {
      restartNeeded.push('peers (TCP-MD5/TTL options need a restart to load)');
    }
    const old = new Map(this.config.peers.map((p) => [p.address, p]));
    const fresh = new Map(next.peers.map((p) => [p.address, p]));
    const added: string[] = [];
    const removed: string[] = [];
    const updated: string[] = [];
    for (const [a] of old) {
      if (!fresh.has(a)) {
        this.speaker.removePeer(a);
        removed.push(a);
      }
    }
    for (const [a, p] of fresh) {
      const before = old.get(a);
      if (!before) {
        this.speaker.addPeer(toPeerConfig(p));
        added.push(a);
      } else if (JSON.stringify(before) !== JSON.stringify(p)) {
        this.speaker.updatePeer(toPeerConfig(p));
        updated.push(a);
      }
    }
    const oldPrefixes = new Set(this.config.originate);
    const newPrefixes = new Set(next.originate);
    for (const p of oldPrefixes) if (!newPrefixes.has(p)) this.speaker.withdraw(p);
    for (const p of newPrefixes) if (!oldPrefixes.has(p)) this.speaker.originate(p);
    this.config = { ...next, routerId: this.config.routerId, asNumber: this.config.asNumber };
    this.#log.info({ added, removed, updated, restartNeeded }, 'configuration reloaded');
    if (restartNeeded.length)
      this.#log.warn({ fields: restartNeeded }, 'these changes take effect only after a restart');
    return { added, removed, updated, restartNeeded };
  }

  async stop(opts: { graceful?: boolean } = {}): Promise<void> {
    await this.speaker.stop({
      graceful: (opts.graceful ?? false) && this.config.gracefulRestart?.enabled !== false,
    });
    const c = this.#control;
    this.#control = undefined;
    await c?.close();
    await this.#export?.close();
  }
}
