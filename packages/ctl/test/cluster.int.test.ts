import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { listNamespaces } from '@calico-ts/kernel';
import { processStartTime } from '@calico-ts/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { labCli } from './lab-cli.ts';

const CLI = resolve(import.meta.dirname, '../src/cli.ts');
const { clustersDir, calico, ok } = labCli('cl');

/** The CLI as a process: for `cluster exec`, whose command writes to the inherited stdout. */
function calicoProcess(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--conditions=@calico-ts/source', CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CALICO_LOG_LEVEL: 'error', CALICO_CLUSTERS_DIR: clustersDir, NO_COLOR: '1' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', rej);
    child.on('close', (code) => res({ code, out, err }));
  });
}

interface Status {
  nodes: {
    name: string;
    address: string;
    pid: number | null;
    ready: boolean;
    restarts: number;
    asNumber: string | null;
    routeReflector: boolean | null;
    blocks: string[];
    cniConfDir: string;
  }[];
  etcd: { pid: number; healthy: boolean; restarts: number };
  cniBinDir: string;
}

const status = async (name: string): Promise<Status> =>
  JSON.parse(await ok(['cluster', 'status', '--name', name, '-o', 'json'])) as Status;

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// Namespace `red` is isolated: only pods in it may connect to its pods.
const ISOLATE_RED = `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: red-isolated
  namespace: red
spec:
  selector: all()
  types: [Ingress]
  ingress:
    - action: Allow
      source:
        namespaceSelector: projectcalico.org/name == 'red'
`;

afterAll(() => rmSync(clustersDir, { recursive: true, force: true }));

