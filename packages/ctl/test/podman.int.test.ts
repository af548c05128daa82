/**
 * The CNI plugin under a real container runtime: Debian's podman with its CNI backend, run inside
 * a node of a two-node lab cluster the way a user would (see packages/cni/README.md), once with
 * only the node's network namespace (`nsenter --net`) and once in a mount namespace of its own
 * (`ip netns exec`), where the pod's /run/netns mount is invisible to calico-node. After every
 * container, and after every way a container can fail, IPAM, the WorkloadEndpoints and the node's
 * links hold nothing for it, by `calico ipam check` and a scan of handles, endpoints and links.
 *
 * Podman keeps all its state (`--root`, `--runroot`, `--tmpdir`, containers.conf) in this test's
 * temp directory; the image is a busybox rootfs made with `podman import`, no registry.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ChangeEvent,
  cidrContainsIp,
  EtcdDatastore,
  ensureNamespaceProfileAt,
  parseCidr,
  parseIp,
} from '@calico-ts/datastore';
import { Netlink, waitFor } from '@calico-ts/kernel';
import {
  type ClusterNode,
  type ClusterPod,
  type Conflist,
  calicoPrograms,
  invokePlugin,
  LAB_POD_NAMESPACE,
  LabCluster,
  pluginConfig,
} from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { run } from '../src/cli.ts';
import { captureIo } from '../src/cli-io.ts';

const prefix = runPrefix('pd');
/** The podman network: the conflist's name, and the prefix of its IPAM handles. */
const NETWORK = `${prefix}-net`;
const IMAGE = `${prefix}-busybox`;

type Launch = 'nsenter' | 'ip netns exec';

/** Where libcni (podman's CNI backend) caches each attachment's result. */
const CNI_CACHE = '/var/lib/cni/results';

function readdirSafe(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * `ip netns exec` mounts a fresh /sys for the namespace, without the cgroup mounts runc needs:
 * the same mounts again, read from ours, as a shell prefix.
 */
function cgroupMounts(): string {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[1]?.startsWith('/sys/fs/cgroup'))
    .map(
      ([source, target, type, options]) =>
        `mkdir -p ${target} && mount -t ${type} -o ${options} ${source} ${target}`,
    )
    .join(' && ');
}

