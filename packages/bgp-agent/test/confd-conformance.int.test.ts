/**
 * confd conformance: every case of confd's own template tests (projectcalico/calico
 * confd/tests), rewritten as our fixtures in test/confd-cases, run through the agent's calculation.
 * Each step loads its resources into a datastore (memory; a sample of cases also on a real etcd),
 * computes the plan for the node the case renders for, and compares it with what confd's expected
 * BIRD configuration declares: sessions, policy decisions on probe routes, originated routes,
 * communities and kernel programming.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Datastore, EtcdDatastore, type KindName, MemoryDatastore } from '@calico-ts/datastore';
import { type EtcdProcess, startEtcd } from '@calico-ts/lab';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { command, describeWith } from '../../../test-support/requirements.ts';
import { computeIntent } from '../src/intent.ts';
import type { AgentSnapshot } from '../src/snapshot.ts';
import { AGENT_KINDS } from '../src/snapshot-watch.ts';
import {
  canonicalOperations,
  communitiesFor,
  type ExpectedSession,
  kernelDecision,
  type Probe,
  sessionOf,
} from './confd-plan.ts';

const CASES_DIR = join(dirname(fileURLToPath(import.meta.url)), 'confd-cases');

interface Step {
  name: string;
  expectedFrom?: string;
  apply?: { kind: string; metadata: { name: string; namespace?: string } }[];
  delete?: { kind: string; name: string }[];
  secrets?: Record<string, Record<string, string>>;
  expect: ExpectedPlan;
}
interface KernelExpectation {
  prefix?: string;
  program: boolean;
  via?: 'tunl0' | { sameSubnet: string };
}
interface ExpectedPlan {
  sessionCount?: number;
  routerId: string;
  asNumber: number;
  listen: { ipv4: { address?: string; port?: number } };
  sessions: ExpectedSession[];
  ipv4: boolean;
  ipv6: boolean;
  originated: string[];
  aggregatedBlocks: string[];
  peerRoutes: { prefix: string; via: string }[];
  communities: { cidr: string; communities: string[]; largeCommunities: string[] }[];
  kernel: KernelExpectation[];
}
interface Fixture {
  case: string;
  node: string;
  routerIdEnv?: string;
  blockAffinities: Step['apply'];
  kubernetesResources?: string[];
  steps: Step[];
}

function fixtures(dir = CASES_DIR): { file: string; fixture: Fixture }[] {
  const out: { file: string; fixture: Fixture }[] = [];
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...fixtures(p));
    else if (e.endsWith('.yaml'))
      out.push({ file: relative(CASES_DIR, p), fixture: parse(readFileSync(p, 'utf8')) });
  }
  return out;
}

/** Cases that need Kubernetes Services (confd's KDD-only cases); see the README. */
const NEEDS_KUBERNETES_SERVICES = (f: Fixture) => (f.kubernetesResources ?? []).length > 0;

async function snapshotOf(ds: Datastore): Promise<AgentSnapshot> {
  const list = async <K extends KindName>(k: K) => (await ds.list(k)).items;
  return {
    nodes: await list('Node'),
    bgpConfigurations: await list('BGPConfiguration'),
    bgpPeers: await list('BGPPeer'),
    bgpFilters: await list('BGPFilter'),
    ipPools: await list('IPPool'),
    blockAffinities: await list('BlockAffinity'),
    workloadEndpoints: await list('WorkloadEndpoint'),
  };
}

async function applyStep(ds: Datastore, s: Step) {
  for (const r of s.apply ?? []) await ds.apply(r.kind as KindName, r as never);
  for (const d of s.delete ?? []) await ds.delete(d.kind as KindName, d.name);
}

