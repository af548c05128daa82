/**
 * What `calico trace` tells from what the kernel reported: the nftables trace events of one probe
 * packet on each node it passed, the node's route for it, and Felix's rule comments, read as the
 * hops of the packet (source veth, egress policy, route, underlay or tunnel, remote node, ingress
 * policy) and where it ended: delivered to the destination's veth, or dropped by a named rule.
 * An endpoint with staged policies has a staged chain (`cali-sfw-`/`cali-stw-`) before its enforced
 * stage; the packet's walk through it is a hop of its own, saying what the staged policies would
 * decide, and never the packet's fate (nothing there drops or accepts).
 * Pure: the command collects the inputs, this turns them into a report.
 */
import type { TraceEvent } from '@calico-ts/lab';

/** One rule of a chain in the kernel: its position (1-based), handle and Felix's comments. */
export interface KernelRule {
  position: number;
  handle: number;
  /** Felix's rule id (`cali:<hash>`) and any description comments. */
  id: string | undefined;
  comments: string[];
  /** An NFLOG rule's prefix (Felix's drop records: `DI1|np/ns/name`, staged `SDI1|…`). */
  nflogPrefix?: string;
}

/** The filter table of one node: per chain, its rules in order. */
export type ChainRules = ReadonlyMap<string, readonly KernelRule[]>;

/** A node's route for the probe: the longest-prefix match in its main table. */
export interface RouteChoice {
  /** The route's destination (`default`, `10.244.1.0/26`, an address). */
  dst: string;
  type: string;
  gateway: string | undefined;
  dev: string | undefined;
  protocol: string | undefined;
  /** The MTU of the device (or the route's mtu), when known. */
  mtu: number | undefined;
}

export interface NodeTrace {
  node: string;
  /** The first traced packet's events on this node; empty when it never arrived. */
  events: readonly TraceEvent[];
  rules: ChainRules;
  /** This node's underlay interface MTU (eth0). */
  uplinkMtu: number | undefined;
}

export interface TraceInput {
  source: { label: string; ip: string; node: string };
  destination: { label: string; ip: string; node: string | undefined };
  probe: string;
  /** The probe's IP length in bytes, and whether DF was set. */
  size: number | undefined;
  dontFragment: boolean;
  /** The source node, then the destination node when it is another. */
  nodes: readonly NodeTrace[];
  /** The source node's route for the probe. */
  route: RouteChoice | undefined;
  /** Node underlay addresses → node names (to name the next hop). */
  nodeAddresses: ReadonlyMap<string, string>;
  /** The IP pools' CIDRs: a pod address a node routes by its default route has no route. */
  poolCidrs: readonly string[];
  /** Felix's policy and profile chains → what they are (`NetworkPolicy demo/deny-b`). */
  chainOwners: ReadonlyMap<string, string>;
  /** What the datastore's policy says decides each direction (calico policy explain's words). */
  model?: { egress: string; ingress: string; egressPolicy?: string; ingressPolicy?: string };
  /** Whether the probe was answered, and what its tool said (ping's "Frag needed …"). */
  answered: boolean;
  probeOutput: string;
}

export type HopKind =
  | 'source'
  | 'staged-egress'
  | 'egress-policy'
  | 'route'
  | 'underlay'
  | 'tunnel'
  | 'remote-node'
  | 'staged-ingress'
  | 'ingress-policy'
  | 'delivered';

export interface Hop {
  hop: HopKind;
  node: string;
  detail: string;
  /** ok: passed; dropped: ended here; lost: never arrived at the next hop. */
  status: 'ok' | 'dropped' | 'lost';
  /** The deciding kernel rule, for policy hops (staged hops: the rule that would decide). */
  rule?: DecidingRule;
  /** Staged hops: what the staged policies would do with the packet (it goes on either way). */
  staged?: 'would-allow' | 'would-deny';
}

export interface DecidingRule {
  chain: string;
  position: number | undefined;
  handle: number | undefined;
  id: string | undefined;
  /** What the chain is: a policy, a profile, or an endpoint's chain. */
  owner: string;
  /** Felix's comment on the rule, or what the rule does. */
  description: string;
}

export interface TraceReport {
  from: string;
  to: string;
  probe: string;
  result: 'delivered' | 'dropped' | 'no-route' | 'mtu-exceeded' | 'lost';
  /** The hop the packet ended at. */
  endedAt: HopKind;
  /** One line: what happened and why. */
  summary: string;
  rule?: DecidingRule;
  hops: Hop[];
}

