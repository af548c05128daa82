/**
 * What the rendered chains decide for one packet, computed from the same resolution and parsed
 * rules (policy-semantics §2.5): egress policy of the source endpoint, then ingress policy of the
 * destination endpoint, each tier by tier — a rule's Allow/Deny ends it, Pass skips to the next
 * tier, Log goes on; a tier whose default action is Deny drops what none of its policies
 * decided; then the profiles; then drop. `calico policy explain` prints the result.
 */
import { parseIp } from '@calico-ts/datastore';
import type { ParsedRule, ParsedRuleSide, PortRange } from './parsed-rule.ts';
import type { ResolvedEndpointPolicy, ResolvedHostEndpointPolicy, ResolvedTier } from './policy-catalog.ts';
import type { PolicyDirection } from './policy-id.ts';
import { PORT_PROTOCOLS, ruleForFamily } from './rule-render.ts';

/** The first packet of a connection (established traffic is accepted by conntrack before policy). */
export interface FlowPacket {
  /** Number or name (`TCP`, `udp`, `ICMP`, `ICMPv6`, `SCTP`, `UDPLite`). */
  protocol: number | string;
  srcIp: string;
  dstIp: string;
  srcPort?: number;
  dstPort?: number;
  icmpType?: number;
  icmpCode?: number;
}

/** IP set membership as the kernel would answer it (SelectorIndex implements this). */
export interface IpsetMembership {
  containsAddress(id: string, ip: string): boolean;
  containsAddressPort(id: string, ip: string, protocol: number, port: number): boolean;
}

/** One side of a flow: a Calico endpoint with its resolved policy, or an address no policy governs. */
export type FlowPeer =
  | { kind: 'endpoint'; name: string; resolved: ResolvedEndpointPolicy }
  | { kind: 'address' };

export type FlowDecision =
  | { by: 'rule'; tier: string; policy: string; ruleIndex: number; action: 'allow' | 'deny' }
  | { by: 'endOfTier'; tier: string }
  | { by: 'profile'; profile: string; ruleIndex: number; action: 'allow' | 'deny' }
  | { by: 'noProfileMatched' }
  | { by: 'notAnEndpoint' }
  | { by: 'failsafe'; protocol: string; port: number }
  | { by: 'forwardDefault' }
  | { by: 'notProgrammed' };

/** What happened on the way to the decision, in order. */
export type FlowTraceStep =
  | { event: 'log'; tier?: string; policy?: string; profile?: string; ruleIndex: number }
  | { event: 'pass'; tier: string; policy: string; ruleIndex: number }
  | { event: 'tierDefaultPass'; tier: string }
  | { event: 'profilePass'; profile: string; ruleIndex: number };

export interface DirectionVerdict {
  allowed: boolean;
  decision: FlowDecision;
  trace: FlowTraceStep[];
}

export interface FlowVerdict {
  allowed: boolean;
  /** The source endpoint's egress policy. */
  egress: DirectionVerdict;
  /** The destination endpoint's ingress policy. */
  ingress: DirectionVerdict;
}

const PROTOCOL_BY_NAME: Readonly<Record<string, number>> = {
  tcp: 6,
  udp: 17,
  icmp: 1,
  icmpv6: 58,
  sctp: 132,
  udplite: 136,
};

export function packetProtocolNumber(protocol: number | string): number | undefined {
  if (typeof protocol === 'number') return protocol;
  if (/^\d+$/.test(protocol)) return Number(protocol);
  return PROTOCOL_BY_NAME[protocol.toLowerCase()];
}

function inNet(ip: string, net: string): boolean {
  const addr = parseIp(ip);
  const [base, len] = net.split('/');
  const network = base === undefined ? undefined : parseIp(base);
  if (!addr || !network || addr.family !== network.family) return false;
  const bits = BigInt((addr.family === 4 ? 32 : 128) - Number(len ?? (addr.family === 4 ? 32 : 128)));
  return addr.value >> bits === network.value >> bits;
}

