import { Command } from 'commander';
import type { CommandContext } from '../command-context.ts';
import { addConnectivityCommands } from './cluster-connectivity.ts';
import { addLifecycleCommands } from './cluster-lifecycle.ts';
import { addWorkloadCommands } from './cluster-workloads.ts';

/**
 * `calico cluster`: a local multi-node calico-ts cluster in network namespaces, left running under
 * its own supervisor (up, down, status, logs), its namespaces and pods (namespace, pod, exec), and
 * what reaches what (probe, matrix).
 */
export function clusterCommand(ctx: CommandContext): Command {
  // Set before the subcommands are made, which inherit it: a bad option or argument is reported
  // through ctx.io and an exit code, never process.exit.
  const cluster = new Command('cluster')
    .summary('Run a local multi-node calico-ts cluster in network namespaces')
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.io.stdout(s), writeErr: (s) => ctx.io.stderr(s) });
  addLifecycleCommands(cluster, ctx);
  addWorkloadCommands(cluster, ctx);
  addConnectivityCommands(cluster, ctx);
  return cluster;
}