const POLICY_CHAIN = /^cali-(pi|po|pri|pro)-/;
/** The staged forms of policy and profile chains, and the endpoints' staged chains. */
const STAGED_POLICY_CHAIN = /^cali-s(pi|po|pri|pro)-/;
const STAGED_ENDPOINT_CHAIN = /^cali-s(fw|tw)-/;
const isStagedChain = (chain: string): boolean =>
  STAGED_POLICY_CHAIN.test(chain) || STAGED_ENDPOINT_CHAIN.test(chain);

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}

export function cidrContains(cidr: string, ip: string): boolean {
  const [net, len] = cidr.split('/');
  const bits = Number(len ?? 32);
  if (!net || !/^\d+\.\d+\.\d+\.\d+$/.test(net) || !/^\d+\.\d+\.\d+\.\d+$/.test(ip)) return false;
  if (bits === 0) return true;
  const mask = bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
  return (ipv4ToInt(net) & mask) >>> 0 === (ipv4ToInt(ip) & mask) >>> 0;
}

/** What `iptables-save` says of one rule: Felix's id, its comments and any NFLOG prefix. */
export interface SavedRule {
  id: string | undefined;
  comments: string[];
  nflogPrefix?: string;
}

/** `iptables-save -t filter` → chain → each rule's Felix id, comments and NFLOG prefix, in order. */
export function parseRuleComments(save: string): Map<string, SavedRule[]> {
  const out = new Map<string, SavedRule[]>();
  for (const line of save.split('\n')) {
    const m = /^-A (\S+) (.*)$/.exec(line);
    if (!m) continue;
    const comments = [...m[2]!.matchAll(/--comment "((?:[^"\\]|\\.)*)"/g)].map((c) => c[1]!);
    const id = comments.find((c) => c.startsWith('cali:'));
    const prefix = /--nflog-prefix "((?:[^"\\]|\\.)*)"/.exec(m[2]!)?.[1];
    const list = out.get(m[1]!) ?? [];
    if (list.length === 0) out.set(m[1]!, list);
    list.push({
      id,
      comments: comments.filter((c) => c !== id),
      ...(prefix !== undefined ? { nflogPrefix: prefix } : {}),
    });
  }
  return out;
}

/** `nft -a list table ip filter` → chain → rule handles in order. */
export function parseChainHandles(listing: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  let chain: number[] | undefined;
  for (const line of listing.split('\n')) {
    const header = /^\s*chain (\S+) \{/.exec(line);
    if (header) {
      chain = [];
      out.set(header[1]!, chain);
      continue;
    }
    if (/^\s*\}/.test(line)) {
      chain = undefined;
      continue;
    }
    const handle = /# handle (\d+)\s*$/.exec(line);
    if (chain && handle && !/^\s*(type|policy) /.test(line)) chain.push(Number(handle[1]));
  }
  return out;
}

/** Handles and comments of the same table joined by position (both list a chain's rules in order). */
export function joinChainRules(
  handles: ReadonlyMap<string, readonly number[]>,
  comments: ReadonlyMap<string, readonly SavedRule[]>,
): Map<string, KernelRule[]> {
  const out = new Map<string, KernelRule[]>();
  for (const [chain, hs] of handles) {
    const cs = comments.get(chain) ?? [];
    out.set(
      chain,
      hs.map((handle, i) => {
        const saved = cs.length === hs.length ? cs[i] : undefined;
        return {
          position: i + 1,
          handle,
          id: saved?.id,
          comments: saved?.comments ?? [],
          ...(saved?.nflogPrefix !== undefined ? { nflogPrefix: saved.nflogPrefix } : {}),
        };
      }),
    );
  }
  return out;
}

const kernelRule = (r: DecidingRule): string =>
  `${r.chain} rule ${r.position ?? '?'}${r.id ? ` ${r.id}` : ''}: ${r.description}`;

