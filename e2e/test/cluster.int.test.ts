/**
 * calico-ts on a cluster of containers: three calico-node containers from the built image, an
 * etcd container, pods as network namespaces wired by the CNI plugins the node containers
 * installed, and pod-to-pod traffic across nodes, in BGP mode and in VXLAN mode.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageRef } from '../../images/build.ts';
import { command, describeWith, type Requirement, root } from '../../test-support/requirements.ts';
import { runPrefix } from '../../test-support/run-id.ts';
import {
  type Backend,
  ContainerCluster,
  dockerAnswers,
  type Pod,
  waitFor,
} from '../src/container-cluster.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

/** A Docker engine: scripts/ensure-docker.sh installs and starts one where it can. */
function dockerEngine(): Requirement {
  if (process.getuid?.() === 0) {
    try {
      execFileSync(join(ROOT, 'scripts/ensure-docker.sh'), { stdio: ['ignore', 'ignore', 'inherit'] });
    } catch {
      // Reported below as the missing requirement.
    }
  }
  return {
    ok: dockerAnswers(),
    reason: 'needs a Docker engine (scripts/ensure-docker.sh starts one as root)',
  };
}

describeWith([root(), dockerEngine(), command('debootstrap')], 'calico-ts on a container cluster', () => {
  const prefix = runPrefix('im');
  const nodeImage = imageRef('node');
  const etcdImage = imageRef('etcd');

  beforeAll(() => {
    // Cached by content: only what changed since the last build is rebuilt (images/README.md).
    execFileSync('node', [join(ROOT, 'images/build.ts'), 'node', 'etcd', 'bird'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }, 900_000);

  for (const backend of ['bird', 'vxlan'] as const satisfies readonly Backend[]) {
    describe(`${backend === 'bird' ? 'BGP' : 'VXLAN'} mode`, () => {
      const cluster = new ContainerCluster({
        prefix: `${prefix}${backend === 'bird' ? 'b' : 'v'}`,
        nodes: 3,
        backend,
        nodeImage,
        etcdImage,
      });
      const pods: Pod[] = [];

      beforeAll(async () => {
        await cluster.start();
        for (const [i, node] of cluster.nodes.entries()) pods.push(await cluster.addPod(node, `pod${i + 1}`));
      }, 180_000);
      afterAll(() => cluster.destroy(), 60_000);

      it('each node container installed the CNI plugins, its runtime and the conflist on its host', () => {
        for (const node of cluster.nodes) {
          const installed = readdirSync(cluster.cniBinDir(node));
          expect(installed).toEqual(expect.arrayContaining(['calico', 'calico-ipam', 'calico-node-runtime']));
          expect(installed.filter((f) => f.startsWith('.'))).toEqual([]);
          expect(statSync(join(cluster.cniBinDir(node), 'calico')).mode & 0o111).toBe(0o111);
          expect(existsSync(join(cluster.cniNetDir(node), '10-calico.conflist'))).toBe(true);
          expect(cluster.installedConflist(node).plugins[0]).toMatchObject({
            type: 'calico',
            etcd_endpoints: `http://${cluster.etcd}:2379`,
          });
        }
      });

      it('runs the node containers unprivileged, with NET_ADMIN and SYS_ADMIN', async () => {
        const out = await import('../src/container-cluster.ts').then(({ docker }) =>
          docker([
            'inspect',
            '--format',
            '{{.HostConfig.Privileged}} {{json .HostConfig.CapAdd}}',
            cluster.nodes[0] ?? '',
          ]),
        );
        const [privileged, caps] = out.trim().split(' ');
        expect(privileged).toBe('false');
        expect((JSON.parse(caps ?? '[]') as string[]).map((c) => c.replace(/^CAP_/, '')).sort()).toEqual([
          'NET_ADMIN',
          'SYS_ADMIN',
        ]);
      });

      it('gives each pod an address from the pool and routes to the other nodes’ blocks', async () => {
        expect(new Set(pods.map((p) => p.ip)).size).toBe(pods.length);
        for (const pod of pods) expect(pod.ip).toMatch(/^10\.244\./);
        const [a, b] = pods;
        if (!a || !b) throw new Error('expected pods');
        const routes = await waitFor(`a route on ${a.node} towards ${b.ip}'s block`, 30_000, async () => {
          const table = await cluster.routes(a.node);
          const prefix3 = b.ip.split('.').slice(0, 3).join('.');
          return table.split('\n').find((line) => line.startsWith(prefix3) && line.includes('/26'));
        });
        expect(routes).toMatch(backend === 'bird' ? /via \S+ dev eth0 proto bird/ : /dev vxlan\.calico/);
      });

      it('pods reach each other across nodes', async () => {
        for (const from of pods) {
          for (const to of pods) {
            if (from === to) continue;
            await waitFor(`${from.name}@${from.node} → ${to.name}@${to.node} (${to.ip})`, 30_000, async () =>
              (await cluster.ping(from, to.ip)) ? true : undefined,
            );
          }
        }
      });

      // BGP mode only: declared there and nowhere else, so no mode counts a skipped test.
      if (backend === 'bird') {
        it('a BIRD top-of-rack router learns every block from the node that holds it', async () => {
          await cluster.startTor(imageRef('bird'));
          const nodeAddress = new Map(
            await Promise.all(cluster.nodes.map(async (n) => [n, await cluster.addressOf(n)] as const)),
          );
          const blocks = await cluster.withDatastore(async (ds) =>
            (await ds.list('BlockAffinity')).items
              .map((a) => a.spec)
              .filter((a) => a.state === 'confirmed')
              .map((a) => ({ cidr: a.cidr, via: nodeAddress.get(a.node) })),
          );
          // Every node that has a pod holds a block.
          expect(new Set(blocks.map((b) => b.via)).size).toBe(cluster.nodes.length);
          for (const { cidr, via } of blocks) {
            const route = await waitFor(`${cidr} at the ToR`, 60_000, async () => {
              const out = await cluster.birdc('show', 'route', 'for', cidr, 'all');
              return out.includes(cidr) && out.includes('BGP.as_path: 64512') ? out : undefined;
            });
            expect(route).toContain(`via ${via}`);
          }
          // The pods' own addresses are covered too (each by its node's block route).
          for (const pod of pods) {
            const out = await cluster.birdc('show', 'route', 'for', pod.ip);
            expect(out, pod.ip).toContain(`via ${nodeAddress.get(pod.node)}`);
          }
        });

        it('a Calico NetworkPolicy isolates a namespace; deleting it lets traffic back in', async () => {
          // Kubernetes pods (K8S_POD_* CNI_ARGS): their profiles are kns.<namespace>. (The pods
          // above are plain CNI workloads, whose profile admits only members of their network.)
          const outside = await cluster.addPod(cluster.nodes[0] ?? '', 'web', 'default');
          const inside1 = await cluster.addPod(cluster.nodes[1] ?? '', 'iso1', 'isolated');
          const inside2 = await cluster.addPod(cluster.nodes[2] ?? '', 'iso2', 'isolated');
          await waitFor('iso1 reachable before any policy', 30_000, async () =>
            (await cluster.ping(outside, inside1.ip)) ? true : undefined,
          );
          // Ingress only from the same namespace: a namespaced policy's selector matches its own
          // namespace's endpoints.
          await cluster.withDatastore((ds) =>
            ds.apply('NetworkPolicy', {
              apiVersion: 'projectcalico.org/v3',
              kind: 'NetworkPolicy',
              metadata: { name: 'same-namespace-only', namespace: 'isolated' },
              spec: {
                selector: 'all()',
                types: ['Ingress'],
                ingress: [{ action: 'Allow', source: { selector: 'all()' } }],
              },
            }),
          );
          await waitFor('outside → iso1 denied', 30_000, async () =>
            (await cluster.ping(outside, inside1.ip)) ? undefined : true,
          );
          expect(await cluster.ping(inside2, inside1.ip)).toBe(true);
          // Egress is not restricted: the isolated pods still reach out.
          await waitFor('iso1 → outside (egress and its replies)', 30_000, async () =>
            (await cluster.ping(inside1, outside.ip)) ? true : undefined,
          );
          await cluster.withDatastore((ds) => ds.delete('NetworkPolicy', 'same-namespace-only', 'isolated'));
          await waitFor('outside → iso1 allowed again', 30_000, async () =>
            (await cluster.ping(outside, inside1.ip)) ? true : undefined,
          );
        });
      }

      it('CNI DEL takes a pod off the network: its host interface goes, the others no longer reach it', async () => {
        const [a, , c] = pods;
        if (!a || !c) throw new Error('expected pods');
        await cluster.delPod(c);
        expect(await cluster.hasLink(c.node, c.hostInterface)).toBe(false);
        expect(await cluster.ping(a, c.ip)).toBe(false);
      });
    });
  }

  describe('a node container restarted', () => {
    // Hosts as holder containers that outlive calico-node, pods as containers of their own.
    const cluster = new ContainerCluster({
      prefix: `${prefix}r`,
      nodes: 2,
      backend: 'bird',
      nodeImage,
      etcdImage,
      holders: true,
    });
    const pods: Pod[] = [];

    beforeAll(async () => {
      await cluster.start();
      for (const [i, node] of cluster.nodes.entries())
        pods.push(await cluster.addPod(node, `rpod${i + 1}`, 'default'));
    }, 180_000);
    afterAll(() => cluster.destroy(), 60_000);

    it('keeps its pods and their addresses, and traffic between the nodes returns', async () => {
      const [a, b] = pods;
      if (!a || !b) throw new Error('expected pods');
      await waitFor(`${a.name} → ${b.name} before the restart`, 30_000, async () =>
        (await cluster.ping(a, b.ip)) ? true : undefined,
      );
      const restarted = Date.now();
      await cluster.restartNode(b.node);
      process.stderr.write(`[e2e] ${b.node} restarted and ready in ${Date.now() - restarted} ms\n`);
      expect(await cluster.podAddress(b)).toBe(b.ip);
      expect(await cluster.hasLink(b.node, b.hostInterface)).toBe(true);
      await waitFor(`${a.name} → ${b.name} after the restart`, 60_000, async () =>
        (await cluster.ping(a, b.ip)) ? true : undefined,
      );
      await waitFor(`${b.name} → ${a.name} after the restart`, 30_000, async () =>
        (await cluster.ping(b, a.ip)) ? true : undefined,
      );
      process.stderr.write(`[e2e] traffic back ${Date.now() - restarted} ms after the restart began\n`);
      // calico-node came back to the same state: the block is still this node's, the route to
      // the other node's block is back, and a new pod on the restarted node gets an address.
      const c = await cluster.addPod(b.node, 'rpod3', 'default');
      expect(c.ip.split('.').slice(0, 3)).toEqual(b.ip.split('.').slice(0, 3));
      await waitFor(`${a.name} → the new pod`, 30_000, async () =>
        (await cluster.ping(a, c.ip)) ? true : undefined,
      );
    }, 240_000);
  });
});
