/**
 * Drop logs on real namespaces: random policies written through etcd, enforced by Felix, probed
 * from every pod to every other (TCP 80, UDP 81); each denied probe must give exactly one record,
 * within 1 s, naming the policy and rule (or end of tier) that `explainFlow` says decided, and no
 * allowed probe may give one. CI runs CASES cases (about a minute); the bench runs 200.
 */
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { serveDropLog } from '../src/index.ts';
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

    it('serves the records on its drop-log socket (what calico drops reads)', async () => {
      const path = join(m.scriptDir!, 'felix-drops.ctl');
      const server = await serveDropLog(path, 'node-1', m.felix!.drops);
      try {
        const all = m.felix!.drops.records();
        const reply = await new Promise<string>((resolve, reject) => {
          const s = createConnection(path, () =>
            s.write(`${JSON.stringify({ method: 'drops', params: { afterSeq: all.at(-3)!.seq } })}\n`),
          );
          let buf = '';
          s.on('data', (d) => {
            buf += d.toString();
            if (buf.includes('\n')) {
              s.end();
              resolve(buf);
            }
          });
          s.on('error', reject);
        });
        expect(JSON.parse(reply)).toEqual({ ok: true, result: { node: 'node-1', records: all.slice(-2) } });
      } finally {
        await server.close();
      }
    });

    it('counts records per policy and rule in Prometheus text', () => {
      const text = m.felix!.drops.metrics();
      expect(text).toMatch(
        /^felix_policy_drop_records_total\{direction="(ingress|egress)",verdict="(rule|endOfTier)",staged="false",tier="default",policy="[^"]*",rule="\d*"\} [1-9]\d*$/m,
      );
    });
  },
);
