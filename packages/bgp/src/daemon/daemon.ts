/**
 * calico-bgpd: one BgpSpeaker driven by a config file, a control socket, and SIGHUP reloads
 * that apply the peer diff without touching unchanged sessions.
 */

import { unlinkSync } from 'node:fs';
import type { Server } from 'node:net';
import { type Logger, pino } from 'pino';
import type { SocketOptions } from '../session/socket-options.ts';
import { BgpSpeaker, type PeerConfig } from '../speaker.ts';
import { type BgpdConfig, loadConfig } from './config.ts';
import { serveControl } from './control.ts';
import { createKernelSink, type KernelRouteSink } from './kernel-sink.ts';
import { loadKernelSocketOptions } from './kernel-socket-options.ts';

function needsSocketOptions(c: BgpdConfig): boolean {
  return c.peers.some((p) => p.password !== undefined || p.ttl !== undefined || p.gtsm);
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
  #control: Server | undefined;
  #sink: KernelRouteSink | undefined;

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

  /** Validate everything first (ConfigError / KernelExportUnavailable → exit 2), then start. */
  static async start(opts: {
    configFile: string;
    controlPath: string;
    logger?: Logger;
    /** We are coming back from a restart: set the GR R bit (like `gobgpd -r`). */
    restarting?: boolean;
  }): Promise<Daemon> {
    const config = loadConfig(opts.configFile);
    const sink = await createKernelSink(config.kernel);
    const log = opts.logger ?? pino({ level: config.logLevel });
    let socketOptions: SocketOptions | undefined;
    if (needsSocketOptions(config)) socketOptions = await loadKernelSocketOptions();
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
    if (sink) {
      d.#sink = sink;
      speaker.on('best-path', (changes) => {
        sink.apply(changes).catch((e: Error) => log.error({ err: e.message }, 'kernel route export failed'));
      });
    }
    for (const p of config.peers) speaker.addPeer(toPeerConfig(p));
    for (const p of config.originate) speaker.originate(p);
    await speaker.start();
    d.#control = await serveControl(opts.controlPath, (method, params) => d.#handle(method, params));
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

  #handle(method: string, params: Record<string, unknown>): unknown {
    switch (method) {
      case 'status':
        return this.speaker.status();
      case 'routes': {
        const filter: { prefix?: string; bestOnly?: boolean } = {};
        if (typeof params['prefix'] === 'string') filter.prefix = params['prefix'];
        if (params['bestOnly'] === true) filter.bestOnly = true;
        return this.speaker.routes(filter);
      }
      case 'reload':
        return this.reload();
      default:
        throw new Error(`unknown method "${method}" (expected status, routes or reload)`);
    }
  }

  /** Re-read the config and apply the difference; unchanged sessions stay up. */
  async reload(): Promise<{
    added: string[];
    removed: string[];
    updated: string[];
    restartNeeded: string[];
  }> {
    const next = loadConfig(this.configFile);
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
    if (c) await new Promise<void>((r) => c.close(() => r()));
    try {
      unlinkSync(this.controlPath);
    } catch {
      // already gone
    }
    await this.#sink?.close();
  }
}