const inRanges = (port: number, ranges: readonly PortRange[]) =>
  ranges.some((r) => port >= r.first && port <= r.last);

function sideMatches(
  side: ParsedRuleSide,
  ip: string,
  port: number | undefined,
  protocol: number,
  ipsets: IpsetMembership,
): boolean {
  if (side.nets.length > 0 && !side.nets.some((n) => inNet(ip, n))) return false;
  if (side.notNets.some((n) => inNet(ip, n))) return false;
  if (!side.ipsets.every((id) => ipsets.containsAddress(id, ip))) return false;
  if (side.notIpsets.some((id) => ipsets.containsAddress(id, ip))) return false;
  const portCriteria =
    side.ports.length + side.namedPortIpsets.length + side.notPorts.length + side.notNamedPortIpsets.length;
  if (portCriteria === 0) return true;
  if (port === undefined) return false;
  if (side.ports.length + side.namedPortIpsets.length > 0) {
    const numeric = inRanges(port, side.ports);
    const named = side.namedPortIpsets.some((id) => ipsets.containsAddressPort(id, ip, protocol, port));
    if (!numeric && !named) return false;
  }
  if (inRanges(port, side.notPorts)) return false;
  if (side.notNamedPortIpsets.some((id) => ipsets.containsAddressPort(id, ip, protocol, port))) return false;
  return true;
}

function icmpMatches(icmp: { type: number; code: number | undefined }, packet: FlowPacket): boolean {
  return packet.icmpType === icmp.type && (icmp.code === undefined || packet.icmpCode === icmp.code);
}

/** Does the rule, as rendered for the packet's IP family, match the packet? */
export function ruleMatchesPacket(parsed: ParsedRule, packet: FlowPacket, ipsets: IpsetMembership): boolean {
  const family = parseIp(packet.srcIp)?.family;
  const protocol = packetProtocolNumber(packet.protocol);
  if (family === undefined || protocol === undefined) return false;
  const rule = ruleForFamily(parsed, family);
  if (!rule || rule.unsupported.length > 0) return false;
  const hasNumericPorts =
    rule.src.ports.length + rule.src.notPorts.length + rule.dst.ports.length + rule.dst.notPorts.length > 0;
  // Rendered once per port protocol when the rule names none (see rule-render protocolVariants).
  if (rule.protocol === undefined && hasNumericPorts && !PORT_PROTOCOLS.includes(protocol)) return false;
  if (rule.protocol !== undefined && rule.protocol !== protocol) return false;
  if (rule.notProtocol !== undefined && rule.notProtocol === protocol) return false;
  if (rule.icmp && !icmpMatches(rule.icmp, packet)) return false;
  if (rule.notIcmp && (packet.icmpType === undefined || icmpMatches(rule.notIcmp, packet))) return false;
  const hasPorts = PORT_PROTOCOLS.includes(protocol);
  return (
    sideMatches(rule.src, packet.srcIp, hasPorts ? packet.srcPort : undefined, protocol, ipsets) &&
    sideMatches(rule.dst, packet.dstIp, hasPorts ? packet.dstPort : undefined, protocol, ipsets)
  );
}

/**
 * The tiers of one direction, as the endpoint chain runs them: a verdict once a rule or an
 * end-of-tier drop decides, undefined when every tier passed the packet on. `endOfTierDrop`
 * false for untracked and preDNAT chains, which leave undecided packets to normal policy.
 */
