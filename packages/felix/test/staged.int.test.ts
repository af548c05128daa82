/**
 * Staged policies on real namespaces: Felix evaluates them on live traffic beside the enforced
 * policies and records the flows they would deny (drop records marked staged), while only the
 * enforced policies decide what passes. The generated cases of the drop-log test, written as
 * staged policies, must record exactly the flows that the same policies deny once enforced.
 */

import { spawnSync } from 'node:child_process';
import type { KindName, ResourceInput } from '@calico-ts/datastore';
import { waitFor } from '@calico-ts/kernel';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import type { DropRecord } from '../src/dataplane/drop-recorder.ts';
import {
  endpointByIp,
  explainFlow,
  explainStagedFlow,
  type FlowDecision,
  policyChainName,
  policySnapshot,
  stagedPolicyChainName,
} from '../src/index.ts';
import { CASE_PROBES, type DropCase, generateCase } from './drop-cases.ts';
import { NetpolModel, type Probe } from './policy-harness.ts';

const STAGED_KINDS = [
  'StagedNetworkPolicy',
  'StagedGlobalNetworkPolicy',
  'StagedKubernetesNetworkPolicy',
] as const;

/** Seeds of the drop-log cases run as staged, then enforced (each takes a few seconds). */
const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
/** Seeds of cases enforced while case seed+100 is staged beside them. */
const MIXED_SEEDS = [11, 12, 13, 14, 15, 16];

const flowKey = (r: { srcIp: string; dstIp: string; protocol: string; dstPort: number | undefined }) =>
  `${r.srcIp}>${r.dstIp} ${r.protocol}/${r.dstPort}`;

