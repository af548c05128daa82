/**
 * A small calico-ts cluster on this machine — `calico cluster up`, the calico-node integration
 * tests and the node benchmark all run this one. The fabric gives an underlay namespace (the
 * switch, 198.51.100.1) and N node namespaces; etcd runs on the underlay like a management-network
 * etcd; each node runs a real calico-node process; pods are plumbed through the real CNI plugin
 * binaries, exactly as a container runtime on that node would. Nothing is added to this machine's
 * own network namespace except loopback listeners that relay to etcd and to each node's health
 * and metrics ports.
 */
import { execFile } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CommandResult,
  execInNamespace,
  type NamespaceProcess,
  NetNamespace,
  waitFor,
} from '@calico-ts/kernel';
import { type CalicoPrograms, installPlugins } from './calico-programs.ts';
import { addNetworkList, type Conflist, delNetworkList } from './cni-runtime.ts';
import { LabError } from './errors.ts';
import { type EtcdProcess, startEtcd } from './etcd.ts';
import { createLab, LAB_SUBNET_V4, type Lab, type LabNode, removeLab } from './fabric.ts';
import { logger } from './logger.ts';
import { type PodPort, type PodServers, servePorts } from './pod-sockets.ts';
import { identify, type ProcessIdentity, signalIfSame, stillRunning } from './process-identity.ts';
import { relayTcp, type TcpRelay } from './tcp-relay.ts';
import { parseBirdProtocols, type TorProtocolState, torBirdConfig } from './tor.ts';
import { underlayAddressing } from './underlay.ts';

/** The Kubernetes namespace every lab pod is in (CNI_ARGS K8S_POD_NAMESPACE). */
export const LAB_POD_NAMESPACE = 'default';

/** calico-node's health and Prometheus ports inside each node (Calico's defaults). */
const HEALTH_PORT = 9099;
const METRICS_PORT = 9091;
/** calico-reflector's health port inside its namespace (its default). */
const REFLECTOR_HEALTH_PORT = 9100;
const STATE_FILE = 'state.json';

/** How pods on different nodes reach each other: plain BGP-routed, or through a tunnel. */
export type LabEncapsulation = 'none' | 'vxlan' | 'ipip';

/** What a supervising cluster saw happen to a process it started. */
export type ClusterEvent =
  | {
      type: 'exited';
      /** `etcd` or the node's name. */
      process: string;
      pid: number;
      code: number | null;
      signal: string | null;
      /** When it is started again. */
      restartInMs: number;
    }
  | { type: 'restarted'; process: string; pid: number; restarts: number }
  | { type: 'restart-failed'; process: string; error: string };

export interface LabClusterOptions {
  /** The cluster's name: the prefix of every namespace (1–10 of [a-z0-9-]). */
  name: string;
  nodes: number;
  /** What the nodes run: calico-node and the CNI plugins (see calicoPrograms). */
  programs: CalicoPrograms;
  /**
   * How pods on different nodes reach each other (default vxlan). `none` and `ipip` run BGP
   * between the nodes; `vxlan` uses Calico's VXLAN backend without BGP.
   */
  encapsulation?: LabEncapsulation;
  /** The older name of `encapsulation`: `bgp` = none. */
  backend?: 'vxlan' | 'bgp';
  /** The underlay's IPv4 subnet (default LAB_SUBNET_V4); see chooseUnderlay. */
  underlay?: string;
  /**
   * Write etcd's and each calico-node's output to `<dir>/etcd/etcd.log` and
   * `<dir>/<node>/calico-node.log` instead of this process's stderr (a cluster left running).
   */
  logFiles?: boolean;
  /**
   * Start a calico-node or etcd that exits on its own again, after a backoff that doubles from
   * 1 s to 30 s (reset once it has run for a minute); each exit and restart goes to onEvent.
   */
  supervise?: boolean;
  onEvent?: (event: ClusterEvent) => void;
  /** The IPv4 pod pool calico-node creates (default 10.244.0.0/16). */
  poolCidr?: string;
  /**
   * Dual stack: an IPv6 pod pool (e.g. fd00:10:244::/48). The underlay gets IPv6 (2001:db8::/64),
   * each calico-node its node's IPv6 address (IP6) and this pool, and the CNI plugin assigns one
   * address of each family.
   */
  ipv6PoolCidr?: string;
  /** Pods `pod1…podN` that up() adds on every node (default 0). */
  podsPerNode?: number;
  /** More calico-node environment for every node; wins over the lab's own. */
  env?: Record<string, string>;
  /**
   * The cluster's directory: etcd data, CNI bin dir, per-node sockets, state.json. Default: a new
   * temporary directory. down() removes it.
   */
  dir?: string;
  /** Loopback port of the relay to etcd (default 0 = any free port). */
  etcdPort?: number;
  /** How long each calico-node may take to become ready (default 90 s). */
  readyTimeoutMs?: number;
  /** Progress lines for a person (default: none). */
  log?: (line: string) => void;
  /**
   * Called with etcd's endpoint (from this host) once etcd is up and before any calico-node
   * starts: where the caller writes what a cluster's controllers would, such as the profile
   * `kns.default` the lab's pods name (`ensureNamespaceProfile` from @calico-ts/datastore).
   * Without it, pods get no traffic under policy enforcement.
   */
  prepareDatastore?: (etcdEndpoint: string) => Promise<void>;
  /**
   * Dedicated route reflectors: `calico-reflector` processes (programs.calicoReflector), each in
   * its own underlay host `<name>-rr<k>` at `reflectorAddress(k)`, started after prepareDatastore
   * (which writes their Node resources, named `<name>-rr<k>`) and before the calico-nodes.
   * Default 0.
   */
  reflectors?: number;
  /** More calico-reflector flags for every reflector (e.g. `--hold-time 6`). */
  reflectorArgs?: readonly string[];
  /**
   * A BIRD top-of-rack router in the underlay namespace at the gateway address, with its own AS,
   * one eBGP session per node (see tor.ts); the underlay then forwards. The nodes reach it
   * through a BGPPeer that prepareDatastore writes (`peerIP` the gateway, `asNumber` the ToR's).
   */
  tor?: { asNumber: number; nodeAsNumber: number };
}