function evaluateTiers(
  direction: PolicyDirection,
  tiers: readonly ResolvedTier[],
  packet: FlowPacket,
  ipsets: IpsetMembership,
  trace: FlowTraceStep[],
  endOfTierDrop = true,
): DirectionVerdict | undefined {
  for (const tier of tiers) {
    let passed = false;
    policies: for (const policy of tier.policies) {
      const rules = policy.rules[direction];
      for (let i = 0; i < rules.length; i++) {
        const rule = rules[i]!;
        if (!ruleMatchesPacket(rule, packet, ipsets)) continue;
        if (rule.action === 'log') {
          trace.push({ event: 'log', tier: tier.name, policy: policy.key, ruleIndex: i });
          continue;
        }
        if (rule.action === 'pass') {
          trace.push({ event: 'pass', tier: tier.name, policy: policy.key, ruleIndex: i });
          passed = true;
          break policies;
        }
        const action = rule.action;
        return {
          allowed: action === 'allow',
          decision: { by: 'rule', tier: tier.name, policy: policy.key, ruleIndex: i, action },
          trace,
        };
      }
    }
    if (passed) continue;
    if (tier.defaultAction === 'Pass' || !endOfTierDrop) {
      trace.push({ event: 'tierDefaultPass', tier: tier.name });
      continue;
    }
    return { allowed: false, decision: { by: 'endOfTier', tier: tier.name }, trace };
  }
  return undefined;
}

/** One endpoint, one direction: the verdict of its policy stage for this packet. */
export function evaluateDirection(
  direction: PolicyDirection,
  resolved: ResolvedEndpointPolicy,
  packet: FlowPacket,
  ipsets: IpsetMembership,
): DirectionVerdict {
  const trace: FlowTraceStep[] = [];
  const byTiers = evaluateTiers(direction, resolved.tiers[direction], packet, ipsets, trace);
  if (byTiers) return byTiers;
  for (const profile of resolved.profiles) {
    const rules = profile.rules[direction];
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (!ruleMatchesPacket(rule, packet, ipsets)) continue;
      if (rule.action === 'log') {
        trace.push({ event: 'log', profile: profile.name, ruleIndex: i });
        continue;
      }
      if (rule.action === 'pass') {
        // The profile chain returns with the pass mark, which no later rule looks at.
        trace.push({ event: 'profilePass', profile: profile.name, ruleIndex: i });
        break;
      }
      const action = rule.action;
      return {
        allowed: action === 'allow',
        decision: { by: 'profile', profile: profile.name, ruleIndex: i, action },
        trace,
      };
    }
  }
  return { allowed: false, decision: { by: 'noProfileMatched' }, trace };
}

const NOT_AN_ENDPOINT: DirectionVerdict = { allowed: true, decision: { by: 'notAnEndpoint' }, trace: [] };

/**
 * Both halves of a flow: the source endpoint's egress and the destination endpoint's ingress
 * must each accept (policy-semantics §2.5). A side that is not a Calico endpoint has no policy.
 */
export function evaluateFlow(input: {
  source: FlowPeer;
  destination: FlowPeer;
  packet: FlowPacket;
  ipsets: IpsetMembership;
}): FlowVerdict {
  const { source, destination, packet, ipsets } = input;
  const egress =
    source.kind === 'endpoint'
      ? evaluateDirection('egress', source.resolved, packet, ipsets)
      : NOT_AN_ENDPOINT;
  const ingress =
    destination.kind === 'endpoint'
      ? evaluateDirection('ingress', destination.resolved, packet, ipsets)
      : NOT_AN_ENDPOINT;
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}

/** A failsafe port (FelixConfiguration failsafeInboundHostPorts / failsafeOutboundHostPorts). */
export interface FailsafePort {
  protocol: 'tcp' | 'udp' | 'sctp';
  port: number;
  net?: string;
}

export interface FailsafePorts {
  inbound: readonly FailsafePort[];
  outbound: readonly FailsafePort[];
}

/** A host endpoint on the packet's path: its resolution and the interface it governs. */
export interface HostEndpointPeer {
  name: string;
  resolved: ResolvedHostEndpointPolicy;
  /** The all-interfaces endpoint (`interfaceName: "*"`): no untracked policy is rendered for it. */
  allInterfaces?: boolean;
}