describeWith(
  [root(), command('etcd'), command('iptables'), command('ipset'), command('python3'), command('conntrack')],
  'staged policies record what they would deny and change nothing',
  () => {
    const m = new NetpolModel({ prefix: runPrefix('st') });
    beforeAll(() => m.start(), 120_000);
    afterAll(() => m.teardown(), 60_000);
    afterEach(async () => {
      for (const kind of STAGED_KINDS)
        for (const r of (await m.ds.list(kind)).items)
          await m.ds.delete(kind, r.metadata.name, r.metadata.namespace);
      await m.clearPolicies();
      await waitFor(async () => !/^:cali-s/m.test(await m.iptablesSave()), {
        timeoutMs: 15_000,
        intervalMs: 50,
        what: 'staged chains removed',
      });
    }, 60_000);

    const iface = (id: string) => {
      const [ns, pod] = id.split('/') as [string, string];
      return NetpolModel.podIface(ns, pod);
    };
    const since = () => m.felix!.drops.records().at(-1)?.seq ?? 0;
    const after = (seq: number) => m.felix!.drops.records({ afterSeq: seq });
    /** Waits until `n` records arrived after `seq` (or 2 s), then returns them all. */
    const recordsAfter = async (seq: number, n: number): Promise<DropRecord[]> => {
      await waitFor(() => after(seq).length >= n, {
        timeoutMs: 2000,
        intervalMs: 10,
        what: `${n} records`,
      }).catch(() => {});
      return after(seq);
    };
    /**
     * Waits until a staged record arrived after `seq` for every expected flow and direction (or
     * 5 s), then returns all records after `seq`. Counting records alone is not enough here: the
     * enforced drops of the same round count too and can end the wait before the staged ones.
     */
    const stagedRecordsAfter = async (seq: number, expected: ReadonlyMap<string, unknown>) => {
      const arrived = () =>
        new Set(
          after(seq)
            .filter((r) => r.staged)
            .map((r) => `${flowKey(r)} ${r.direction}`),
        );
      await waitFor(
        () => {
          const got = arrived();
          return [...expected.keys()].every((k) => got.has(k));
        },
        { timeoutMs: 5000, intervalMs: 10, what: `${expected.size} staged records` },
      ).catch(() => {});
      return after(seq);
    };
    /**
     * Forgets the node's tracked flows before a round of probes. A probe reusing the 5-tuple of
     * an earlier round's flow (the kernel picks UDP source ports at random, and a repeat within
     * conntrack's 30-120 s happens in a few hundred probes) would be accepted as established,
     * before any policy, as Calico intends: new policy applies to new flows.
     */
    const forgetFlows = () => {
      const r = spawnSync('ip', ['netns', 'exec', m.node.namespace.name, 'conntrack', '-F'], {
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`conntrack -F in ${m.node.namespace.name}: ${r.stderr}`);
    };
    const allReached = async (probes: readonly Probe[]) => {
      const measured = await m.measure(probes);
      return [...measured.values()].every((cells) => [...cells.values()].every(Boolean));
    };

    it('a staged deny records staged drops naming it, and the traffic still flows', async () => {
      await m.ds.create('StagedNetworkPolicy', {
        metadata: { name: 'deny-a', namespace: 'x' },
        spec: {
          selector: "pod == 'a'",
          types: ['Ingress'],
          ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [80] } }],
        },
      });
      await m.waitChains([`cali-stw-${iface('x/a')}`, stagedPolicyChainName('ingress', 'snp/x/deny-a')]);
      const seq = since();
      expect(await allReached(['tcp/80'])).toBe(true);
      const recs = await recordsAfter(seq, 8);
      const toA = m.pods.filter((p) => p.id !== 'x/a');
      expect(recs.map(flowKey).sort()).toEqual(toA.map((p) => `${p.ip}>${m.pod('x/a').ip} tcp/80`).sort());
      for (const r of recs)
        expect(r).toMatchObject({
          staged: true,
          direction: 'ingress',
          verdict: 'rule',
          tier: 'default',
          policy: 'snp/x/deny-a',
          ruleIndex: 0,
          dst: { namespace: 'x', workload: 'a' },
        });
    }, 60_000);

    it('only endpoints a staged policy changes get staged chains; deleting it removes them', async () => {
      await m.ds.create('StagedGlobalNetworkPolicy', {
        metadata: { name: 'only-b' },
        spec: { selector: "pod == 'b'", types: ['Egress'], egress: [{ action: 'Deny' }] },
      });
      const bs = m.pods.filter((p) => p.pod === 'b').map((p) => `cali-sfw-${iface(p.id)}`);
      await m.waitChains([...bs, stagedPolicyChainName('egress', 'sgnp/only-b')]);
      const save = await m.iptablesSave();
      const stagedEndpointChains = [...save.matchAll(/^:(cali-s[tf]w-\S+)/gm)].map((x) => x[1]);
      expect(stagedEndpointChains.sort()).toEqual(
        m.pods
          .filter((p) => p.pod === 'b')
          .flatMap((p) => [`cali-sfw-${iface(p.id)}`, `cali-stw-${iface(p.id)}`])
          .sort(),
      );
      // No enforced chain for a staged policy.
      expect(save).not.toContain(`:${policyChainName('egress', 'sgnp/only-b')} `);
      await m.ds.delete('StagedGlobalNetworkPolicy', 'only-b');
      await m.waitChains([], [...bs, stagedPolicyChainName('egress', 'sgnp/only-b')]);
      expect(await m.iptablesSave()).not.toMatch(/^:cali-s/m);
    }, 60_000);

    it('a staged allow-only policy records the end-of-tier drops it would cause', async () => {
      await m.ds.create('StagedNetworkPolicy', {
        metadata: { name: 'from-b', namespace: 'x' },
        spec: {
          selector: "pod == 'a'",
          types: ['Ingress'],
          ingress: [{ action: 'Allow', source: { selector: "pod == 'b'" } }],
        },
      });
      await m.waitChains([stagedPolicyChainName('ingress', 'snp/x/from-b')]);
      const seq = since();
      expect(await allReached(['tcp/80'])).toBe(true);
      // x/b is allowed (the selector is scoped to namespace x); the seven others end the tier.
      const recs = await recordsAfter(seq, 7);
      const denied = m.pods.filter((p) => p.id !== 'x/a' && p.id !== 'x/b');
      expect(recs.map(flowKey).sort()).toEqual(denied.map((p) => `${p.ip}>${m.pod('x/a').ip} tcp/80`).sort());
      for (const r of recs)
        expect(r).toMatchObject({
          staged: true,
          verdict: 'endOfTier',
          tier: 'default',
          direction: 'ingress',
        });
    }, 60_000);

    it('stagedAction Delete of an enforced deny: real drops go on, nothing staged for flows that would pass', async () => {
      const deny = {
        selector: "pod == 'a'",
        types: ['Ingress' as const],
        ingress: [{ action: 'Deny' as const, protocol: 'TCP' as const, destination: { ports: [80] } }],
      };
      await m.ds.create('NetworkPolicy', { metadata: { name: 'deny-a', namespace: 'x' }, spec: deny });
      await m.ds.create('StagedNetworkPolicy', {
        metadata: { name: 'deny-a', namespace: 'x' },
        spec: { ...deny, stagedAction: 'Delete' },
      });
      await m.waitChains([`cali-stw-${iface('x/a')}`, policyChainName('ingress', 'np/x/deny-a')]);
      const seq = since();
      const measured = await m.measure(['tcp/80']);
      for (const from of m.pods)
        if (from.id !== 'x/a') expect(measured.get('tcp/80')!.get(`${from.id}>x/a`)).toBe(false);
      const recs = await recordsAfter(seq, 8);
      expect(recs.filter((r) => r.staged)).toEqual([]);
      expect(recs.filter((r) => !r.staged && r.policy === 'np/x/deny-a')).toHaveLength(8);
    }, 60_000);

    it(`${SEEDS.length} generated cases: the staged would-deny flows are the flows denied once enforced`, async () => {
      const problems: string[] = [];
      let stagedFlows = 0;
      for (const seed of SEEDS) {
        const c = generateCase(seed);
        // Staged first: nothing enforced, so every probe must pass.
        await writeStaged(m, c);
        forgetFlows();
        const seq = since();
        const measured = await m.measure(CASE_PROBES);
        for (const [probe, cells] of measured)
          for (const [pair, ok] of cells)
            if (!ok) problems.push(`seed ${seed}: ${pair} ${probe} blocked while staged`);
        const expected = await expectedStaged(m);
        const recs = await stagedRecordsAfter(seq, expected);
        const got = compareStaged(expected, recs, `seed ${seed}`, problems);
        const stagedSet = new Set([...got.keys()].map((k) => k.slice(0, k.lastIndexOf(' '))));
        stagedFlows += stagedSet.size;
        // Then the same policies enforced: the flows they deny must be the staged set.
        await clearStaged(m, c);
        for (const p of c.policies) {
          if (p.kind === 'NetworkPolicy') await m.ds.create('NetworkPolicy', p.input);
          else await m.ds.create('GlobalNetworkPolicy', p.input);
        }
        await m.waitChains(c.policies.map((p) => policyChainName('ingress', p.key)));
        forgetFlows();
        const enforced = await m.measure(CASE_PROBES);
        const denied = new Set<string>();
        for (const [probe, cells] of enforced) {
          const [proto, port] = probe.split('/');
          for (const [pair, ok] of cells) {
            if (ok) continue;
            const [from, to] = pair.split('>') as [string, string];
            denied.add(`${m.pod(from).ip}>${m.pod(to).ip} ${proto}/${port}`);
          }
        }
        expect([...stagedSet].sort(), `seed ${seed}`).toEqual([...denied].sort());
        await m.clearPolicies();
      }
      expect(problems.slice(0, 20)).toEqual([]);
      expect(stagedFlows).toBeGreaterThan(20);
    }, 240_000);

    it(`${MIXED_SEEDS.length} generated cases staged beside another enforced one: records as explainStagedFlow says, fate unchanged`, async () => {
      const problems: string[] = [];
      let records = 0;
      for (const seed of MIXED_SEEDS) {
        const enforced = generateCase(seed);
        const staged = generateCase(seed + 100);
        for (const p of enforced.policies) {
          if (p.kind === 'NetworkPolicy') await m.ds.create('NetworkPolicy', p.input);
          else await m.ds.create('GlobalNetworkPolicy', p.input);
        }
        await m.waitChains(enforced.policies.map((p) => policyChainName('ingress', p.key)));
        await writeStaged(m, staged);
        const seq = since();
        const expected = await expectedStaged(m);
        // The staged policies change no packet's fate: what passes is what the enforced ones allow.
        const model = await m.evaluated(CASE_PROBES);
        forgetFlows();
        const measured = await m.measure(CASE_PROBES);
        if (m.render(measured) !== m.render(model))
          problems.push(`seed ${seed}: measured\n${m.render(measured)}\nexpected\n${m.render(model)}`);
        const recs = await stagedRecordsAfter(seq, expected);
        records += compareStaged(expected, recs, `seed ${seed}+${seed + 100}`, problems).size;
        await clearStaged(m, staged);
        await m.clearPolicies();
      }
      expect(problems.slice(0, 20)).toEqual([]);
      expect(records).toBeGreaterThan(20);
    }, 240_000);
  },
);

