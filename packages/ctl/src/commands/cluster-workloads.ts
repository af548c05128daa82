/**
 * `calico cluster namespace add|label`, `pod add|label|del`, `exec`: workloads in a running local
 * cluster. Changes go through the cluster's supervisor, which owns the pods' listeners and writes
 * what Calico's controllers would (profiles, WorkloadEndpoint labels and named ports).
 */
import { spawn } from 'node:child_process';
import { type Command, Option } from 'commander';
import { CliError } from '../cli-error.ts';
import type { ClusterPodRecord } from '../cluster-context.ts';
import type { CommandContext } from '../command-context.ts';
import {
  callSupervisor,
  nameOption,
  nodeOf,
  parseLabels,
  podOf,
  podRef,
  runningCluster,
  setLabels,
} from './cluster-client.ts';

const labelsOption = (): Option => new Option('--labels <k=v,...>', 'labels, comma-separated').default('');

export function addWorkloadCommands(cluster: Command, ctx: CommandContext): void {
  const out = (line: string) => ctx.io.stdout(`${line}\n`);

  const namespace = cluster.command('namespace').summary('Namespaces of a cluster (the profile kns.<name>)');
  namespace
    .command('add')
    .summary('Add a namespace: its profile kns.<name> with labelsToApply, as Calico writes it')
    .argument('<NAME>', 'namespace name')
    .addOption(labelsOption())
    .addOption(nameOption())
    .action(async (name: string, opts: { labels: string; name?: string }) => {
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 40)
        throw new CliError(
          `namespace ${JSON.stringify(name)}: expected 1–40 of [a-z0-9-], starting and ending with a letter or digit`,
        );
      const record = runningCluster(opts.name, ctx.io.env);
      const labels = setLabels(parseLabels([opts.labels]));
      await callSupervisor(record, { op: 'namespace-add', name, labels });
      out(`namespace ${name} added${Object.keys(labels).length ? ` (${formatLabels(labels)})` : ''}`);
    });
  namespace
    .command('label')
    .summary("Set (k=v) or remove (k-) a namespace's labels")
    .argument('<NAME>', 'namespace name')
    .argument('<LABELS...>', 'k=v to set, k- to remove')
    .addOption(nameOption())
    .action(async (name: string, labels: string[], opts: { name?: string }) => {
      const record = runningCluster(opts.name, ctx.io.env);
      const result = (await callSupervisor(record, {
        op: 'namespace-label',
        name,
        labels: parseLabels(labels, true),
      })) as {
        labels: Record<string, string>;
      };
      out(`namespace ${name} labels: ${formatLabels(result.labels) || '(none)'}`);
    });

  const pod = cluster.command('pod').summary('Pods of a cluster, wired by the CNI plugin');
  pod
    .command('add')
    .summary('Add a pod on a node through the calico CNI plugin')
    .argument('<NODE>', 'node (n1 or <cluster>-n1)')
    .argument('<NS/NAME>', 'the pod, e.g. demo/web-1')
    .addOption(labelsOption())
    .option('--ip <ADDR>', "the pod's address (the plugin's address override)")
    .option('--serve <PORTS>', 'listeners in the pod, e.g. tcp:80,udp:53 (named ports serve-<port>-<proto>)')
    .option('--service-account <SA>', "the pod's service account")
    .addOption(nameOption())
    .action(
      async (
        nodeRef: string,
        ref: string,
        opts: { labels: string; ip?: string; serve?: string; serviceAccount?: string; name?: string },
      ) => {
        const { namespace, name } = podRef(ref);
        const record = runningCluster(opts.name, ctx.io.env);
        const node = nodeOf(record, nodeRef);
        const p = (await callSupervisor(record, {
          op: 'pod-add',
          node: node.name,
          namespace,
          name,
          labels: setLabels(parseLabels([opts.labels])),
          ip: opts.ip,
          serve: opts.serve,
          serviceAccount: opts.serviceAccount,
        })) as ClusterPodRecord;
        out(
          `pod ${namespace}/${name} on ${p.node}: ${p.ip}${p.serve.length ? ` serving ${p.serve.join(',')}` : ''}`,
        );
      },
    );
  pod
    .command('label')
    .summary("Set (k=v) or remove (k-) a pod's labels (its WorkloadEndpoint's)")
    .argument('<NS/NAME>', 'the pod')
    .argument('<LABELS...>', 'k=v to set, k- to remove')
    .addOption(nameOption())
    .action(async (ref: string, labels: string[], opts: { name?: string }) => {
      const { namespace, name } = podRef(ref);
      const record = runningCluster(opts.name, ctx.io.env);
      const p = (await callSupervisor(record, {
        op: 'pod-label',
        namespace,
        name,
        labels: parseLabels(labels, true),
      })) as ClusterPodRecord;
      out(`pod ${ref} labels: ${formatLabels(p.labels) || '(none)'}`);
    });
  pod
    .command('del')
    .summary('Delete a pod (CNI DEL, listeners stopped, namespace removed)')
    .argument('<NS/NAME>', 'the pod')
    .addOption(nameOption())
    .action(async (ref: string, opts: { name?: string }) => {
      const { namespace, name } = podRef(ref);
      const record = runningCluster(opts.name, ctx.io.env);
      await callSupervisor(record, { op: 'pod-del', namespace, name });
      out(`pod ${ref} deleted`);
    });
  pod
    .command('list')
    .summary('Pods: node, address, labels, ports')
    .addOption(nameOption())
    .action((opts: { name?: string }) => {
      const record = runningCluster(opts.name, ctx.io.env);
      for (const p of record.pods)
        out(`${p.namespace}/${p.name}\t${p.node}\t${p.ip}\t${formatLabels(p.labels)}\t${p.serve.join(',')}`);
    });

  cluster
    .command('exec')
    .summary("Run a command in a node's or a pod's network namespace")
    .argument('<NODE|NS/POD>', 'n1, <cluster>-n1, or a pod such as demo/web-1')
    .argument('<COMMAND...>', 'the command (after --)')
    .addOption(nameOption())
    .action(async (target: string, command: string[], opts: { name?: string }) => {
      const record = runningCluster(opts.name, ctx.io.env);
      const netns = target.includes('/') ? podOf(record, target).netns : nodeOf(record, target).name;
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn('ip', ['netns', 'exec', netns, ...command], { stdio: 'inherit' });
        child.on('error', reject);
        child.on('exit', (c, s) => resolve(c ?? (s ? 128 : 1)));
      });
      if (code !== 0) throw new CliError(`${command.join(' ')} exited with ${code} in ${netns}`, code);
    });
}

export const formatLabels = (labels: Record<string, string>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
