/**
 * `calico trace` and `calico connectivity test` on one real 3-node lab cluster (BGP, no
 * encapsulation): traces that end at each hop, then the self-test healthy and with one fault at a
 * time injected into the nodes' namespaces (BGP port blocked, underlay MTU lowered, a route
 * deleted, a link down), each failing only the matching check.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execInNamespace, NetNamespace } from '@calico-ts/kernel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { captureIo } from '../src/cli-io.ts';
import { readRecord } from '../src/cluster-context.ts';
import { type ConnectivityReport, connectivityTest } from '../src/commands/connectivity-test.ts';
import type { TraceReport } from '../src/commands/trace-analysis.ts';
import { connectDatastore } from '../src/datastore-connection.ts';
import { labCli } from './lab-cli.ts';

const { clustersDir, env, calico, ok } = labCli('hC');

/** Runs a command in a namespace and fails the test if it fails. */
async function sh(ns: string, cmd: string, ...args: string[]): Promise<string> {
  const handle = NetNamespace.open(ns);
  try {
    const r = await execInNamespace(handle, cmd, args);
    expect(r.exitCode, `${ns}: ${cmd} ${args.join(' ')}\n${r.stderr}`).toBe(0);
    return r.stdout;
  } finally {
    handle.close();
  }
}