/** A dedicated route reflector host and its calico-reflector. */
export interface ClusterReflector extends LabNode {
  /** Its status socket (`calico-reflector status --control`). */
  controlSocket: string;
  logFile: string;
  process: NamespaceProcess | undefined;
  restarts: number;
  lastExit: string | undefined;
  /** Loopback relay to its health port (/readiness). */
  healthUrl: string;
}

/** A fabric node with its calico-node. */
export interface ClusterNode extends LabNode {
  /** This node's directory (sockets, nodename file). */
  dir: string;
  /** calico-node's CNI socket; the conflist's `agent_socket`. */
  cniSocket: string;
  /** This node's CNI config dir, holding `10-calico.conflist` (a runtime's --cni-config-dir). */
  confDir: string;
  /** calico-node's BGP agent control socket (`calico node status`). */
  bgpSocket: string;
  /** calico-node's output with `logFiles`. */
  logFile: string;
  /** The running calico-node, undefined while stopped. */
  process: NamespaceProcess | undefined;
  /** How often the supervisor started calico-node again after it exited. */
  restarts: number;
  /** How the last calico-node exited on its own, e.g. `signal SIGKILL at 2026-…`. */
  lastExit: string | undefined;
  /** Loopback relays to calico-node's health (9099) and metrics (9091) ports. */
  healthUrl: string;
  metricsUrl: string;
}

export interface ClusterPod {
  /**
   * The pod's network namespace name and container ID: `<node>-<pod>` for a pod added without a
   * namespace (also its K8S_POD_NAME), `<node>-<namespace>-<pod>` with one.
   */
  name: string;
  /** K8S_POD_NAMESPACE and K8S_POD_NAME. */
  namespace: string;
  pod: string;
  node: ClusterNode;
  /** Ports its listeners answer on (`serve`). */
  ports: readonly PodPort[];
  /** The namespace's path, as CNI_NETNS. */
  netns: string;
  /** Its first address from the CNI result. */
  ip: string;
  /** Its IPv6 address from the CNI result (dual stack). */
  ipv6: string | undefined;
  /** The final CNI ADD result (what a runtime caches and hands to DEL). */
  result: Record<string, unknown>;
  /**
   * When addPod was called, the namespace was ready (CNI ADD started) and ADD returned, in
   * CLOCK_MONOTONIC milliseconds (`process.hrtime`), comparable across processes.
   */
  times: { requested: number; addStarted: number; addReturned: number };
}

export interface AddPodOptions {
  /** The pod's Kubernetes namespace; with it the pod is K8S_POD_NAME `pod` (not `<node>-<pod>`). */
  namespace?: string;
  /** The address to ask the plugin for (CNI_ARGS IP=, the plugin's address override). */
  ip?: string;
  /** Listeners to start in the pod (see servePorts). */
  serve?: readonly PodPort[];
}

export interface PodReachability {
  from: string;
  to: string;
  ok: boolean;
}

/** What diagnose() lists from a datastore when given one (an EtcdDatastore fits). */
export interface NodeLister {
  list(kind: 'Node'): Promise<{ items: readonly { metadata: { name: string }; spec?: unknown }[] }>;
}

/** What `removeLabCluster` needs from another process; written to `<dir>/state.json`. */
interface StateFile {
  name: string;
  /** The owning process first, then etcd, then the calico-nodes, each with its start time. */
  processes: ProcessIdentity[];
  etcdEndpoint: string;
  nodes: string[];
}

