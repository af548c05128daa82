/**
 * `calico cluster up --route-reflectors 2 --dedicated-reflectors`: 6 nodes, mesh off, two
 * calico-reflector daemons with one cluster ID. Every pod reaches every other; one reflector
 * frozen (SIGSTOP, so its sessions end by hold-time expiry, not by a Cease) loses nothing; both
 * frozen, the learned routes age out after the hold time; one thawed, they come back.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { listNamespaces } from '@calico-ts/kernel';
import { processStartTime } from '@calico-ts/lab';
import { afterAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { labCli } from './lab-cli.ts';

const { clustersDir, calico, ok } = labCli('hF');

const NODES = 6;
/** Offered by the reflectors; the sessions use it (the smaller side's). */
const HOLD_TIME_S = 6;

async function until(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The routes a node's BGP agent installed (`proto bird`), as destinations. */
function learned(namespace: string): string[] {
  const r = spawnSync('ip', ['-n', namespace, '-4', 'route', 'show', 'proto', 'bird'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip -n ${namespace} route: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[0]!)
    .sort();
}

interface Status {
  nodes: { name: string; ready: boolean; blocks: string[]; bgp: { established: number; peers: number } }[];
  reflectors: { name: string; address: string; pid: number; ready: boolean }[];
  etcd: { pid: number };
}

afterAll(() => rmSync(clustersDir, { recursive: true, force: true }));

describeWith(
  [root(), command('etcd'), command('iptables'), command('ipset')],
  'calico cluster with two dedicated route reflectors',
  () => {
    const name = runPrefix('hf');
    const frozen = new Set<number>();
    afterAll(async () => {
      for (const pid of frozen) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // already gone: down still removes the rest
        }
      }
      await calico(['cluster', 'down', '--name', name]);
    }, 120_000);

    it('6 nodes peer only with the reflectors; pods reach each other through one; routes age out by hold time without both and return with one', async () => {
      const up = await ok([
        'cluster',
        'up',
        '--name',
        name,
        '--nodes',
        String(NODES),
        '--encapsulation',
        'none',
        '--route-reflectors',
        '2',
        '--dedicated-reflectors',
        '--reflector-hold-time',
        String(HOLD_TIME_S),
      ]);
      expect(up).toContain(`route reflectors ${name}-rr1, ${name}-rr2`);
      // Each reflector: the 6 nodes and its twin; each node: the two reflectors, no mesh.
      expect(up).toMatch(new RegExp(`${name}-rr1 .*7/7 Established .*dedicated route reflector`));
      for (let i = 1; i <= NODES; i++) expect(up).toMatch(new RegExp(`${name}-n${i} .*2/2 Established`));

      const s = JSON.parse(await ok(['cluster', 'status', '--name', name, '-o', 'json'])) as Status;
      expect(s.reflectors.map((r) => [r.name, r.ready])).toEqual([
        [`${name}-rr1`, true],
        [`${name}-rr2`, true],
      ]);
      const pids = [s.etcd.pid, ...s.reflectors.map((r) => r.pid)];

      await ok(['cluster', 'namespace', 'add', 'rr', '--name', name]);
      await Promise.all(
        Array.from({ length: NODES }, (_, i) =>
          ok(['cluster', 'pod', 'add', `n${i + 1}`, `rr/p${i + 1}`, '--serve', 'tcp:80', '--name', name]),
        ),
      );
      const allReachable = async (): Promise<void> => {
        const m = JSON.parse(
          await ok(['cluster', 'matrix', '--name', name, '-o', 'json', '--retry-for', '30']),
        ) as { pods: string[]; allowed: Record<string, Record<string, boolean>> };
        expect(m.pods).toHaveLength(NODES);
        for (const from of m.pods)
          for (const to of m.pods)
            if (from !== to) expect(m.allowed[from]?.[to], `${from} → ${to}`).toBe(true);
      };
      await allReachable();

      // Every node learned the other five nodes' blocks, each from both reflectors.
      const last = `${name}-n${NODES}`;
      const blocks = (
        JSON.parse(await ok(['cluster', 'status', '--name', name, '-o', 'json'])) as Status
      ).nodes.flatMap((n) => (n.name === last ? [] : n.blocks));
      expect(blocks).toHaveLength(NODES - 1);
      await until('n6 to learn every other block', () => learned(last).join() === [...blocks].sort().join());

      const sessions = async (): Promise<number> =>
        (JSON.parse(await ok(['cluster', 'status', '--name', name, '-o', 'json'])) as Status).nodes.find(
          (n) => n.name === last,
        )?.bgp.established ?? -1;

      // One reflector frozen: its sessions expire by hold time; nothing is lost.
      const [rr1, rr2] = s.reflectors;
      process.kill(rr1!.pid, 'SIGSTOP');
      frozen.add(rr1!.pid);
      await until(
        'the sessions to the frozen reflector to expire',
        async () => (await sessions()) === 1,
        30_000,
      );
      expect(learned(last)).toEqual([...blocks].sort());
      await allReachable();

      // Both frozen: the routes age out once the hold time has passed, not before.
      const stoppedAt = Date.now();
      process.kill(rr2!.pid, 'SIGSTOP');
      frozen.add(rr2!.pid);
      await until('the learned routes to age out', () => learned(last).length === 0, 30_000);
      const agedAfterMs = Date.now() - stoppedAt;
      // Hold time minus one keepalive interval (hold / 3) at the earliest.
      expect(agedAfterMs).toBeGreaterThanOrEqual(((HOLD_TIME_S * 2) / 3) * 1000 - 500);
      const probe = await calico(['cluster', 'probe', 'rr/p1', `rr/p${NODES}`, 'tcp/80', '--name', name]);
      expect(probe.code, probe.out + probe.err).not.toBe(0);

      // One reflector back: its sessions return and with them every route.
      process.kill(rr2!.pid, 'SIGCONT');
      frozen.delete(rr2!.pid);
      await until(
        'the routes to come back through rr2',
        () => learned(last).join() === [...blocks].sort().join(),
      );
      await allReachable();
      process.kill(rr1!.pid, 'SIGCONT');
      frozen.delete(rr1!.pid);
      await until('n6 to be back with both reflectors', async () => (await sessions()) === 2, 60_000);

      await ok(['cluster', 'down', '--name', name]);
      expect(listNamespaces(`${name}-`)).toEqual([]);
      expect(existsSync(join(clustersDir, name))).toBe(false);
      for (const pid of pids) expect(processStartTime(pid), `pid ${pid}`).toBeUndefined();
    }, 420_000);
  },
);
