import { isDatastoreError, type ResourceOf } from '@calico-ts/datastore';
import { Command } from 'commander';
import { CliError, userMessage } from '../cli-error.ts';
import { buildInfo, clientVersion } from '../client-version.ts';
import type { CommandContext } from '../command-context.ts';

/**
 * `calico version`: the client's version, commit and build date, then the cluster's Calico
 * version and type from ClusterInformation `default` (which calico-node writes), as calicoctl
 * prints them.
 */
export function versionCommand(ctx: CommandContext): Command {
  return new Command('version')
    .summary('Print the client version, and the cluster’s version and type')
    .option('--client', 'print only the client version (no datastore needed)')
    .action(async (opts: { client?: boolean }) => {
      const build = buildInfo();
      ctx.io.stdout(
        `Client Version:    v${clientVersion()}\nGit commit:        ${build.gitCommit}\nBuild date:        ${build.buildDate}\n`,
      );
      if (opts.client) return;
      let info: ResourceOf<'ClusterInformation'>;
      try {
        info = await (await ctx.datastore()).get('ClusterInformation', 'default');
      } catch (err) {
        const why = isDatastoreError(err, 'NotFound')
          ? 'ClusterInformation default not found (no calico-node has started against this datastore)'
          : userMessage(err);
        throw new CliError(`Unable to retrieve Cluster Version or Type: ${why}`);
      }
      ctx.io.stdout(
        `Cluster Version:   ${info.spec.calicoVersion ?? 'unknown'}\nCluster Type:      ${info.spec.clusterType ?? 'unknown'}\n`,
      );
    });
}
