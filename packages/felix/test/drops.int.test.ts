/**
 * Drop logs on real namespaces: random policies written through etcd, enforced by Felix, probed
 * from every pod to every other (TCP 80, UDP 81); each denied probe must give exactly one record,
 * within 1 s, naming the policy and rule (or end of tier) that `explainFlow` says decided, and no
 * allowed probe may give one. CI runs CASES cases (about a minute); the bench runs 200.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { checkCase, clearCase, generateCase, writeCase } from './drop-cases.ts';
import { NetpolModel } from './policy-harness.ts';

const CASES = 12;

describeWith(
  [root(), command('etcd'), command('iptables'), command('ipset'), command('python3')],
  'drop logs name the policy and rule of every denied probe',
  () => {
    const m = new NetpolModel({ prefix: runPrefix('hb') });
    beforeAll(() => m.start(), 120_000);
    afterAll(() => m.teardown(), 60_000);

    it('reads the NFLOG groups without errors', () => {
      expect(m.felix!.status().errors).toEqual([]);
    });

    it(`${CASES} generated cases: one record per denied probe, none for allowed ones`, async () => {
      let denied = 0;
      let correct = 0;
      let allowed = 0;
      const problems: string[] = [];
      for (let seed = 1; seed <= CASES; seed++) {
        const c = generateCase(seed);
        await writeCase(m, c);
        const out = await checkCase(m, 1000);
        denied += out.denied;
        allowed += out.allowed;
        correct += out.correct;
        problems.push(...out.problems.map((p) => `seed ${seed}: ${p}`));
        await clearCase(m, c);
      }
      expect(problems.slice(0, 20)).toEqual([]);
      expect(denied).toBeGreaterThan(50);
      expect(allowed).toBeGreaterThan(50);
      expect(correct).toBe(denied);
    }, 150_000);

    it('counts records per policy and rule in Prometheus text', () => {
      const text = m.felix!.drops.metrics();
      expect(text).toMatch(
        /^felix_policy_drop_records_total\{direction="(ingress|egress)",verdict="rule",staged="false",tier="default",policy="(np|gnp)\/[^"]+",rule="\d+"\} \d+$/m,
      );
    });
  },
);