describeWith(
  [root(), command('etcd'), command('iptables'), command('ipset')],
  'calico cluster (the lab)',
  () => {
    for (const encapsulation of ['none', 'vxlan'] as const) {
      // The BGP cluster is also dual-stack and has a BIRD top-of-rack router (one cluster for all
      // three keeps CI short).
      const bgp = encapsulation === 'none';
      describe(`encapsulation ${encapsulation}, 3 nodes${bgp ? ', dual stack, BIRD top-of-rack' : ''}`, () => {
        const name = runPrefix('cl');
        let pids: number[] = [];

        beforeAll(async () => {
          const up = await ok([
            'cluster',
            'up',
            '--name',
            name,
            '--nodes',
            '3',
            '--encapsulation',
            encapsulation,
            ...(bgp ? ['--tor', 'bird', '--ipv6'] : []),
          ]);
          expect(up).toMatch(new RegExp(`${name}-n3 +\\S+ +\\d+ +yes`));
          if (encapsulation === 'none') {
            // Each node: the two other nodes over IPv4 and IPv6, and the ToR; the ToR: every node,
            // eBGP from AS 65001.
            expect(up).toMatch(new RegExp(`${name}-n1 .* 64512 +5/5 Established`));
            expect(up).toMatch(/top-of-rack +\S+ +\d+ +yes +0 +65001 +3\/3 Established .*BIRD ToR \(eBGP\)/);
          }
          expect(up).toContain('calico cluster down');
        }, 240_000);

        afterAll(async () => {
          await calico(['cluster', 'down', '--name', name]);
        }, 120_000);

        it('runs pods in namespaces, draws the matrix, and a policy makes the expected ✗ cells', async () => {
          const s = await status(name);
          expect(s.nodes.map((n) => n.name)).toEqual([`${name}-n1`, `${name}-n2`, `${name}-n3`]);
          expect(s.nodes.every((n) => n.ready && n.pid !== null && n.restarts === 0)).toBe(true);
          expect(s.etcd.healthy).toBe(true);
          expect(existsSync(join(s.nodes[0]!.cniConfDir, '10-calico.conflist'))).toBe(true);
          expect(readdirSync(s.cniBinDir).sort()).toEqual(expect.arrayContaining(['calico', 'calico-ipam']));
          pids = [s.etcd.pid, ...s.nodes.map((n) => n.pid!)];

          await ok(['cluster', 'namespace', 'add', 'blue', '--labels', 'team=blue', '--name', name]);
          await ok(['cluster', 'namespace', 'add', 'red', '--name', name]);
          await Promise.all(
            [1, 2].flatMap((i) => [
              ok([
                'cluster',
                'pod',
                'add',
                `n${i}`,
                `blue/b${i}`,
                '--labels',
                'app=b',
                '--serve',
                'tcp:80,udp:53',
                '--name',
                name,
              ]),
              ok([
                'cluster',
                'pod',
                'add',
                `n${i + 1}`,
                `red/r${i}`,
                '--serve',
                'tcp:80,udp:53',
                '--name',
                name,
              ]),
            ]),
          );
          const wep = JSON.parse(
            // No datastore flags: the current cluster (the one just brought up) is where it goes.
            await ok(['get', 'workloadendpoints', '-n', 'blue', '-o', 'json']),
          ) as {
            items: {
              metadata: { labels: Record<string, string> };
              spec: { pod: string; ports: unknown[] };
            }[];
          };
          const b1 = wep.items.find((w) => w.spec.pod === 'b1');
          expect(b1?.metadata.labels['app']).toBe('b');
          expect(b1?.spec.ports).toEqual([
            { name: 'serve-80-tcp', protocol: 'TCP', port: 80 },
            { name: 'serve-53-udp', protocol: 'UDP', port: 53 },
          ]);

          const matrix = JSON.parse(
            await ok(['cluster', 'matrix', '--name', name, '-o', 'json', '--retry-for', '30']),
          ) as { port: string; pods: string[]; allowed: Record<string, Record<string, boolean>> };
          expect(matrix.port).toBe('tcp/80');
          // Every node with a pod has an affine block; AS is Calico's default.
          const withPods = await status(name);
          expect(withPods.nodes.map((n) => n.blocks.length > 0)).toEqual([true, true, true]);
          expect(withPods.nodes.every((n) => n.asNumber === '64512')).toBe(true);
          expect(matrix.pods).toEqual(['blue/b1', 'blue/b2', 'red/r1', 'red/r2']);
          for (const from of matrix.pods)
            for (const to of matrix.pods)
              if (from !== to) expect(matrix.allowed[from]?.[to], `${from} → ${to}`).toBe(true);
          await ok(['cluster', 'probe', 'red/r1', 'blue/b2', 'udp/53', '--name', name]);

          const policy = join(clustersDir, `${name}-policy.yaml`);
          writeFileSync(policy, ISOLATE_RED);
          await ok(['apply', '-f', policy]);
          // Each node's Felix applies the policy on its own time: wait for every cell it denies.
          await Promise.all(
            ['blue/b1', 'blue/b2'].flatMap((from) =>
              ['red/r1', 'red/r2'].map((to) =>
                ok(['cluster', 'probe', from, to, 'tcp/80', '--until', 'denied', '--name', name]),
              ),
            ),
          );
          const after = JSON.parse(
            await ok(['cluster', 'matrix', '--name', name, '-o', 'json']),
          ) as typeof matrix;
          for (const from of after.pods)
            for (const to of after.pods) {
              if (from === to) continue;
              const expected = !(to.startsWith('red/') && from.startsWith('blue/'));
              expect(after.allowed[from]?.[to], `${from} → ${to}`).toBe(expected);
            }
          const table = await ok(['cluster', 'matrix', '--name', name]);
          expect(table).toContain('8/12 allowed, 4 denied');
          if (!bgp) return;

          // Dual stack: every pod has an IPv6 address from the pool, routed over BGP, and the
          // same policy holds over IPv6 (ip6tables).
          const record = JSON.parse(readFileSync(join(clustersDir, name, 'cluster.json'), 'utf8')) as {
            pods: { ip: string; ipv6?: string }[];
          };
          for (const p of record.pods) expect(p.ipv6, p.ip).toMatch(/^fd00:10:244:/);
          // Across nodes over IPv6 (its routes learned by BGP) before the whole grid.
          await ok([
            'cluster',
            'probe',
            'red/r1',
            'blue/b2',
            'udp/53',
            '--family',
            '6',
            '--until',
            'allowed',
            '--name',
            name,
          ]);
          const v6 = JSON.parse(
            await ok(['cluster', 'matrix', '--name', name, '-o', 'json', '--family', '6']),
          ) as typeof matrix;
          expect(v6.pods).toEqual(matrix.pods);
          for (const from of v6.pods)
            for (const to of v6.pods) {
              if (from === to) continue;
              const expected = !(to.startsWith('red/') && from.startsWith('blue/'));
              expect(v6.allowed[from]?.[to], `IPv6 ${from} → ${to}`).toBe(expected);
            }
          const learned6 = spawnSync('ip', ['-n', `${name}-n1`, '-6', 'route', 'show', 'proto', 'bird'], {
            encoding: 'utf8',
          }).stdout;
          expect(learned6).toMatch(/^fd00:10:244:\S+\/122 via 2001:db8::/m);
        }, 180_000);

        if (encapsulation === 'none')
          it('the top-of-rack BIRD learns every node block over eBGP and the underlay routes to the pods', async () => {
            const s = (await status(name)) as Status & {
              tor: { asNumber: number; sessions: { established: number; peers: number }; routes: string[] };
            };
            // The ToR peers over IPv4 only: the IPv4 blocks.
            const v4 = (b: string): boolean => !b.includes(':');
            const blocks = s.nodes.flatMap((n) => n.blocks.filter(v4)).sort();
            expect(blocks.length).toBeGreaterThanOrEqual(3);
            expect(s.tor.sessions).toEqual({ established: 3, peers: 3 });
            const socket = join(clustersDir, name, 'tor', 'bird.ctl');
            const shown = (): string =>
              spawnSync('birdc', ['-s', socket, 'show', 'route'], { encoding: 'utf8' }).stdout ?? '';
            await until('BIRD to learn every block', async () =>
              blocks.every((b) => shown().includes(b)) ? true : undefined,
            );
            // Each block also by way of the node that owns it, with the nodes' AS in the path.
            const sections = new Map<string, string>();
            let current = '';
            for (const line of shown().split('\n')) {
              if (/^\d/.test(line)) current = line.split(/\s+/)[0]!;
              if (current) sections.set(current, `${sections.get(current) ?? ''}${line}\n`);
            }
            for (const n of s.nodes)
              for (const b of n.blocks.filter(v4)) {
                expect(sections.get(b), b).toContain(`via ${n.address} `);
                expect(sections.get(b), b).toContain('[AS64512i]');
              }
            const protocols =
              spawnSync('birdc', ['-s', socket, 'show', 'protocols'], { encoding: 'utf8' }).stdout ?? '';
            expect(protocols.match(/ BGP .* Established/g)).toHaveLength(3);
            // The switch installed what it learned: it routes a pod block to a node.
            const block = s.nodes[2]!.blocks.filter(v4)[0]!.split('/')[0]!;
            const route = spawnSync('ip', ['-n', `${name}-ul`, 'route', 'get', block], { encoding: 'utf8' });
            expect(s.nodes.map((n) => ` via ${n.address} `)).toContainEqual(
              route.stdout.match(/ via \S+ /)?.[0],
            );
          }, 90_000);

        // Once is enough: the refusals do not depend on the encapsulation.
        if (encapsulation === 'none')
          it('refuses an unknown node, a duplicate pod and an unknown namespace; a pod with its own address, service account and labels', async () => {
            const unknownNode = await calico(['cluster', 'pod', 'add', 'n9', 'blue/x', '--name', name]);
            expect(unknownNode.code).toBe(1);
            expect(unknownNode.err).toContain(
              `node "n9": no such node in cluster ${name} (nodes: ${name}-n1, ${name}-n2, ${name}-n3)`,
            );
            const duplicate = await calico(['cluster', 'pod', 'add', 'n1', 'blue/b1', '--name', name]);
            expect(duplicate.code).toBe(1);
            expect(duplicate.err).toContain('pod blue/b1 already exists');
            const noNamespace = await calico(['cluster', 'pod', 'add', 'n1', 'green/g1', '--name', name]);
            expect(noNamespace.code).toBe(1);
            expect(noNamespace.err).toContain('namespace "green" does not exist');
            const badRef = await calico(['cluster', 'pod', 'add', 'n1', 'nonamespace', '--name', name]);
            expect(badRef.err).toContain('expected NAMESPACE/NAME');

            // The rest of a pod's life: an address of our choosing, a service account, labels, exec, delete.
            const added = await ok([
              'cluster',
              'pod',
              'add',
              'n3',
              'blue/sa1',
              '--ip',
              '10.244.250.7',
              '--service-account',
              'robot',
              '--name',
              name,
            ]);
            expect(added).toContain(': 10.244.250.7');
            const profile = JSON.parse(await ok(['get', 'profile', 'ksa.blue.robot', '-o', 'json'])) as {
              spec: { labelsToApply: Record<string, string> };
            };
            expect(profile.spec.labelsToApply['pcsa.projectcalico.org/name']).toBe('robot');
            expect(await ok(['cluster', 'pod', 'label', 'blue/sa1', 'role=api', '--name', name])).toContain(
              'role=api',
            );
            const weps = JSON.parse(await ok(['get', 'workloadendpoints', '-n', 'blue', '-o', 'json'])) as {
              items: {
                metadata: { labels: Record<string, string> };
                spec: { pod: string; serviceAccountName?: string };
              }[];
            };
            const sa1 = weps.items.find((w) => w.spec.pod === 'sa1');
            expect(sa1?.spec.serviceAccountName).toBe('robot');
            expect(sa1?.metadata.labels).toMatchObject({
              role: 'api',
              'projectcalico.org/serviceaccount': 'robot',
            });
            expect(
              await ok(['cluster', 'namespace', 'label', 'blue', 'env=test', 'team-', '--name', name]),
            ).toContain('namespace blue labels: env=test');
            const addr = await calicoProcess([
              'cluster',
              'exec',
              'blue/sa1',
              '--name',
              name,
              '--',
              'ip',
              '-4',
              'addr',
              'show',
              'eth0',
            ]);
            expect(addr.code, addr.err).toBe(0);
            expect(addr.out).toContain('10.244.250.7/32');
            expect(await ok(['cluster', 'pod', 'del', 'blue/sa1', '--name', name])).toContain(
              'pod blue/sa1 deleted',
            );
            expect(listNamespaces(`${name}-n3-blue-sa1`)).toEqual([]);
            expect(await ok(['cluster', 'logs', 'supervisor', '--name', name])).toContain(
              'pod blue/sa1 deleted',
            );
          }, 150_000);

        it('restarts a calico-node that is killed and reports it', async () => {
          const before = await status(name);
          const victim = before.nodes[1]!;
          process.kill(victim.pid!, 'SIGKILL');
          const after = await until('the node restarted and ready', async () => {
            const s = await status(name);
            const n = s.nodes[1]!;
            return n.restarts === 1 && n.ready && n.pid !== victim.pid ? s : undefined;
          });
          pids.push(after.nodes[1]!.pid!);
          const text = await ok(['cluster', 'status', '--name', name]);
          expect(text).toMatch(
            new RegExp(`${victim.name} \\(pid ${victim.pid}\\) exited with signal SIGKILL`),
          );
          expect(text).toMatch(new RegExp(`${victim.name} restarted \\(pid \\d+, restart 1\\)`));
        }, 90_000);

        if (encapsulation === 'none')
          it('calico-node is not ready while etcd does not answer; a killed etcd is restarted and reported', async () => {
            const etcd = (await status(name)).etcd.pid;
            process.kill(etcd, 'SIGSTOP');
            try {
              await until('every calico-node not ready', async () =>
                (await status(name)).nodes.every((n) => !n.ready) ? true : undefined,
              );
            } finally {
              process.kill(etcd, 'SIGCONT');
            }
            await until('every calico-node ready again', async () =>
              (await status(name)).nodes.every((n) => n.ready) ? true : undefined,
            );
            process.kill(etcd, 'SIGKILL');
            const after = await until('etcd restarted and healthy', async () => {
              const s = await status(name);
              return s.etcd.restarts === 1 && s.etcd.healthy && s.etcd.pid !== etcd ? s : undefined;
            });
            pids.push(after.etcd.pid);
            const text = await ok(['cluster', 'status', '--name', name]);
            expect(text).toContain(`etcd (pid ${etcd}) exited with signal SIGKILL`);
            expect(text).toMatch(/etcd restarted \(pid \d+, restart 1\)/);
            await until('every calico-node ready with the new etcd', async () =>
              (await status(name)).nodes.every((n) => n.ready) ? true : undefined,
            );
          }, 120_000);

        it('down removes every namespace, process and file, and a second down is fine', async () => {
          await ok(['cluster', 'down', '--name', name]);
          expect(listNamespaces(`${name}-`)).toEqual([]);
          expect(existsSync(join(clustersDir, name))).toBe(false);
          for (const pid of pids) expect(processStartTime(pid), `pid ${pid}`).toBeUndefined();
          const again = await ok(['cluster', 'down', '--name', name]);
          expect(again).toContain(`no cluster named ${name}`);
        }, 120_000);
      });
    }

    describe('encapsulation none, 3 nodes, 2 nodes as route reflectors', () => {
      const name = runPrefix('cl');
      afterAll(async () => {
        await calico(['cluster', 'down', '--name', name]);
      }, 120_000);

      it('peers every node with the reflectors instead of the mesh; pods reach each other; down leaves nothing', async () => {
        const up = await ok([
          'cluster',
          'up',
          '--name',
          name,
          '--nodes',
          '3',
          '--encapsulation',
          'none',
          '--route-reflectors',
          '2',
        ]);
        // A reflector has a session with each other node (its twin included), n3 one with each reflector.
        expect(up).toMatch(new RegExp(`${name}-n1 .*2/2 Established .*route reflector`));
        expect(up).toMatch(new RegExp(`${name}-n2 .*2/2 Established .*route reflector`));
        expect(up).toMatch(new RegExp(`${name}-n3 .*2/2 Established +\\S+ +-`));
        expect(up).toContain(`route reflectors ${name}-n1, ${name}-n2`);
        const s = await status(name);
        expect(s.nodes.every((n) => n.ready)).toBe(true);
        expect(s.nodes.map((n) => n.routeReflector)).toEqual([true, true, false]);
        const pids = [s.etcd.pid, ...s.nodes.map((n) => n.pid!)];

        const protocols = await ok(['node', 'status', `${name}-n3`, '--protocols']);
        const sessions = protocols.split('\n').filter((l) => /^\s*(Mesh|Node|Global)_/.test(l));
        expect(sessions, protocols).toHaveLength(2);
        for (const session of sessions) {
          expect(session).toMatch(/^\s*(Node|Global)_/);
          expect(session).toContain('Established');
        }

        await ok(['cluster', 'namespace', 'add', 'rr', '--name', name]);
        await Promise.all(
          [1, 2, 3].map((i) =>
            ok(['cluster', 'pod', 'add', `n${i}`, `rr/p${i}`, '--serve', 'tcp:80', '--name', name]),
          ),
        );
        const matrix = JSON.parse(
          await ok(['cluster', 'matrix', '--name', name, '-o', 'json', '--retry-for', '30']),
        ) as { pods: string[]; allowed: Record<string, Record<string, boolean>> };
        expect(matrix.pods).toEqual(['rr/p1', 'rr/p2', 'rr/p3']);
        for (const from of matrix.pods)
          for (const to of matrix.pods)
            if (from !== to) expect(matrix.allowed[from]?.[to], `${from} → ${to}`).toBe(true);

        await ok(['cluster', 'down', '--name', name]);
        expect(listNamespaces(`${name}-`)).toEqual([]);
        expect(existsSync(join(clustersDir, name))).toBe(false);
        for (const pid of pids) expect(processStartTime(pid), `pid ${pid}`).toBeUndefined();
      }, 300_000);
    });

    it('refuses an underlay that overlaps an address of this host, naming it', async () => {
      const r = await calico(['cluster', 'up', '--name', runPrefix('cl'), '--underlay', '127.0.0.0/24']);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(
        /--underlay 127\.0\.0\.0\/24 overlaps this host's (address 127\.0\.0\.1\/8 on lo|route 127\.0\.0\.0\/8)/,
      );
    });

    it('an up that fails half-way removes what it made, and down afterwards is fine', async () => {
      // The etcd relay's port is taken, so up fails after the lab's namespaces exist.
      const taken = createServer();
      await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
      const port = (taken.address() as AddressInfo).port;
      const name = runPrefix('cl');
      try {
        const r = await calico([
          'cluster',
          'up',
          '--name',
          name,
          '--nodes',
          '2',
          '--etcd-port',
          String(port),
        ]);
        expect(r.code).toBe(1);
        expect(r.out).toContain(
          `cluster ${name} failed: listen EADDRINUSE: address already in use 127.0.0.1:${port}`,
        );
        expect(r.err).toContain(`cluster ${name} could not be brought up`);
        expect(listNamespaces(`${name}-`)).toEqual([]);
        expect(existsSync(join(clustersDir, name))).toBe(false);
        expect((await ok(['cluster', 'down', '--name', name])).trim()).toBe(`no cluster named ${name}`);
      } finally {
        taken.close();
        await calico(['cluster', 'down', '--name', name]);
      }
    }, 120_000);

    it('refuses --route-reflectors with vxlan or beyond the nodes, naming the flag and value', async () => {
      const vxlan = await calico(['cluster', 'up', '--name', runPrefix('cl'), '--route-reflectors', '1']);
      expect(vxlan.code).toBe(1);
      expect(vxlan.err).toContain('--route-reflectors 1: route reflectors need BGP');
      const many = await calico([
        'cluster',
        'up',
        '--name',
        runPrefix('cl'),
        '--nodes',
        '2',
        '--encapsulation',
        'none',
        '--route-reflectors',
        '3',
      ]);
      expect(many.code).toBe(1);
      expect(many.err).toContain('--route-reflectors 3: expected at most the number of nodes (--nodes 2)');
    });

    it('refuses the dedicated-reflector flags without reflectors, beyond 9, or a hold time for node reflectors', async () => {
      const alone = await calico(['cluster', 'up', '--name', runPrefix('cl'), '--dedicated-reflectors']);
      expect(alone.code).toBe(1);
      expect(alone.err).toContain('--dedicated-reflectors: expected --route-reflectors N (1 to 9) as well');
      const base = ['cluster', 'up', '--name', runPrefix('cl'), '--encapsulation', 'none'];
      const ten = await calico([...base, '--route-reflectors', '10', '--dedicated-reflectors']);
      expect(ten.code).toBe(1);
      expect(ten.err).toContain('--route-reflectors 10: expected at most 9 dedicated reflectors');
      const hold = await calico([...base, '--route-reflectors', '1', '--reflector-hold-time', '6']);
      expect(hold.code).toBe(1);
      expect(hold.err).toContain(
        '--reflector-hold-time 6: only dedicated reflectors take a hold time; add --dedicated-reflectors',
      );
      const short = await calico([...base, '--route-reflectors', '1', '--reflector-hold-time', '2']);
      expect(short.code).toBe(1);
      expect(short.err).toMatch(/--reflector-hold-time.*expected an integer from 3 to 65535/);
    });

    // Where the kernel has the module, the ipip cluster itself is what needs a test instead.
    it.runIf(!existsSync('/sys/module/ipip') && spawnSync('modprobe', ['-n', 'ipip']).status !== 0)(
      '--encapsulation ipip on a kernel without the ipip module: a refusal naming it, nothing made',
      async () => {
        const name = runPrefix('cl');
        const r = await calico(['cluster', 'up', '--name', name, '--encapsulation', 'ipip']);
        expect(r.code).toBe(1);
        expect(r.err).toContain('--encapsulation ipip: this kernel has no ipip module');
        expect(r.err).toContain('use none or vxlan');
        expect(listNamespaces(`${name}-`)).toEqual([]);
        expect(existsSync(join(clustersDir, name))).toBe(false);
      },
    );

    it('refuses a pool that is not an IPv4 CIDR before making anything', async () => {
      const r = await calico(['cluster', 'up', '--name', runPrefix('cl'), '--pool', '10.244.0.0/33']);
      expect(r.code).toBe(1);
      expect(r.err).toContain('--pool "10.244.0.0/33": expected an IPv4 CIDR such as 10.244.0.0/16');
    });

    it('refuses a bad cluster name with the reason', async () => {
      const r = await calico(['cluster', 'up', '--name', 'Bad_Name']);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/--name.*expected 1–10 of \[a-z0-9-\]/);
    });
  },
);
