/**
 * `calico cluster up`: a small data centre on this machine. The kernel lab gives an underlay
 * namespace (the switch, 192.0.2.1) and N node namespaces; etcd runs on the underlay like a
 * management-network etcd; each node runs a real calico-node; demo pods are plumbed through the
 * real CNI plugin binaries, exactly as a container runtime on that node would. Nothing is added to
 * this machine's own network namespace except a loopback listener that relays to etcd.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addNetworkList, type Conflist, delNetworkList, InstallError, installCni } from '@calico-ts/cni';
import { EtcdDatastore } from '@calico-ts/datastore';
import {
  createLab,
  execInNamespace,
  type Lab,
  type LabNode,
  type NamespaceProcess,
  NetNamespace,
  relayTcp,
  removeLab,
  type TcpRelay,
  waitFor,
} from '@calico-ts/kernel';

export interface ClusterOptions {
  name: string;
  nodes: number;
  backend: 'vxlan' | 'bgp';
  poolCidr: string;
  podsPerNode: number;
  stateDir: string;
  /** Loopback port of the relay to etcd (0 = any free port). */
  etcdPort: number;
  log: (line: string) => void;
}

export interface ClusterPod {
  name: string;
  node: string;
  netns: string;
  ip: string;
  result: Record<string, unknown>;
}

interface StateFile {
  name: string;
  pids: number[];
  etcdEndpoint: string;
  nodes: string[];
}

export class ClusterError extends Error {
  override readonly name = 'ClusterError';
}

export const stateDirFor = (name: string): string => `/run/calico-ts/${name}`;

/** Where the calico-node and plugin entry points are: source when run from source, dist when built. */
function entryPoints(): { node: string; plugin: (name: string) => string; execArgv: string[] } {
  const nodeIndex = fileURLToPath(import.meta.resolve('@calico-ts/node'));
  const cniIndex = fileURLToPath(import.meta.resolve('@calico-ts/cni'));
  const fromSource = nodeIndex.endsWith('.ts');
  return {
    node: join(dirname(nodeIndex), fromSource ? 'main.ts' : 'main.js'),
    plugin: (name) =>
      fromSource ? join(dirname(cniIndex), 'bin', `${name}.ts`) : join(dirname(cniIndex), `${name}.js`),
    execArgv: fromSource ? ['--conditions=@calico-ts/source'] : [],
  };
}

export class LocalCluster {
  readonly o: ClusterOptions;
  lab: Lab | undefined;
  datastore: EtcdDatastore | undefined;
  readonly pods: ClusterPod[] = [];
  readonly #relays: TcpRelay[] = [];
  readonly #processes: NamespaceProcess[] = [];
  #etcdEndpoint = '';
  readonly #healthUrls = new Map<string, string>();

  constructor(options: ClusterOptions) {
    this.o = options;
  }

  get etcdEndpoint(): string {
    return this.#etcdEndpoint;
  }