/**
 * Compares the staged records with the expectation, flow and direction at a time: each probe
 * (source port) of an expected flow gives exactly one record saying what is expected, and no
 * other flow gives one. A flow may have been probed twice in one round (seen under load: two
 * connections from different source ports), so records are counted per source port. Returns the
 * staged records by `<flow> <direction>`.
 */
function compareStaged(
  expected: Map<string, StagedExpectation>,
  recs: readonly DropRecord[],
  label: string,
  problems: string[],
): Map<string, DropRecord[]> {
  const got = new Map<string, DropRecord[]>();
  for (const r of recs) {
    if (!r.staged) continue;
    const key = `${flowKey(r)} ${r.direction}`;
    got.set(key, [...(got.get(key) ?? []), r]);
  }
  for (const [key, want] of expected) {
    const rs = got.get(key) ?? [];
    const ports = new Set(rs.map((r) => r.srcPort));
    const ok =
      rs.length > 0 &&
      ports.size === rs.length &&
      rs.every(
        (r) =>
          r.verdict === want.verdict &&
          r.tier === want.tier &&
          r.policy === want.policy &&
          r.ruleIndex === want.ruleIndex,
      );
    if (!ok) problems.push(`${label}: ${key}: want ${JSON.stringify(want)}, got ${JSON.stringify(rs)}`);
  }
  for (const key of got.keys()) if (!expected.has(key)) problems.push(`${label}: ${key}: unexpected record`);
  return got;
}

