/**
 * The BGP agent on the lab fabric: three node namespaces on the lab subnet, a real etcd, one agent
 * process per node (its sockets and routes in the node's namespace), pods wired like Calico's
 * (veth, /32 route, proxy ARP for 169.254.1.1) with addresses from IPAM, and BIRD in the underlay
 * as the top-of-rack router, configured through a global BGPPeer.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { callControl } from '@calico-ts/bgp';
import { EtcdDatastore, RouteProtocol } from '@calico-ts/datastore';
// The agent does not depend on IPAM; the test claims blocks the way the CNI plugin does.
import { Ipam } from '@calico-ts/ipam';
import { execInNamespace, type NamespaceProcess, Netlink, setInterfaceSysctls } from '@calico-ts/kernel';
import {
  createLab,
  type EtcdProcess,
  LAB_GATEWAY_V4,
  type Lab,
  type LabPod,
  labNodeIpv4,
  startEtcd,
} from '@calico-ts/lab';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { waitFor } from '../../bgp/test/lab.ts';
import type { AgentControlMethods } from '../src/index.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const NODES = 3;
const POOL = '10.77.0.0/16';
const TOR_AS = 65000;
/** The top-of-rack router: BIRD on the underlay's gateway address. */
const TOR = LAB_GATEWAY_V4;
const birdName = (ip: string) => ip.replaceAll('.', '_');
const escaped = (ip: string) => ip.replaceAll('.', '\\.');
const HOLD_TIME = 6;

