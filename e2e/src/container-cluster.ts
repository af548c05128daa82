/**
 * A cluster of containers on one Docker bridge network: an etcd container and N calico-node
 * containers (the built calico-ts/node image) as hosts, and on request a BIRD container as the
 * top-of-rack router (calico-ts/bird). A pod is a network namespace inside a node container,
 * wired by the CNI plugin that the node container's install step put in its CNI directories, run
 * the way a container runtime runs it (CNI_* variables, the network config on stdin; with a
 * namespace, the K8S_POD_* CNI_ARGS a kubelet passes). What Kubernetes' controllers would write
 * (the `kns.<namespace>` profiles pods name) the test writes into etcd from this host.
 *
 * Driven through the docker CLI. Every container, network and directory carries the cluster's
 * prefix, and `destroy()` removes them all, by name.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Datastore, EtcdDatastore, ensureNamespaceProfile } from '@calico-ts/datastore';

export type Backend = 'bird' | 'vxlan';

export interface ClusterOptions {
  /** Prefix of every container, network and directory the cluster makes. */
  prefix: string;
  nodes: number;
  backend: Backend;
  nodeImage: string;
  etcdImage: string;
  poolCidr?: string;
  /**
   * Hosts outlive their calico-node container, as on a real machine: each node's network
   * namespace belongs to a holder container (`<node>-host`) that the node container joins, and
   * each pod is a container of its own (no network until CNI ADD gives it one), so restarting a
   * node container leaves the host's interfaces, routes and pods in place. The node container
   * then shares the host's PID namespace view (`--pid host`) to reach the pods' namespaces.
   */
  holders?: boolean;
}

export interface Pod {
  node: string;
  name: string;
  /** The Kubernetes namespace, for a pod added as a Kubernetes pod. */
  namespace?: string;
  /** The pod's own container, when the cluster has holders. */
  container?: string;
  netns: string;
  containerId: string;
  ip: string;
  hostInterface: string;
}

export class DockerError extends Error {
  override readonly name = 'DockerError';
}

