/**
 * The agent's plan in the shape of the confd conformance fixtures (test/confd-cases): what
 * `computeIntent` decides, read back as sessions, policy decisions on probe routes, originated
 * routes, communities and kernel programming, so a fixture and the agent can be compared field by
 * field.
 */
import {
  AsPathSegmentType,
  CompiledPolicy,
  formatCommunity,
  type PathAttributes,
  parseCommunity,
} from '@calico-ts/bgp';
import type { BgpIntent } from '../src/intent.ts';
import { desiredKernelRoutes } from '../src/kernel-routes.ts';
import { communitiesFor } from '../src/routes.ts';

export interface Probe {
  prefix: string;
  source: 'peer' | 'local';
  interface?: string;
  asPath?: number[];
  communities?: string[];
  largeCommunities?: string[];
  priority?: number;
  expect: 'accept' | 'reject';
  operations?: Operation[];
}

const BIRD_INT_MAX = 2147483647;

export type Operation = { addCommunity: string } | { setPriority: number } | { prependASPath: number[] };

const RANK = (o: Operation) => ('addCommunity' in o ? 0 : 'setPriority' in o ? 1 : 2);
/** Operations in one order (communities, priority, prepend) so a rule's effect compares as a set. */
export const canonicalOperations = (ops: readonly Operation[]) => [...ops].sort((a, b) => RANK(a) - RANK(b));

/** One policy decision as the speaker takes it, with what an accepting rule changed. */
export function decide(
  policy: CompiledPolicy,
  probe: Probe,
  localAs: number,
): { expect: 'accept' | 'reject'; operations?: Operation[] } {
  const attrs: PathAttributes = { nextHop: probe.prefix.includes(':') ? '2001:db8::1' : '192.0.2.1' };
  if (probe.asPath) attrs.asPath = [{ type: AsPathSegmentType.Sequence, asns: probe.asPath }];
  if (probe.communities)
    attrs.communities = probe.communities.map((c) => parseCommunity(c)?.standard ?? Number.NaN);
  if (probe.largeCommunities) attrs.largeCommunities = probe.largeCommunities;
  // Calico carries a route's priority as LOCAL_PREF = 2^31-1 - priority (normal 1024).
  attrs.localPref = BIRD_INT_MAX - (probe.priority ?? 1024);
  const context = { source: probe.source, ...(probe.interface ? { interface: probe.interface } : {}) };
  const out = policy.apply(probe.prefix, attrs, localAs, context);
  if (!out) return { expect: 'reject' };
  const operations: Operation[] = [];
  for (const c of out.communities ?? [])
    if (!attrs.communities?.includes(c)) operations.push({ addCommunity: formatCommunity(c) });
  for (const c of out.largeCommunities ?? [])
    if (!attrs.largeCommunities?.includes(c)) operations.push({ addCommunity: c });
  if (out.localPref !== attrs.localPref)
    operations.push({ setPriority: BIRD_INT_MAX - (out.localPref ?? 0) });
  const before = probe.asPath?.length ?? 0;
  const after = (out.asPath ?? []).flatMap((seg) => seg.asns);
  if (after.length > before) operations.push({ prependASPath: after.slice(0, after.length - before) });
  return operations.length > 0 ? { expect: 'accept', operations } : { expect: 'accept' };
}

export interface ExpectedSession {
  name: string;
  family: 'ipv4' | 'ipv6';
  import: Probe[];
  export: Probe[];
  [k: string]: unknown;
}

/** A session as the fixtures describe one, from an intended peer. */
export function sessionOf(intent: BgpIntent, name: string, probes: { import: Probe[]; export: Probe[] }) {
  const p = intent.peers.find((x) => x.name === name);
  if (!p) return undefined;
  const c = p.config;
  const s: Record<string, unknown> = {
    name: p.name,
    family: p.family,
    neighbor: c.address,
  };
  if (c.port !== undefined) s.port = c.port;
  s.remoteAs = c.asNumber;
  s.localAs = p.localAsNumber ?? intent.node?.asNumber;
  if (c.localAddress !== undefined) s.sourceAddress = c.localAddress;
  s.ttlSecurity = p.ttlSecurityHops ?? false;
  s.passive = c.passive ?? false;
  if (p.restartTime !== undefined) s.gracefulRestartTime = p.restartTime;
  if (c.keepaliveTime !== undefined) s.keepaliveTime = c.keepaliveTime;
  if (c.routeReflectorClient) s.routeReflectorClient = { clusterId: intent.node?.clusterId };
  if (c.password !== undefined) s.password = c.password;
  if (p.nextHop !== undefined) s.nextHop = p.nextHop;
  if (p.allowLocalAs !== undefined) s.allowLocalAs = p.allowLocalAs;
  s.filters = { import: p.importFilters, export: p.exportFilters };
  const localAs = p.localAsNumber ?? intent.node?.asNumber ?? 0;
  const imp = new CompiledPolicy(c.importPolicy);
  const exp = new CompiledPolicy(c.exportPolicy);
  const withoutOutcome = ({ expect: _e, operations: _o, ...pr }: Probe) => pr;
  s.import = probes.import.map((pr) => ({ ...withoutOutcome(pr), ...decide(imp, pr, localAs) }));
  s.export = probes.export.map((pr) => ({ ...withoutOutcome(pr), ...decide(exp, pr, localAs) }));
  return s;
}

/** Would a route learned for `prefix` be programmed, and how. */
export function kernelDecision(intent: BgpIntent, prefix: string, nextHop: string) {
  if (!intent.node) return undefined;
  const { routes } = desiredKernelRoutes(
    {
      me: intent.node,
      pools: intent.pools,
      localBlocks: intent.localBlocks,
      programClusterRoutes: intent.programClusterRoutes,
      blackholes: false,
      staticRoutes: intent.staticRoutes,
    },
    [{ prefix, nextHops: [nextHop] }],
  );
  const r = routes.get(prefix);
  return r === undefined ? { program: false } : { program: true, nexthops: r.nexthops };
}

export { communitiesFor };
