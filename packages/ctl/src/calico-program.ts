/**
 * `calico`: calicoctl's resource verbs over the calico-ts datastore. `run()` is the whole CLI
 * with its I/O passed in, so tests drive it in-process; cli.ts runs it as a program.
 */
import type { Datastore } from '@calico-ts/datastore';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CliError, userMessage } from './cli-error.ts';
import { type CliIo, cliLog, LOG_LEVELS, type LogLevel, processIo } from './cli-io.ts';
import { clientVersion } from './client-version.ts';
import type { CommandContext, ConnectDatastore, ConnectionFlags } from './command-context.ts';
import { clusterCommand } from './commands/cluster.ts';
import { completionCommand } from './commands/completion.ts';
import { connectivityCommand } from './commands/connectivity-test.ts';
import { convertCommand } from './commands/convert.ts';
import { dropsCommand } from './commands/drops.ts';
import { getCommand } from './commands/get.ts';
import { ipamCommand } from './commands/ipam.ts';
import { labelCommand } from './commands/label.ts';
import { validateCommand, writeCommand } from './commands/manifest-write.ts';
import { nodeCommand } from './commands/node.ts';
import { patchCommand } from './commands/patch.ts';
import { policyCommand } from './commands/policy.ts';
import { traceCommand } from './commands/trace.ts';
import { versionCommand } from './commands/version.ts';
import { connectDatastore, DEFAULT_CONFIG_PATH } from './datastore-connection.ts';

export interface RunOptions {
  /** How to open the datastore; defaults to flags + environment + config file. */
  connect?: ConnectDatastore;
}

interface GlobalFlags extends ConnectionFlags {
  logLevel: LogLevel;
}

/** Runs the CLI with `argv` (arguments only, no node/script) and returns the exit code. */
export async function run(
  argv: readonly string[],
  io: CliIo = processIo(),
  options: RunOptions = {},
): Promise<number> {
  const connect = options.connect ?? connectDatastore;
  let opened: Promise<Datastore> | undefined;
  const program = new Command('calico');
  const ctx: CommandContext = {
    io,
    get log() {
      return cliLog(io, program.opts<GlobalFlags>().logLevel);
    },
    datastore: () => {
      if (!opened) {
        const { config, datastoreType, etcdEndpoints } = program.opts<GlobalFlags>();
        opened = connect({ config, datastoreType, etcdEndpoints }, io);
      }
      return opened;
    },
  };

  program
    .description(
      'Manage a calico-ts network: IP pools, BGP peers, network policy and every other ' +
        'projectcalico.org/v3 resource, with calicoctl-compatible verbs and YAML.',
    )
    .version(`v${clientVersion()}`, '--version', 'print the client version')
    .addOption(
      new Option('-l, --log-level <LEVEL>', `diagnostics on stderr at or above: ${LOG_LEVELS.join('|')}`)
        .argParser(logLevel)
        .default('panic'),
    )
    .option(
      '-c, --config <FILE>',
      `datastore connection config (CalicoAPIConfig; default ${DEFAULT_CONFIG_PATH})`,
    )
    .option(
      '--datastore-type <TYPE>',
      'datastore type (etcdv3); overrides DATASTORE_TYPE and the config file',
    )
    .option(
      '--etcd-endpoints <URLS>',
      'comma-separated etcd URLs; overrides ETCD_ENDPOINTS and the config file',
    )
    .addHelpText(
      'after',
      '\nThe datastore is found from --config/--datastore-type/--etcd-endpoints, then the environment\n' +
        `(DATASTORE_TYPE, ETCD_ENDPOINTS, ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE, or CALICO_-prefixed),\n` +
        `then ${DEFAULT_CONFIG_PATH}.\n\n` +
        'Examples:\n  calico apply -f pool.yaml\n  calico get ippools -o wide\n  calico delete ippool pool-a\n',
    )
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout(s),
      writeErr: (s) => io.stderr(s),
    });

  for (const cmd of [
    validateCommand(ctx),
    convertCommand(ctx),
    writeCommand(ctx, 'apply'),
    writeCommand(ctx, 'create'),
    writeCommand(ctx, 'replace'),
    writeCommand(ctx, 'delete'),
    getCommand(ctx),
    labelCommand(ctx),
    patchCommand(ctx),
    versionCommand(ctx),
    nodeCommand(ctx),
    ipamCommand(ctx),
    policyCommand(ctx),
    clusterCommand(ctx),
    traceCommand(ctx),
    dropsCommand(ctx),
    connectivityCommand(ctx),
    completionCommand(ctx),
  ]) {
    program.addCommand(
      cmd.exitOverride().configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) }),
    );
  }

  try {
    if (argv.length === 0) {
      program.outputHelp();
      return 0;
    }
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help/version it was asked for).
      return err.exitCode === 0 ? 0 : 1;
    }
    ctx.log.debug(err instanceof Error ? (err.stack ?? err.message) : String(err));
    io.stderr(`${userMessage(err)}\n`);
    return err instanceof CliError ? err.exitCode : 1;
  } finally {
    if (opened) await opened.then((d) => d.close()).catch(() => undefined);
  }
}

function logLevel(value: string): LogLevel {
  const level = value.toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`);
  }
  return level as LogLevel;
}
