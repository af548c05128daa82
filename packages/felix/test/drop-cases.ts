/**
 * Random policy/traffic cases for the drop log, shared by `drops.int.test.ts` (a CI-sized sample)
 * and `bench/drop-log.bench.ts` (the full run): a seeded generator of NetworkPolicies and
 * GlobalNetworkPolicies over the NetpolModel's pods, and the check that every denied probe gave
 * exactly one drop record naming what `explainFlow` says decided, and no allowed probe gave one.
 */
import type { ResourceInput } from '@calico-ts/datastore';
import { waitFor } from '@calico-ts/kernel';
import type { DropRecord } from '../src/dataplane/drop-recorder.ts';
import { explainFlow, type FlowDecision, policyChainName, policySnapshot } from '../src/index.ts';
import { NAMESPACES, type NetpolModel, PODS, type Probe } from './policy-harness.ts';

/** mulberry32: a small seeded PRNG, so a failing case can be generated again from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

export type CasePolicy =
  | { kind: 'NetworkPolicy'; input: ResourceInput<'NetworkPolicy'>; key: string }
  | { kind: 'GlobalNetworkPolicy'; input: ResourceInput<'GlobalNetworkPolicy'>; key: string };

export interface DropCase {
  seed: number;
  policies: CasePolicy[];
}

export const CASE_PROBES: readonly Probe[] = ['tcp/80', 'udp/81'];

function randomRule(r: Rand) {
  const action = pick(r, ['Allow', 'Allow', 'Deny', 'Deny', 'Pass'] as const);
  const rule: Record<string, unknown> = { action };
  const proto = pick(r, [undefined, 'TCP', 'UDP'] as const);
  if (proto) {
    rule['protocol'] = proto;
    if (r() < 0.6) rule['destination'] = { ports: [pick(r, [80, 81])] };
  }
  if (r() < 0.4) rule['source'] = { selector: `pod == '${pick(r, PODS)}'` };
  return rule;
}

/** One to three policies in the default tier, each selecting pods, governing one or both directions. */
export function generateCase(seed: number): DropCase {
  const r = rng(seed);
  const n = 1 + Math.floor(r() * 3);
  const policies: CasePolicy[] = [];
  for (let i = 0; i < n; i++) {
    const name = `c${seed}-p${i}`;
    const types: readonly string[] = pick(r, [['Ingress'], ['Egress'], ['Ingress', 'Egress']]);
    const rules = () => Array.from({ length: Math.floor(r() * 3) }, () => randomRule(r));
    const spec = {
      order: Math.floor(r() * 5) * 10,
      types: [...types],
      ...(types.includes('Ingress') ? { ingress: rules() } : {}),
      ...(types.includes('Egress') ? { egress: rules() } : {}),
    };
    if (r() < 0.5) {
      const ns = pick(r, NAMESPACES);
      policies.push({
        kind: 'NetworkPolicy',
        key: `np/${ns}/${name}`,
        input: {
          metadata: { name, namespace: ns },
          spec: { ...spec, selector: r() < 0.3 ? 'all()' : `pod == '${pick(r, PODS)}'` },
        } as ResourceInput<'NetworkPolicy'>,
      });
    } else {
      const selector =
        r() < 0.5 ? `pod == '${pick(r, PODS)}'` : `projectcalico.org/namespace == '${pick(r, NAMESPACES)}'`;
      policies.push({
        kind: 'GlobalNetworkPolicy',
        key: `gnp/${name}`,
        input: { metadata: { name }, spec: { ...spec, selector } } as ResourceInput<'GlobalNetworkPolicy'>,
      });
    }
  }
  return { seed, policies };
}

export async function writeCase(m: NetpolModel, c: DropCase): Promise<void> {
  for (const p of c.policies) {
    if (p.kind === 'NetworkPolicy') await m.ds.create('NetworkPolicy', p.input);
    else await m.ds.create('GlobalNetworkPolicy', p.input);
  }
  await m.waitChains(c.policies.map((p) => policyChainName('ingress', p.key)));
}

/** What a record must say for a decision (undefined: no record expected). */
function expectedRecord(decision: FlowDecision, direction: 'ingress' | 'egress') {
  switch (decision.by) {
    case 'rule':
      return {
        direction,
        verdict: 'rule',
        tier: decision.tier,
        policy: decision.policy,
        ruleIndex: decision.ruleIndex,
      };
    case 'endOfTier':
      return {
        direction,
        verdict: 'endOfTier',
        tier: decision.tier,
        policy: undefined,
        ruleIndex: undefined,
      };
    case 'profile':
      return {
        direction,
        verdict: 'rule',
        tier: undefined,
        policy: undefined,
        ruleIndex: decision.ruleIndex,
      };
    case 'noProfileMatched':
      return { direction, verdict: 'noProfile', tier: undefined, policy: undefined, ruleIndex: undefined };
    default:
      return undefined;
  }
}

