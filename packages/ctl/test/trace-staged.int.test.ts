/**
 * `calico trace` through endpoints with staged policies, on its own one-node lab cluster (the
 * 3-node one of trace-connectivity.int.test.ts stays as fast as it was): a staged Deny on the
 * destination and a staged allow-only egress policy on the source are reported as staged hops
 * naming the policy and rule, while the probe is delivered; and repeated same-node traces each
 * see the whole walk of the probe (none reported lost or cut short).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@calico-ts/kernel';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import type { TraceReport } from '../src/commands/trace-analysis.ts';
import { labCli } from './lab-cli.ts';

const { clustersDir, calico, ok } = labCli('tt');

const STAGED = `apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: deny-b, namespace: demo}
spec:
  selector: app == 'b'
  types: [Ingress]
  ingress:
    - {action: Allow, protocol: UDP}
    - {action: Deny, protocol: TCP, destination: {ports: [80]}}
---
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: client-egress}
spec:
  selector: role == 'client'
  types: [Egress]
  egress:
    - {action: Allow, protocol: UDP}
`;

describeWith(
  [root(), command('etcd'), command('iptables'), command('nft')],
  'calico trace through staged chains (1-node lab)',
  () => {
    const name = runPrefix('tt');
    const policyDir = mkdtempSync(join(tmpdir(), 'tt-policy-'));
    const file = join(policyDir, 'staged.yaml');

    const trace = async (): Promise<TraceReport> => {
      const r = await calico(['trace', '--name', name, '-o', 'json', '--from', 'demo/a', '--to', 'demo/b']);
      const report = JSON.parse(r.out) as TraceReport;
      expect(r.code, `${r.out}${r.err}`).toBe(report.result === 'delivered' ? 0 : 1);
      return report;
    };
    const staged = (r: TraceReport, hop: 'staged-egress' | 'staged-ingress') =>
      r.hops.find((h) => h.hop === hop)?.detail;

    beforeAll(async () => {
      await ok(['cluster', 'up', '--name', name, '--nodes', '1', '--encapsulation', 'none']);
      await ok(['cluster', 'namespace', 'add', 'demo', '--name', name]);
      await ok(['cluster', 'pod', 'add', 'n1', 'demo/a', '--labels', 'role=client', '--name', name]);
      await ok([
        'cluster',
        'pod',
        'add',
        'n1',
        'demo/b',
        '--labels',
        'app=b',
        '--serve',
        'tcp:80',
        '--name',
        name,
      ]);
      await ok(['cluster', 'probe', 'demo/a', 'demo/b', '--until', 'allowed', '--name', name]);
      writeFileSync(file, STAGED);
      await ok(['apply', '-f', file]);
    }, 180_000);

    afterAll(async () => {
      await calico(['cluster', 'down', '--name', name]);
      rmSync(clustersDir, { recursive: true, force: true });
      rmSync(policyDir, { recursive: true, force: true });
    }, 120_000);

    it('names the staged policy and rule of a staged deny on the destination, and the probe is delivered', async () => {
      // Felix renders the staged chains shortly after the apply: trace until both staged hops show.
      let r: TraceReport | undefined;
      await waitFor(
        async () => {
          r = await trace();
          return staged(r, 'staged-ingress') !== undefined && staged(r, 'staged-egress') !== undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'the staged chains to show in a trace' },
      );
      const report = r!;
      expect(report.result).toBe('delivered');
      expect(report.hops.map((h) => h.hop)).toEqual([
        'source',
        'staged-egress',
        'egress-policy',
        'route',
        'staged-ingress',
        'ingress-policy',
        'delivered',
      ]);
      const ingress = report.hops.find((h) => h.hop === 'staged-ingress')!;
      expect(ingress).toMatchObject({
        status: 'ok',
        staged: 'would-deny',
        detail: 'staged: would deny by StagedNetworkPolicy demo/deny-b rule 2',
      });
      expect(ingress.rule?.chain).toBe('cali-spi-snp/demo/deny-b');
      expect(ingress.rule?.id).toMatch(/^cali:/);
      expect(staged(report, 'staged-egress')).toBe(
        'staged: would deny at the end of tier default (no staged policy in it allowed the packet)',
      );
      // The enforced stage decides: the namespace profile allows both directions.
      expect(report.hops.find((h) => h.hop === 'ingress-policy')?.detail).toBe('allowed by profile kns.demo');
      expect(report.rule).toBeUndefined();
      expect(report.summary).toContain('answered');
      expect(report.summary).toContain(
        'staged policies (not enforced) on egress would deny at the end of tier default',
      );
    });

    it('sees the whole walk of every one of 12 same-node traces (none lost or cut short)', async () => {
      const results: string[] = [];
      for (let i = 0; i < 12; i++) {
        const r = await trace();
        results.push(`${r.result}:${r.hops.map((h) => h.hop).join(',')}`);
      }
      const whole =
        'delivered:source,staged-egress,egress-policy,route,staged-ingress,ingress-policy,delivered';
      expect(results.filter((r) => r !== whole)).toEqual([]);
    }, 180_000);
  },
);
