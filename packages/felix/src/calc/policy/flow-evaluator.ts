/**
 * What the rendered chains decide for one packet, computed from the same resolution and parsed
 * rules (policy-semantics §2.5): egress policy of the source endpoint, then ingress policy of the
 * destination endpoint, each tier by tier — a rule's Allow/Deny ends it, Pass skips to the next
 * tier, Log goes on; a tier whose default action is Deny drops what none of its policies
 * decided; then the profiles; then drop. `calico policy explain` prints the result.
 */
import { parseIp } from '@calico-ts/datastore';
import type { ParsedRule, ParsedRuleSide, PortRange } from './parsed-rule.ts';
import type { ResolvedEndpointPolicy } from './policy-catalog.ts';
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
  | { by: 'notAnEndpoint' };

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

/** One endpoint, one direction: the verdict of its policy stage for this packet. */
export function evaluateDirection(
  direction: PolicyDirection,
  resolved: ResolvedEndpointPolicy,
  packet: FlowPacket,
  ipsets: IpsetMembership,
): DirectionVerdict {
  const trace: FlowTraceStep[] = [];
  for (const tier of resolved.tiers[direction]) {
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
    if (tier.defaultAction === 'Pass') {
      trace.push({ event: 'tierDefaultPass', tier: tier.name });
      continue;
    }
    return { allowed: false, decision: { by: 'endOfTier', tier: tier.name }, trace };
  }
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