function chainOwner(chain: string, owners: ReadonlyMap<string, string>): string {
  const owned = owners.get(chain);
  if (owned) return owned;
  if (chain.startsWith('cali-pri-') || chain.startsWith('cali-pro-'))
    return `profile ${chain.slice('cali-pri-'.length)}`;
  if (chain.startsWith('cali-tw-')) return `ingress chain of ${chain.slice('cali-tw-'.length)}`;
  if (chain.startsWith('cali-fw-')) return `egress chain of ${chain.slice('cali-fw-'.length)}`;
  if (chain.startsWith('cali-spri-') || chain.startsWith('cali-spro-'))
    return `profile ${chain.slice('cali-spri-'.length)} (staged form)`;
  if (chain.startsWith('cali-stw-')) return `staged ingress chain of ${chain.slice('cali-stw-'.length)}`;
  if (chain.startsWith('cali-sfw-')) return `staged egress chain of ${chain.slice('cali-sfw-'.length)}`;
  if (STAGED_POLICY_CHAIN.test(chain))
    return `staged chain ${chain} (no policy in the datastore has this chain name)`;
  if (POLICY_CHAIN.test(chain))
    return `policy chain ${chain} (no policy in the datastore has this chain name)`;
  return `chain ${chain}`;
}

function decidingRule(event: TraceEvent, node: NodeTrace, owners: ReadonlyMap<string, string>): DecidingRule {
  const rule = node.rules.get(event.chain)?.find((r) => r.handle === event.handle);
  const described = rule?.comments.length ? rule.comments.join('; ') : undefined;
  return {
    chain: event.chain,
    position: rule?.position,
    handle: event.handle,
    id: rule?.id,
    owner: chainOwner(event.chain, owners),
    description: described ?? ruleText(event),
  };
}

/** What a rule does, as nft printed it, without its counters. */
function ruleText(event: TraceEvent): string {
  const text = event.text.replace(/\bcounter packets \d+ bytes \d+\s*/, '').trim();
  if (text === '') return event.verdict ?? '';
  return event.verdict && !text.endsWith(event.verdict) ? `${text} (${event.verdict})` : text;
}

interface StageOutcome {
  /** The policy and profile chains the packet went through in this stage, in order. */
  visited: string[];
  drop: TraceEvent | undefined;
  /** The rule that accepted or returned out of the last policy chain. */
  entered: boolean;
}

/** The events of one endpoint stage (cali-fw-<if> or cali-tw-<if>) on one node. */
function stage(events: readonly TraceEvent[], prefix: 'cali-fw-' | 'cali-tw-'): StageOutcome {
  const filter = events.filter((e) => e.table === 'filter');
  const start = filter.findIndex((e) => e.chain.startsWith(prefix));
  if (start < 0) return { visited: [], drop: undefined, entered: false };
  const other = prefix === 'cali-fw-' ? 'cali-tw-' : 'cali-fw-';
  const visited: string[] = [];
  let drop: TraceEvent | undefined;
  for (const e of filter.slice(start)) {
    if (e.chain.startsWith(other)) break;
    // The staged chains never decide the packet's fate: their hop is stagedStage's.
    if (isStagedChain(e.chain)) continue;
    // A chain none of whose rules matched shows only as the jump into it.
    for (const c of [e.chain, e.target ?? ''])
      if (POLICY_CHAIN.test(c) && !visited.includes(c)) visited.push(c);
    if (e.verdict === 'drop' || e.verdict === 'reject') {
      drop = e;
      break;
    }
  }
  return { visited, drop, entered: true };
}

/** What the staged policies would do with the packet at one endpoint, as its hop says it. */
interface StagedOutcome {
  verdict: 'would-allow' | 'would-deny';
  detail: string;
  rule: DecidingRule | undefined;
}

/** A staged drop record's prefix: `SD<I|E><index>|<policy>`, `ST<I|E>|<tier>`, `SP<I|E>|`. */
const STAGED_PREFIX = /^S([DTP])([IE])(\d*)\|(.*)$/;

/**
 * The packet's walk through an endpoint's staged chain (`cali-sfw-`/`cali-stw-`, entered from the
 * enforced endpoint chain) and the staged policy and profile chains it jumps to. A staged Deny
 * sets the drop mark and is followed by its NFLOG rule (`SD…`, which names the rule; the NFLOG
 * itself is rate-limited, so the rule before it is what shows); an end of tier returns through
 * the rule commented "End of staged tier"; a policy or profile that decided returns through
 * "Return if … decided"; a walk that returns through none of these found no profile to allow it.
 */
