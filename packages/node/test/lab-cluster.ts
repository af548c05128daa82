/**
 * A small cluster in the kernel lab for calico-node tests: an underlay with etcd on 192.0.2.1,
 * N node namespaces each running a real calico-node process (from source), and pods added through
 * the real CNI plugin binaries, the way a container runtime on that node would.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EtcdDatastore } from '@calico-ts/datastore';
import {
  createLab,
  execInNamespace,
  type Lab,
  type LabNode,
  type NamespaceProcess,
  NetNamespace,
  relayTcp,
  type TcpRelay,
  waitFor,
} from '@calico-ts/kernel';
import { type EtcdProcess, startEtcd } from '../../../test-support/etcd.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { addNetworkList, type Conflist, delNetworkList } from '../../cni/test/runtime.ts';

const REPO = resolve(import.meta.dirname, '../../..');

export interface ClusterNode {
  lab: LabNode;
  name: string;
  dir: string;
  socket: string;
  process: NamespaceProcess | undefined;
  /** Loopback relays to the node's health (9099) and metrics (9091) ports. */
  healthUrl: string;
  metricsUrl: string;
}

export interface PodHandle {
  name: string;
  node: ClusterNode;
  netns: string;
  ip: string;
  result: Record<string, unknown>;
}

export class LabCluster {
  readonly prefix: string;
  readonly dir: string;
  lab!: Lab;
  etcd!: EtcdProcess;
  datastore!: EtcdDatastore;
  nodes: ClusterNode[] = [];
  readonly #relays: TcpRelay[] = [];
  readonly #pods: PodHandle[] = [];
  readonly #binDir: string;

  constructor() {
    this.prefix = runPrefix('nd');
    this.dir = mkdtempSync(join(tmpdir(), `calico-ts-${this.prefix}-`));
    this.#binDir = join(this.dir, 'bin');
  }