/** Where a host endpoint's policy runs, in the order a packet meets it. */
export type HostEndpointStage = 'untracked' | 'preDNAT' | 'normal' | 'forward';

export interface HostStageVerdict {
  stage: HostEndpointStage;
  direction: PolicyDirection;
  hostEndpoint: string;
  /** `accept`: the packet is accepted here (or the stage's accept mark skips the rest); `drop`; `continue`. */
  result: 'accept' | 'drop' | 'continue';
  decision: FlowDecision | undefined;
  trace: FlowTraceStep[];
}

export interface HostFlowVerdict {
  allowed: boolean;
  /** The stages the packet met, in order, up to the one that decided. */
  stages: HostStageVerdict[];
}

function failsafeMatch(
  ports: readonly FailsafePort[],
  packet: FlowPacket,
  portOf: 'dstPort' | 'srcPort',
  peerIp: string,
): FailsafePort | undefined {
  const protocol = packetProtocolNumber(packet.protocol);
  const family = parseIp(packet.srcIp)?.family;
  return ports.find((p) => {
    if (packetProtocolNumber(p.protocol) !== protocol) return false;
    if (packet[portOf] !== p.port) return false;
    if (p.net === undefined) return true;
    // A failsafe restricted to the other family's net is not rendered in this family.
    if ((p.net.includes(':') ? 6 : 4) !== family) return false;
    return inNet(peerIp, p.net.includes('/') ? p.net : `${p.net}/${family === 6 ? 128 : 32}`);
  });
}

/**
 * The failsafe chain of a table for this packet (static.go): inbound ports by destination port
 * and source net, outbound by destination port and destination net; in the raw table also the
 * other direction's ports by source port (replies).
 */
function failsafeAccepts(
  direction: PolicyDirection,
  table: 'raw' | 'mangle' | 'filter',
  packet: FlowPacket,
  failsafe: FailsafePorts,
): FailsafePort | undefined {
  if (direction === 'ingress') {
    return (
      failsafeMatch(failsafe.inbound, packet, 'dstPort', packet.srcIp) ??
      (table === 'raw' ? failsafeMatch(failsafe.outbound, packet, 'srcPort', packet.srcIp) : undefined)
    );
  }
  return (
    failsafeMatch(failsafe.outbound, packet, 'dstPort', packet.dstIp) ??
    (table === 'raw' ? failsafeMatch(failsafe.inbound, packet, 'srcPort', packet.dstIp) : undefined)
  );
}

/**
 * One host endpoint chain for the first packet of a connection (rules/endpoints.go
 * `endpointIptablesChain`): failsafe (not for forward chains), then the stage's tiers; a normal
 * chain then runs the profiles and drops, a forward chain with no forward policy at all allows,
 * an untracked or preDNAT chain leaves what no rule decided to the next stage.
 */
export function evaluateHostEndpointStage(
  stage: HostEndpointStage,
  direction: PolicyDirection,
  hep: HostEndpointPeer,
  packet: FlowPacket,
  ipsets: IpsetMembership,
  failsafe: FailsafePorts,
): HostStageVerdict {
  const base = { stage, direction, hostEndpoint: hep.name };
  if (stage !== 'forward') {
    const table = stage === 'untracked' ? 'raw' : stage === 'preDNAT' ? 'mangle' : 'filter';
    const port = failsafeAccepts(direction, table, packet, failsafe);
    if (port) {
      return {
        ...base,
        result: 'accept',
        decision: { by: 'failsafe', protocol: port.protocol, port: port.port },
        trace: [],
      };
    }
  }
  const r = hep.resolved;
  const list =
    stage === 'untracked'
      ? r.untracked
      : stage === 'preDNAT'
        ? r.preDNAT
        : stage === 'forward'
          ? r.forward
          : r;
  if (stage === 'normal') {
    const v = evaluateDirection(direction, r, packet, ipsets);
    return { ...base, result: v.allowed ? 'accept' : 'drop', decision: v.decision, trace: v.trace };
  }
  const trace: FlowTraceStep[] = [];
  if (stage === 'forward' && list.tierOrder.length === 0) {
    return { ...base, result: 'accept', decision: { by: 'forwardDefault' }, trace };
  }
  const v = evaluateTiers(direction, list.tiers[direction], packet, ipsets, trace, stage === 'forward');
  if (!v) return { ...base, result: 'continue', decision: undefined, trace };
  return { ...base, result: v.allowed ? 'accept' : 'drop', decision: v.decision, trace };
}