describeWith(
  [root(), command('etcd'), command('iptables'), command('nft'), command('ping')],
  'calico trace and calico connectivity test (3-node lab, BGP)',
  () => {
    const name = runPrefix('hc');
    const node = (i: number) => `${name}-n${i}`;
    const policyDir = mkdtempSync(join(tmpdir(), 'hC-policy-'));
    const policyFile = (file: string, yaml: string) => {
      const path = join(policyDir, file);
      writeFileSync(path, yaml);
      return path;
    };
    let a = { ip: '', netns: '' };
    let b = { ip: '' };

    const trace = async (...args: string[]): Promise<TraceReport> => {
      const r = await calico(['trace', '--name', name, '-o', 'json', ...args]);
      const report = JSON.parse(r.out) as TraceReport;
      expect(r.code, `${r.out}${r.err}`).toBe(report.result === 'delivered' ? 0 : 1);
      return report;
    };

    beforeAll(async () => {
      await ok(['cluster', 'up', '--name', name, '--nodes', '3', '--encapsulation', 'none']);
      await ok(['cluster', 'namespace', 'add', 'demo', '--name', name]);
      const [pa, pb] = await Promise.all([
        ok([
          'cluster',
          'pod',
          'add',
          'n1',
          'demo/a',
          '--labels',
          'role=client',
          '--serve',
          'tcp:80',
          '--name',
          name,
        ]),
        ok([
          'cluster',
          'pod',
          'add',
          'n2',
          'demo/b',
          '--labels',
          'app=b',
          '--serve',
          'tcp:80',
          '--name',
          name,
        ]),
      ]);
      a = { ip: /: (\S+) serving/.exec(pa)![1]!, netns: `${node(1)}-demo-a` };
      b = { ip: /: (\S+) serving/.exec(pb)![1]! };
      await ok(['cluster', 'probe', 'demo/a', 'demo/b', '--until', 'allowed', '--name', name]);
    }, 240_000);

    afterAll(async () => {
      await calico(['cluster', 'down', '--name', name]);
      rmSync(clustersDir, { recursive: true, force: true });
      rmSync(policyDir, { recursive: true, force: true });
    }, 120_000);

    describe('calico trace', { timeout: 90_000 }, () => {
      it('follows an allowed probe through every hop to the destination veth', async () => {
        const r = await trace('--from', 'demo/a', '--to', 'demo/b', '--port', 'tcp/80');
        expect(r.result).toBe('delivered');
        expect(r.to).toBe(`demo/b (${b.ip})`);
        expect(r.hops.map((h) => `${h.hop}@${h.node}`)).toEqual([
          `source@${node(1)}`,
          `egress-policy@${node(1)}`,
          `route@${node(1)}`,
          `underlay@${node(1)}`,
          `remote-node@${node(2)}`,
          `ingress-policy@${node(2)}`,
          `delivered@${node(2)}`,
        ]);
        expect(r.hops[0]!.detail).toMatch(/on cali[0-9a-f]{11}$/);
        expect(r.hops[2]!.detail).toContain('via 198.51.100.12 dev eth0 proto bird');
        expect(r.hops[5]!.detail).toBe('allowed by profile kns.demo');
      });

      it('ends an ingress-denied probe at the ingress policy, naming the policy and its rule', async () => {
        const file = policyFile(
          'deny-b.yaml',
          `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: deny-b, namespace: demo}
spec:
  selector: app == 'b'
  types: [Ingress]
  ingress:
    - {action: Allow, protocol: UDP}
    - {action: Deny, protocol: TCP, destination: {ports: [80]}}
`,
        );
        await ok(['apply', '-f', file]);
        try {
          await ok(['cluster', 'probe', 'demo/a', 'demo/b', '--until', 'denied', '--name', name]);
          const r = await trace('--from', 'demo/a', '--to', 'demo/b', '--port', 'tcp/80');
          expect(r.result).toBe('dropped');
          expect(r.endedAt).toBe('ingress-policy');
          expect(r.hops.at(-1)!.node).toBe(node(2));
          expect(r.rule?.owner).toBe('NetworkPolicy demo/deny-b');
          expect(r.rule?.chain).toBe('cali-pi-np/demo/deny-b');
          expect(r.rule?.id).toMatch(/^cali:/);
          expect(r.summary).toContain('NetworkPolicy demo/deny-b, rule 2');
        } finally {
          await ok(['delete', '-f', file]);
        }
      });

      it('ends an egress-denied probe at the egress policy with the end-of-tier rule', async () => {
        const file = policyFile(
          'client-egress.yaml',
          `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: client-egress, namespace: demo}
spec:
  selector: role == 'client'
  types: [Egress]
  egress:
    - {action: Allow, protocol: UDP}
`,
        );
        await ok(['apply', '-f', file]);
        try {
          await ok(['cluster', 'probe', 'demo/a', 'demo/b', '--until', 'denied', '--name', name]);
          const r = await trace('--from', 'demo/a', '--to', 'demo/b');
          expect(r.result).toBe('dropped');
          expect(r.endedAt).toBe('egress-policy');
          expect(r.hops.map((h) => h.hop)).toEqual(['source', 'egress-policy']);
          expect(r.rule?.chain).toMatch(/^cali-fw-cali/);
          expect(r.rule?.description).toBe('End of tier default. Drop if no policies passed packet');
          expect(r.summary).toContain('after NetworkPolicy demo/client-egress');
          expect(r.summary).toContain('deny at the end of tier default');
        } finally {
          await ok(['delete', '-f', file]);
          await ok(['cluster', 'probe', 'demo/a', 'demo/b', '--until', 'allowed', '--name', name]);
        }
      });

      it('ends a probe to an address no pod has at the route (the node blackholes its own block)', async () => {
        const unused = a.ip.replace(/\.(\d+)$/, (_m, o: string) => `.${Number(o) + 37}`);
        const r = await trace('--from', 'demo/a', '--to', unused, '--timeout', '500');
        expect(r.result).toBe('no-route');
        expect(r.endedAt).toBe('route');
        expect(r.summary).toMatch(/blackhole \S+\/26 proto 80/);
      });

      it('ends a full-size DF probe at the route when the node uplink MTU is lower, and on arrival when the remote one is', async () => {
        await sh(node(1), 'ip', 'link', 'set', 'eth0', 'mtu', '1400');
        try {
          const r = await trace('--from', 'demo/a', '--to', 'demo/b', '--port', 'icmp', '--size', '1472');
          expect(r.result).toBe('mtu-exceeded');
          expect(r.endedAt).toBe('route');
          expect(r.summary).toContain('1500 bytes with DF set exceed the MTU 1400 of eth0');
        } finally {
          await sh(node(1), 'ip', 'link', 'set', 'eth0', 'mtu', '1500');
          await sh(a.netns, 'ip', 'route', 'flush', 'cache');
        }
        await sh(node(2), 'ip', 'link', 'set', 'eth0', 'mtu', '1400');
        try {
          const r = await trace('--from', 'demo/a', '--to', 'demo/b', '--port', 'icmp', '--size', '1472');
          expect(r.result).toBe('mtu-exceeded');
          expect(r.endedAt).toBe('remote-node');
          expect(r.summary).toContain(`MTU 1400 of ${node(2)}'s underlay interface`);
          // The trace table is gone from both nodes afterwards.
          for (const n of [node(1), node(2)])
            expect(await sh(n, 'nft', 'list', 'tables')).not.toContain('calico_trace');
        } finally {
          await sh(node(2), 'ip', 'link', 'set', 'eth0', 'mtu', '1500');
        }
      });
    });

    // Each self-test adds and removes five pods: about 15 s on an idle machine, far more under load.
    describe('calico connectivity test', { timeout: 180_000 }, () => {
      const failing = (r: ConnectivityReport) =>
        r.checks.filter((c) => c.status === 'fail').map((c) => c.check);

      async function selfTest(
        onCheck?: (check: string) => Promise<void> | void,
      ): Promise<ConnectivityReport> {
        const record = readRecord(name, { ...process.env, ...env });
        if (!record) throw new Error(`no record of cluster ${name}`);
        const datastore = await connectDatastore({}, captureIo({ env }));
        try {
          return await connectivityTest(record, datastore, {
            progress: async (line) => await onCheck?.(line),
          });
        } finally {
          await datastore.close();
        }
      }

      it('passes on the healthy cluster (CLI) and leaves no test pod or policy behind', async () => {
        const r = await calico(['connectivity', 'test', '--name', name, '-o', 'json']);
        const report = JSON.parse(r.out) as ConnectivityReport;
        expect(r.code, r.out + r.err).toBe(0);
        expect(report.checks.map((c) => `${c.check}:${c.status}`)).toEqual([
          'underlay:pass',
          'bgp:pass',
          'pod-pod-same-node:pass',
          'pod-pod-cross-node:pass',
          'pod-host:pass',
          'pod-outside:pass',
          'mtu:pass',
          'default-deny:pass',
        ]);
        const pods = await ok(['cluster', 'pod', 'list', '--name', name]);
        expect(pods).not.toContain('calico-conntest/');
        expect(await ok(['get', 'networkpolicy', '-n', 'calico-conntest'])).not.toContain('conntest-deny');
      });

      it('fails only the bgp check when TCP 179 is dropped on a node, naming that node', async () => {
        await sh(node(2), 'iptables', '-I', 'INPUT', '1', '-p', 'tcp', '--dport', '179', '-j', 'DROP');
        try {
          const r = await selfTest();
          expect(failing(r)).toEqual(['bgp']);
          const bgp = r.checks.find((c) => c.check === 'bgp')!;
          expect(bgp.failures.map((f) => f.what)).toEqual(
            expect.arrayContaining([expect.stringContaining('n1 → n2'), expect.stringContaining('n3 → n2')]),
          );
          expect(bgp.failures.every((f) => f.cause.includes('a firewall rule on n2'))).toBe(true);
        } finally {
          await sh(node(2), 'iptables', '-D', 'INPUT', '-p', 'tcp', '--dport', '179', '-j', 'DROP');
        }
      });

      it('fails only the mtu check when a node underlay MTU is lowered, naming the node and its MTU', async () => {
        await sh(node(2), 'ip', 'link', 'set', 'eth0', 'mtu', '1400');
        try {
          const r = await selfTest();
          expect(failing(r)).toEqual(['mtu']);
          const mtu = r.checks.find((c) => c.check === 'mtu')!;
          expect(mtu.failures.length).toBe(4);
          expect(
            mtu.failures.every((f) => f.cause.includes("n2's underlay MTU 1400 is below the pod MTU 1500")),
          ).toBe(true);
        } finally {
          await sh(node(2), 'ip', 'link', 'set', 'eth0', 'mtu', '1500');
        }
      });

      it('fails only the cross-node check when a route to a block is deleted, naming the missing route', async () => {
        // calico-node (its BGP agent) puts a deleted route back within a second, so it is paused
        // (SIGSTOP) while the route is gone: the route is deleted just before the cross-node
        // check and calico-node resumes when the next check starts, which restores it.
        const pid = readRecord(name, { ...process.env, ...env })?.nodes[0]?.pid;
        if (pid === undefined) throw new Error(`no calico-node pid for ${node(1)}`);
        let paused = false;
        const r = await selfTest(async (check) => {
          if (check === 'pod-pod-cross-node') {
            process.kill(pid, 'SIGSTOP');
            paused = true;
            const routes = await sh(node(1), 'ip', 'route', 'show', 'proto', 'bird');
            const toN2 = routes.split('\n').filter((l) => l.includes('via 198.51.100.12'));
            expect(toN2.length).toBeGreaterThan(0);
            for (const line of toN2) await sh(node(1), 'ip', 'route', 'del', line.split(' ')[0]!);
          } else if (paused) {
            process.kill(pid, 'SIGCONT');
            paused = false;
          }
        }).finally(() => {
          if (paused) process.kill(pid, 'SIGCONT');
        });
        expect(failing(r)).toEqual(['pod-pod-cross-node']);
        const cross = r.checks.find((c) => c.check === 'pod-pod-cross-node')!;
        expect(cross.failures.length).toBeGreaterThan(0);
        // n1 → n2 loses the packet, n2 → n1 the answer: both name n1's missing route.
        for (const f of cross.failures) {
          expect(f.what).toMatch(/on n1 → .* on n2|on n2 → .* on n1/);
          expect(f.cause).toContain('n1 has no route to');
        }
      });

      it('fails only the underlay check when a node link is down, and skips what depends on that node', async () => {
        await sh(node(3), 'ip', 'link', 'set', 'eth0', 'down');
        try {
          const r = await selfTest();
          expect(failing(r)).toEqual(['underlay']);
          const underlay = r.checks.find((c) => c.check === 'underlay')!;
          expect(underlay.failures[0]!.what).toBe('n3: eth0 is down');
          expect(r.checks.find((c) => c.check === 'bgp')!.detail).toContain('n3 (underlay failed)');
        } finally {
          await sh(node(3), 'ip', 'link', 'set', 'eth0', 'up');
          await sh(node(3), 'ip', 'route', 'replace', 'default', 'via', '198.51.100.1', 'dev', 'eth0');
        }
      });
    });
  },
);
