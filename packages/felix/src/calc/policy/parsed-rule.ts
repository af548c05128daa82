/**
 * A v3 rule as Felix works with it (felix/calc/rule_scanner.go `ParsedRule`): selectors and named
 * ports replaced by the IP sets that stand for them, numeric ports as ranges, protocols as
 * numbers. The iptables renderer and the flow evaluator both read this one form, so what
 * `calico policy explain` reports is what the kernel enforces.
 */
import { createHash } from 'node:crypto';
import {
  type EntityRule,
  parsePort,
  parseSelector,
  protocolNumber,
  type Rule,
  type Selector,
} from '@calico-ts/datastore';
import { entitySelectors } from './selector-scoping.ts';

export type RuleAction = 'allow' | 'deny' | 'log' | 'pass';
export type NamedPortProtocol = 'tcp' | 'udp' | 'sctp';

export interface PortRange {
  first: number;
  last: number;
}

/** An IP set a rule refers to: the addresses of what a selector matches, optionally with a named port. */
export interface IpsetSpec {
  /** Calico's IP set ID (`s:…` for a selector, `n:…` for a named port). */
  id: string;
  selector: Selector;
  /** Set for `hash:ip,port` sets: (address, protocol, port) of endpoints declaring this port name. */
  namedPort?: { name: string; protocol: NamedPortProtocol };
}

export interface ParsedRuleSide {
  nets: string[];
  notNets: string[];
  ports: PortRange[];
  notPorts: PortRange[];
  /** Named-port sets, ORed with `ports`. */
  namedPortIpsets: string[];
  notNamedPortIpsets: string[];
  /** The address must be in every one of these sets. */
  ipsets: string[];
  /** The address must be in none of these sets. */
  notIpsets: string[];
}

export interface IcmpMatch {
  type: number;
  code: number | undefined;
}

export interface ParsedRule {
  action: RuleAction;
  ipVersion: 4 | 6 | undefined;
  protocol: number | undefined;
  notProtocol: number | undefined;
  icmp: IcmpMatch | undefined;
  notIcmp: IcmpMatch | undefined;
  src: ParsedRuleSide;
  dst: ParsedRuleSide;
  /**
   * Match criteria this dataplane has no data for (Kubernetes Services); a rule using them never
   * matches, so it allows less rather than more.
   */
  unsupported: string[];
}

const PROTOCOL_NAMED_PORT: Readonly<Record<number, NamedPortProtocol>> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

/** `hash.MakeUniqueID`: `<prefix>:` + unpadded base64url SHA-224 of `<prefix>:<content>`. */
function uniqueId(prefix: string, content: string): string {
  return `${prefix}:${createHash('sha224').update(`${prefix}:${content}`).digest('base64url')}`;
}

/** The ID of a named-port set: `n:` + hash of (selector ID, protocol, port name) (`IPSetData.UniqueID`). */
export function namedPortIpsetId(selector: Selector, protocol: NamedPortProtocol, name: string): string {
  return uniqueId('n', `${selector.uniqueId},${protocol},${name}`);
}

const ALL = parseSelector('all()');

// Felix's model calls Pass "next-tier"; we keep the v3 meaning under a lower-case name.
const RULE_ACTIONS: Readonly<Record<Rule['action'], RuleAction>> = {
  Allow: 'allow',
  Deny: 'deny',
  Log: 'log',
  Pass: 'pass',
};

function splitPorts(ports: readonly (number | string)[] | undefined): {
  numeric: PortRange[];
  named: string[];
} {
  const numeric: PortRange[] = [];
  const named: string[] = [];
  for (const p of ports ?? []) {
    const parsed = parsePort(p);
    if (typeof parsed === 'string') continue; // validated upstream
    if (parsed.kind === 'named') named.push(parsed.name);
    else numeric.push({ first: parsed.first, last: parsed.last });
  }
  return { numeric, named };
}

function parseSide(
  entity: EntityRule | undefined,
  policyNamespace: string | undefined,
  namedPortProtocol: NamedPortProtocol,
  ipsets: Map<string, IpsetSpec>,
): ParsedRuleSide {
  const { positive, negative } = entitySelectors(entity, policyNamespace);
  const ports = splitPorts(entity?.ports);
  const notPorts = splitPorts(entity?.notPorts);
  const add = (spec: IpsetSpec): string => {
    ipsets.set(spec.id, spec);
    return spec.id;
  };
  // Named ports are filtered by the positive selector (always the positive one, also for
  // notPorts: the rule can only match where the positive selector does).
  const namedPortSet = (name: string) => {
    const selector = positive ?? ALL;
    return add({
      id: namedPortIpsetId(selector, namedPortProtocol, name),
      selector,
      namedPort: { name, protocol: namedPortProtocol },
    });
  };
  const side: ParsedRuleSide = {
    nets: [...(entity?.nets ?? [])],
    notNets: [...(entity?.notNets ?? [])],
    ports: ports.numeric,
    notPorts: notPorts.numeric,
    namedPortIpsets: ports.named.map(namedPortSet),
    notNamedPortIpsets: notPorts.named.map(namedPortSet),
    ipsets: [],
    notIpsets: [],
  };
  // With only named ports, their sets already carry the selector; otherwise it needs its own set.
  if (positive && (ports.numeric.length > 0 || ports.named.length === 0)) {
    side.ipsets.push(add({ id: positive.uniqueId, selector: positive }));
  }
  if (negative) side.notIpsets.push(add({ id: negative.uniqueId, selector: negative }));
  return side;
}

function icmpMatch(icmp: Rule['icmp']): IcmpMatch | undefined {
  if (icmp?.type === undefined) return undefined;
  return { type: icmp.type, code: icmp.code };
}

/**
 * Parses one v3 rule. `policyNamespace` scopes its selectors (a NetworkPolicy's namespace;
 * undefined for GlobalNetworkPolicy and profiles); every IP set it needs is added to `ipsets`.
 */
export function parseRule(
  rule: Rule,
  policyNamespace: string | undefined,
  ipsets: Map<string, IpsetSpec> = new Map(),
): ParsedRule {
  const protocol = rule.protocol === undefined ? undefined : protocolNumber(rule.protocol);
  // Named ports on endpoints carry a protocol; a rule without one looks them up as TCP.
  const namedPortProtocol = (protocol !== undefined && PROTOCOL_NAMED_PORT[protocol]) || 'tcp';
  // An HTTP match is for application-layer dataplanes; iptables enforces the rule without it,
  // as Felix does.
  const unsupported: string[] = [];
  if (rule.source?.services) unsupported.push('source.services');
  if (rule.destination?.services) unsupported.push('destination.services');
  return {
    action: RULE_ACTIONS[rule.action],
    ipVersion: rule.ipVersion,
    protocol,
    notProtocol: rule.notProtocol === undefined ? undefined : protocolNumber(rule.notProtocol),
    icmp: icmpMatch(rule.icmp),
    notIcmp: icmpMatch(rule.notICMP),
    src: parseSide(rule.source, policyNamespace, namedPortProtocol, ipsets),
    dst: parseSide(rule.destination, policyNamespace, namedPortProtocol, ipsets),
    unsupported,
  };
}