/**
 * A packet through the host, as the static chains send it to host endpoint chains:
 * - `input` (arriving on `in`, to the host): raw untracked, mangle preDNAT, filter normal;
 * - `output` (from the host, leaving on `out`): raw untracked, filter normal;
 * - `forward` (arriving on `in`, leaving on `out`): raw untracked and mangle preDNAT of `in`,
 *   then, unless one of those accepted, the forward chain of `in`; then the forward chain of
 *   `out` (workload policy on the way is evaluateFlow's part).
 * An untracked or preDNAT accept sets the accept mark, which the filter table honours at once.
 * An interface no host endpoint governs (`undefined`) has no host policy.
 */
export function evaluateHostFlow(input: {
  path: 'input' | 'output' | 'forward';
  in?: HostEndpointPeer | undefined;
  out?: HostEndpointPeer | undefined;
  packet: FlowPacket;
  ipsets: IpsetMembership;
  failsafe: FailsafePorts;
}): HostFlowVerdict {
  const { path, packet, ipsets, failsafe } = input;
  const stages: HostStageVerdict[] = [];
  const run = (stage: HostEndpointStage, direction: PolicyDirection, hep: HostEndpointPeer) => {
    const v = evaluateHostEndpointStage(stage, direction, hep, packet, ipsets, failsafe);
    stages.push(v);
    return v;
  };
  const hasUntracked = (h: HostEndpointPeer) => !h.allInterfaces && h.resolved.untracked.tierOrder.length > 0;
  const hasPreDnat = (h: HostEndpointPeer) => h.resolved.preDNAT.tierOrder.length > 0;
  const done = (allowed: boolean): HostFlowVerdict => ({ allowed, stages });
  const early = (
    h: HostEndpointPeer | undefined,
    direction: PolicyDirection,
  ): 'accept' | 'drop' | undefined => {
    if (!h) return undefined;
    if (hasUntracked(h)) {
      const v = run('untracked', direction, h);
      // A failsafe ACCEPT in raw only ends the raw table; a policy accept sets the accept mark.
      if (v.result === 'drop') return 'drop';
      if (v.result === 'accept' && v.decision?.by !== 'failsafe') return 'accept';
    }
    if (direction === 'ingress' && hasPreDnat(h)) {
      const v = run('preDNAT', direction, h);
      if (v.result === 'drop') return 'drop';
      if (v.result === 'accept' && v.decision?.by !== 'failsafe') return 'accept';
    }
    return undefined;
  };
  if (path === 'input') {
    const e = early(input.in, 'ingress');
    if (e) return done(e === 'accept');
    if (!input.in) return done(true);
    return done(run('normal', 'ingress', input.in).result === 'accept');
  }
  if (path === 'output') {
    const e = early(input.out, 'egress');
    if (e) return done(e === 'accept');
    if (!input.out) return done(true);
    return done(run('normal', 'egress', input.out).result === 'accept');
  }
  const e = early(input.in, 'ingress');
  if (e === 'drop') return done(false);
  if (e !== 'accept' && input.in && run('forward', 'ingress', input.in).result === 'drop') return done(false);
  if (input.out && run('forward', 'egress', input.out).result === 'drop') return done(false);
  return done(true);
}
