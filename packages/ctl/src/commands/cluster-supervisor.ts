/**
 * The process that owns a local cluster while it runs (`calico cluster up` starts it detached, or
 * runs it in the foreground): it builds the LabCluster, keeps etcd and every calico-node running
 * (restarting what exits, with backoff), serves the cluster's other commands over a control socket
 * (namespaces, pods, labels), plays the part of the orchestrator's controllers in the datastore
 * (namespace and service-account profiles, pod labels and named ports on WorkloadEndpoints), and
 * keeps `cluster.json` up to date for every other `calico` process. SIGTERM or SIGINT tears it all
 * down.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { installCni } from '@calico-ts/cni';
import {
  type Datastore,
  EtcdDatastore,
  ensureNamespaceProfile,
  isDatastoreError,
  namespaceProfile,
  serviceAccountProfile,
} from '@calico-ts/datastore';
import {
  type ClusterEvent,
  type ClusterPod,
  calicoPrograms,
  identify,
  LAB_POD_NAMESPACE,
  LabCluster,
  type LabEncapsulation,
  parsePodPorts,
  servedPortName,
} from '@calico-ts/lab';
import {
  type ClusterPodRecord,
  type ClusterRecord,
  clearCurrentCluster,
  setCurrentCluster,
  writeRecord,
} from '../cluster-context.ts';
import { queryAgent } from './node-status.ts';

export interface SupervisorOptions {
  name: string;
  dir: string;
  nodes: number;
  encapsulation: LabEncapsulation;
  poolCidr: string;
  /** Dual stack: the IPv6 pod pool. */
  ipv6PoolCidr?: string | undefined;
  underlay: string;
  etcdPort: number;
  /** Namespace `default` and pods `podN` on every node, as the first lab did (0 = none). */
  demoPods: number;
  /** Make this the current cluster once it is ready. */
  makeCurrent: boolean;
  /**
   * How many of the first nodes are route reflectors (0 = the full node-to-node mesh). With N > 0
   * the mesh is off and every node peers with the reflectors through one BGPPeer, as Calico's
   * in-cluster route-reflector setup does.
   */
  routeReflectors?: number;
  /**
   * Where the reflectors run: `nodes` (the first N calico-nodes, Node `routeReflectorClusterID`)
   * or `dedicated` (N calico-reflector daemons on their own underlay hosts `<name>-rr<k>`).
   */
  reflectorForm?: 'nodes' | 'dedicated';
  /** The BGP hold time (s) the dedicated reflectors offer; sessions use the smaller of both sides'. */
  reflectorHoldTime?: number;
  /** A BIRD top-of-rack router in the underlay peering with every node (eBGP, TOR_AS_NUMBER). */
  tor?: 'bird' | 'none';
  /** Called once the cluster is ready (its record says so). */
  onReady?: () => void;
}

/** A request to the supervisor's control socket. */
export type ControlRequest =
  | { op: 'namespace-add'; name: string; labels: Record<string, string> }
  | { op: 'namespace-label'; name: string; labels: Record<string, string | null> }
  | {
      op: 'pod-add';
      node: string;
      namespace: string;
      name: string;
      labels: Record<string, string>;
      ip?: string | undefined;
      serve?: string | undefined;
      serviceAccount?: string | undefined;
    }
  | { op: 'pod-label'; namespace: string; name: string; labels: Record<string, string | null> }
  | { op: 'pod-del'; namespace: string; name: string }
  | { op: 'stop' };

const HEALTH_POLL_MS = 1000;
const MAX_EVENTS = 50;

/** A failure of a control request the caller made (bad input, unknown pod): reported, not fatal. */
class RequestError extends Error {}

interface PodState {
  pod: ClusterPod;
  labels: Record<string, string>;
  serve: string[];
  serviceAccount: string | undefined;
}

/**
 * Runs a cluster until it is told to stop; `log` gets progress and supervision lines. Resolves
 * once everything is removed again; rejects if the cluster could not be brought up (after
 * removing what was made).
 */