function stagedStage(
  events: readonly TraceEvent[],
  prefix: 'cali-sfw-' | 'cali-stw-',
  node: NodeTrace,
  owners: ReadonlyMap<string, string>,
): StagedOutcome | undefined {
  const filter = events.filter((e) => e.table === 'filter');
  const start = filter.findIndex((e) => e.chain.startsWith(prefix));
  if (start < 0) return undefined;
  const staged: TraceEvent[] = [];
  for (const e of filter.slice(start)) {
    if (!isStagedChain(e.chain)) break;
    staged.push(e);
  }
  const kernel = (e: TraceEvent): KernelRule | undefined =>
    node.rules.get(e.chain)?.find((r) => r.handle === e.handle);
  const visited: string[] = [];
  for (const e of staged) {
    for (const c of [e.chain, e.target ?? ''])
      if (STAGED_POLICY_CHAIN.test(c) && !visited.includes(c)) visited.push(c);
    if (e.type !== 'rule') continue;
    const rule = kernel(e);
    if (STAGED_POLICY_CHAIN.test(e.chain) && rule) {
      const next = node.rules.get(e.chain)?.[rule.position];
      const deny = [rule.nflogPrefix, next?.nflogPrefix]
        .map((p) => STAGED_PREFIX.exec(p ?? ''))
        .find((m) => m?.[1] === 'D');
      if (deny) {
        const owner = chainOwner(e.chain, owners);
        return {
          verdict: 'would-deny',
          detail: `staged: would deny by ${owner} rule ${Number(deny[3]) + 1}`,
          rule: decidingRule(e, node, owners),
        };
      }
    }
    if (STAGED_ENDPOINT_CHAIN.test(e.chain) && e.verdict === 'return') {
      const decided = decidingRule(e, node, owners);
      const endOfTier = rule?.comments.map((c) => /^End of staged tier (.+)$/.exec(c)?.[1]).find(Boolean);
      if (endOfTier)
        return {
          verdict: 'would-deny',
          detail: `staged: would deny at the end of tier ${endOfTier} (no staged policy in it allowed the packet)`,
          rule: decided,
        };
      const by = visited.at(-1);
      return {
        verdict: 'would-allow',
        detail: `staged: would allow${by ? ` by ${chainOwner(by, owners)}` : ''}`,
        rule: decided,
      };
    }
  }
  const last = staged.at(-1);
  return {
    verdict: 'would-deny',
    detail: 'staged: would deny: no staged policy or profile allowed the packet',
    rule: last?.type === 'rule' ? decidingRule(last, node, owners) : undefined,
  };
}

function stagedHop(hop: 'staged-egress' | 'staged-ingress', node: string, outcome: StagedOutcome): Hop {
  return {
    hop,
    node,
    detail: outcome.detail,
    status: 'ok',
    staged: outcome.verdict,
    ...(outcome.rule ? { rule: outcome.rule } : {}),
  };
}

function firstPacket(events: readonly TraceEvent[], table: string, chain: string): TraceEvent | undefined {
  return events.find((e) => e.type === 'packet' && e.table === table && e.chain === chain);
}

/** Any drop verdict outside the endpoint stages (raw, mangle, a FORWARD rule, a chain's policy). */
function otherDrop(events: readonly TraceEvent[]): TraceEvent | undefined {
  return events.find(
    (e) =>
      (e.verdict === 'drop' || e.verdict === 'reject') &&
      !(
        e.table === 'filter' &&
        (e.chain.startsWith('cali-fw-') || e.chain.startsWith('cali-tw-') || POLICY_CHAIN.test(e.chain))
      ),
  );
}

/**
 * The datastore's view of the same decision, when it names the policy whose chain dropped the
 * packet or the drop is the endpoint chain's own (end of tier, no profile); and the policies the
 * packet went through before.
 */
function modelNote(
  outcome: StageOutcome,
  model: string | undefined,
  modelPolicy: string | undefined,
  owners: ReadonlyMap<string, string>,
): string {
  const chain = outcome.drop?.chain ?? '';
  const endpointChain = chain.startsWith('cali-fw-') || chain.startsWith('cali-tw-');
  const through = outcome.visited.filter((c) => c !== chain).map((c) => chainOwner(c, owners));
  const parts: string[] = [];
  if (endpointChain && through.length > 0)
    parts.push(`after ${through.join(', ')} (none of their rules decided)`);
  if (
    model &&
    ((modelPolicy !== undefined && owners.get(chain) === modelPolicy) ||
      (endpointChain && modelPolicy === undefined))
  )
    parts.push(model);
  return parts.map((p) => `; ${p}`).join('');
}

