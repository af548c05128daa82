/**
 * What the cluster commands other than `up` share: finding the cluster they act on (`--name`,
 * else the current cluster), its record, and calling its supervisor.
 */
import { request } from 'node:http';
import { stillRunning } from '@calico-ts/lab';
import { InvalidArgumentError, Option } from 'commander';
import { CliError } from '../cli-error.ts';
import {
  type ClusterNodeRecord,
  type ClusterPodRecord,
  type ClusterRecord,
  currentCluster,
  DEFAULT_CLUSTER_NAME,
  findNodeRecord,
  readRecord,
} from '../cluster-context.ts';
import type { ControlRequest } from './cluster-supervisor.ts';

export function clusterNameArg(v: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,9}$/.test(v))
    throw new InvalidArgumentError('expected 1–10 of [a-z0-9-], starting with a letter or digit');
  return v;
}

/** `--name`, without a default: the current cluster fills it in. */
export const nameOption = (): Option =>
  new Option('--name <NAME>', 'cluster name (default: the current cluster)').argParser(clusterNameArg);

/** The cluster a command acts on: --name, else CALICO_CLUSTER or the last one brought up, else `calico`. */
export function resolveClusterName(
  name: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string {
  return name ?? currentCluster(env) ?? DEFAULT_CLUSTER_NAME;
}

/** The record of a running cluster, or a clear error saying there is none. */
export function runningCluster(
  name: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): ClusterRecord {
  const resolved = resolveClusterName(name, env);
  const record = readRecord(resolved, env as NodeJS.ProcessEnv);
  if (!record)
    throw new CliError(
      `no cluster named ${resolved} is running; start one with "calico cluster up --name ${resolved}"`,
    );
  if (!stillRunning(record.supervisor))
    throw new CliError(
      `cluster ${resolved}'s supervisor (pid ${record.supervisor.pid}) is gone; remove what is left with "calico cluster down --name ${resolved}"`,
    );
  if (record.phase !== 'ready') throw new CliError(`cluster ${resolved} is ${record.phase}, not ready`);
  return record;
}

export function nodeOf(record: ClusterRecord, ref: string): ClusterNodeRecord {
  const node = findNodeRecord(record, ref);
  if (!node)
    throw new CliError(
      `node ${JSON.stringify(ref)}: no such node in cluster ${record.name} (nodes: ${record.nodes.map((n) => n.name).join(', ')})`,
    );
  return node;
}

/** `NS/NAME` → its parts, refused with what was expected. */
export function podRef(ref: string, what = 'pod'): { namespace: string; name: string } {
  const m = /^([a-z0-9][-a-z0-9]*)\/([a-z0-9][-a-z0-9]*)$/.exec(ref);
  if (!m) throw new CliError(`${what} ${JSON.stringify(ref)}: expected NAMESPACE/NAME, e.g. demo/web-1`);
  return { namespace: m[1]!, name: m[2]! };
}

export function podOf(record: ClusterRecord, ref: string): ClusterPodRecord {
  const { namespace, name } = podRef(ref);
  const pod = record.pods.find((p) => p.namespace === namespace && p.name === name);
  if (!pod)
    throw new CliError(
      `pod ${ref} does not exist in cluster ${record.name} (pods: ${record.pods.map((p) => `${p.namespace}/${p.name}`).join(', ') || 'none'})`,
    );
  return pod;
}

/** `k=v` … → labels; `k-` removes k (with allowRemove). */
export function parseLabels(args: readonly string[], allowRemove = false): Record<string, string | null> {
  const labels: Record<string, string | null> = {};
  for (const arg of args.flatMap((a) => a.split(',')).filter((a) => a !== '')) {
    const m = /^([A-Za-z0-9][-A-Za-z0-9_./]*)=([-A-Za-z0-9_.]*)$/.exec(arg);
    if (m) labels[m[1]!] = m[2]!;
    else if (allowRemove && /^[A-Za-z0-9][-A-Za-z0-9_./]*-$/.test(arg)) labels[arg.slice(0, -1)] = null;
    else
      throw new CliError(
        `label ${JSON.stringify(arg)}: expected key=value${allowRemove ? ' (or key- to remove it)' : ''}`,
      );
  }
  return labels;
}

export const setLabels = (labels: Record<string, string | null>): Record<string, string> =>
  Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => e[1] !== null));

/** Sends one request to the cluster's supervisor and returns its result; its refusal becomes a CliError. */
export function callSupervisor(
  record: ClusterRecord,
  req: ControlRequest,
  timeoutMs = 120_000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const r = request(
      { socketPath: record.controlSocket, path: '/', method: 'POST', timeout: timeoutMs },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          try {
            const parsed = JSON.parse(body) as { result?: unknown; error?: string };
            if (parsed.error !== undefined) reject(new CliError(parsed.error));
            else resolve(parsed.result);
          } catch {
            reject(new CliError(`cluster ${record.name}'s supervisor sent an unreadable answer`));
          }
        });
      },
    );
    r.on('timeout', () => r.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    r.on('error', (err) =>
      reject(
        new CliError(
          `cannot reach cluster ${record.name}'s supervisor on ${record.controlSocket}: ${err.message}`,
        ),
      ),
    );
    r.end(JSON.stringify(req));
  });
}