export async function superviseCluster(o: SupervisorOptions, log: (line: string) => void): Promise<void> {
  const controlSocket = join(o.dir, 'control.sock');
  const events: string[] = [];
  const pods = new Map<string, PodState>();
  const namespaces: Record<string, Record<string, string>> = {};
  let phase: ClusterRecord['phase'] = 'starting';
  let error: string | undefined;
  let etcdHealthy = false;
  const ready = new Map<string, boolean>();
  let datastore: Datastore | undefined;
  let server: Server | undefined;
  let stopping: Promise<void> | undefined;
  let stopRequested: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));

  const onEvent = (e: ClusterEvent): void => {
    const line =
      e.type === 'exited'
        ? `${e.process} (pid ${e.pid}) exited with ${e.signal ? `signal ${e.signal}` : `code ${e.code}`}; restarting in ${e.restartInMs / 1000} s`
        : e.type === 'restarted'
          ? `${e.process} restarted (pid ${e.pid}, restart ${e.restarts})`
          : `${e.process} could not be restarted: ${e.error}`;
    events.push(`${new Date().toISOString()} ${line}`);
    if (events.length > MAX_EVENTS) events.shift();
    if (e.type === 'exited' && e.process === 'etcd') etcdHealthy = false;
    if (e.type === 'exited') ready.set(e.process, false);
    log(line);
    save();
  };

  const dedicated = o.reflectorForm === 'dedicated' ? (o.routeReflectors ?? 0) : 0;
  const cluster = new LabCluster({
    name: o.name,
    reflectors: dedicated,
    ...(o.tor === 'bird' ? { tor: { asNumber: TOR_AS_NUMBER, nodeAsNumber: NODE_AS_NUMBER } } : {}),
    ...(o.reflectorHoldTime !== undefined
      ? { reflectorArgs: ['--hold-time', String(o.reflectorHoldTime)] }
      : {}),
    nodes: o.nodes,
    encapsulation: o.encapsulation,
    poolCidr: o.poolCidr,
    ...(o.ipv6PoolCidr ? { ipv6PoolCidr: o.ipv6PoolCidr } : {}),
    underlay: o.underlay,
    dir: o.dir,
    etcdPort: o.etcdPort,
    logFiles: true,
    supervise: true,
    // All calico-nodes start at once and share the machine's cores: more nodes, longer each.
    readyTimeoutMs: 60_000 + 15_000 * o.nodes,
    onEvent,
    programs: calicoPrograms({
      node: import.meta.resolve('@calico-ts/node'),
      cni: import.meta.resolve('@calico-ts/cni'),
      reflector: import.meta.resolve('@calico-ts/reflector'),
      installCni,
      // calico-node as the images run it (dist/bin.js) when that build is fresh, else from source.
      preferBuilt: true,
    }),
    log,
    prepareDatastore: async (endpoint) => {
      datastore = new EtcdDatastore({ endpoints: [endpoint] });
      if (o.demoPods > 0) {
        await ensureNamespaceProfile(datastore, LAB_POD_NAMESPACE);
        namespaces[LAB_POD_NAMESPACE] = {};
      }
      await writeRouteReflectors(
        datastore,
        dedicated > 0
          ? Array.from({ length: dedicated }, (_, i) => ({
              name: `${o.name}-rr${i + 1}`,
              ipv4Address: `${cluster.reflectorAddress(i + 1)}/${cluster.underlayPrefixLength}`,
            }))
          : Array.from({ length: o.routeReflectors ?? 0 }, (_, i) => ({ name: `${o.name}-n${i + 1}` })),
      );
      if (o.tor === 'bird')
        await datastore.apply('BGPPeer', {
          metadata: { name: 'top-of-rack' },
          spec: { peerIP: cluster.lab.addressing.gateway, asNumber: TOR_AS_NUMBER },
        });
      save();
    },
  });

  function record(): ClusterRecord | undefined {
    let etcd: LabCluster['etcd'];
    try {
      etcd = cluster.etcd;
    } catch {
      return undefined;
    }
    const sup = cluster.etcdSupervision;
    return {
      name: o.name,
      phase,
      ...(error ? { error } : {}),
      supervisor: identify(process.pid),
      controlSocket,
      logFile: join(o.dir, 'supervisor.log'),
      encapsulation: cluster.encapsulation,
      underlay: o.underlay,
      poolCidr: o.poolCidr,
      ...(o.ipv6PoolCidr ? { ipv6PoolCidr: o.ipv6PoolCidr } : {}),
      etcd: {
        endpoint: etcd.endpoint,
        localEndpoint: etcd.localEndpoint,
        pid: etcd.pid,
        start: identify(etcd.pid).start,
        healthy: etcdHealthy,
        restarts: sup.restarts,
        lastExit: sup.lastExit,
        logFile: join(o.dir, 'etcd', 'etcd.log'),
      },
      cniBinDir: cluster.cniBinDir,
      nodes: cluster.nodes.map((n) => ({
        name: n.name,
        address: n.ipv4,
        pid: n.process?.pid,
        start: n.process ? identify(n.process.pid).start : undefined,
        ready: ready.get(n.name) ?? false,
        restarts: n.restarts,
        lastExit: n.lastExit,
        cniConfDir: n.confDir,
        cniSocket: n.cniSocket,
        bgpSocket: n.bgpSocket,
        logFile: n.logFile,
        healthUrl: n.healthUrl,
      })),
      ...(cluster.torSocket
        ? {
            tor: {
              address: cluster.lab.addressing.gateway,
              asNumber: TOR_AS_NUMBER,
              pid: cluster.torPid,
              start: cluster.torPid ? identify(cluster.torPid).start : undefined,
              controlSocket: cluster.torSocket,
            },
          }
        : {}),
      reflectors: cluster.reflectors.map((r) => ({
        name: r.name,
        address: r.ipv4,
        pid: r.process?.pid,
        start: r.process ? identify(r.process.pid).start : undefined,
        ready: ready.get(r.name) ?? false,
        restarts: r.restarts,
        lastExit: r.lastExit,
        controlSocket: r.controlSocket,
        logFile: r.logFile,
      })),
      pods: [...pods.values()].map(podRecord),
      namespaces,
      events,
    };
  }

  function save(): void {
    if (phase === 'stopping' && stopping) return;
    const r = record();
    if (r) writeRecord(o.dir, r);
  }

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      phase = 'stopping';
      save();
      clearInterval(poller);
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      await datastore?.close().catch(() => undefined);
      await cluster.down();
      rmSync(o.dir, { recursive: true, force: true });
      clearCurrentCluster(o.name);
      stopRequested();
    })();
    return stopping;
  };
  const onSignal = (): void => {
    log(`stopping cluster ${o.name}`);
    void stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const poll = async (): Promise<void> => {
    const states = await Promise.all([
      ...cluster.nodes.map((n) => cluster.ready(n)),
      ...cluster.reflectors.map((r) => cluster.reflectorReady(r)),
    ]);
    let changed = false;
    [...cluster.nodes, ...cluster.reflectors].forEach((n, i) => {
      if (ready.get(n.name) !== states[i]) {
        const what = i < cluster.nodes.length ? 'calico-node' : 'calico-reflector';
        if (phase === 'ready') log(`${what} ${n.name} is ${states[i] ? 'ready' : 'not ready'}`);
        ready.set(n.name, states[i] ?? false);
        changed = true;
      }
    });
    let healthy = false;
    try {
      healthy = (await fetch(`${cluster.etcd.localEndpoint}/health`, { signal: AbortSignal.timeout(1000) }))
        .ok;
    } catch {
      healthy = false;
    }
    if (healthy !== etcdHealthy) {
      if (phase === 'ready') log(`etcd is ${healthy ? 'healthy' : 'unhealthy'}`);
      etcdHealthy = healthy;
      changed = true;
    }
    if (changed) save();
  };
  let polling = false;
  const poller = setInterval(() => {
    if (polling || phase === 'stopping') return;
    polling = true;
    poll()
      .catch(() => undefined)
      .finally(() => (polling = false));
  }, HEALTH_POLL_MS);

  try {
    await cluster.up();
    await poll();
    if (cluster.bgp)
      await waitForBgp(
        cluster,
        o.routeReflectors ?? 0,
        dedicated > 0,
        o.tor === 'bird',
        !!o.ipv6PoolCidr,
        log,
      );
    for (const node of cluster.nodes)
      for (let i = 1; i <= o.demoPods; i++)
        await addPod({
          op: 'pod-add',
          node: node.name,
          namespace: LAB_POD_NAMESPACE,
          name: `${node.name}-pod${i}`,
          labels: {},
        });
    server = await serveControl(controlSocket, (req) => handle(req));
    phase = 'ready';
    save();
    if (o.makeCurrent) setCurrentCluster(o.name);
    log(`cluster ${o.name} is ready`);
    o.onReady?.();
  } catch (err) {
    phase = 'failed';
    error = (err as Error).message;
    save();
    log(`cluster ${o.name} failed: ${error}`);
    // The reason is usually in the last lines of a process's own log, which stop() removes.
    for (const file of [
      join(o.dir, 'etcd', 'etcd.log'),
      ...cluster.reflectors.map((r) => r.logFile),
      ...cluster.nodes.map((n) => n.logFile),
    ]) {
      const tail = existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').slice(-3) : [];
      for (const line of tail) if (line) log(`  ${file.slice(o.dir.length + 1)}: ${line}`);
    }
    await stop();
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    throw err;
  }
  await stopped;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);

  async function handle(req: ControlRequest): Promise<unknown> {
    switch (req.op) {
      case 'stop':
        setImmediate(() => void stop());
        return { stopping: true };
      case 'namespace-add':
        return namespaceAdd(req.name, req.labels);
      case 'namespace-label':
        return namespaceLabel(req.name, req.labels);
      case 'pod-add':
        return podRecord(await addPod(req));
      case 'pod-label':
        return podLabel(req.namespace, req.name, req.labels);
      case 'pod-del':
        return podDel(req.namespace, req.name);
    }
  }

  function store(): Datastore {
    if (!datastore) throw new Error('the datastore is not open yet');
    return datastore;
  }

  async function namespaceAdd(name: string, labels: Record<string, string>): Promise<unknown> {
    if (namespaces[name]) throw new RequestError(`namespace ${name} already exists`);
    await store().apply('Profile', namespaceProfile(name, labels));
    namespaces[name] = { ...labels };
    save();
    log(`namespace ${name} added`);
    return { name, labels };
  }

  async function namespaceLabel(name: string, changes: Record<string, string | null>): Promise<unknown> {
    const labels = namespaces[name];
    if (!labels) throw new RequestError(unknownNamespace(name));
    applyChanges(labels, changes);
    await store().apply('Profile', namespaceProfile(name, labels));
    save();
    return { name, labels };
  }

  function unknownNamespace(name: string): string {
    return `namespace ${JSON.stringify(name)} does not exist (namespaces: ${Object.keys(namespaces).join(', ') || 'none'}); add it with "calico cluster namespace add ${name}"`;
  }

  async function addPod(req: Extract<ControlRequest, { op: 'pod-add' }>): Promise<PodState> {
    const key = `${req.namespace}/${req.name}`;
    if (!namespaces[req.namespace]) throw new RequestError(unknownNamespace(req.namespace));
    if (pods.has(key))
      throw new RequestError(`pod ${key} already exists (on ${pods.get(key)?.pod.node.name})`);
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(req.name) || req.name.length > 40)
      throw new RequestError(
        `pod name ${JSON.stringify(req.name)}: expected 1–40 of [a-z0-9-], starting and ending with a letter or digit`,
      );
    let node: ReturnType<LabCluster['node']>;
    let serve: ReturnType<typeof parsePodPorts>;
    try {
      node = cluster.node(req.node);
      serve = parsePodPorts(req.serve ?? '');
    } catch (err) {
      throw new RequestError((err as Error).message);
    }
    if (req.serviceAccount)
      await store()
        .create('Profile', serviceAccountProfile(req.namespace, req.serviceAccount))
        .catch((err: unknown) => {
          if (!isDatastoreError(err, 'AlreadyExists')) throw err;
        });
    const pod = await cluster.addPod(node, req.name, {
      namespace: req.namespace,
      serve,
      ...(req.ip ? { ip: req.ip } : {}),
    });
    const state: PodState = {
      pod,
      labels: { ...req.labels },
      serve: serve.map((p) => `${p.protocol}:${p.port}`),
      serviceAccount: req.serviceAccount,
    };
    pods.set(key, state);
    try {
      await writeEndpoint(state);
    } catch (err) {
      pods.delete(key);
      await cluster.deletePod(pod).catch(() => undefined);
      throw err;
    }
    save();
    log(`pod ${key} on ${node.name}: ${pod.ip}`);
    return state;
  }

  /**
   * What Calico's controllers keep on a pod's WorkloadEndpoint when there is no Kubernetes API
   * for the plugin to read: the pod's labels, its service account, and its named ports.
   */
  async function writeEndpoint(state: PodState): Promise<void> {
    const ds = store();
    const { pod } = state;
    const weps = await ds.list('WorkloadEndpoint', { namespace: pod.namespace });
    const wep = weps.items.find((w) => w.spec.pod === pod.pod && w.spec.node === pod.node.name);
    if (!wep) throw new Error(`no WorkloadEndpoint for pod ${pod.namespace}/${pod.pod} after CNI ADD`);
    await ds.apply('WorkloadEndpoint', {
      ...wep,
      metadata: {
        ...wep.metadata,
        labels: {
          ...state.labels,
          ...(state.serviceAccount ? { 'projectcalico.org/serviceaccount': state.serviceAccount } : {}),
          'projectcalico.org/namespace': pod.namespace,
          'projectcalico.org/orchestrator': 'k8s',
        },
      },
      spec: {
        ...wep.spec,
        ...(state.serviceAccount ? { serviceAccountName: state.serviceAccount } : {}),
        profiles: [
          `kns.${pod.namespace}`,
          ...(state.serviceAccount ? [`ksa.${pod.namespace}.${state.serviceAccount}`] : []),
        ],
        ports: pod.ports.map((p) => ({
          name: servedPortName(p),
          protocol: p.protocol === 'tcp' ? 'TCP' : 'UDP',
          port: p.port,
        })),
      },
    });
  }

  function findPod(namespace: string, name: string): PodState {
    const state = pods.get(`${namespace}/${name}`);
    if (!state)
      throw new RequestError(
        `pod ${namespace}/${name} does not exist (pods: ${[...pods.keys()].join(', ') || 'none'})`,
      );
    return state;
  }

  async function podLabel(
    namespace: string,
    name: string,
    changes: Record<string, string | null>,
  ): Promise<unknown> {
    const state = findPod(namespace, name);
    applyChanges(state.labels, changes);
    await writeEndpoint(state);
    save();
    return podRecord(state);
  }

  async function podDel(namespace: string, name: string): Promise<unknown> {
    const state = findPod(namespace, name);
    pods.delete(`${namespace}/${name}`);
    await cluster.deletePod(state.pod);
    save();
    log(`pod ${namespace}/${name} deleted`);
    return { deleted: `${namespace}/${name}` };
  }
}