  async up(): Promise<void> {
    const { o } = this;
    if (process.getuid?.() !== 0)
      throw new ClusterError('calico cluster up needs root (it creates network namespaces)');
    if (existsSync(join(o.stateDir, 'state.json'))) {
      throw new ClusterError(
        `a cluster named ${o.name} already exists (${o.stateDir}); run "calico cluster down --name ${o.name}" first`,
      );
    }
    mkdirSync(o.stateDir, { recursive: true });
    o.log(`creating lab ${o.name}: underlay 192.0.2.0/24 and ${o.nodes} node namespaces`);
    this.lab = await createLab({ prefix: o.name, nodes: o.nodes });

    // etcd on the underlay, reached from here through a loopback relay.
    const ul = this.lab.underlay;
    const etcd = await this.lab.spawn(
      ul.namespace,
      'etcd',
      [
        '--name',
        o.name,
        '--data-dir',
        join(o.stateDir, 'etcd'),
        '--listen-client-urls',
        'http://192.0.2.1:2379',
        '--advertise-client-urls',
        'http://192.0.2.1:2379',
        '--listen-peer-urls',
        'http://192.0.2.1:2380',
        '--initial-advertise-peer-urls',
        'http://192.0.2.1:2380',
        '--initial-cluster',
        `${o.name}=http://192.0.2.1:2380`,
        // etcd 3.4's default logger ignores --log-level for raft chatter; zap honours it.
        '--logger',
        'zap',
        '--log-level',
        'error',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    this.#processes.push(etcd);
    const relay = await relayTcp({
      listen: { host: '127.0.0.1', port: o.etcdPort },
      target: { host: '192.0.2.1', port: 2379, namespace: ul.namespace },
    });
    this.#relays.push(relay);
    this.#etcdEndpoint = `http://127.0.0.1:${relay.port}`;
    this.datastore = new EtcdDatastore({ endpoints: [this.#etcdEndpoint] });
    const ds = this.datastore;
    await waitFor(
      async () => {
        try {
          await ds.list('ClusterInformation');
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 30_000, what: 'etcd on the underlay' },
    );
    o.log(`etcd is up at http://192.0.2.1:2379 (from this host: ${this.#etcdEndpoint})`);
    this.#writeState();

    const entries = entryPoints();
    this.#installPlugins(entries);

    for (const node of this.lab.nodes) await this.#startNode(node, entries);
    for (const node of this.lab.nodes) {
      await waitFor(() => this.#ready(node.name), {
        timeoutMs: 90_000,
        what: `calico-node ${node.name} ready`,
      });
      o.log(`calico-node ${node.name} (${node.ipv4}) is ready`);
    }

    for (const node of this.lab.nodes) {
      for (let i = 1; i <= o.podsPerNode; i++) {
        const pod = await this.addPod(node, `pod${i}`);
        o.log(`pod ${pod.name} on ${pod.node}: ${pod.ip}`);
      }
    }
  }

  /**
   * The CNI plugins as a node would have them: the built shim put in place by installCni when the
   * cni package is built (fast start), else launchers that run the plugin from source.
   */
  #installPlugins(entries: ReturnType<typeof entryPoints>): void {
    const binDir = join(this.o.stateDir, 'bin');
    try {
      installCni({ binDir, confDir: join(this.o.stateDir, 'net.d') });
      return;
    } catch (err) {
      if (!(err instanceof InstallError && err.code === 'BUNDLE_MISSING')) throw err;
    }
    mkdirSync(binDir, { recursive: true });
    for (const name of ['calico', 'calico-ipam']) {
      const file = join(binDir, name);
      writeFileSync(
        file,
        `#!/bin/sh\nexec ${process.execPath} ${entries.execArgv.join(' ')} ${entries.plugin(name)}\n`,
      );
      chmodSync(file, 0o755);
    }
  }

  async #startNode(node: LabNode, entries: ReturnType<typeof entryPoints>): Promise<void> {
    const { o } = this;
    const dir = join(o.stateDir, node.name);
    mkdirSync(dir, { recursive: true });
    const proc = await this.lab!.spawn(
      node.namespace,
      process.execPath,
      [...entries.execArgv, entries.node],
      {
        env: {
          ...process.env,
          NODENAME: node.name,
          ETCD_ENDPOINTS: 'http://192.0.2.1:2379',
          CALICO_NETWORKING_BACKEND: o.backend === 'bgp' ? 'bird' : 'vxlan',
          CALICO_IPV4POOL_CIDR: o.poolCidr,
          CALICO_IPV4POOL_VXLAN: o.backend === 'vxlan' ? 'Always' : 'Never',
          CALICO_CNI_AGENT_SOCKET: join(dir, 'cni.sock'),
          CALICO_NODENAME_FILE: join(dir, 'nodename'),
          CALICO_BGP_STATUS_SOCKET: join(dir, 'bgp.ctl'),
          CALICO_LOG_LEVEL: process.env['CALICO_LOG_LEVEL'] ?? 'warn',
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    this.#processes.push(proc);
    const health = await relayTcp({
      listen: { host: '127.0.0.1', port: 0 },
      target: { host: '127.0.0.1', port: 9099, namespace: node.namespace },
    });
    this.#relays.push(health);
    this.#healthUrls.set(node.name, `http://127.0.0.1:${health.port}`);
    this.#writeState();
  }

  async #ready(node: string): Promise<boolean> {
    try {
      return (await fetch(`${this.#healthUrls.get(node)}/readiness`)).status === 200;
    } catch {
      return false;
    }
  }

  #conflist(node: string): Conflist {
    return {
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      plugins: [
        {
          type: 'calico',
          agent_socket: join(this.o.stateDir, node, 'cni.sock'),
          ipam: { type: 'calico-ipam' },
        },
      ],
    };
  }

  async addPod(node: LabNode, pod: string): Promise<ClusterPod> {
    const labPod = await this.lab!.addPod(node.index, pod);
    const netns = `/run/netns/${labPod.name}`;
    const result = await addNetworkList(
      this.#conflist(node.name),
      {
        containerId: labPod.name,
        netns,
        ifname: 'eth0',
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${labPod.name}`,
        hostNetns: node.name,
      },
      [join(this.o.stateDir, 'bin')],
    );
    const ip = String((result['ips'] as { address: string }[])[0]!.address).split('/')[0]!;
    const p = { name: labPod.name, node: node.name, netns, ip, result };
    this.pods.push(p);
    return p;
  }

  /** Pings every pod from every other pod; returns the failures. */
  async checkConnectivity(): Promise<{ from: string; to: string; ok: boolean }[]> {
    const results: { from: string; to: string; ok: boolean }[] = [];
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

  /** Routes, VXLAN neighbours and FDB of every node: what to look at when pods cannot reach each other. */
  async diagnose(): Promise<string> {
    const out: string[] = [];
    for (const n of this.lab?.nodes ?? []) {
      for (const [cmd, args] of [
        ['ip', ['route', 'show', 'table', 'all']],
        ['ip', ['neigh', 'show', 'dev', 'vxlan.calico']],
        ['bridge', ['fdb', 'show', 'dev', 'vxlan.calico']],
      ] as const) {
        const r = await execInNamespace(n.namespace, cmd, [...args]);
        out.push(`--- ${n.name}: ${cmd} ${args.join(' ')}\n${r.stdout}${r.stderr}`);
      }
      try {
        out.push(
          `--- ${n.name}: readiness ${await (await fetch(`${this.#healthUrls.get(n.name)}/readiness`)).text()}`,
        );
      } catch (err) {
        out.push(`--- ${n.name}: readiness unreachable: ${(err as Error).message}`);
      }
    }
    for (const node of (await this.datastore?.list('Node'))?.items ?? []) {
      out.push(`--- Node ${node.metadata.name}: ${JSON.stringify(node.spec)}`);
    }
    return out.join('\n');
  }

  #writeState(): void {
    const state: StateFile = {
      name: this.o.name,
      // Our own pid first: `calico cluster down` asks this process to tear down what it made.
      pids: [process.pid, ...this.#processes.map((p) => p.pid)],
      etcdEndpoint: this.#etcdEndpoint,
      nodes: this.lab?.nodes.map((n) => n.name) ?? [],
    };
    writeFileSync(join(this.o.stateDir, 'state.json'), `${JSON.stringify(state, null, 2)}\n`);
  }

  /** Tears everything down: pods (CNI DEL), processes by pid, namespaces, relays, state. */
  async down(): Promise<void> {
    for (const p of this.pods.splice(0)) {
      await delNetworkList(
        this.#conflist(p.node),
        { containerId: p.name, netns: p.netns, ifname: 'eth0', hostNetns: p.node },
        [join(this.o.stateDir, 'bin')],
        p.result,
      ).catch(() => undefined);
    }
    // calico-nodes first (they leave the dataplane as it is), etcd last, so nothing logs an outage.
    for (const p of this.#processes.slice(1).reverse()) await p.stop(10_000).catch(() => undefined);
    await this.datastore?.close().catch(() => undefined);
    await this.#processes[0]?.stop(10_000).catch(() => undefined);
    for (const r of this.#relays.splice(0)) await r.close().catch(() => undefined);
    await this.lab?.teardown();
    rmSync(this.o.stateDir, { recursive: true, force: true });
  }
}

/**
 * `calico cluster down` from another process: stops the recorded processes by pid and removes the
 * lab's namespaces. Returns what was removed.
 */
export async function downByName(name: string, stateDir = stateDirFor(name)): Promise<string[]> {
  const removed: string[] = [];
  const statePath = join(stateDir, 'state.json');
  if (existsSync(statePath)) {
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as StateFile;
    for (const pid of state.pids) {
      try {
        process.kill(pid, 'SIGTERM');
        removed.push(`process ${pid}`);
      } catch {
        // already gone
      }
    }
    await waitFor(() => state.pids.every((pid) => !alive(pid)), {
      timeoutMs: 15_000,
      what: 'processes to exit',
    }).catch(() => {
      for (const pid of state.pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    });
  }
  removed.push(...(await removeLab(name)).map((n) => `namespace ${n}`));
  rmSync(stateDir, { recursive: true, force: true });
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
