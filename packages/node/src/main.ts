/**
 * `calico-node`: configured by flags and the environment calico/node reads. Runs until SIGTERM or
 * SIGINT, then stops gracefully and leaves the dataplane programmed.
 *
 *   calico-node [--node-name N] [--ip CIDR|autodetect|none] [--ip-autodetection-method M]
 *               [--networking-backend bird|vxlan|none] [--etcd-endpoints URLS] [--cni-socket PATH]
 *               [--health-port P] [--metrics-port P] [--log-level L] [--nodename-file PATH]
 */

import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { datastoreFromConfig, loadDatastoreConfig } from '@calico-ts/datastore';
import { DEFAULT_DROP_LOG_SOCKET, type DropLogServer, serveDropLog } from '@calico-ts/felix';
import { pino } from 'pino';
import { CalicoNode } from './calico-node.ts';
import { ConfigError, loadNodeConfig } from './config.ts';
import { cniInstallSettings, runCniInstall } from './install-cni.ts';
import { releaseFreedCHeap } from './malloc-trim.ts';

const FLAGS = [
  'node-name',
  'ip',
  'ip6',
  'ip-autodetection-method',
  'ip6-autodetection-method',
  'as',
  'networking-backend',
  'no-default-pools',
  'health-host',
  'health-port',
  'health-enabled',
  'metrics-host',
  'metrics-port',
  'metrics-enabled',
  'cni-socket',
  'cni-enabled',
  'felix-enabled',
  'log-level',
  'nodename-file',
  'datastore-type',
  'etcd-endpoints',
  'config',
] as const;

export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(FLAGS.map((f) => [f, { type: 'string' as const }])),
      allowPositionals: false,
      strict: true,
    });
  } catch (err) {
    process.stderr.write(`calico-node: ${(err as Error).message}\n`);
    return 2;
  }
  const flags = parsed.values as Partial<Record<(typeof FLAGS)[number], string>>;
  let config: ReturnType<typeof loadNodeConfig>;
  let datastore: ReturnType<typeof datastoreFromConfig>;
  let cniInstall: ReturnType<typeof cniInstallSettings>;
  try {
    config = loadNodeConfig(flags);
    cniInstall = cniInstallSettings(process.env, config.nodeName);
    datastore = datastoreFromConfig(
      loadDatastoreConfig({
        flags: {
          ...(flags['datastore-type'] ? { datastoreType: flags['datastore-type'] } : {}),
          ...(flags['etcd-endpoints'] ? { etcdEndpoints: flags['etcd-endpoints'] } : {}),
          ...(flags.config ? { config: flags.config } : {}),
        },
        file: false,
      }),
    );
  } catch (err) {
    process.stderr.write(
      `calico-node: ${err instanceof ConfigError ? '' : 'invalid configuration: '}${(err as Error).message}\n`,
    );
    return 2;
  }
  const logger = pino({ level: config.logLevel, base: { node: config.nodeName } });
  if (cniInstall) {
    // Calico's install-cni job, done before anything can ask for a pod network.
    try {
      const { changed, unchanged, nodePath } = runCniInstall(cniInstall);
      logger.info({ changed, unchanged, nodePath }, 'installed the CNI plugins and network config');
    } catch (err) {
      logger.fatal({ err: (err as Error).message }, 'CNI install failed');
      await datastore.close().catch(() => {});
      return 1;
    }
  }
  const bgpAgent =
    config.networkingBackend === 'bird'
      ? await loadBgpAgent(process.env['CALICO_BGP_STATUS_SOCKET'])
      : undefined;
  const node = new CalicoNode({ config, datastore, logger, ...(bgpAgent ? { bgpAgent } : {}) });

  let stopping = false;
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping (dataplane left in place)');
      node
        .stop()
        .then(() => datastore.close())
        .then(() => resolve(0))
        .catch((err: Error) => {
          logger.error({ err }, 'error while stopping');
          resolve(1);
        });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  try {
    await node.start();
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, 'start-up failed');
    await node.stop().catch(() => {});
    await datastore.close().catch(() => {});
    return 1;
  }
  // Once the dataplane is programmed, start-up's freed C heap goes back to the kernel.
  void (node.felix?.whenReady() ?? Promise.resolve()).then(() => {
    logger.debug({ released: releaseFreedCHeap() }, 'start-up memory trimmed');
  });
  let drops: DropLogServer | undefined;
  if (node.felix) {
    const felix = node.felix;
    node.metrics.extraText.push(() => felix.drops.metrics());
    const path = dropLogSocketPath(process.env);
    drops = await serveDropLog(path, config.nodeName, node.felix.drops).catch((err: Error) => {
      logger.warn({ err: err.message, path }, 'drop records are not served (calico drops cannot read them)');
      return undefined;
    });
  }
  const code = await stopped;
  await drops?.close();
  return code;
}

/**
 * Where `calico drops` reads this node's drop records: CALICO_FELIX_DROPS_SOCKET, else beside the
 * BGP status socket (each lab node has its own directory), else the default.
 */
export function dropLogSocketPath(env: NodeJS.ProcessEnv): string {
  if (env['CALICO_FELIX_DROPS_SOCKET']) return env['CALICO_FELIX_DROPS_SOCKET'];
  const bgp = env['CALICO_BGP_STATUS_SOCKET'];
  return bgp ? join(dirname(bgp), 'felix-drops.ctl') : DEFAULT_DROP_LOG_SOCKET;
}

/** The BGP agent ships in @calico-ts/bgp-agent; loaded only when BGP is the networking backend. */
async function loadBgpAgent(statusSocket: string | undefined) {
  const { createBgpAgentFactory } = await import('./bgp-agent.ts');
  return createBgpAgentFactory(statusSocket ? { statusSocket } : {});
}

if (import.meta.main) {
  process.exitCode = await main();
}
