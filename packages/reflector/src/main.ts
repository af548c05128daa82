#!/usr/bin/env node
/**
 * calico-reflector: a dedicated BGP route reflector.
 *   calico-reflector [flags]                 run (see USAGE)
 *   calico-reflector status [--control PATH] the status socket's answer, as JSON
 * Exit codes: 0 ok, 1 runtime failure, 2 invalid usage.
 */
import type { Server } from 'node:http';
import { type ControlServer, callControl } from '@calico-ts/bgp';
import { kernelSocketOptions } from '@calico-ts/bgp-agent';
import { EtcdDatastore } from '@calico-ts/datastore';
import { pino } from 'pino';
import { DEFAULT_CONTROL_SOCKET, parseReflectorArgs, ReflectorConfigError, USAGE } from './config.ts';
import { type ReflectorControlMethods, reflectorMetrics, serveHttp, serveStatus } from './observability.ts';
import { Reflector } from './reflector.ts';

async function status(argv: string[]): Promise<number> {
  const i = argv.indexOf('--control');
  const path = i >= 0 ? argv[i + 1] : DEFAULT_CONTROL_SOCKET;
  if (!path) {
    process.stderr.write('calico-reflector status: --control needs a path\n');
    return 2;
  }
  const s = await callControl<ReflectorControlMethods, 'status'>(
    path,
    'status',
    {},
    { server: 'calico-reflector' },
  );
  process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
  return 0;
}

async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let config: ReturnType<typeof parseReflectorArgs>;
  try {
    config = parseReflectorArgs(argv);
  } catch (err) {
    if (err instanceof ReflectorConfigError) {
      process.stderr.write(`${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  const log = pino({ level: config.logLevel, base: { component: 'calico-reflector' } });
  const datastore =
    config.source.kind === 'datastore'
      ? new EtcdDatastore({ endpoints: config.source.etcdEndpoints })
      : undefined;
  const reflector = new Reflector({
    config,
    logger: log,
    socketOptions: kernelSocketOptions(),
    ...(datastore ? { datastore } : {}),
  });
  const servers: Server[] = [];
  let control: ControlServer | undefined;
  const shutdown = async () => {
    await reflector.stop();
    await control?.close();
    for (const s of servers) await new Promise((r) => s.close(r));
    await datastore?.close();
  };
  try {
    const registry = config.metrics ? reflectorMetrics(reflector) : undefined;
    if (config.health) {
      const shared =
        config.metrics &&
        config.metrics.host === config.health.host &&
        config.metrics.port === config.health.port;
      servers.push(
        await serveHttp(reflector, config.health.host, config.health.port, shared ? registry : undefined),
      );
      if (config.metrics && !shared)
        servers.push(await serveHttp(reflector, config.metrics.host, config.metrics.port, registry));
    } else if (config.metrics) {
      servers.push(await serveHttp(reflector, config.metrics.host, config.metrics.port, registry));
    }
    if (config.control) control = await serveStatus(reflector, config.control);
    await reflector.start();
  } catch (err) {
    log.error({ err }, 'calico-reflector failed to start');
    process.stderr.write(`calico-reflector: ${(err as Error).message}\n`);
    await shutdown().catch(() => {});
    return 1;
  }
  log.info(
    reflector.status().problems.length ? { problems: reflector.status().problems } : {},
    'calico-reflector running',
  );
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await shutdown();
  return 0;
}

const argv = process.argv.slice(2);
const code = await (argv[0] === 'status' ? status(argv.slice(1)) : run(argv)).catch((err: Error) => {
  process.stderr.write(`calico-reflector: ${err.message}\n`);
  return 1;
});
process.exit(code);