export interface CaseOutcome {
  denied: number;
  allowed: number;
  /** Denied probes with exactly one record naming the right policy and rule. */
  correct: number;
  /** Human-readable mismatches (empty when all is well). */
  problems: string[];
}

const flowKey = (src: string, dst: string, proto: string, port: number | undefined) =>
  `${src}>${dst} ${proto}/${port}`;

/**
 * Probes the 9×9 matrix, waits up to `withinMs` for the expected records and compares them with
 * explainFlow's decisions probe by probe.
 */
export async function checkCase(m: NetpolModel, withinMs = 1000): Promise<CaseOutcome> {
  const felix = m.felix!;
  // By seq, not position: the ring keeps the last 2,000 records, so positions shift once it is full.
  const before = felix.drops.records().at(-1)?.seq ?? 0;
  const measured = await m.measure(CASE_PROBES);
  const snapshot = policySnapshot({
    networkPolicies: (await m.ds.list('NetworkPolicy')).items,
    globalNetworkPolicies: (await m.ds.list('GlobalNetworkPolicy')).items,
    kubernetesNetworkPolicies: [],
    tiers: (await m.ds.list('Tier')).items,
    profiles: (await m.ds.list('Profile')).items,
    workloadEndpoints: (await m.ds.list('WorkloadEndpoint')).items,
    networkSets: [],
    globalNetworkSets: [],
  });
  const expected = new Map<string, NonNullable<ReturnType<typeof expectedRecord>>>();
  const allowedKeys = new Set<string>();
  const problems: string[] = [];
  for (const probe of CASE_PROBES) {
    const [proto, port] = probe.split('/') as [string, string];
    for (const from of m.pods) {
      for (const to of m.pods) {
        if (from === to) continue;
        const v = explainFlow(snapshot, {
          protocol: proto,
          srcIp: from.ip,
          dstIp: to.ip,
          srcPort: 40000,
          dstPort: Number(port),
        });
        const key = flowKey(from.ip, to.ip, proto, Number(port));
        const reached = measured.get(probe)!.get(`${from.id}>${to.id}`);
        if (reached !== v.allowed)
          problems.push(`${from.id}>${to.id} ${probe}: measured ${reached}, expected ${v.allowed}`);
        if (v.allowed) {
          allowedKeys.add(key);
          continue;
        }
        const want = v.egress.allowed
          ? expectedRecord(v.ingress.decision, 'ingress')
          : expectedRecord(v.egress.decision, 'egress');
        if (want) expected.set(key, want);
      }
    }
  }
  const fresh = (): DropRecord[] => felix.drops.records({ afterSeq: before });
  await waitFor(() => fresh().length >= expected.size, {
    timeoutMs: withinMs,
    intervalMs: 5,
    what: `${expected.size} drop records`,
  }).catch(() => {});
  const got = new Map<string, DropRecord[]>();
  for (const rec of fresh()) {
    const key = flowKey(rec.srcIp, rec.dstIp, rec.protocol, rec.dstPort);
    got.set(key, [...(got.get(key) ?? []), rec]);
  }
  let correct = 0;
  for (const [key, want] of expected) {
    const recs = got.get(key) ?? [];
    const ok =
      recs.length === 1 &&
      recs[0]!.direction === want.direction &&
      recs[0]!.verdict === want.verdict &&
      recs[0]!.tier === want.tier &&
      recs[0]!.policy === want.policy &&
      recs[0]!.ruleIndex === want.ruleIndex &&
      recs[0]!.staged === false;
    if (ok) correct++;
    else
      problems.push(
        `${key}: want ${JSON.stringify(want)}, got ${JSON.stringify(recs.map((r) => ({ time: r.time, srcPort: r.srcPort, seq: r.seq, direction: r.direction, verdict: r.verdict, tier: r.tier, policy: r.policy, ruleIndex: r.ruleIndex })))}`,
      );
  }
  for (const key of allowedKeys)
    if (got.has(key)) problems.push(`${key}: allowed, yet ${got.get(key)!.length} record(s)`);
  return { denied: expected.size, allowed: allowedKeys.size, correct, problems };
}

/** Deletes the case's policies and waits until their chains are gone. */
export async function clearCase(m: NetpolModel, c: DropCase): Promise<void> {
  for (const p of c.policies) {
    if (p.kind === 'NetworkPolicy')
      await m.ds.delete('NetworkPolicy', p.input.metadata.name, p.input.metadata.namespace);
    else await m.ds.delete('GlobalNetworkPolicy', p.input.metadata.name);
  }
  await m.waitChains(
    [],
    c.policies.map((p) => policyChainName('ingress', p.key)),
  );
}