function podRecord(s: PodState): ClusterPodRecord {
  return {
    namespace: s.pod.namespace,
    name: s.pod.pod,
    node: s.pod.node.name,
    ip: s.pod.ip,
    ...(s.pod.ipv6 ? { ipv6: s.pod.ipv6 } : {}),
    netns: s.pod.name,
    labels: s.labels,
    serve: s.serve,
    serviceAccount: s.serviceAccount,
  };
}

/** `k=v` sets, `k: null` (from `k-`) removes. */
function applyChanges(labels: Record<string, string>, changes: Record<string, string | null>): void {
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) delete labels[k];
    else labels[k] = v;
  }
}

/** The top-of-rack router's AS (a private AS; the nodes are in Calico's default, 64512). */
export const TOR_AS_NUMBER = 65001;
const NODE_AS_NUMBER = 64512;

/** The cluster ID Calico's route-reflector docs give the in-cluster reflectors. */
export const ROUTE_REFLECTOR_CLUSTER_ID = '244.0.0.1';

/**
 * Calico's route-reflector set-up: the reflectors' Nodes (created here, before calico-node or
 * calico-reflector starts; calico-node keeps their labels and BGP spec) carry label
 * `route-reflector: "true"` and `routeReflectorClusterID`; the node-to-node mesh is off; one
 * BGPPeer peers every node with them. A dedicated reflector's Node also has its address, which no
 * calico-node fills in for it.
 */