function check(
  f: Fixture,
  s: Step,
  snapshot: AgentSnapshot,
  secrets: Record<string, Record<string, string>>,
) {
  const intent = computeIntent(snapshot, f.node, (name, key) => secrets[name]?.[key], {
    ...(f.routerIdEnv ? { routerId: f.routerIdEnv } : {}),
  });
  const e = s.expect;
  if (e.sessionCount !== undefined) {
    expect(intent.peers.length, 'sessions').toBe(e.sessionCount);
    return;
  }
  expect(intent.node?.routerId, 'router id').toBe(e.routerId);
  expect(intent.node?.asNumber, 'AS number').toBe(e.asNumber);
  expect(intent.node?.listenPort, 'listen port').toBe(e.listen.ipv4.port ?? 179);
  expect(intent.listenAddress, 'listen address').toBe(e.listen.ipv4.address);
  const expected = e.sessions;
  expect(intent.peers.map((p) => p.name).sort(), 'session names').toEqual(expected.map((x) => x.name).sort());
  for (const want of expected) {
    const got = sessionOf(intent, want.name, { import: want.import, export: want.export });
    const canonical = (probes: Probe[]) =>
      probes.map((p) => (p.operations ? { ...p, operations: canonicalOperations(p.operations) } : p));
    expect(got, `session ${want.name}`).toEqual({
      ...want,
      import: canonical(want.import),
      export: canonical(want.export),
    });
  }
  expect(intent.node?.ipv4 !== undefined, 'IPv4 BGP on').toBe(e.ipv4);
  expect(intent.node?.ipv6 !== undefined, 'IPv6 BGP on').toBe(e.ipv6);
  expect([...intent.originated].sort(), 'originated routes').toEqual([...e.originated].sort());
  expect([...intent.aggregatedBlocks].sort(), 'blocks exported whole').toEqual(
    [...e.aggregatedBlocks].sort(),
  );
  expect(intent.peerRoutes, 'routes to peers reachable by a gateway').toEqual(e.peerRoutes);
  for (const c of e.communities) {
    expect(communitiesFor(snapshot, f.node, c.cidr), `communities for ${c.cidr}`).toEqual({
      communities: c.communities,
      largeCommunities: c.largeCommunities,
    });
  }
  const other = (v6: boolean) =>
    snapshot.nodes.find(
      (n) => n.metadata.name !== f.node && (v6 ? n.spec.bgp?.ipv6Address : n.spec.bgp?.ipv4Address),
    );
  for (const k of e.kernel) {
    if (k.prefix === undefined) continue;
    const v6 = k.prefix.includes(':');
    const far = v6 ? '2001:db8:ee::1' : '203.0.113.1';
    const gw = (other(v6)?.spec.bgp?.[v6 ? 'ipv6Address' : 'ipv4Address'] ?? far).split('/')[0]!;
    const got = kernelDecision(intent, k.prefix, far);
    expect(got?.program, `kernel programming of ${k.prefix}`).toBe(k.program);
    if (!k.program) continue;
    if (k.via === 'tunl0')
      expect(got?.nexthops, `${k.prefix} via tunl0`).toEqual([{ gateway: far, dev: 'tunl0', onlink: true }]);
    else if (k.via !== undefined) {
      expect(kernelDecision(intent, k.prefix, gw)?.nexthops, `${k.prefix} same subnet`).toEqual([
        { gateway: gw },
      ]);
      expect(got?.nexthops, `${k.prefix} other subnet`).toEqual([
        { gateway: far, dev: 'tunl0', onlink: true },
      ]);
    } else expect(got?.nexthops, `${k.prefix} direct`).toEqual([{ gateway: far }]);
  }
}

const all = fixtures();

describe('confd cases that do not run', () => {
  it('are exactly the ones that need Kubernetes Services, each listed in the README', () => {
    const readme = readFileSync(join(CASES_DIR, '../../README.md'), 'utf8');
    const notRun = all
      .filter(({ fixture }) => NEEDS_KUBERNETES_SERVICES(fixture))
      .map(({ fixture }) => fixture.case);
    expect(notRun.sort()).toEqual([
      'mesh/static-routes',
      'mesh/static-routes-exclude-node',
      'mesh/static-routes-no-ipv4-address',
    ]);
    for (const c of notRun) expect(readme, `README lists ${c} as not run`).toContain(`\`${c}\``);
  });
});

describe('confd conformance (memory datastore)', () => {
  for (const { file, fixture: f } of all.filter(({ fixture }) => !NEEDS_KUBERNETES_SERVICES(fixture))) {
    describe(`${f.case} (${file})`, () => {
      const ds = new MemoryDatastore();
      let secrets: Record<string, Record<string, string>> = {};
      beforeAll(async () => {
        for (const a of f.blockAffinities ?? []) await ds.apply(a.kind as KindName, a as never);
      });
      afterAll(() => ds.close());
      for (const s of f.steps) {
        it(`${s.name}${s.expectedFrom ? ` (confd: ${s.expectedFrom})` : ''}`, async () => {
          await applyStep(ds, s);
          if (s.secrets) secrets = s.secrets;
          check(f, s, await snapshotOf(ds), secrets);
        });
      }
    });
  }
});

/** A sample on a real etcd: the write path, defaulting and listing of the etcd backend. */
const ETCD_SAMPLE = [
  'explicit_peering/route_reflector',
  'bgpfilter/match_operators',
  'mesh/communities',
  'password',
];
describeWith([command('etcd')], 'confd conformance (etcd sample)', () => {
  let etcd: EtcdProcess;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cf-confd-'));
    etcd = await startEtcd({ dir: join(dir, 'etcd') });
  });
  afterAll(async () => {
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const name of ETCD_SAMPLE) {
    const f = all.find((x) => x.fixture.case === name)!.fixture;
    it(`${f.case}: every step`, async () => {
      const ds = new EtcdDatastore({ endpoints: etcd.localEndpoint });
      try {
        for (const a of f.blockAffinities ?? []) await ds.apply(a.kind as KindName, a as never);
        let secrets: Record<string, Record<string, string>> = {};
        for (const s of f.steps) {
          await applyStep(ds, s);
          if (s.secrets) secrets = s.secrets;
          check(f, s, await snapshotOf(ds), secrets);
        }
      } finally {
        // The next case starts from an empty datastore.
        for (const kind of AGENT_KINDS)
          for (const r of (await ds.list(kind)).items)
            await ds.delete(kind, r.metadata.name, r.metadata.namespace);
        await ds.close();
      }
    });
  }
});