/** docker <args>; stdout, or a DockerError with the command and its stderr. */
export function docker(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('docker', args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new DockerError(`docker ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export async function waitFor<T>(
  what: string,
  deadlineMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) {
      throw new Error(
        `timed out after ${deadlineMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export class ContainerCluster {
  readonly options: ClusterOptions;
  readonly network: string;
  readonly etcd: string;
  readonly nodes: string[];
  /** Per node: the host directories mounted as the node's /opt/cni/bin and /etc/cni/net.d. */
  #hostDir: string | undefined;
  /** The BIRD top-of-rack container, once startTor() ran. */
  readonly tor: string;
  #started = false;
  #etcdEndpoint = '';

  constructor(options: ClusterOptions) {
    this.options = options;
    this.network = `${options.prefix}-net`;
    this.etcd = `${options.prefix}-etcd`;
    this.nodes = Array.from({ length: options.nodes }, (_, i) => `${options.prefix}-n${i + 1}`);

    this.tor = `${options.prefix}-tor`;
  }

  /** A container's address on the cluster network. */
  async addressOf(container: string): Promise<string> {
    const out = await docker([
      'inspect',
      '--format',
      `{{(index .NetworkSettings.Networks "${this.network}").IPAddress}}`,
      container,
    ]);
    const ip = out.trim();
    if (!ip) throw new Error(`${container} has no address on ${this.network}`);
    return ip;
  }

  /** Runs `fn` with a connection to the cluster's etcd from this host (through the bridge). */
  async withDatastore<T>(fn: (datastore: Datastore) => Promise<T>): Promise<T> {
    const datastore = new EtcdDatastore({ endpoints: [this.#etcdEndpoint] });
    try {
      return await fn(datastore);
    } finally {
      await datastore.close();
    }
  }

  /**
   * Made on first use, not when the cluster is declared: a describe that is skipped or filtered
   * out never runs its afterAll, and would leave the directory behind.
   */
  get hostDir(): string {
    this.#hostDir ??= mkdtempSync(join(tmpdir(), `${this.options.prefix}-`));
    return this.#hostDir;
  }

  cniBinDir(node: string): string {
    return join(this.hostDir, node, 'opt-cni-bin');
  }

  cniNetDir(node: string): string {
    return join(this.hostDir, node, 'etc-cni-net.d');
  }

  async start(): Promise<void> {
    this.#started = true;
    const { prefix, backend, nodeImage, etcdImage } = this.options;
    await docker(['network', 'create', '--label', `calico-ts-e2e=${prefix}`, this.network]);
    await docker([
      'run',
      '--detach',
      '--name',
      this.etcd,
      '--network',
      this.network,
      etcdImage,
      '--data-dir=/var/lib/etcd',
      '--listen-client-urls=http://0.0.0.0:2379',
      `--advertise-client-urls=http://${this.etcd}:2379`,
    ]);
    this.#etcdEndpoint = `http://${await this.addressOf(this.etcd)}:2379`;
    // The profile pods of the default namespace name (kube-controllers' job in Kubernetes).
    await waitFor('etcd answering from the host', 30_000, () =>
      this.withDatastore((ds) => ensureNamespaceProfile(ds, 'default')),
    );
    const holders = this.options.holders === true;
    if (holders) {
      await Promise.all(
        this.nodes.map((node) =>
          docker([
            'run',
            '--detach',
            '--name',
            `${node}-host`,
            '--hostname',
            node,
            '--network',
            this.network,
            '--entrypoint',
            'sleep',
            nodeImage,
            'infinity',
          ]),
        ),
      );
    }
    await Promise.all(
      this.nodes.map((node) =>
        docker([
          'run',
          '--detach',
          '--name',
          node,
          ...(holders
            ? ['--network', `container:${node}-host`, '--pid', 'host']
            : ['--hostname', node, '--network', this.network]),
          // What the DaemonSet grants: no --privileged.
          '--cap-add',
          'NET_ADMIN',
          '--cap-add',
          'SYS_ADMIN',
          // The node container is the host here: the same directory is the host's /opt/cni/bin
          // (where the plugins' #! line points) and the install step's /host/opt/cni/bin.
          '--volume',
          `${this.cniBinDir(node)}:/host/opt/cni/bin`,
          '--volume',
          `${this.cniBinDir(node)}:/opt/cni/bin`,
          '--volume',
          `${this.cniNetDir(node)}:/host/etc/cni/net.d`,
          '--env',
          'CALICO_INSTALL_CNI=true',
          '--env',
          `ETCD_ENDPOINTS=http://${this.etcd}:2379`,
          '--env',
          `NODENAME=${node}`,
          '--env',
          `CALICO_NETWORKING_BACKEND=${backend}`,
          '--env',
          `CALICO_IPV4POOL_CIDR=${this.options.poolCidr ?? '10.244.0.0/16'}`,
          '--env',
          `CALICO_IPV4POOL_VXLAN=${backend === 'vxlan' ? 'Always' : 'Never'}`,
          nodeImage,
        ]),
      ),
    );
    await Promise.all(this.nodes.map((node) => this.waitReady(node)));
  }

  /** Until the node container runs and calico-node answers its readiness probe. */
  waitReady(node: string): Promise<boolean> {
    return waitFor(`${node} ready`, 60_000, async () => {
      const state = (await docker(['inspect', '--format', '{{.State.Status}}', node])).trim();
      if (state !== 'running') {
        const logs = await docker(['logs', '--tail', '20', node]).catch(() => '');
        throw new Error(`${node} is ${state}\n${logs}`);
      }
      await this.exec(node, [
        '/usr/local/bin/node',
        '-e',
        "fetch('http://127.0.0.1:9099/readiness').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))",
      ]);
      return true;
    });
  }

  exec(node: string, command: string[], options: { env?: Record<string, string>; input?: string } = {}) {
    const env = Object.entries(options.env ?? {}).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
    return docker(
      ['exec', ...(options.input !== undefined ? ['--interactive'] : []), ...env, node, ...command],
      options.input,
    );
  }

  /** The conflist the node's install step wrote, as the host sees it. */
  installedConflist(node: string): { name: string; cniVersion: string; plugins: Record<string, unknown>[] } {
    return JSON.parse(readFileSync(join(this.cniNetDir(node), '10-calico.conflist'), 'utf8'));
  }

  /**
   * A pod: a network namespace in the node, then CNI ADD through /opt/cni/bin/calico. With a
   * namespace, the pod is a Kubernetes pod of that namespace (its profile is written first).
   */
  async addPod(node: string, name: string, namespace?: string): Promise<Pod> {
    const netns = `${this.options.prefix}-${name}`;
    if (namespace) await this.withDatastore((ds) => ensureNamespaceProfile(ds, namespace));
    const container = this.options.holders ? netns : undefined;
    let netnsPath = `/var/run/netns/${netns}`;
    if (container) {
      await docker([
        'run',
        '--detach',
        '--name',
        container,
        '--network',
        'none',
        '--entrypoint',
        'sleep',
        this.options.nodeImage,
        'infinity',
      ]);
      const pid = (await docker(['inspect', '--format', '{{.State.Pid}}', container])).trim();
      netnsPath = `/proc/${pid}/ns/net`;
    }
    if (!container) await this.exec(node, ['ip', 'netns', 'add', netns]);
    const conflist = this.installedConflist(node);
    // CNI SPEC §"Network configuration lists": the runtime hands each plugin its entry with the
    // list's name and cniVersion.
    const netconf = { cniVersion: conflist.cniVersion, name: conflist.name, ...conflist.plugins[0] };
    const containerId = `${netns}-cid`;
    const out = await this.exec(node, ['/opt/cni/bin/calico'], {
      env: {
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: containerId,
        CNI_NETNS: netnsPath,
        CNI_IFNAME: 'eth0',
        CNI_PATH: '/opt/cni/bin',
        ...(namespace ? { CNI_ARGS: `K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}` } : {}),
      },
      input: JSON.stringify(netconf),
    });
    const result = JSON.parse(out) as {
      ips?: { address: string }[];
      interfaces?: { name: string; sandbox?: string }[];
    };
    const ip = result.ips?.[0]?.address.split('/')[0];
    const hostInterface = result.interfaces?.find((i) => !i.sandbox)?.name;
    if (!ip || !hostInterface) throw new Error(`CNI ADD for ${name} on ${node} returned no address: ${out}`);
    return {
      node,
      name,
      ...(namespace ? { namespace } : {}),
      ...(container ? { container } : {}),
      netns,
      containerId,
      ip,
      hostInterface,
    };
  }

  /** CNI DEL through the same plugin, with the same network config. */
  async delPod(pod: Pod): Promise<void> {
    const conflist = this.installedConflist(pod.node);
    const netconf = { cniVersion: conflist.cniVersion, name: conflist.name, ...conflist.plugins[0] };
    await this.exec(pod.node, ['/opt/cni/bin/calico'], {
      env: {
        CNI_COMMAND: 'DEL',
        CNI_CONTAINERID: pod.containerId,
        CNI_NETNS: pod.container
          ? `/proc/${(await docker(['inspect', '--format', '{{.State.Pid}}', pod.container])).trim()}/ns/net`
          : `/var/run/netns/${pod.netns}`,
        CNI_IFNAME: 'eth0',
        CNI_PATH: '/opt/cni/bin',
        ...(pod.namespace ? { CNI_ARGS: `K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name}` } : {}),
      },
      input: JSON.stringify(netconf),
    });
  }

  /**
   * A BIRD container as the top-of-rack router, AS `torAs`: an eBGP session with every node (the
   * nodes' side is a global BGPPeer written to etcd, as an operator would), importing what they
   * announce and announcing nothing. Returns its address.
   */
  async startTor(birdImage: string, torAs = 65000, nodeAs = 64512): Promise<string> {
    const confDir = join(this.hostDir, 'tor');
    mkdirSync(confDir, { recursive: true });
    const nodes = await Promise.all(this.nodes.map(async (n) => [n, await this.addressOf(n)] as const));
    const conf = [
      'router id 192.0.2.254;',
      'protocol device {}',
      `template bgp node { local as ${torAs}; hold time 30; ipv4 { import all; export none; }; }`,
      ...nodes.map(
        ([n, ip]) => `protocol bgp ${n.replaceAll('-', '_')} from node { neighbor ${ip} as ${nodeAs}; }`,
      ),
      '',
    ].join('\n');
    writeFileSync(join(confDir, 'bird.conf'), conf);
    await docker([
      'run',
      '--detach',
      '--name',
      this.tor,
      '--network',
      this.network,
      '--volume',
      `${confDir}:/etc/bird:ro`,
      birdImage,
    ]);
    const address = await this.addressOf(this.tor);
    await this.withDatastore((ds) =>
      ds.apply('BGPPeer', {
        apiVersion: 'projectcalico.org/v3',
        kind: 'BGPPeer',
        metadata: { name: 'tor' },
        spec: { peerIP: address, asNumber: torAs },
      }),
    );
    return address;
  }

  /** The pod's IPv4 address on eth0 as the pod itself sees it (pods in containers only). */
  async podAddress(pod: Pod): Promise<string | undefined> {
    if (!pod.container) throw new Error(`${pod.name} is not in a container of its own`);
    const out = await docker(['exec', pod.container, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    return /inet (\S+)\//.exec(out)?.[1];
  }

  /** docker restart of a node container (its holder, and with it the host's network, stays). */
  async restartNode(node: string): Promise<void> {
    await docker(['restart', '--time', '5', node]);
    await this.waitReady(node);
  }

  /** birdc in the ToR container. */
  birdc(...args: string[]): Promise<string> {
    return docker(['exec', this.tor, 'birdc', ...args]);
  }

  /** Whether a network interface exists in the node's own namespace. */
  async hasLink(node: string, name: string): Promise<boolean> {
    return this.exec(node, ['ip', 'link', 'show', name]).then(
      () => true,
      () => false,
    );
  }

  /** One ping from the pod; true when the reply came. */
  async ping(from: Pod, to: string): Promise<boolean> {
    try {
      if (from.container) await docker(['exec', from.container, 'ping', '-c', '1', '-W', '1', to]);
      else await this.exec(from.node, ['ip', 'netns', 'exec', from.netns, 'ping', '-c', '1', '-W', '1', to]);
      return true;
    } catch {
      return false;
    }
  }

  async routes(node: string): Promise<string> {
    return this.exec(node, ['ip', 'route', 'show']);
  }

  /** Removes every container and the network of this cluster, and its host directories. */
  async destroy(): Promise<void> {
    if (this.#started) {
      const ids = (await docker(['ps', '--all', '--quiet', '--filter', `name=^${this.options.prefix}-`]))
        .split('\n')
        .filter(Boolean);
      if (ids.length > 0) await docker(['rm', '--force', '--volumes', ...ids]);
      await docker(['network', 'rm', this.network]).catch(() => {});
    }
    if (this.#hostDir) rmSync(this.#hostDir, { recursive: true, force: true });
  }
}

/** Whether a Docker daemon answers (after scripts/ensure-docker.sh had its chance). */
export function dockerAnswers(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}
