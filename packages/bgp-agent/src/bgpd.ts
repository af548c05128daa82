#!/usr/bin/env node
/**
 * calico-bgpd: the BGP daemon and its client commands.
 *   calico-bgpd --config FILE [--control SOCKET]
 *   calico-bgpd status [--control SOCKET] [-o json]
 *   calico-bgpd routes [--control SOCKET] [-o json]
 *   calico-bgpd reload [--control SOCKET]
 * Exit codes: 0 ok, 1 runtime failure, 2 invalid usage or configuration.
 */
import { parseArgs } from 'node:util';
import {
  BgpdConfigError,
  type BgpdControlMethods,
  callControl,
  DEFAULT_BGPD_CONTROL_SOCKET,
  type RoutesQuery,
} from '@calico-ts/bgp';
import { tabwriterTable } from '@calico-ts/text-table';
import { Daemon } from './daemon/daemon.ts';
import { KernelExportUnavailable } from './daemon/kernel-export.ts';

const USAGE = `usage:
  calico-bgpd --config FILE [--control SOCKET] [-r]
                                                  run the daemon (-r: after a restart, set the
                                                  graceful-restart R bit so peers keep our routes)
  calico-bgpd status [--control SOCKET] [-o json]  BGP sessions
  calico-bgpd routes [--control SOCKET] [-o json] [--prefix CIDR] [--best]
                                                  the Loc-RIB (every path; * marks the best)
  calico-bgpd reload [--control SOCKET]            re-read the config (same as SIGHUP)
control socket default: ${DEFAULT_BGPD_CONTROL_SOCKET}
`;

function duration(s: number): string {
  if (s <= 0) return '-';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${m}m` : m ? `${m}m${s % 60}s` : `${s}s`;
}

async function client(
  command: 'status' | 'routes' | 'reload',
  control: string,
  output: string | undefined,
  query: RoutesQuery,
): Promise<number> {
  const call = { server: 'calico-bgpd' };
  if (command === 'reload') {
    const result = await callControl<BgpdControlMethods, 'reload'>(control, 'reload', {}, call);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  }
  if (command === 'status') {
    const { peers } = await callControl<BgpdControlMethods, 'status'>(control, 'status', {}, call);
    if (output === 'json') {
      process.stdout.write(`${JSON.stringify(peers, null, 2)}\n`);
      return 0;
    }
    process.stdout.write(
      tabwriterTable([
        ['ADDRESS', 'AS', 'STATE', 'UPTIME', 'RECEIVED', 'ACCEPTED', 'SENT', 'LAST ERROR'],
        ...peers.map((p) => [
          p.address,
          String(p.asNumber),
          p.state,
          duration(p.uptimeSeconds),
          String(p.received),
          String(p.accepted),
          String(p.sent),
          p.lastError ?? '',
        ]),
      ]),
    );
    return 0;
  }
  const routes = await callControl<BgpdControlMethods, 'routes'>(control, 'routes', query, call);
  if (output === 'json') {
    process.stdout.write(`${JSON.stringify(routes, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(
    tabwriterTable([
      ['PREFIX', 'NEXT HOP', 'AS PATH', 'COMMUNITIES', 'BEST', 'PEER'],
      ...routes.map((r) => [
        r.prefix,
        r.nextHop,
        r.asPath || '-',
        r.communities.join(' ') || '-',
        r.best ? '*' : '',
        r.peer,
      ]),
    ]),
  );
  return 0;
}

function isClientCommand(c: string): c is 'status' | 'routes' | 'reload' {
  return c === 'status' || c === 'routes' || c === 'reload';
}

async function main(argv: string[]): Promise<number> {
  const options = {
    config: { type: 'string', short: 'c' },
    control: { type: 'string' },
    output: { type: 'string', short: 'o' },
    help: { type: 'boolean', short: 'h' },
    prefix: { type: 'string' },
    best: { type: 'boolean' },
    'graceful-restart': { type: 'boolean', short: 'r' },
  } as const;
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true });
  } catch (e) {
    process.stderr.write(`calico-bgpd: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const control = values.control ?? DEFAULT_BGPD_CONTROL_SOCKET;
  const command = positionals[0];
  if (command !== undefined) {
    if (!isClientCommand(command) || positionals.length > 1) {
      process.stderr.write(`calico-bgpd: unknown command "${positionals.join(' ')}"\n${USAGE}`);
      return 2;
    }
    if (values.output !== undefined && values.output !== 'json') {
      process.stderr.write(`calico-bgpd: -o: got "${values.output}", expected json\n`);
      return 2;
    }
    try {
      const query: RoutesQuery = {};
      if (values.prefix) query.prefix = values.prefix;
      if (values.best) query.bestOnly = true;
      return await client(command, control, values.output, query);
    } catch (e) {
      process.stderr.write(`calico-bgpd ${command}: ${(e as Error).message}\n`);
      return 1;
    }
  }
  if (!values.config) {
    process.stderr.write(`calico-bgpd: --config FILE is required\n${USAGE}`);
    return 2;
  }
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({
      configFile: values.config,
      controlPath: control,
      restarting: values['graceful-restart'] ?? false,
    });
  } catch (e) {
    process.stderr.write(`calico-bgpd: ${(e as Error).message}\n`);
    return e instanceof BgpdConfigError || e instanceof KernelExportUnavailable ? 2 : 1;
  }
  process.on('SIGHUP', () => {
    daemon.reload().catch((e: Error) => process.stderr.write(`calico-bgpd: reload refused: ${e.message}\n`));
  });
  // SIGTERM: a restart (close without NOTIFICATION, peers keep our routes per RFC 4724);
  // SIGINT: a shutdown (Cease to every peer, routes withdrawn).
  const graceful = await new Promise<boolean>((resolve) => {
    process.once('SIGTERM', () => resolve(true));
    process.once('SIGINT', () => resolve(false));
  });
  await daemon.stop({ graceful });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: Error) => {
    process.stderr.write(`calico-bgpd: ${e.stack ?? e.message}\n`);
    process.exitCode = 1;
  },
);