/** The case's policies as their staged kinds (stagedAction Set), waiting for their staged chains. */
async function writeStaged(m: NetpolModel, c: DropCase): Promise<void> {
  for (const p of c.policies) {
    if (p.kind === 'NetworkPolicy') {
      const input: ResourceInput<'StagedNetworkPolicy'> = {
        metadata: p.input.metadata,
        spec: { ...p.input.spec },
      };
      await m.ds.create('StagedNetworkPolicy', input);
    } else {
      const input: ResourceInput<'StagedGlobalNetworkPolicy'> = {
        metadata: p.input.metadata,
        spec: { ...p.input.spec },
      };
      await m.ds.create('StagedGlobalNetworkPolicy', input);
    }
  }
  await m.waitChains(c.policies.map((p) => stagedPolicyChainName('ingress', `s${p.key}`)));
}

async function clearStaged(m: NetpolModel, c: DropCase): Promise<void> {
  for (const p of c.policies) {
    if (p.kind === 'NetworkPolicy')
      await m.ds.delete('StagedNetworkPolicy', p.input.metadata.name, p.input.metadata.namespace);
    else await m.ds.delete('StagedGlobalNetworkPolicy', p.input.metadata.name);
  }
  await m.waitChains(
    [],
    c.policies.map((p) => stagedPolicyChainName('ingress', `s${p.key}`)),
  );
}

interface StagedExpectation {
  verdict: DropRecord['verdict'];
  tier: string | undefined;
  policy: string | undefined;
  ruleIndex: number | undefined;
}

function expectation(d: FlowDecision): StagedExpectation | undefined {
  switch (d.by) {
    case 'rule':
      return d.action === 'deny'
        ? { verdict: 'rule', tier: d.tier, policy: d.policy, ruleIndex: d.ruleIndex }
        : undefined;
    case 'endOfTier':
      return { verdict: 'endOfTier', tier: d.tier, policy: undefined, ruleIndex: undefined };
    case 'noProfileMatched':
      return { verdict: 'noProfile', tier: undefined, policy: undefined, ruleIndex: undefined };
    default:
      return undefined;
  }
}

/**
 * What the staged records must say, per flow and direction, from the objects in the datastore:
 * `explainStagedFlow`'s decision on each side whose endpoint a staged policy changes (only those
 * have a staged chain), the ingress side only when enforced egress policy lets the packet out.
 */
async function expectedStaged(m: NetpolModel): Promise<Map<string, StagedExpectation>> {
  const list = async <K extends KindName>(kind: K) => (await m.ds.list(kind)).items;
  const snapshot = policySnapshot({
    networkPolicies: await list('NetworkPolicy'),
    globalNetworkPolicies: await list('GlobalNetworkPolicy'),
    stagedNetworkPolicies: await list('StagedNetworkPolicy'),
    stagedGlobalNetworkPolicies: await list('StagedGlobalNetworkPolicy'),
    profiles: await list('Profile'),
    workloadEndpoints: await list('WorkloadEndpoint'),
  });
  const hasStagedView = (ip: string) => {
    const e = endpointByIp(snapshot, ip);
    return e !== undefined && snapshot.catalog.resolveStaged(snapshot.catalog.resolve(e)) !== undefined;
  };
  const out = new Map<string, StagedExpectation>();
  for (const probe of CASE_PROBES) {
    const [protocol, port] = probe.split('/') as [string, string];
    for (const from of m.pods)
      for (const to of m.pods) {
        if (from === to) continue;
        const packet = { protocol, srcIp: from.ip, dstIp: to.ip, srcPort: 40000, dstPort: Number(port) };
        const enforced = explainFlow(snapshot, packet);
        const staged = explainStagedFlow(snapshot, packet);
        if (!staged) continue;
        const key = `${from.ip}>${to.ip} ${protocol}/${port}`;
        const e = expectation(staged.egress.decision);
        if (hasStagedView(from.ip) && !staged.egress.allowed && e) out.set(`${key} egress`, e);
        const i = expectation(staged.ingress.decision);
        if (hasStagedView(to.ip) && enforced.egress.allowed && !staged.ingress.allowed && i)
          out.set(`${key} ingress`, i);
      }
  }
  return out;
}