const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export class LabCluster {
  readonly name: string;
  readonly options: Readonly<LabClusterOptions>;
  #dir: string | undefined;
  #lab: Lab | undefined;
  #etcd: EtcdProcess | undefined;
  readonly nodes: ClusterNode[] = [];
  /** Dedicated route reflectors (LabClusterOptions.reflectors). */
  readonly reflectors: ClusterReflector[] = [];
  /** Pods added and not deleted, in order; down() runs CNI DEL for each. */
  readonly pods: ClusterPod[] = [];
  readonly #relays: TcpRelay[] = [];
  readonly #servers = new Map<ClusterPod, PodServers>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #tor: NamespaceProcess | undefined;
  #etcdRestarts = 0;
  #etcdLastExit: string | undefined;
  #down = false;

  constructor(options: LabClusterOptions) {
    this.name = options.name;
    this.options = options;
  }

  #log(line: string): void {
    this.options.log?.(line);
  }

  /** The fabric (underlay, node and pod namespaces; spawn() for more processes stopped on down()). */
  get lab(): Lab {
    if (!this.#lab) throw new LabError('Invalid', `lab cluster ${this.name} is not up`);
    return this.#lab;
  }

  get etcd(): EtcdProcess {
    if (!this.#etcd) throw new LabError('Invalid', `lab cluster ${this.name} has no etcd yet`);
    return this.#etcd;
  }

  /** The cluster's directory (see LabClusterOptions.dir). */
  get dir(): string {
    if (!this.#dir) throw new LabError('Invalid', `lab cluster ${this.name} is not up`);
    return this.#dir;
  }

  get encapsulation(): LabEncapsulation {
    const o = this.options;
    return o.encapsulation ?? (o.backend === 'bgp' ? 'none' : 'vxlan');
  }

  /** Whether the nodes peer with BGP (encapsulation none or ipip). */
  get bgp(): boolean {
    return this.encapsulation !== 'vxlan';
  }

  /** etcd's restarts by the supervisor and how it last exited. */
  get etcdSupervision(): { restarts: number; lastExit: string | undefined } {
    return { restarts: this.#etcdRestarts, lastExit: this.#etcdLastExit };
  }

  /** The underlay address of dedicated reflector k (1-based), known before up() builds it. */
  reflectorAddress(k: number): string {
    return underlayAddressing(this.options.underlay ?? LAB_SUBNET_V4, this.options.nodes).hostIpv4(k);
  }

  /** The underlay's prefix length (for Node `spec.bgp.ipv4Address`). */
  get underlayPrefixLength(): number {
    return underlayAddressing(this.options.underlay ?? LAB_SUBNET_V4, this.options.nodes).prefixLength;
  }

  /** CNI_PATH of every node: the plugins (built binaries or launchers). */
  get cniBinDir(): string {
    return join(this.dir, 'bin');
  }

  /**
   * Builds everything: fabric, etcd on the underlay, the CNI plugins, calico-node on every node
   * (then waits until each is ready), and `podsPerNode` pods per node. On failure, what was built
   * stays for down() to remove (callers call down() in a finally or afterAll).
   */
  async up(): Promise<void> {
    const o = this.options;
    if (process.getuid?.() !== 0)
      throw new LabError('NeedsRoot', 'a lab cluster needs root (it creates network namespaces)');
    if (o.dir !== undefined && existsSync(join(o.dir, STATE_FILE)))
      throw new LabError('Exists', `a cluster named ${this.name} already exists (${o.dir})`);
    this.#dir = o.dir ?? mkdtempSync(join(tmpdir(), `calico-ts-${this.name}-`));
    mkdirSync(this.#dir, { recursive: true });
    const underlay = o.underlay ?? LAB_SUBNET_V4;
    this.#log(`creating lab ${this.name}: underlay ${underlay} and ${o.nodes} node namespaces`);
    this.#lab = await createLab({
      prefix: this.name,
      nodes: o.nodes,
      underlay,
      ...(o.tor ? { router: true } : {}),
      ...(o.ipv6PoolCidr ? { ipv6: true } : {}),
    });

    this.#etcd = await startEtcd({
      dir: join(this.#dir, 'etcd'),
      name: this.name,
      netns: this.#lab.underlay.name,
      host: this.#lab.addressing.gateway,
      relayPort: o.etcdPort ?? 0,
      output: o.logFiles ? 'capture' : 'forward',
      timeoutMs: 30_000,
      ...(o.logFiles ? { logFile: join(this.#dir, 'etcd', 'etcd.log') } : {}),
      ...(o.supervise ? { onExit: (exit) => this.#etcdExited(exit) } : {}),
    });
    this.#log(`etcd is up at ${this.#etcd.endpoint} (from this host: ${this.#etcd.localEndpoint})`);
    this.#writeState();
    await o.prepareDatastore?.(this.#etcd.localEndpoint);

    installPlugins(o.programs, { binDir: this.cniBinDir, confDir: join(this.#dir, 'net.d') });
    if (o.tor) await this.#startTor(o.tor);

    for (let k = 1; k <= (o.reflectors ?? 0); k++) {
      const host = await this.#lab.addHost(k);
      const dir = join(this.#dir, host.name);
      mkdirSync(dir, { recursive: true });
      const health = await this.#relayInto(host, REFLECTOR_HEALTH_PORT);
      const rr: ClusterReflector = {
        ...host,
        controlSocket: join(dir, 'reflector.ctl'),
        logFile: join(dir, 'calico-reflector.log'),
        process: undefined,
        restarts: 0,
        lastExit: undefined,
        healthUrl: `http://127.0.0.1:${health.port}`,
      };
      this.reflectors.push(rr);
      await this.#spawnReflector(rr);
    }
    for (const rr of this.reflectors) {
      await this.#waitHealthy(rr, 'calico-reflector', o.readyTimeoutMs ?? 90_000);
      this.#log(`calico-reflector ${rr.name} (${rr.ipv4}) is ready`);
    }

    for (const fabricNode of this.#lab.nodes) {
      const dir = join(this.#dir, fabricNode.name);
      mkdirSync(dir, { recursive: true });
      const health = await this.#relayInto(fabricNode, HEALTH_PORT);
      const metrics = await this.#relayInto(fabricNode, METRICS_PORT);
      const node: ClusterNode = {
        ...fabricNode,
        dir,
        cniSocket: join(dir, 'cni.sock'),
        confDir: join(dir, 'net.d'),
        bgpSocket: join(dir, 'bgp.ctl'),
        logFile: join(dir, 'calico-node.log'),
        process: undefined,
        restarts: 0,
        lastExit: undefined,
        healthUrl: `http://127.0.0.1:${health.port}`,
        metricsUrl: `http://127.0.0.1:${metrics.port}`,
      };
      mkdirSync(node.confDir, { recursive: true });
      writeFileSync(
        join(node.confDir, '10-calico.conflist'),
        `${JSON.stringify(this.conflist(node), null, 2)}\n`,
      );
      this.nodes.push(node);
    }
    for (const node of this.nodes) await this.#spawnNode(node);
    for (const node of this.nodes) {
      await this.waitReady(node);
      this.#log(`calico-node ${node.name} (${node.ipv4}) is ready`);
    }

    for (const node of this.nodes) {
      for (let i = 1; i <= (o.podsPerNode ?? 0); i++) {
        const pod = await this.addPod(node, `pod${i}`);
        this.#log(`pod ${pod.name} on ${node.name}: ${pod.ip}`);
      }
    }
  }

  /** The ToR's BIRD control socket (`birdc -s`); undefined without a ToR. */
  get torSocket(): string | undefined {
    return this.options.tor ? join(this.dir, 'tor', 'bird.ctl') : undefined;
  }

  /** The ToR's BIRD pid while it runs. */
  get torPid(): number | undefined {
    return this.#tor?.pid;
  }

  async #startTor(tor: { asNumber: number; nodeAsNumber: number }): Promise<void> {
    const dir = join(this.dir, 'tor');
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'bird.conf');
    writeFileSync(
      conf,
      torBirdConfig({
        routerId: this.lab.addressing.gateway,
        asNumber: tor.asNumber,
        neighbors: this.lab.nodes.map((n) => ({ name: n.name, address: n.ipv4, asNumber: tor.nodeAsNumber })),
      }),
    );
    const out = this.options.logFiles ? openSync(join(dir, 'bird.log'), 'a') : 'inherit';
    try {
      this.#tor = await this.lab.spawn(
        this.lab.underlay.namespace,
        'bird',
        ['-f', '-c', conf, '-s', join(dir, 'bird.ctl')],
        { stdio: ['ignore', out, out] },
      );
    } finally {
      if (typeof out === 'number') closeSync(out);
    }
    this.#writeState();
    const proc = this.#tor;
    let exited = false;
    void proc.exited.then(() => (exited = true));
    await waitFor(
      async () => {
        if (exited)
          throw new LabError('NotReady', `BIRD (the ToR, pid ${proc.pid}) exited at start; see ${dir}`);
        return (await this.birdc('show', 'status')).includes('Daemon is up');
      },
      { timeoutMs: 30_000, what: 'the ToR BIRD to answer' },
    );
    this.#log(`top-of-rack BIRD (AS ${tor.asNumber}) is up at ${this.lab.addressing.gateway}`);
  }

  /** A `birdc` command to the ToR; its output (empty when it does not answer). */
  async birdc(...args: string[]): Promise<string> {
    const socket = this.torSocket;
    if (!socket) throw new LabError('Invalid', `cluster ${this.name} has no top-of-rack router`);
    return new Promise((resolve) =>
      execFile('birdc', ['-s', socket, ...args], { timeout: 5000 }, (_err, stdout) => resolve(stdout ?? '')),
    );
  }

  /** The ToR's session with each node (`birdc show protocols`). */
  async torSessions(): Promise<TorProtocolState[]> {
    return parseBirdProtocols(await this.birdc('show', 'protocols'));
  }

  /** The prefixes the ToR has learned (`birdc show route`), sorted. */
  async torRoutes(): Promise<string[]> {
    const out = await this.birdc('show', 'route');
    return [...new Set([...out.matchAll(/^([0-9a-f.:]+\/\d+)\s/gm)].map((m) => m[1]!))].sort();
  }

  async #spawnReflector(rr: ClusterReflector): Promise<void> {
    const [command, ...args] = this.options.programs.calicoReflector ?? [];
    if (command === undefined)
      throw new LabError(
        'Invalid',
        'dedicated reflectors need programs.calicoReflector (@calico-ts/reflector)',
      );
    const out = this.options.logFiles ? openSync(rr.logFile, 'a') : 'inherit';
    let proc: NamespaceProcess;
    try {
      proc = await this.lab.spawn(
        rr,
        command,
        [
          ...args,
          '--node',
          rr.name,
          '--etcd-endpoints',
          this.etcd.endpoint,
          '--listen',
          rr.ipv4,
          '--health',
          `127.0.0.1:${REFLECTOR_HEALTH_PORT}`,
          '--control',
          rr.controlSocket,
          '--log-level',
          process.env['CALICO_LOG_LEVEL'] ?? 'warn',
          ...(this.options.reflectorArgs ?? []),
        ],
        { env: process.env, stdio: ['ignore', out, out] },
      );
    } finally {
      if (typeof out === 'number') closeSync(out);
    }
    rr.process = proc;
    const startedAt = Date.now();
    if (this.options.supervise)
      void proc.exited.then((exit) => {
        if (this.#down || rr.process !== proc) return;
        rr.process = undefined;
        this.#restartLater(
          rr.name,
          proc.pid,
          exit,
          Date.now() - startedAt,
          rr.restarts,
          (e) => (rr.lastExit = e),
          async () => {
            await this.#spawnReflector(rr);
            rr.restarts++;
            return { pid: rr.process?.pid ?? -1, restarts: rr.restarts };
          },
        );
      });
    this.#writeState();
  }

  /** Stops a dedicated reflector (SIGTERM: it closes its sessions with a Cease). */
  async stopReflector(rr: ClusterReflector, graceMs = 10_000): Promise<void> {
    const proc = rr.process;
    rr.process = undefined;
    await proc?.stop(graceMs);
  }

  /** Starts a dedicated reflector again after stopReflector and waits until it is ready. */
  async startReflector(rr: ClusterReflector): Promise<void> {
    await this.#spawnReflector(rr);
    await this.#waitHealthy(rr, 'calico-reflector', this.options.readyTimeoutMs ?? 90_000);
  }

  /** A dedicated reflector by 1-based index or name (`<cluster>-rr1`, or `rr1`). */
  reflector(ref: number | string): ClusterReflector {
    const rr = this.reflectors.find(
      (r) => r.index === ref || r.name === ref || r.name === `${this.name}-${ref}`,
    );
    if (!rr)
      throw new LabError(
        'Invalid',
        `reflector ${JSON.stringify(String(ref))}: no such reflector in cluster ${this.name} (reflectors: ${this.reflectors.map((r) => r.name).join(', ') || 'none'})`,
      );
    return rr;
  }

  async #relayInto(node: LabNode, port: number): Promise<TcpRelay> {
    const relay = await relayTcp({
      listen: { host: '127.0.0.1', port: 0 },
      target: { host: '127.0.0.1', port, namespace: node.namespace },
    });
    this.#relays.push(relay);
    return relay;
  }

  /** calico-node's environment on a node: Calico's variables, pointed at this lab. */
  #nodeEnv(node: ClusterNode): NodeJS.ProcessEnv {
    const o = this.options;
    const encap = this.encapsulation;
    return {
      ...process.env,
      NODENAME: node.name,
      ETCD_ENDPOINTS: this.etcd.endpoint,
      CALICO_NETWORKING_BACKEND: encap === 'vxlan' ? 'vxlan' : 'bird',
      CALICO_IPV4POOL_CIDR: o.poolCidr ?? '10.244.0.0/16',
      CALICO_IPV4POOL_VXLAN: encap === 'vxlan' ? 'Always' : 'Never',
      CALICO_IPV4POOL_IPIP: encap === 'ipip' ? 'Always' : 'Never',
      CALICO_CNI_AGENT_SOCKET: node.cniSocket,
      CALICO_NODENAME_FILE: join(node.dir, 'nodename'),
      CALICO_BGP_STATUS_SOCKET: node.bgpSocket,
      CALICO_LOG_LEVEL: process.env['CALICO_LOG_LEVEL'] ?? 'warn',
      ...(o.ipv6PoolCidr && node.ipv6
        ? { IP6: `${node.ipv6}/64`, CALICO_IPV6POOL_CIDR: o.ipv6PoolCidr, FELIX_IPV6SUPPORT: 'true' }
        : {}),
      ...o.env,
    };
  }

  async #spawnNode(node: ClusterNode): Promise<void> {
    const [command, ...args] = this.options.programs.calicoNode;
    if (command === undefined) throw new LabError('Invalid', 'programs.calicoNode is empty');
    const out = this.options.logFiles ? openSync(node.logFile, 'a') : 'inherit';
    let proc: NamespaceProcess;
    try {
      proc = await this.lab.spawn(node, command, args, {
        env: this.#nodeEnv(node),
        stdio: ['ignore', out, out],
      });
    } finally {
      if (typeof out === 'number') closeSync(out);
    }
    node.process = proc;
    const startedAt = Date.now();
    if (this.options.supervise)
      void proc.exited.then((exit) => {
        // stopNode() clears node.process first: only an exit nobody asked for is restarted.
        if (this.#down || node.process !== proc) return;
        node.process = undefined;
        const ranMs = Date.now() - startedAt;
        this.#restartLater(
          node.name,
          proc.pid,
          exit,
          ranMs,
          node.restarts,
          (e) => (node.lastExit = e),
          async () => {
            await this.#spawnNode(node);
            node.restarts++;
            return { pid: node.process?.pid ?? -1, restarts: node.restarts };
          },
        );
      });
    this.#writeState();
  }

  #etcdStartedAt = Date.now();

  #etcdExited(exit: { code: number | null; signal: NodeJS.Signals | null }): void {
    if (this.#down) return;
    const ranMs = Date.now() - this.#etcdStartedAt;
    this.#restartLater(
      'etcd',
      this.#etcd?.pid ?? -1,
      exit,
      ranMs,
      this.#etcdRestarts,
      (e) => (this.#etcdLastExit = e),
      async () => {
        await this.etcd.start();
        this.#etcdStartedAt = Date.now();
        this.#etcdRestarts++;
        this.#writeState();
        return { pid: this.etcd.pid, restarts: this.#etcdRestarts };
      },
    );
  }

  /**
   * Reports an exit and starts the process again after a backoff: 1 s doubling per restart to
   * 30 s, back to 1 s when it had run for a minute (as kubelet's CrashLoopBackOff resets).
   */
  #restartLater(
    what: string,
    pid: number,
    exit: { code: number | null; signal: string | null },
    ranMs: number,
    restarts: number,
    recordExit: (e: string) => void,
    restart: () => Promise<{ pid: number; restarts: number }>,
  ): void {
    const restartInMs = ranMs > 60_000 ? 1000 : Math.min(30_000, 1000 * 2 ** Math.min(restarts, 5));
    recordExit(
      `${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`} at ${new Date().toISOString()}`,
    );
    this.options.onEvent?.({
      type: 'exited',
      process: what,
      pid,
      code: exit.code,
      signal: exit.signal,
      restartInMs,
    });
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#down) return;
      restart().then(
        (r) => this.options.onEvent?.({ type: 'restarted', process: what, ...r }),
        (err: Error) => {
          this.options.onEvent?.({ type: 'restart-failed', process: what, error: err.message });
          if (!this.#down)
            this.#restartLater(what, pid, { code: null, signal: null }, 0, restarts + 1, recordExit, restart);
        },
      );
    }, restartInMs);
    this.#timers.add(timer);
  }

  /** Starts calico-node on a node (again, after stopNode) and waits until it is ready. */
  async startNode(node: ClusterNode): Promise<void> {
    await this.#spawnNode(node);
    await this.waitReady(node);
  }

  /** Stops a node's calico-node (SIGTERM; it leaves the dataplane as it is). */
  async stopNode(node: ClusterNode, graceMs = 10_000): Promise<void> {
    const proc = node.process;
    node.process = undefined;
    await proc?.stop(graceMs);
  }

  /** Whether the node's calico-node answers 200 on /readiness now. */
  ready(node: ClusterNode): Promise<boolean> {
    return this.#ready(node);
  }

  async #ready(node: { healthUrl: string }): Promise<boolean> {
    try {
      return (
        (await fetch(`${node.healthUrl}/readiness`, { signal: AbortSignal.timeout(2000) })).status === 200
      );
    } catch {
      return false;
    }
  }

  /** Whether a dedicated reflector answers 200 on /readiness now. */
  reflectorReady(rr: ClusterReflector): Promise<boolean> {
    return this.#ready(rr);
  }

  /** Waits until the node's calico-node answers 200 on /readiness; fails at once if it exits. */
  waitReady(node: ClusterNode, timeoutMs = this.options.readyTimeoutMs ?? 90_000): Promise<void> {
    return this.#waitHealthy(node, 'calico-node', timeoutMs);
  }

  async #waitHealthy(
    node: { name: string; healthUrl: string; process: NamespaceProcess | undefined },
    what: string,
    timeoutMs: number,
  ): Promise<void> {
    let settled = false;
    const proc = node.process;
    const exited = proc?.exited.then((e) => {
      if (!settled)
        throw new LabError(
          'NotReady',
          `${what} ${node.name} (pid ${proc.pid}) exited with ${e.code ?? e.signal} before it was ready`,
        );
    });
    exited?.catch(() => undefined);
    try {
      await Promise.race([
        waitFor(async () => settled || (await this.#ready(node)), {
          timeoutMs,
          what: `${what} ${node.name} ready`,
        }),
        ...(exited ? [exited] : []),
      ]);
    } finally {
      settled = true;
    }
  }

  /** The network config a runtime on this node uses: the calico plugin with calico-ipam. */
  conflist(node: ClusterNode): Conflist {
    return {
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      plugins: [
        {
          type: 'calico',
          agent_socket: node.cniSocket,
          ipam: {
            type: 'calico-ipam',
            ...(this.options.ipv6PoolCidr ? { assign_ipv4: 'true', assign_ipv6: 'true' } : {}),
          },
        },
      ],
    };
  }

  #target(node: ClusterNode, name: string, namespace: string, pod: string, ip?: string) {
    return {
      containerId: name,
      netns: `/run/netns/${name}`,
      ifname: 'eth0',
      args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${pod}${ip ? `;IP=${ip}` : ''}`,
      hostNetns: node.name,
    };
  }

  /** A node by ClusterNode, 1-based index or name (`<cluster>-n2`, or just `n2`). */
  node(ref: ClusterNode | number | string): ClusterNode {
    const node =
      typeof ref === 'object'
        ? ref
        : this.nodes.find((n) => n.index === ref || n.name === ref || n.name === `${this.name}-${ref}`);
    if (!node)
      throw new LabError(
        'Invalid',
        `node ${JSON.stringify(String(ref))}: no such node in cluster ${this.name} (nodes: ${this.nodes.map((n) => n.name).join(', ')})`,
      );
    return node;
  }

  /**
   * A pod `<node>-<pod>` on a node (by ClusterNode or 1-based index): a namespace, then CNI ADD
   * through the plugins on CNI_PATH, run in the node's namespace as that node's runtime would.
   */
  async addPod(
    ref: ClusterNode | number | string,
    pod: string,
    options: AddPodOptions = {},
  ): Promise<ClusterPod> {
    const node = this.node(ref);
    const requested = monotonicMs();
    const fabricPod = await this.lab.addPod(
      node.index,
      options.namespace ? `${options.namespace}-${pod}` : pod,
    );
    const namespace = options.namespace ?? LAB_POD_NAMESPACE;
    const podName = options.namespace ? pod : fabricPod.name;
    try {
      const addStarted = monotonicMs();
      const target = this.#target(node, fabricPod.name, namespace, podName, options.ip);
      const result = await addNetworkList(this.conflist(node), target, [this.cniBinDir]);
      const addReturned = monotonicMs();
      const ips = (result['ips'] as { address: string }[]).map((a) => String(a.address).split('/')[0]!);
      const ip = ips.find((a) => !a.includes(':')) ?? ips[0]!;
      const ipv6 = ips.find((a) => a.includes(':'));
      const p: ClusterPod = {
        name: fabricPod.name,
        namespace,
        pod: podName,
        node,
        ports: options.serve ?? [],
        netns: target.netns,
        ip,
        ipv6,
        result,
        times: { requested, addStarted, addReturned },
      };
      this.pods.push(p);
      if (p.ports.length > 0)
        this.#servers.set(
          p,
          await servePorts(fabricPod.namespace, p.ports, `${namespace}/${podName}`, {
            ipv6: ipv6 !== undefined,
          }),
        );
      return p;
    } catch (err) {
      const added = this.pods.find((p) => p.name === fabricPod.name);
      if (added) await this.deletePod(added).catch(() => undefined);
      else await this.lab.removePod(fabricPod.name).catch(() => undefined);
      throw err;
    }
  }

  /** CNI DEL of a pod, its listeners closed and its namespace removed. */
  async deletePod(pod: ClusterPod): Promise<void> {
    const i = this.pods.indexOf(pod);
    if (i >= 0) this.pods.splice(i, 1);
    await this.#servers.get(pod)?.close();
    this.#servers.delete(pod);
    try {
      await delNetworkList(
        this.conflist(pod.node),
        this.#target(pod.node, pod.name, pod.namespace, pod.pod),
        [this.cniBinDir],
        pod.result,
      );
    } finally {
      await this.lab.removePod(pod.name);
    }
  }

  /** Runs a command to completion inside a pod's namespace. */
  async inPod(pod: ClusterPod, command: string, args: readonly string[]): Promise<CommandResult> {
    const ns = NetNamespace.open(pod.netns);
    try {
      return await execInNamespace(ns, command, args);
    } finally {
      ns.close();
    }
  }

  /** Whether `count` pings from a pod to an address are answered. */
  async ping(from: ClusterPod, to: string, count = 1): Promise<boolean> {
    return (await this.inPod(from, 'ping', ['-c', String(count), '-W', '2', to])).exitCode === 0;
  }

  /** Pings every pod from every other pod (each pair retried up to 15 s). */
  async checkConnectivity(): Promise<PodReachability[]> {
    const results: PodReachability[] = [];
    for (const from of this.pods) {
      const ns = NetNamespace.open(from.netns);
      try {
        for (const to of this.pods) {
          if (to === from) continue;
          const ok = await waitFor(
            async () => (await execInNamespace(ns, 'ping', ['-c', '1', '-W', '1', to.ip])).exitCode === 0,
            { timeoutMs: 15_000, what: `${from.name} → ${to.name}` },
          ).catch(() => false);
          results.push({ from: from.name, to: to.name, ok });
        }
      } finally {
        ns.close();
      }
    }
    return results;
  }

  /**
   * What a person looks at when pods cannot reach each other: every node's routes, VXLAN device,
   * neighbours and FDB, and calico-node's readiness; with a datastore, the Node resources too.
   */
  async diagnose(datastore?: NodeLister): Promise<string> {
    const out: string[] = [];
    for (const n of this.nodes) {
      for (const [cmd, args] of [
        ['ip', ['route', 'show', 'table', 'all']],
        ['ip', ['-d', 'link', 'show', 'type', 'vxlan']],
        ['ip', ['neigh', 'show', 'nud', 'permanent']],
        ['bridge', ['fdb', 'show', 'self']],
      ] as const) {
        const r = await execInNamespace(n.namespace, cmd, [...args]);
        out.push(`--- ${n.name}: ${cmd} ${args.join(' ')}\n${r.stdout}${r.stderr}`);
      }
      try {
        out.push(`--- ${n.name}: readiness\n${await (await fetch(`${n.healthUrl}/readiness`)).text()}`);
      } catch (err) {
        out.push(`--- ${n.name}: readiness unreachable: ${(err as Error).message}`);
      }
    }
    if (datastore) {
      try {
        for (const node of (await datastore.list('Node')).items)
          out.push(`--- Node ${node.metadata.name}: ${JSON.stringify(node.spec)}`);
      } catch (err) {
        out.push(`--- Nodes unreadable: ${(err as Error).message}`);
      }
    }
    return out.join('\n');
  }

  #writeState(): void {
    if (!this.#dir) return;
    const state: StateFile = {
      name: this.name,
      // Our own pid first: removeLabCluster asks this process to tear down what it made.
      processes: [
        process.pid,
        ...(this.#etcd ? [this.#etcd.pid] : []),
        ...this.nodes.flatMap((n) => (n.process ? [n.process.pid] : [])),
        ...this.reflectors.flatMap((r) => (r.process ? [r.process.pid] : [])),
        ...(this.#tor ? [this.#tor.pid] : []),
      ].map(identify),
      etcdEndpoint: this.#etcd?.localEndpoint ?? '',
      nodes: this.nodes.map((n) => n.name),
    };
    writeFileSync(join(this.#dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
  }

  /**
   * Tears everything down, whatever up() got to: pods (CNI DEL), calico-nodes, etcd, relays,
   * processes started with lab.spawn (all by pid), namespaces, the directory. Safe to call twice.
   */
  async down(): Promise<void> {
    if (this.#down) return;
    this.#down = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const s of this.#servers.values()) await s.close().catch(() => undefined);
    this.#servers.clear();
    for (const p of this.pods.splice(0)) {
      await delNetworkList(
        this.conflist(p.node),
        this.#target(p.node, p.name, p.namespace, p.pod),
        [this.cniBinDir],
        p.result,
      ).catch((err: unknown) => logger.debug({ err, pod: p.name }, 'CNI DEL on teardown'));
    }
    // calico-nodes first (they leave the dataplane as it is), etcd last, so nothing logs an outage.
    for (const n of [...this.nodes].reverse()) await this.stopNode(n).catch(() => undefined);
    for (const r of this.reflectors) await this.stopReflector(r).catch(() => undefined);
    await this.#etcd?.stop(10_000).catch(() => undefined);
    for (const r of this.#relays.splice(0)) await r.close().catch(() => undefined);
    try {
      await this.#lab?.teardown();
    } finally {
      if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
    }
  }
}

/**
 * Removes a lab cluster from another process (`calico cluster down`): asks the processes recorded
 * in `<dir>/state.json` to stop (the owning process first, which tears down what it made), kills
 * what is left after 15 s, then removes the lab's namespaces and the directory. Returns what was
 * removed.
 */
export async function removeLabCluster(name: string, dir: string): Promise<string[]> {
  const removed: string[] = [];
  const statePath = join(dir, STATE_FILE);
  if (existsSync(statePath)) {
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as StateFile;
    // A recorded pid is signalled only while it is still the process the cluster started.
    for (const p of state.processes ?? []) if (signalIfSame(p, 'SIGTERM')) removed.push(`process ${p.pid}`);
    await waitFor(() => (state.processes ?? []).every((p) => !stillRunning(p)), {
      timeoutMs: 15_000,
      what: 'processes to exit',
    }).catch(() => {
      for (const p of state.processes ?? []) signalIfSame(p, 'SIGKILL');
    });
  }
  removed.push(...(await removeLab(name)).map((n) => `namespace ${n}`));
  rmSync(dir, { recursive: true, force: true });
  return removed;
}
