/**
 * Where local clusters (`calico cluster up`) keep their state, and the current cluster: like
 * kubectl's current-context, the last cluster brought up is the one every other command reaches
 * when nothing else names a datastore. A cluster's record (`cluster.json`) is written by its
 * supervisor and read by every other `calico` process.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENV_NAMES } from '@calico-ts/datastore';
import { type ProcessIdentity, stillRunning } from '@calico-ts/lab';

/** Everything of every cluster lives here (tmpfs: like the namespaces, it does not outlive a reboot). */
export const CLUSTERS_ROOT = '/run/calico-ts';
export const clustersDir = (env: Readonly<Record<string, string | undefined>> = process.env): string =>
  env['CALICO_CLUSTERS_DIR'] ?? join(CLUSTERS_ROOT, 'clusters');
export const clusterDir = (name: string, env = process.env): string => join(clustersDir(env), name);
const currentFile = (env: Readonly<Record<string, string | undefined>>): string =>
  join(clustersDir(env), '.current');

/** The name `calico cluster up` uses when given none. */
export const DEFAULT_CLUSTER_NAME = 'calico';

export interface ClusterNodeRecord {
  name: string;
  address: string;
  /** calico-node's pid; undefined while it is down. */
  pid: number | undefined;
  start: number | undefined;
  ready: boolean;
  restarts: number;
  lastExit: string | undefined;
  cniConfDir: string;
  cniSocket: string;
  bgpSocket: string;
  logFile: string;
  healthUrl: string;
}

/** A dedicated route reflector (calico-reflector on its own underlay host). */
export interface ClusterReflectorRecord {
  name: string;
  address: string;
  pid: number | undefined;
  start: number | undefined;
  ready: boolean;
  restarts: number;
  lastExit: string | undefined;
  controlSocket: string;
  logFile: string;
}

export interface ClusterPodRecord {
  namespace: string;
  name: string;
  node: string;
  ip: string;
  /** Its IPv6 address in a dual-stack cluster. */
  ipv6?: string;
  /** The pod's network namespace (`ip netns exec <netns> …`). */
  netns: string;
  labels: Record<string, string>;
  serve: string[];
  serviceAccount: string | undefined;
}

export interface ClusterRecord {
  name: string;
  phase: 'starting' | 'ready' | 'failed' | 'stopping';
  error?: string;
  supervisor: ProcessIdentity;
  controlSocket: string;
  logFile: string;
  encapsulation: string;
  underlay: string;
  poolCidr: string;
  /** The IPv6 pod pool of a dual-stack cluster. */
  ipv6PoolCidr?: string;
  etcd: {
    /** From inside the lab (the underlay address). */
    endpoint: string;
    /** From this host (a loopback relay kept by the supervisor). */
    localEndpoint: string;
    pid: number;
    start: number | undefined;
    healthy: boolean;
    restarts: number;
    lastExit: string | undefined;
    logFile: string;
  };
  cniBinDir: string;
  nodes: ClusterNodeRecord[];
  /** The BIRD top-of-rack router, with `--tor bird`. */
  tor?: {
    address: string;
    asNumber: number;
    pid: number | undefined;
    start: number | undefined;
    controlSocket: string;
  };
  /** Dedicated route reflectors (absent in records of older clusters). */
  reflectors?: ClusterReflectorRecord[];
  pods: ClusterPodRecord[];
  namespaces: Record<string, Record<string, string>>;
  /** Supervision events, newest last (exits and restarts). */
  events: string[];
}

export const recordFile = (dir: string): string => join(dir, 'cluster.json');

/** Writes atomically, so a reader never sees half a record. */
export function writeRecord(dir: string, record: ClusterRecord): void {
  const tmp = `${recordFile(dir)}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(tmp, recordFile(dir));
}

export function readRecord(name: string, env = process.env): ClusterRecord | undefined {
  const file = recordFile(clusterDir(name, env));
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ClusterRecord;
  } catch {
    return undefined;
  }
}

/** The current cluster's name: CALICO_CLUSTER, else the last one brought up and still recorded. */
export function currentCluster(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  const fromEnv = env['CALICO_CLUSTER'];
  if (fromEnv) return fromEnv;
  try {
    const name = readFileSync(currentFile(env), 'utf8').trim();
    return name && existsSync(clusterDir(name, env as NodeJS.ProcessEnv)) ? name : undefined;
  } catch {
    return undefined;
  }
}

export function setCurrentCluster(name: string, env = process.env): void {
  mkdirSync(clustersDir(env), { recursive: true });
  writeFileSync(currentFile(env), `${name}\n`);
}

/** Forgets the current cluster if it is `name`. */
export function clearCurrentCluster(name: string, env = process.env): void {
  try {
    if (readFileSync(currentFile(env), 'utf8').trim() === name) rmSync(currentFile(env), { force: true });
  } catch {
    // no current cluster
  }
}

/**
 * The etcd endpoint of the current cluster, when nothing the user gave (flags, the datastore
 * variables, a config file named with -c) says where the datastore is; undefined otherwise.
 */
export function currentClusterEndpoint(
  flags: {
    config?: string | undefined;
    datastoreType?: string | undefined;
    etcdEndpoints?: string | undefined;
  },
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  if (flags.config !== undefined || flags.datastoreType !== undefined || flags.etcdEndpoints !== undefined)
    return undefined;
  for (const name of Object.values(ENV_NAMES))
    if (env[name] !== undefined || env[`CALICO_${name}`] !== undefined) return undefined;
  const name = currentCluster(env);
  if (!name) return undefined;
  const record = readRecord(name, env as NodeJS.ProcessEnv);
  // A cluster whose supervisor is gone has no relay to its etcd any more.
  return record && record.phase !== 'failed' && stillRunning(record.supervisor)
    ? record.etcd.localEndpoint
    : undefined;
}

/** A node of a recorded cluster by full name (`calico-n2`) or short name (`n2`). */
export function findNodeRecord(record: ClusterRecord, ref: string): ClusterNodeRecord | undefined {
  return record.nodes.find((n) => n.name === ref || n.name === `${record.name}-${ref}`);
}

/**
 * The BGP agent control socket of a node of the current cluster (or CALICO_CLUSTER's), for
 * `calico node status NODE`; throws an Error naming the nodes there are when there is no such node.
 */
export function clusterNodeBgpSocket(
  node: string,
  env: Readonly<Record<string, string | undefined>>,
): string {
  const name = currentCluster(env);
  const record = name ? readRecord(name, env as NodeJS.ProcessEnv) : undefined;
  if (!record)
    throw new Error(`node ${node}: no local cluster is running (calico cluster up); use --control SOCKET`);
  const found = findNodeRecord(record, node);
  if (!found)
    throw new Error(
      `node ${JSON.stringify(node)}: no such node in cluster ${record.name} (nodes: ${record.nodes.map((n) => n.name).join(', ')})`,
    );
  return found.bgpSocket;
}