async function writeRouteReflectors(
  ds: Datastore,
  reflectors: readonly { name: string; ipv4Address?: string }[],
): Promise<void> {
  if (reflectors.length === 0) return;
  for (const { name, ipv4Address } of reflectors) {
    await ds.apply('Node', {
      metadata: { name, labels: { 'kubernetes.io/hostname': name, 'route-reflector': 'true' } },
      spec: {
        bgp: {
          ...(ipv4Address ? { ipv4Address } : {}),
          routeReflectorClusterID: ROUTE_REFLECTOR_CLUSTER_ID,
        },
      },
    });
  }
  await ds.apply('BGPConfiguration', {
    metadata: { name: 'default' },
    spec: { nodeToNodeMeshEnabled: false },
  });
  await ds.apply('BGPPeer', {
    metadata: { name: 'peer-with-route-reflectors' },
    spec: { nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" },
  });
}

/**
 * Waits until every node's BGP agent has all its sessions Established: the full mesh (n − 1 each)
 * without reflectors; with R reflectors on nodes, a reflector peers with every other node (n − 1)
 * and any other node with the R reflectors; with R dedicated reflectors, every node with the R;
 * twice that in a dual-stack cluster, plus one with a ToR.
 */
async function waitForBgp(
  cluster: LabCluster,
  routeReflectors: number,
  dedicated: boolean,
  tor: boolean,
  ipv6: boolean,
  log: (line: string) => void,
  timeoutMs = 60_000,
): Promise<void> {
  const expectedOf = (index: number): number =>
    (tor ? 1 : 0) +
    // Dual stack: one IPv4 and one IPv6 session with each node peer.
    (ipv6 ? 2 : 1) *
      (dedicated
        ? routeReflectors
        : routeReflectors === 0 || index < routeReflectors
          ? cluster.nodes.length - 1
          : routeReflectors);
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(cluster.nodes.map((n) => n.name));
  while (pending.size > 0) {
    for (const [index, node] of cluster.nodes.entries()) {
      if (!pending.has(node.name)) continue;
      const expected = expectedOf(index);
      const status = await queryAgent(node.bgpSocket).catch(() => undefined);
      const up = status?.peers.filter((p) => p.state === 'up').length ?? 0;
      if (status && up >= expected) {
        pending.delete(node.name);
        log(`BGP on ${node.name}: ${up}/${expected} sessions Established`);
      }
    }
    if (pending.size === 0) return;
    if (Date.now() > deadline)
      throw new Error(
        `BGP sessions not Established within ${timeoutMs / 1000} s on ${[...pending].join(', ')}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** JSON over HTTP on a unix socket: POST / with a ControlRequest, 200 with the result or 400/500 with `{error}`. */
async function serveControl(
  path: string,
  handle: (req: ControlRequest) => Promise<unknown>,
): Promise<Server> {
  // One request at a time: pods and labels are read-modify-write on the supervisor's own state.
  let queue: Promise<unknown> = Promise.resolve();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const run = async (): Promise<void> => {
        try {
          const result = await handle(JSON.parse(body) as ControlRequest);
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result }));
        } catch (err) {
          res
            .writeHead(err instanceof RequestError ? 400 : 500, { 'content-type': 'application/json' })
            .end(JSON.stringify({ error: (err as Error).message }));
        }
      };
      queue = queue.then(run, run);
    });
  });
  rmSync(path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return server;
}