describeWith(
  [root(), command('etcd'), command('podman'), command('runc'), command('busybox'), command('nsenter')],
  'podman with the calico CNI plugin on a lab cluster',
  () => {
    const cluster = new LabCluster({
      name: prefix,
      nodes: 2,
      programs: calicoPrograms({
        node: import.meta.resolve('@calico-ts/node'),
        cni: import.meta.resolve('@calico-ts/cni'),
      }),
      readyTimeoutMs: 60_000,
      prepareDatastore: async (endpoint) => {
        await ensureNamespaceProfileAt([endpoint], LAB_POD_NAMESPACE);
      },
    });
    let dir: string;
    let datastore: EtcdDatastore;
    /** A Kubernetes-style pod on the second node, for the containers to reach. */
    let target: ClusterPod;
    /** Links each node had before any container ran. */
    const baseLinks = new Map<string, string[]>();
    let n1: ClusterNode;

    const confDir = (node: ClusterNode) => join(dir, 'net.d', node.name);
    const conflist = (node: ClusterNode): Conflist => ({
      cniVersion: '1.0.0',
      name: NETWORK,
      plugins: [{ type: 'calico', agent_socket: node.cniSocket, ipam: { type: 'calico-ipam' } }],
    });

    /** podman on a node, with all its state in our directory. */
    async function podman(node: ClusterNode, launch: Launch, args: readonly string[]): Promise<Exec> {
      const argv = [
        'podman',
        '--root',
        join(dir, 'root'),
        '--runroot',
        join(dir, 'runroot'),
        '--tmpdir',
        join(dir, 'tmp'),
        '--storage-driver',
        'vfs',
        '--runtime',
        'runc',
        '--cgroup-manager',
        'cgroupfs',
        '--network-backend',
        'cni',
        '--cni-config-dir',
        confDir(node),
        ...args,
      ];
      const env = { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf') };
      if (launch === 'nsenter') return exec('nsenter', [`--net=/run/netns/${node.name}`, ...argv], env);
      // podman keeps each container's netns mount in the mount namespace it ran in and needs it
      // again for `podman rm`, so every podman call of this launch enters the one mount namespace
      // `ip netns exec` made for the node (as a shell session under `ip netns exec` would).
      const pid = await privateMountNamespace(node);
      return exec('nsenter', [`--mount=/proc/${pid}/ns/mnt`, `--net=/proc/${pid}/ns/net`, ...argv], env);
    }

    /** Per node, a process holding the mount namespace `ip netns exec` made; its pid. */
    const holders = new Map<string, ChildProcess>();
    async function privateMountNamespace(node: ClusterNode): Promise<number> {
      let holder = holders.get(node.name);
      if (!holder) {
        holder = spawn(
          'ip',
          ['netns', 'exec', node.name, 'sh', '-c', `${cgroupMounts()} && echo ready && exec cat`],
          {
            stdio: ['pipe', 'pipe', 'inherit'],
          },
        );
        holders.set(node.name, holder);
        await new Promise<void>((resolve, reject) => {
          holder!.stdout!.once('data', () => resolve());
          holder!.once('exit', (code) => reject(new Error(`ip netns exec ${node.name} exited with ${code}`)));
        });
      }
      return holder.pid!;
    }

    const RUN = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--network', NETWORK];

    async function ok(p: Promise<Exec>): Promise<string> {
      const r = await p;
      if (r.code !== 0) throw new Error(`podman exited with ${r.code}: ${r.stderr}${r.stdout}`);
      return r.stdout.trim();
    }

    async function links(node: ClusterNode): Promise<string[]> {
      const nl = Netlink.open(node.namespace);
      try {
        return (await nl.listLinks()).map((l) => l.name).sort();
      } finally {
        nl.close();
      }
    }

    /** Everything IPAM and the nodes hold for the podman network, as lines; [] when nothing. */
    async function leftovers(): Promise<string[]> {
      const found: string[] = [];
      for (const h of (await datastore.list('IPAMHandle', { prefix: `${NETWORK}.` })).items)
        found.push(`handle ${h.metadata.name} ${JSON.stringify(h.spec.block)}`);
      for (const b of (await datastore.list('IPAMBlock')).items) {
        b.spec.allocations.forEach((idx, ord) => {
          const handle = idx === null ? undefined : b.spec.attributes[idx]?.handle_id;
          if (handle?.startsWith(`${NETWORK}.`)) found.push(`allocation ${b.spec.cidr}#${ord} ${handle}`);
        });
      }
      for (const w of (await datastore.list('WorkloadEndpoint')).items)
        if (w.spec.orchestrator === 'cni') found.push(`endpoint ${w.metadata.name}`);
      for (const node of cluster.nodes) {
        const before = new Set(baseLinks.get(node.name));
        for (const l of await links(node)) if (!before.has(l)) found.push(`link ${l} on ${node.name}`);
      }
      const check = await calico('ipam', 'check');
      if (check.code !== 0 || !check.out.includes('found 0 problems'))
        found.push(`calico ipam check: ${check.out}${check.err}`);
      return found;
    }

    /** Allocations and handles of the whole cluster, to compare before and after. */
    async function ipamState(): Promise<string[]> {
      const state: string[] = [];
      for (const b of (await datastore.list('IPAMBlock')).items)
        b.spec.allocations.forEach((idx, ord) => {
          if (idx !== null) state.push(`${b.spec.cidr}#${ord} ${b.spec.attributes[idx]?.handle_id}`);
        });
      for (const h of (await datastore.list('IPAMHandle')).items)
        state.push(`handle ${h.metadata.name} ${JSON.stringify(h.spec.block)}`);
      return state.sort();
    }

    async function calico(...args: string[]) {
      const io = captureIo({ env: {}, cwd: dir });
      const code = await run(['--etcd-endpoints', cluster.etcd.localEndpoint, ...args], io);
      return { code, out: io.out, err: io.err };
    }

    /** The address a running container got, and whether it is inside its node's block. */
    async function addressOf(node: ClusterNode, id: string, launch: Launch): Promise<string> {
      const out = await ok(podman(node, launch, ['exec', id, 'ip', '-4', '-o', 'addr', 'show', 'eth0']));
      const ip = /inet (\d+\.\d+\.\d+\.\d+)\/32/.exec(out)?.[1];
      if (!ip) throw new Error(`no /32 on eth0: ${out}`);
      return ip;
    }

    async function inNodeBlock(node: ClusterNode, ip: string): Promise<boolean> {
      const addr = parseIp(ip)!;
      return (await datastore.list('IPAMBlock')).items.some(
        (b) => b.spec.affinity === `host:${node.name}` && cidrContainsIp(parseCidr(b.spec.cidr)!, addr),
      );
    }

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
      await cluster.up();
      n1 = cluster.nodes[0]!;
      datastore = new EtcdDatastore({ endpoints: [cluster.etcd.localEndpoint] });
      target = await cluster.addPod(cluster.nodes[1]!, 'target');
      for (const node of cluster.nodes) {
        baseLinks.set(node.name, await links(node));
        mkdirSync(confDir(node), { recursive: true });
        writeFileSync(join(confDir(node), `10-${NETWORK}.conflist`), JSON.stringify(conflist(node)));
      }
      writeFileSync(
        join(dir, 'containers.conf'),
        [
          '[engine]',
          'events_logger = "file"',
          `events_logfile_path = "${join(dir, 'events.log')}"`,
          '[network]',
          `cni_plugin_dirs = ["${cluster.cniBinDir}"]`,
          '',
        ].join('\n'),
      );
      const rootfs = join(dir, 'rootfs');
      mkdirSync(join(rootfs, 'bin'), { recursive: true });
      copyFileSync('/usr/bin/busybox', join(rootfs, 'bin', 'busybox'));
      for (const tool of ['sh', 'ip', 'ping', 'sleep', 'true'])
        symlinkSync('busybox', join(rootfs, 'bin', tool));
      const tar = await exec('tar', ['-C', rootfs, '-cf', join(dir, 'rootfs.tar'), '.'], process.env);
      expect(tar.code, tar.stderr).toBe(0);
      await ok(podman(n1, 'nsenter', ['import', join(dir, 'rootfs.tar'), IMAGE]));
    }, 240_000);

    afterAll(async () => {
      if (dir && n1) {
        // Each launch removes its own containers: only it sees their namespaces.
        for (const launch of ['ip netns exec', 'nsenter'] as const) {
          if (launch === 'ip netns exec' && !holders.has(n1.name)) continue;
          await podman(n1, launch, ['rm', '--all', '--force', '--time', '0']).catch(() => undefined);
        }
        await podman(n1, 'nsenter', ['rmi', '--all', '--force']).catch(() => undefined);
      }
      for (const holder of holders.values()) {
        const exited = new Promise((resolve) => holder.once('exit', resolve));
        holder.stdin!.end();
        if (holder.exitCode === null) await exited;
      }
      await datastore?.close();
      await cluster.down();
      if (dir) rmSync(dir, { recursive: true, force: true });
      // libcni's result cache, which podman empties on every successful DEL.
      for (const f of readdirSafe(CNI_CACHE))
        if (f.startsWith(`${NETWORK}-`)) rmSync(join(CNI_CACHE, f), { force: true });
    }, 120_000);

    for (const launch of ['nsenter', 'ip netns exec'] as const) {
      it(`podman run under ${launch}: an address from the node's block, the other node's pod answers, podman rm leaves nothing`, async () => {
        const id = await ok(podman(n1, launch, ['run', '-d', ...RUN, IMAGE, 'sleep', '600']));
        const ip = await addressOf(n1, id, launch);
        expect(await inNodeBlock(n1, ip), `${ip} outside ${n1.name}'s blocks`).toBe(true);
        await waitFor(
          async () =>
            (await podman(n1, launch, ['exec', id, 'ping', '-c', '1', '-W', '1', target.ip])).code === 0,
          {
            timeoutMs: 15_000,
            what: `container ${id.slice(0, 12)} → ${target.name}`,
          },
        );

        // Named as Calico names a container that is not a Kubernetes pod (podman sends only
        // K8S_POD_NAME): orchestrator cni, the container ID as the workload.
        const wepName = `${n1.name.replaceAll('-', '--')}-cni-${id}-eth0`;
        const wep = await datastore.get('WorkloadEndpoint', wepName, 'default');
        expect(wep.spec).toMatchObject({
          orchestrator: 'cni',
          workload: id,
          containerID: id,
          profiles: [NETWORK],
          interfaceName: `cali${id.slice(0, 11)}`,
        });
        const table = await calico('get', 'workloadendpoints', '-o', 'wide');
        expect(table.out).toMatch(new RegExp(`${wepName}\\s+${id}\\s+${n1.name}\\s+${ip}/32`));
        const podWep = `${target.node.name.replaceAll('-', '--')}-k8s-${target.name.replaceAll('-', '--')}-eth0`;
        expect(table.out).toMatch(new RegExp(`${podWep}\\s+${target.name}\\s+`));

        await ok(podman(n1, launch, ['rm', '--force', '--time', '0', id]));
        expect(await leftovers()).toEqual([]);
      }, 60_000);
    }

    it('ten containers started and removed at once leave IPAM exactly as it was', async () => {
      const before = await ipamState();
      const launches = Array.from({ length: 10 }, (_, i): Launch => (i % 2 ? 'nsenter' : 'ip netns exec'));
      const ids = await Promise.all(
        launches.map((launch) => ok(podman(n1, launch, ['run', '-d', ...RUN, IMAGE, 'sleep', '600']))),
      );
      expect(new Set(ids).size).toBe(10);
      expect((await datastore.list('IPAMHandle', { prefix: `${NETWORK}.` })).items).toHaveLength(10);
      await Promise.all(
        ids.map((id, i) => ok(podman(n1, launches[i]!, ['rm', '--force', '--time', '0', id]))),
      );
      expect(await ipamState()).toEqual(before);
      expect(await leftovers()).toEqual([]);
      // Twenty podman processes at once: minutes on two loaded cores, a timeout, not a speed goal.
    }, 300_000);

    it('a container whose start fails after ADD (podman sends DEL) leaves nothing', async () => {
      const { revision } = await datastore.list('IPAMHandle');
      const id = await ok(podman(n1, 'ip netns exec', ['create', ...RUN, IMAGE, '/no/such/program']));
      const start = await podman(n1, 'ip netns exec', ['start', id]);
      expect(start.code).not.toBe(0);
      expect(start.stderr).toContain('/no/such/program');
      // The handle was written by ADD and removed by DEL.
      const seen: ChangeEvent['type'][] = [];
      const watch = datastore.watch({ kinds: ['IPAMHandle'], revision });
      const reading = (async () => {
        for await (const e of watch) {
          if (e.type !== 'added' && e.type !== 'deleted') continue;
          const name = e.type === 'added' ? e.new.metadata.name : e.old.metadata.name;
          if (name === `${NETWORK}.${id}`) seen.push(e.type);
        }
      })();
      try {
        await waitFor(() => seen.includes('deleted'), {
          timeoutMs: 10_000,
          what: `ADD and DEL of ${id.slice(0, 12)} in the datastore`,
        });
      } finally {
        await watch.close();
        await reading;
      }
      expect(seen).toEqual(['added', 'deleted']);
      expect(await leftovers()).toEqual([]);
      await ok(podman(n1, 'nsenter', ['rm', id]));
    }, 60_000);

    it('calico-node restarted between ADD and DEL: podman rm still leaves nothing', async () => {
      const id = await ok(podman(n1, 'nsenter', ['run', '-d', ...RUN, IMAGE, 'sleep', '600']));
      expect((await datastore.list('IPAMHandle', { prefix: `${NETWORK}.${id}` })).items).toHaveLength(1);
      await cluster.stopNode(n1);
      await cluster.startNode(n1);
      await ok(podman(n1, 'nsenter', ['rm', '--force', '--time', '0', id]));
      expect(await leftovers()).toEqual([]);
    }, 120_000);

    it('ADD into a path that is not a network namespace is error 4 naming it; DEL of it succeeds; nothing is left', async () => {
      const file = join(dir, 'not-a-netns');
      writeFileSync(file, '');
      const list = conflist(n1);
      const inv = {
        containerId: `${prefix}-notns`,
        ifname: 'eth0',
        args: 'IgnoreUnknown=1;K8S_POD_NAME=notns',
        path: [cluster.cniBinDir],
        hostNetns: n1.name,
      };
      const stdin = pluginConfig(list, list.plugins[0]!);
      for (const netns of [file, dir]) {
        const add = await invokePlugin('calico', { ...inv, command: 'ADD', netns }, stdin);
        expect(add.code).toBe(1);
        expect(add.json).toMatchObject({
          code: 4,
          msg: 'CNI_NETNS is not a network namespace',
          details: expect.stringMatching(
            new RegExp(`^CNI_NETNS ${netns} is (an empty regular file|a directory), not a network namespace`),
          ),
        });
      }
      for (const netns of [file, join(dir, 'gone')]) {
        const del = await invokePlugin('calico', { ...inv, command: 'DEL', netns }, stdin);
        expect(del.code, del.stdout).toBe(0);
      }
      expect(await leftovers()).toEqual([]);
    }, 30_000);

    it('calico ipam check counts a handle that holds nothing as a problem', async () => {
      const name = `${NETWORK}.empty`;
      await datastore.create('IPAMHandle', {
        apiVersion: 'projectcalico.org/v3',
        kind: 'IPAMHandle',
        metadata: { name },
        spec: { handleID: name, block: {}, deleted: false },
      });
      try {
        const check = await calico('ipam', 'check', '--show-all-ips');
        expect(check.code).toBe(1);
        expect(check.out).toContain(`  ${name} doesn't have any active IPs.\n`);
        expect(check.out).toContain('Found 1 handles with no matching IPs');
      } finally {
        await datastore.delete('IPAMHandle', name);
      }
      expect(await leftovers()).toEqual([]);
    });
  },
);