function allowedBy(visited: readonly string[], owners: ReadonlyMap<string, string>): string {
  if (visited.length === 0) return 'no policy or profile applies';
  return `allowed by ${chainOwner(visited[visited.length - 1]!, owners)}`;
}

export function analyseTrace(input: TraceInput): TraceReport {
  const hops: Hop[] = [];
  const owners = input.chainOwners;
  const [src, dstNode] = input.nodes;
  const report = (
    result: TraceReport['result'],
    endedAt: HopKind,
    summary: string,
    rule?: DecidingRule,
  ): TraceReport => ({
    from: `${input.source.label} (${input.source.ip})`,
    to: `${input.destination.label} (${input.destination.ip})`,
    probe: input.probe,
    result,
    endedAt,
    summary,
    ...(rule ? { rule } : {}),
    hops,
  });
  if (!src) throw new Error('analyseTrace needs the source node');
  const srcEvents = src.events;
  const arrived = srcEvents.find((e) => e.type === 'packet');
  if (!arrived) {
    const localMtu = /mtu ?= ?(\d+)/.exec(input.probeOutput);
    if (localMtu && /message too long/i.test(input.probeOutput)) {
      hops.push({
        hop: 'source',
        node: src.node,
        detail: `${input.source.label} refused to send it: path MTU ${localMtu[1]}`,
        status: 'dropped',
      });
      return report(
        'mtu-exceeded',
        'source',
        `${input.source.label} did not send it: ${input.size ?? '?'} bytes with DF exceed the path MTU ${localMtu[1]} it learned for ${input.destination.ip} (from an earlier ICMP fragmentation-needed)`,
      );
    }
    hops.push({
      hop: 'source',
      node: src.node,
      detail: 'the probe never reached the node (no trace event)',
      status: 'lost',
    });
    return report(
      'lost',
      'source',
      `the probe never left ${input.source.label}: check its eth0, default route and the node's veth`,
    );
  }
  const veth = arrived.iif ?? '?';
  hops.push({
    hop: 'source',
    node: src.node,
    detail: `${input.source.label} → ${src.node} on ${veth}`,
    status: 'ok',
  });

  // Staged policies of the source endpoint (records only), then its enforced egress policy.
  const stagedEgress = stagedStage(srcEvents, 'cali-sfw-', src, owners);
  if (stagedEgress) hops.push(stagedHop('staged-egress', src.node, stagedEgress));
  const egress = stage(srcEvents, 'cali-fw-');
  if (egress.drop) {
    const rule = decidingRule(egress.drop, src, owners);
    const modelRule = modelNote(egress, input.model?.egress, input.model?.egressPolicy, owners);
    hops.push({
      hop: 'egress-policy',
      node: src.node,
      detail: `dropped by ${rule.owner}${modelRule}`,
      status: 'dropped',
      rule,
    });
    return report(
      'dropped',
      'egress-policy',
      `dropped on egress by ${rule.owner} (kernel: ${kernelRule(rule)})${modelRule}`,
      rule,
    );
  }
  if (egress.entered)
    hops.push({
      hop: 'egress-policy',
      node: src.node,
      detail: allowedBy(egress.visited, owners),
      status: 'ok',
    });

  const early = otherDrop(srcEvents.filter((e) => !(e.table === 'filter' && e.chain.startsWith('cali-tw-'))));
  if (early && !egress.drop) {
    const rule = decidingRule(early, src, owners);
    hops.push({
      hop: 'route',
      node: src.node,
      detail: `dropped in ${early.table} ${early.chain}`,
      status: 'dropped',
      rule,
    });
    return report(
      'dropped',
      'route',
      `dropped on ${src.node} by ${early.table} ${early.chain} rule ${rule.position ?? '?'} (${rule.description})`,
      rule,
    );
  }

  // Route on the source node.
  const forwarded = firstPacket(srcEvents, 'filter', 'FORWARD');
  const route = input.route;
  const routeText = route
    ? `${route.type === 'unicast' ? '' : `${route.type} `}${route.dst}${route.gateway ? ` via ${route.gateway}` : ''}${route.dev ? ` dev ${route.dev}` : ''}${route.protocol ? ` proto ${route.protocol}` : ''}`
    : 'no route';
  if (!route || ['blackhole', 'unreachable', 'prohibit'].includes(route.type)) {
    hops.push({
      hop: 'route',
      node: src.node,
      detail: `${routeText}: the kernel drops it`,
      status: 'dropped',
    });
    return report(
      'no-route',
      'route',
      `no route on ${src.node} to ${input.destination.ip}: ${routeText}${route?.type === 'blackhole' ? " (this node's own block; no pod has this address)" : ''}`,
    );
  }
  const inPool = input.poolCidrs.some((c) => cidrContains(c, input.destination.ip));
  if (route.dst === 'default' && inPool) {
    hops.push({
      hop: 'route',
      node: src.node,
      detail: `${routeText}: no route to the pod's block, only the default route`,
      status: 'dropped',
    });
    return report(
      'no-route',
      'route',
      `no route on ${src.node} to ${input.destination.ip}: only the default route (${routeText}) matches; the route to its block is missing (BGP route not learned or deleted)`,
    );
  }
  const length = arrived.length ?? input.size;
  if (!forwarded && route.dev && !route.dev.startsWith('cali')) {
    if (length !== undefined && route.mtu !== undefined && length > route.mtu && input.dontFragment) {
      hops.push({
        hop: 'route',
        node: src.node,
        detail: `${routeText}: ${length}-byte packet with DF > MTU ${route.mtu} of ${route.dev}`,
        status: 'dropped',
      });
      return report(
        'mtu-exceeded',
        'route',
        `dropped on ${src.node}: ${length} bytes with DF set exceed the MTU ${route.mtu} of ${route.dev} (fragmentation needed)${input.probeOutput.includes('Frag needed') ? `; ${src.node} answered "${/Frag needed[^\n]*/.exec(input.probeOutput)?.[0]}"` : ''}`,
      );
    }
    hops.push({ hop: 'route', node: src.node, detail: `${routeText}: not forwarded`, status: 'dropped' });
    return report(
      'dropped',
      'route',
      `${src.node} did not forward it (route ${routeText}); check ip_forward and rp_filter`,
    );
  }
  hops.push({ hop: 'route', node: src.node, detail: routeText, status: 'ok' });

  const out = firstPacket(srcEvents, 'mangle', 'POSTROUTING') ?? forwarded;
  const outIf = out?.oif ?? route.dev ?? '?';
  const sameNode = outIf.startsWith('cali');
  let finalNode = src;
  if (!sameNode) {
    const nextHop = route.gateway
      ? (input.nodeAddresses.get(route.gateway) ?? route.gateway)
      : input.destination.node;
    const tunnel = outIf === 'vxlan.calico' || outIf === 'tunl0';
    hops.push({
      hop: tunnel ? 'tunnel' : 'underlay',
      node: src.node,
      detail: `${tunnel ? `encapsulated on ${outIf}` : `out of ${outIf}`} to ${nextHop}${tunnel && nextHop !== input.destination.node && input.destination.node ? ` (${input.destination.node}'s tunnel address)` : ''}`,
      status: 'ok',
    });
    if (!dstNode) {
      return report(
        'delivered',
        tunnel ? 'tunnel' : 'underlay',
        `left ${src.node} on ${outIf} towards ${nextHop}; the destination is not a pod of this cluster, so the trace ends here${input.answered ? ' (answered)' : ' (no answer)'}`,
      );
    }
    const remote = dstNode.events.find((e) => e.type === 'packet');
    if (!remote) {
      // Through a tunnel the underlay carries the inner packet plus the encapsulation.
      const overhead = outIf === 'vxlan.calico' ? 50 : outIf === 'tunl0' ? 20 : 0;
      const onWire = length !== undefined ? length + overhead : undefined;
      const mtuHint =
        onWire !== undefined && dstNode.uplinkMtu !== undefined && onWire > dstNode.uplinkMtu
          ? `: ${onWire} bytes${overhead ? ` (${length} + ${overhead} of ${outIf})` : ''} exceed the MTU ${dstNode.uplinkMtu} of ${dstNode.node}'s underlay interface, so it was dropped on arrival (an MTU black hole)`
          : ': lost on the underlay (a link down, a firewall or a switch between them)';
      hops.push({
        hop: 'remote-node',
        node: dstNode.node,
        detail: `never arrived${mtuHint}`,
        status: 'lost',
      });
      const mtuLost = mtuHint.includes('MTU');
      return report(
        mtuLost ? 'mtu-exceeded' : 'lost',
        'remote-node',
        `left ${src.node} on ${outIf} but never arrived at ${dstNode.node}${mtuHint}`,
      );
    }
    hops.push({
      hop: 'remote-node',
      node: dstNode.node,
      detail: `arrived on ${remote.iif ?? '?'}`,
      status: 'ok',
    });
    finalNode = dstNode;
  }

  const stagedIngress = stagedStage(finalNode.events, 'cali-stw-', finalNode, owners);
  if (stagedIngress) hops.push(stagedHop('staged-ingress', finalNode.node, stagedIngress));
  const ingress = stage(finalNode.events, 'cali-tw-');
  if (ingress.drop) {
    const rule = decidingRule(ingress.drop, finalNode, owners);
    const modelRule = modelNote(ingress, input.model?.ingress, input.model?.ingressPolicy, owners);
    hops.push({
      hop: 'ingress-policy',
      node: finalNode.node,
      detail: `dropped by ${rule.owner}${modelRule}`,
      status: 'dropped',
      rule,
    });
    return report(
      'dropped',
      'ingress-policy',
      `dropped on ingress by ${rule.owner} (kernel: ${kernelRule(rule)})${modelRule}`,
      rule,
    );
  }
  if (ingress.entered)
    hops.push({
      hop: 'ingress-policy',
      node: finalNode.node,
      detail: allowedBy(ingress.visited, owners),
      status: 'ok',
    });
  const remoteDrop = finalNode !== src ? otherDrop(finalNode.events) : undefined;
  if (remoteDrop) {
    const rule = decidingRule(remoteDrop, finalNode, owners);
    return report(
      'dropped',
      'remote-node',
      `dropped on ${finalNode.node} by ${remoteDrop.table} ${remoteDrop.chain} rule ${rule.position ?? '?'} (${rule.description})`,
      rule,
    );
  }
  const delivered = finalNode.events.find((e) => e.type === 'packet' && e.oif?.startsWith('cali'));
  if (!delivered) {
    hops.push({ hop: 'delivered', node: finalNode.node, detail: 'not sent to any pod veth', status: 'lost' });
    return report(
      'lost',
      'delivered',
      `${finalNode.node} did not send it to a pod veth (no /32 route to ${input.destination.ip}?)`,
    );
  }
  hops.push({
    hop: 'delivered',
    node: finalNode.node,
    detail: `to ${input.destination.label} on ${delivered.oif}`,
    status: 'ok',
  });
  const stagedDenies = [
    ...(stagedEgress?.verdict === 'would-deny'
      ? [`on egress ${stagedEgress.detail.replace(/^staged: /, '')}`]
      : []),
    ...(stagedIngress?.verdict === 'would-deny'
      ? [`on ingress ${stagedIngress.detail.replace(/^staged: /, '')}`]
      : []),
  ];
  return report(
    'delivered',
    'delivered',
    `delivered to ${input.destination.label} on ${finalNode.node} (${delivered.oif})${input.answered ? ', answered' : ', no answer came back'}${stagedDenies.length > 0 ? `; staged policies (not enforced) ${stagedDenies.join(', ')}` : ''}`,
  );
}

/** The report as a person reads it. */
export function renderTrace(r: TraceReport): string {
  const lines = [`trace ${r.from} → ${r.to} ${r.probe}`];
  const mark = { ok: '✓', dropped: '✗', lost: '✗' } as const;
  for (const h of r.hops) {
    const sign = h.staged ? (h.staged === 'would-deny' ? '~' : '·') : mark[h.status];
    lines.push(`  ${sign} ${h.hop.padEnd(14)} ${h.node.padEnd(12)} ${h.detail}`);
    if (h.rule)
      lines.push(
        `      rule: ${h.rule.chain} #${h.rule.position ?? '?'} (handle ${h.rule.handle ?? '?'}${h.rule.id ? `, ${h.rule.id}` : ''}): ${h.rule.description}`,
      );
  }
  lines.push(`result: ${r.result}: ${r.summary}`);
  return `${lines.join('\n')}\n`;
}