describeWith(
  [root(), command('etcd'), command('bird'), command('birdc')],
  'BGP agent on the lab fabric',
  () => {
    const prefix = runPrefix('ba');
    const dir = mkdtempSync(join(tmpdir(), `calico-ts-${prefix}-`));
    let lab: Lab;
    let etcd: EtcdProcess;
    let ds: EtcdDatastore;
    let ipam: Ipam;
    let bird: NamespaceProcess;
    const birdCtl = join(dir, 'tor.ctl');
    const agents = new Map<number, { child: ChildProcess; log: string[] }>();
    const pods: { pod: LabPod; ip: string; block: string }[] = [];
    const nodeName = (i: number) => `${prefix}-n${i}`;
    const controlSocket = (i: number) => join(dir, `bgp-${i}.ctl`);

    function startAgent(i: number): void {
      const opts = {
        etcd: etcd.endpoint,
        nodeName: nodeName(i),
        netns: nodeName(i),
        statusSocket: controlSocket(i),
        holdTime: HOLD_TIME,
        logLevel: process.env['BGP_TEST_LOG'] ?? 'info',
      };
      const child = spawn(
        process.execPath,
        ['--conditions=@calico-ts/source', join(HERE, 'agent-process.ts'), JSON.stringify(opts)],
        {
          cwd: join(HERE, '..'),
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      const log: string[] = [];
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (d: string) => {
        log.push(d);
        if (log.length > 400) log.shift();
        if (process.env['BGP_TEST_LOG']) process.stderr.write(d);
      });
      agents.set(i, { child, log });
    }

    async function killAgent(i: number, signal: NodeJS.Signals): Promise<void> {
      const a = agents.get(i);
      if (!a || a.child.exitCode !== null || a.child.signalCode !== null) return;
      const exited = new Promise((r) => a.child.once('exit', r));
      a.child.kill(signal);
      await exited;
    }

    const status = (i: number) => callControl<AgentControlMethods, 'status'>(controlSocket(i), 'status');

    const routes = (i: number) => lab.node(i).netlink.listRoutes({ family: 4, protocol: RouteProtocol.bird });
    /** `<dst> → gateways` for the agent's unicast routes (`proto bird`), `blackhole` for blackholes. */
    async function routeTable(i: number): Promise<Map<string, string>> {
      const out = new Map<string, string>();
      for (const r of await routes(i)) {
        const gws = r.nexthops.length > 0 ? r.nexthops.map((n) => n.gateway) : [r.gateway];
        out.set(r.dst, r.type === 'blackhole' ? 'blackhole' : gws.sort().join(','));
      }
      return out;
    }
    const blockOf = (i: number) => pods[i - 1]!.block;

    async function birdc(...args: string[]): Promise<string> {
      const r = await execInNamespace(undefined, 'birdc', ['-s', birdCtl, ...args]);
      return r.stdout;
    }

    beforeAll(async () => {
      lab = await createLab({ prefix, nodes: NODES, router: true });
      etcd = await startEtcd({ dir: join(dir, 'etcd') });
      ds = new EtcdDatastore({ endpoints: [etcd.endpoint] });
      ipam = new Ipam(ds);
      await ds.create('BGPConfiguration', {
        metadata: { name: 'default' },
        // A short restart time so a killed node's routes leave the others quickly (RFC 4724 §4.2).
        spec: { nodeMeshMaxRestartTime: '3s', logSeverityScreen: 'Info' },
      });
      await ds.create('IPPool', {
        metadata: { name: `${prefix}-pool` },
        spec: { cidr: POOL, blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never' },
      });
      for (let i = 1; i <= NODES; i++) {
        await ds.create('Node', {
          metadata: { name: nodeName(i) },
          spec: { bgp: { ipv4Address: `${labNodeIpv4(i)}/24` } },
        });
      }
      // One pod per node, its address from the node's block (claimed by IPAM as the CNI plugin would).
      for (let i = 1; i <= NODES; i++) {
        const r = await ipam.autoAssign({ num4: 1, handleId: `${prefix}-pod${i}`, node: nodeName(i) });
        const a = r.ipv4[0]!;
        const pod = await lab.addPod(i, 'p');
        const host = `${prefix}c${i}`;
        const nl = lab.node(i).netlink;
        await nl.createVeth({ name: host, peer: { name: 'eth0', namespace: pod.namespace } });
        setInterfaceSysctls(host, { proxyArp: true, forwarding: true }, lab.node(i).namespace);
        await nl.setLink(host, { up: true });
        await nl.addRoute({ dst: `${a.address}/32`, dev: host, scope: 'link' });
        const podNl = Netlink.open(pod.namespace);
        try {
          await podNl.setLink('eth0', { up: true });
          await podNl.addAddress('eth0', `${a.address}/32`);
          await podNl.addRoute({ dst: '169.254.1.1/32', dev: 'eth0', scope: 'link' });
          await podNl.addRoute({ dst: '0.0.0.0/0', gateway: '169.254.1.1', dev: 'eth0' });
        } finally {
          podNl.close();
        }
        pods.push({ pod, ip: a.address, block: a.block });
      }
      // The top-of-rack router: BIRD in the underlay, eBGP with every node.
      const conf = join(dir, 'tor.conf');
      writeFileSync(
        conf,
        [
          'router id 192.0.2.1;',
          'protocol device {}',
          ...Array.from(
            { length: NODES },
            (_, k) => `protocol bgp node${k + 1} {
  local ${TOR} as ${TOR_AS};
  neighbor ${labNodeIpv4(k + 1)} as 64512;
  hold time ${HOLD_TIME}; connect delay time 1; connect retry time 2; error wait time 1,2;
  ipv4 { import all; export none; };
}`,
          ),
        ].join('\n'),
      );
      bird = await lab.spawn(lab.underlay.namespace, 'bird', ['-f', '-c', conf, '-s', birdCtl]);
      await waitFor('BIRD control socket', async () =>
        (await birdc('show', 'status')).includes('Daemon is up'),
      );
      await ds.create('BGPPeer', {
        metadata: { name: `${prefix}-tor` },
        spec: { peerIP: TOR, asNumber: TOR_AS },
      });
      for (let i = 1; i <= NODES; i++) startAgent(i);
    }, 120_000);

    afterAll(async () => {
      for (const i of agents.keys()) await killAgent(i, 'SIGKILL');
      await ds?.close();
      await etcd?.stop();
      await lab?.teardown();
      void bird;
      rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    it('every node learns every other node’s block (proto bird, via that node) and blackholes its own', async () => {
      for (let i = 1; i <= NODES; i++) {
        await waitFor(
          `node ${i} routes`,
          async () => {
            const t = await routeTable(i);
            for (let j = 1; j <= NODES; j++) {
              const want = i === j ? 'blackhole' : labNodeIpv4(j);
              if (t.get(blockOf(j)) !== want) return false;
            }
            return true;
          },
          60_000,
          250,
        ).catch((err: unknown) => {
          throw new Error(`${(err as Error).message}\nagent ${i} log:\n${agents.get(i)?.log.join('')}`);
        });
      }
    }, 90_000);

    it('pods on different nodes reach each other', async () => {
      for (const from of pods) {
        for (const to of pods) {
          if (from === to) continue;
          await waitFor(
            `ping ${from.pod.name} → ${to.ip}`,
            async () =>
              (await execInNamespace(from.pod.namespace, 'ping', ['-c', '1', '-W', '1', to.ip])).exitCode ===
              0,
            20_000,
          );
        }
      }
    }, 90_000);

    it('the top-of-rack BIRD, configured by a global BGPPeer, learns every node’s block', async () => {
      await waitFor(
        'ToR routes',
        async () => {
          const out = await birdc('show', 'route', 'all');
          return pods.every((p, k) => {
            const section = out.split(/\n(?=\S)/).find((s) => s.startsWith(p.block));
            return section?.includes(`via ${labNodeIpv4(k + 1)}`) ?? false;
          });
        },
        60_000,
      );
      const count = await birdc('show', 'route', 'count');
      expect(Number(/for (\d+) networks/.exec(count)?.[1] ?? 0)).toBeGreaterThanOrEqual(NODES);
    }, 90_000);

    it('reports its sessions over the control socket as calicoctl would see them', async () => {
      const s = await waitFor(
        'all sessions up on node 1',
        async () => {
          const st = await status(1);
          return st.peers.length === NODES && st.peers.every((p) => p.state === 'up') ? st : undefined;
        },
        30_000,
      );
      expect(s).toMatchObject({
        nodeName: nodeName(1),
        routerId: labNodeIpv4(1),
        asNumber: 64512,
        ready: true,
      });
      expect(s.peers.map((p) => [p.name, p.address, p.type, p.info])).toEqual([
        [`Global_${birdName(TOR)}`, TOR, 'global', 'Established'],
        [`Mesh_${birdName(labNodeIpv4(2))}`, labNodeIpv4(2), 'node-to-node mesh', 'Established'],
        [`Mesh_${birdName(labNodeIpv4(3))}`, labNodeIpv4(3), 'node-to-node mesh', 'Established'],
      ]);
      expect(s.routes).toMatchObject({ exported: 1, blackholes: 1 });
      expect(s.routes.installed).toBeGreaterThanOrEqual(NODES - 1);
      // The operator's view: the real CLI (packages/ctl) reading the same socket.
      const cli = await execInNamespace(undefined, process.execPath, [
        '--conditions=@calico-ts/source',
        join(HERE, '../../ctl/src/cli.ts'),
        'node',
        'status',
        '--control',
        controlSocket(1),
      ]);
      expect(cli.exitCode).toBe(0);
      expect(cli.stdout).toMatch(/^Calico process is running\.\n\nIPv4 BGP status\n/);
      expect(cli.stdout).toMatch(
        new RegExp(`\\| ${escaped(TOR)} +\\| global +\\| up +\\| \\d\\d:\\d\\d:\\d\\d \\| Established \\|`),
      );
      expect(cli.stdout).toMatch(
        new RegExp(
          `\\| ${escaped(labNodeIpv4(3))} +\\| node-to-node mesh \\| up +\\| \\d\\d:\\d\\d:\\d\\d \\| Established \\|`,
        ),
      );
      expect(cli.stdout).toContain('IPv6 BGP status\nNo IPv6 peers found.\n');
    }, 60_000);

    it('a block claimed in etcd reaches the other nodes without a restart', async () => {
      // 64 more addresses for node 1 fill its block, so IPAM claims a second one.
      const r = await ipam.autoAssign({ num4: 64, handleId: `${prefix}-more`, node: nodeName(1) });
      const blocks = [...new Set(r.ipv4.map((a) => a.block))].filter((b) => b !== blockOf(1));
      expect(blocks).toHaveLength(1);
      await waitFor(
        'new block on node 2',
        async () => (await routeTable(2)).get(blocks[0]!) === labNodeIpv4(1),
        30_000,
      );
      await waitFor(
        'new block blackholed on node 1',
        async () => (await routeTable(1)).get(blocks[0]!) === 'blackhole',
        30_000,
      );
    }, 60_000);

    it('a killed agent’s routes leave the other nodes, its own kernel keeps routing, and a restart restores it', async () => {
      await killAgent(3, 'SIGKILL');
      // Its forwarding state survives (graceful restart: routes are not tied to the process).
      const kept = await routeTable(3);
      expect(kept.get(blockOf(1))).toBe(labNodeIpv4(1));
      expect(kept.get(blockOf(3))).toBe('blackhole');
      // Peers keep its routes for the 3 s restart time it advertised, then drop them.
      for (const i of [1, 2]) {
        await waitFor(
          `node 3's block gone from node ${i}`,
          async () => !(await routeTable(i)).has(blockOf(3)),
          30_000,
        );
      }
      startAgent(3);
      for (const i of [1, 2]) {
        await waitFor(
          `node 3's block back on node ${i}`,
          async () => (await routeTable(i)).get(blockOf(3)) === labNodeIpv4(3),
          60_000,
        );
      }
      // Node 3 never lost its routes while it restarted.
      expect((await routeTable(3)).get(blockOf(1))).toBe(labNodeIpv4(1));
      await waitFor(
        'ping from node 1 pod to node 3 pod after restart',
        async () =>
          (await execInNamespace(pods[0]!.pod.namespace, 'ping', ['-c', '1', '-W', '1', pods[2]!.ip]))
            .exitCode === 0,
        20_000,
      );
    }, 150_000);

    it('a restarted agent that dials (the smallest address) and one that listens are both back in seconds', async () => {
      // Mesh: the smaller address dials, the larger listens. Node 1 dials everyone; node 3 listens.
      for (const restarted of [1, 3]) {
        await killAgent(restarted, 'SIGTERM');
        const t0 = Date.now();
        startAgent(restarted);
        for (const i of [1, 2, 3]) {
          await waitFor(
            `node ${i}'s sessions Established after node ${restarted} restarted`,
            async () => {
              const s = await status(i).catch(() => undefined);
              const mesh = s?.peers.filter((p) => p.name.startsWith('Mesh_')) ?? [];
              return mesh.length === NODES - 1 && mesh.every((p) => p.info === 'Established');
            },
            30_000,
          );
        }
        if (process.env['BGP_TEST_TIMING'])
          process.stderr.write(`node ${restarted} back after ${Date.now() - t0} ms\n`);
      }
    }, 90_000);
  },
);