  async start(options: { nodes: number; env?: Record<string, string> }): Promise<void> {
    this.lab = await createLab({ prefix: this.prefix, nodes: options.nodes });
    this.etcd = await startEtcd({
      dir: join(this.dir, 'etcd'),
      netns: this.lab.underlay.name,
      host: '192.0.2.1',
    });
    this.datastore = new EtcdDatastore({ endpoints: [this.etcd.localEndpoint] });
    mkdirSync(this.#binDir, { recursive: true });
    for (const name of ['calico', 'calico-ipam']) {
      const file = join(this.#binDir, name);
      writeFileSync(
        file,
        `#!/bin/sh\nexec ${process.execPath} --conditions=@calico-ts/source ${join(REPO, 'packages/cni/src/bin', `${name}.ts`)}\n`,
      );
      chmodSync(file, 0o755);
    }
    for (const n of this.lab.nodes) {
      const dir = join(this.dir, n.name);
      mkdirSync(dir, { recursive: true });
      const health = await relayTcp({
        listen: { host: '127.0.0.1', port: 0 },
        target: { host: '127.0.0.1', port: 9099, namespace: n.namespace },
      });
      const metrics = await relayTcp({
        listen: { host: '127.0.0.1', port: 0 },
        target: { host: '127.0.0.1', port: 9091, namespace: n.namespace },
      });
      this.#relays.push(health, metrics);
      const node: ClusterNode = {
        lab: n,
        name: n.name,
        dir,
        socket: join(dir, 'cni.sock'),
        process: undefined,
        healthUrl: `http://127.0.0.1:${health.port}`,
        metricsUrl: `http://127.0.0.1:${metrics.port}`,
      };
      this.nodes.push(node);
    }
    for (const node of this.nodes) await this.startNode(node, options.env);
  }

  async startNode(node: ClusterNode, env: Record<string, string> = {}): Promise<void> {
    node.process = await this.lab.spawn(
      node.lab,
      process.execPath,
      ['--conditions=@calico-ts/source', join(REPO, 'packages/node/src/main.ts')],
      {
        env: {
          ...process.env,
          NODENAME: node.name,
          ETCD_ENDPOINTS: this.etcd.endpoint,
          CALICO_NETWORKING_BACKEND: 'vxlan',
          CALICO_CNI_AGENT_SOCKET: node.socket,
          CALICO_NODENAME_FILE: join(node.dir, 'nodename'),
          CALICO_LOG_LEVEL: 'warn',
          ...env,
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    await this.waitReady(node);
  }

  async stopNode(node: ClusterNode): Promise<void> {
    await node.process?.stop(10_000);
    node.process = undefined;
  }

  async waitReady(node: ClusterNode, timeoutMs = 60_000): Promise<void> {
    await waitFor(
      async () => {
        try {
          return (await fetch(`${node.healthUrl}/readiness`)).status === 200;
        } catch {
          return false;
        }
      },
      { timeoutMs, what: `calico-node ${node.name} ready` },
    );
  }

  conflist(node: ClusterNode): Conflist {
    return {
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      plugins: [{ type: 'calico', agent_socket: node.socket, ipam: { type: 'calico-ipam' } }],
    };
  }

  async addPod(node: ClusterNode, name: string): Promise<PodHandle> {
    const labPod = await this.lab.addPod(node.lab.index, name);
    labPod.namespace.close();
    const netnsName = labPod.name;
    const netns = `/run/netns/${netnsName}`;
    const result = await addNetworkList(
      this.conflist(node),
      {
        containerId: `c-${name}`,
        netns,
        ifname: 'eth0',
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name}`,
        hostNetns: node.name,
      },
      [this.#binDir],
    );
    const ip = String((result['ips'] as { address: string }[])[0]!.address).split('/')[0]!;
    const pod = { name, node, netns, ip, result };
    this.#pods.push(pod);
    return pod;
  }

  async deletePod(pod: PodHandle): Promise<void> {
    await delNetworkList(
      this.conflist(pod.node),
      {
        containerId: `c-${pod.name}`,
        netns: pod.netns,
        ifname: 'eth0',
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name}`,
        hostNetns: pod.node.name,
      },
      [this.#binDir],
      pod.result,
    );
  }

  /** Runs a command inside a pod's namespace. */
  async inPod(pod: PodHandle, cmd: string, args: string[]) {
    const ns = NetNamespace.open(pod.netns);
    try {
      return await execInNamespace(ns, cmd, args);
    } finally {
      ns.close();
    }
  }

  async ping(from: PodHandle, to: string, count = 1): Promise<boolean> {
    return (await this.inPod(from, 'ping', ['-c', String(count), '-W', '2', to])).exitCode === 0;
  }

  /** What a person would look at when cross-node traffic fails: routes, VXLAN neighbours, FDB, Felix's health. */
  async diagnose(): Promise<string> {
    const out: string[] = [];
    for (const n of this.nodes) {
      for (const [cmd, args] of [
        ['ip', ['route', 'show', 'table', 'all']],
        ['ip', ['neigh', 'show', 'dev', 'vxlan.calico']],
        ['bridge', ['fdb', 'show', 'dev', 'vxlan.calico']],
        ['ip', ['-d', 'link', 'show', 'vxlan.calico']],
      ] as const) {
        const r = await execInNamespace(n.lab.namespace, cmd, [...args]);
        out.push(`--- ${n.name}: ${cmd} ${args.join(' ')}\n${r.stdout}${r.stderr}`);
      }
      try {
        out.push(`--- ${n.name}: readiness\n${await (await fetch(`${n.healthUrl}/readiness`)).text()}`);
      } catch (err) {
        out.push(`--- ${n.name}: readiness unreachable: ${(err as Error).message}`);
      }
    }
    for (const node of (await this.datastore.list('Node')).items)
      out.push(`--- Node ${node.metadata.name}: ${JSON.stringify(node.spec)}`);
    return out.join('\n');
  }

  async teardown(): Promise<void> {
    for (const n of this.nodes) await n.process?.stop(5_000).catch(() => {});
    for (const r of this.#relays) await r.close().catch(() => {});
    await this.datastore?.close().catch(() => {});
    await this.etcd?.stop().catch(() => {});
    await this.lab?.teardown().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}
