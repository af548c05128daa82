import { installCni } from '@calico-ts/cni';
import { ensureNamespaceProfileAt } from '@calico-ts/datastore';
import { calicoPrograms, isLabError, LAB_POD_NAMESPACE, LabCluster, removeLabCluster } from '@calico-ts/lab';
import { Command, InvalidArgumentError, Option } from 'commander';
import { CliError } from '../cli-error.ts';
import type { CommandContext } from '../command-context.ts';

/** Where `calico cluster up` keeps a cluster's state, so `calico cluster down` finds it. */
export const stateDirFor = (name: string): string => `/run/calico-ts/${name}`;

function intArg(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

function nameArg(v: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,9}$/.test(v))
    throw new InvalidArgumentError('expected 1–10 of [a-z0-9-], starting with a letter or digit');
  return v;
}

/** `calico cluster up|down`: the local multi-node lab. */
export function clusterCommand(ctx: CommandContext): Command {
  const cluster = new Command('cluster').summary(
    'Run a local multi-node calico-ts cluster in network namespaces',
  );

  cluster
    .command('up')
    .summary('Create the lab, start etcd and calico-node on every node, and add demo pods')
    .addOption(
      new Option('--name <NAME>', 'cluster name, the prefix of every namespace')
        .default('calico')
        .argParser(nameArg),
    )
    .addOption(new Option('--nodes <N>', 'number of nodes').default(3).argParser(intArg(1, 50)))
    .addOption(
      new Option('--backend <MODE>', 'how pods on different nodes reach each other')
        .choices(['vxlan', 'bgp'])
        .default('vxlan'),
    )
    .addOption(new Option('--pool-cidr <CIDR>', 'the IPv4 pod pool').default('10.244.0.0/16'))
    .addOption(new Option('--pods <N>', 'demo pods per node').default(2).argParser(intArg(0, 50)))
    .addOption(
      new Option('--etcd-port <PORT>', 'loopback port relaying to the lab etcd (0 = any)')
        .default(0)
        .argParser(intArg(0, 65535)),
    )
    .option(
      '--check',
      'verify pod-to-pod connectivity, tear the cluster down and exit (non-zero if any ping failed)',
    )
    .action(
      async (opts: {
        name: string;
        nodes: number;
        backend: 'vxlan' | 'bgp';
        poolCidr: string;
        pods: number;
        etcdPort: number;
        check?: boolean;
      }) => {
        const log = (line: string) => ctx.io.stdout(`${line}\n`);
        const c = new LabCluster({
          name: opts.name,
          nodes: opts.nodes,
          backend: opts.backend,
          poolCidr: opts.poolCidr,
          podsPerNode: opts.pods,
          dir: stateDirFor(opts.name),
          etcdPort: opts.etcdPort,
          // calico-node and the plugins as this CLI resolves them: source or built, like itself;
          // the built plugin binaries are installed when there are (they start faster).
          programs: calicoPrograms({
            node: import.meta.resolve('@calico-ts/node'),
            cni: import.meta.resolve('@calico-ts/cni'),
            installCni,
          }),
          log,
          // The lab's pods name kns.default, the profile Kubernetes' controllers would keep.
          prepareDatastore: async (endpoint) => {
            await ensureNamespaceProfileAt([endpoint], LAB_POD_NAMESPACE);
          },
        });
        let exitCode = 0;
        try {
          await c.up();
          const results = await c.checkConnectivity();
          const failed = results.filter((r) => !r.ok);
          log(`pod-to-pod: ${results.length - failed.length}/${results.length} pings answered`);
          for (const f of failed) log(`  no answer: ${f.from} → ${f.to}`);
          if (failed.length > 0) {
            exitCode = 1;
            log(await c.diagnose());
          }
          log('');
          log(`Cluster "${opts.name}" is running. From this host:`);
          log(`  export ETCD_ENDPOINTS=${c.etcd.localEndpoint}`);
          log('  calico get nodes; calico get ippools -o wide; calico get workloadendpoints -A');
          log(
            `  ip netns exec ${c.pods[0]?.name ?? `${opts.name}-n1`} ping ${c.pods.at(-1)?.ip ?? '<pod ip>'}`,
          );
          if (opts.check) return;
          log('Press Ctrl-C to stop it (or run "calico cluster down" from another shell).');
          await new Promise<void>((resolve) => {
            process.once('SIGINT', () => resolve());
            process.once('SIGTERM', () => resolve());
          });
        } catch (err) {
          if (isLabError(err, 'NeedsRoot'))
            throw new CliError('calico cluster up needs root (it creates network namespaces)');
          if (isLabError(err, 'Exists'))
            throw new CliError(`${err.message}; run "calico cluster down --name ${opts.name}" first`);
          if (isLabError(err)) throw new CliError(err.message);
          throw err;
        } finally {
          log(`tearing down cluster ${opts.name}`);
          await c.down().catch((err: Error) => ctx.io.stderr(`cleanup: ${err.message}\n`));
        }
        if (exitCode !== 0) throw new CliError('some pods could not reach each other', exitCode);
      },
    );

  cluster
    .command('down')
    .summary('Stop a cluster started by "calico cluster up" and remove its namespaces')
    .addOption(new Option('--name <NAME>', 'cluster name').default('calico').argParser(nameArg))
    .action(async (opts: { name: string }) => {
      const removed = await removeLabCluster(opts.name, stateDirFor(opts.name));
      ctx.io.stdout(
        removed.length > 0 ? `removed ${removed.join(', ')}\n` : `no cluster named ${opts.name}\n`,
      );
    });

  return cluster;
}
