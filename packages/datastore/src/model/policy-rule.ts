/**
 * Policy rules (api/pkg/apis/projectcalico/v3/policy_common.go): actions, protocols, ports, ICMP,
 * entity rules, and the checks Calico's validator makes across a rule's fields
 * (validateRule / validateEntityRule in libcalico-go/lib/validator/v3).
 */
import { z } from 'zod';
import { checkedString, cidrProblem } from './field-types.ts';
import { parseCidr } from './ip.ts';
import type { Report } from './issues.ts';
import { selectorProblem } from './selector-field.ts';

export const RULE_ACTIONS = ['Allow', 'Deny', 'Log', 'Pass'] as const;
export const PROTOCOL_NAMES = ['TCP', 'UDP', 'ICMP', 'ICMPv6', 'SCTP', 'UDPLite'] as const;

const PROTOCOL_NUMBERS: Record<string, number> = {
  TCP: 6,
  UDP: 17,
  ICMP: 1,
  ICMPv6: 58,
  SCTP: 132,
  UDPLite: 136,
};
// Protocols that have ports a rule can match (numorstring.Protocol.SupportsPorts).
const PORT_PROTOCOLS = new Set([6, 17, 132]);

/** A protocol as written: a name (exact case) or a number 1–255, possibly as a string. */
export function protocolProblem(value: unknown): string | undefined {
  const expected = `expected one of ${PROTOCOL_NAMES.join(', ')} or a protocol number 1–255`;
  if (typeof value === 'number')
    return Number.isInteger(value) && value >= 1 && value <= 255 ? undefined : expected;
  if (typeof value === 'string') {
    if (value in PROTOCOL_NUMBERS) return undefined;
    if (/^\d+$/.test(value)) return protocolProblem(Number(value));
  }
  return expected;
}

/** The protocol number of a valid protocol value. */
export function protocolNumber(value: number | string): number {
  if (typeof value === 'number') return value;
  return PROTOCOL_NUMBERS[value] ?? Number(value);
}

export const protocolSchema = z
  .union([z.number(), z.string()], { error: 'expected a protocol name or number' })
  .superRefine((value, ctx) => {
    const message = protocolProblem(value);
    if (message) ctx.addIssue({ code: 'custom', input: value, message });
  });

// numorstring.Port: a named port must look like a Kubernetes IANA service name.
const NAMED_PORT_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export type ParsedPort = { kind: 'range'; first: number; last: number } | { kind: 'named'; name: string };

/** Parses a port entry: 80, "80", "80:90" or a port name; a string message when invalid. */
export function parsePort(value: unknown): ParsedPort | string {
  const range = 'port numbers must be 1–65535';
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 1 || value > 65535) return range;
    return { kind: 'range', first: value, last: value };
  }
  if (typeof value !== 'string') return 'expected a port number, a range "<first>:<last>" or a port name';
  const m = /^(\d+)(?::(\d+))?$/.exec(value);
  if (m) {
    const first = Number(m[1]);
    const last = m[2] === undefined ? first : Number(m[2]);
    if (first < 1 || first > 65535 || last < 1 || last > 65535) return range;
    if (first > last) return `port range must run from low to high: expected "${last}:${first}"`;
    return { kind: 'range', first, last };
  }
  if (value.length > 15 || !NAMED_PORT_RE.test(value) || !/[a-z]/.test(value)) {
    return 'expected a port number, a range "<first>:<last>" or a port name (≤15 lower-case letters, digits and "-")';
  }
  return { kind: 'named', name: value };
}

export const portSchema = z
  .union([z.number(), z.string()], { error: 'expected a port number, range or name' })
  .superRefine((value, ctx) => {
    const parsed = parsePort(value);
    if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', input: value, message: parsed });
  });

export const icmpSchema = z.strictObject({
  type: z.number().int().min(0).max(254).optional(),
  code: z.number().int().min(0).max(255).optional(),
});

/** Text scan for `global()` outside quoted strings. */
function mentionsGlobal(selector: string): boolean {
  const unquoted = selector.replace(/"[^"]*"|'[^']*'/g, '""');
  return /global\(\s*\)/.test(unquoted);
}

/** A selector field where `global()` is never allowed. */
export const plainSelector = () =>
  checkedString((value) => {
    const problem = selectorProblem(value);
    if (problem) return problem;
    return mentionsGlobal(value)
      ? "global() may only be used as a rule's whole namespaceSelector"
      : undefined;
  });

/** EntityRule.namespaceSelector: any selector, or exactly `global()`. */
const namespaceSelectorField = () =>
  checkedString((value) => {
    const problem = selectorProblem(value);
    if (problem) return problem;
    if (mentionsGlobal(value) && value.trim() !== 'global()')
      return 'global() cannot be combined with other selectors';
    return undefined;
  });

const ruleCidr = () => checkedString((v) => cidrProblem(v, { masked: true }));

export const entityRuleSchema = z.strictObject({
  nets: z.array(ruleCidr()).max(256).optional(),
  notNets: z.array(ruleCidr()).max(256).optional(),
  selector: plainSelector().optional(),
  notSelector: plainSelector().optional(),
  namespaceSelector: namespaceSelectorField().optional(),
  ports: z.array(portSchema).max(50).optional(),
  notPorts: z.array(portSchema).max(50).optional(),
  serviceAccounts: z
    .strictObject({
      names: z.array(z.string().min(1)).optional(),
      selector: plainSelector().optional(),
    })
    .optional(),
  services: z
    .strictObject({
      name: z.string().min(1),
      namespace: z.string().optional(),
    })
    .optional(),
});

export type EntityRule = z.output<typeof entityRuleSchema>;

export const httpMatchSchema = z.strictObject({
  methods: z.array(z.string().min(1)).optional(),
  paths: z
    .array(
      z
        .strictObject({ exact: z.string().optional(), prefix: z.string().optional() })
        .refine(
          (p) => (p.exact === undefined) !== (p.prefix === undefined),
          'set exactly one of exact or prefix',
        ),
    )
    .optional(),
});

export const ruleSchema = z
  .strictObject({
    action: z.enum(RULE_ACTIONS),
    ipVersion: z.union([z.literal(4), z.literal(6)]).optional(),
    protocol: protocolSchema.optional(),
    notProtocol: protocolSchema.optional(),
    icmp: icmpSchema.optional(),
    notICMP: icmpSchema.optional(),
    source: entityRuleSchema.optional(),
    destination: entityRuleSchema.optional(),
    http: httpMatchSchema.optional(),
    metadata: z.strictObject({ annotations: z.record(z.string(), z.string()).optional() }).optional(),
  })
  .superRefine((rule, ctx) => {
    checkRule(rule, (path, input, message) =>
      ctx.addIssue({ code: 'custom', path: [...path], input, message }),
    );
  });

export type Rule = z.output<typeof ruleSchema>;
export type RuleInput = z.input<typeof ruleSchema>;

function checkIcmp(
  rule: Rule,
  field: 'icmp' | 'notICMP',
  protocol: number | string | undefined,
  report: Report,
): void {
  const icmp = rule[field];
  if (!icmp) return;
  if (icmp.code !== undefined && icmp.type === undefined)
    report([field, 'code'], icmp.code, 'code requires type');
  const proto = protocol === undefined || protocolProblem(protocol) ? undefined : protocolNumber(protocol);
  if (proto !== 1 && proto !== 58) {
    const protoField = field === 'icmp' ? 'protocol' : 'notProtocol';
    report([field], icmp, `${field} requires ${protoField} ICMP or ICMPv6`);
  }
}

function checkEntity(rule: Rule, side: 'source' | 'destination', report: Report): void {
  const entity = rule[side];
  if (!entity) return;
  const proto =
    rule.protocol === undefined || protocolProblem(rule.protocol) ? undefined : protocolNumber(rule.protocol);
  // Calico's docs apply rules with numeric ports and no protocol (tigera/docs calico-labels,
  // default-deny examples), so only a protocol that has no ports is refused here.
  for (const field of ['ports', 'notPorts'] as const) {
    const ports = entity[field];
    if (!ports || ports.length === 0) continue;
    if (proto !== undefined && !PORT_PROTOCOLS.has(proto)) {
      report([side, field], ports, 'rules that specify ports must set protocol to TCP or UDP or SCTP');
    }
  }
  const notNets = entity.notNets ?? [];
  notNets.forEach((net, i) => {
    const c = parseCidr(net);
    if (c && c.prefixLength === 0)
      report([side, 'notNets', i], net, 'notNets may not match every address (prefix length 0)');
  });
  if (entity.services) {
    const conflicting = (
      ['selector', 'notSelector', 'namespaceSelector', 'nets', 'notNets', 'serviceAccounts'] as const
    ).filter((f) => entity[f] !== undefined);
    for (const f of conflicting) report([side, f], entity[f], 'cannot be combined with services');
  }
}

/** Cross-field checks of one rule; paths are relative to the rule. */
export function checkRule(rule: Rule, report: Report): void {
  checkIcmp(rule, 'icmp', rule.protocol, report);
  checkIcmp(rule, 'notICMP', rule.notProtocol ?? rule.protocol, report);
  checkEntity(rule, 'source', report);
  checkEntity(rule, 'destination', report);

  // ICMP is IPv4's, ICMPv6 is IPv6's; nets must agree with the rule's IP version and each other.
  const proto =
    rule.protocol === undefined || protocolProblem(rule.protocol) ? undefined : protocolNumber(rule.protocol);
  if (rule.ipVersion !== undefined && proto === 1 && rule.ipVersion !== 4) {
    report(['ipVersion'], rule.ipVersion, 'protocol ICMP requires ipVersion 4');
  }
  if (rule.ipVersion !== undefined && proto === 58 && rule.ipVersion !== 6) {
    report(['ipVersion'], rule.ipVersion, 'protocol ICMPv6 requires ipVersion 6');
  }
  let family = rule.ipVersion ?? (proto === 1 ? 4 : proto === 58 ? 6 : undefined);
  for (const side of ['source', 'destination'] as const) {
    for (const field of ['nets', 'notNets'] as const) {
      rule[side]?.[field]?.forEach((net, i) => {
        const c = parseCidr(net);
        if (!c) return;
        if (family === undefined) family = c.family;
        else if (c.family !== family) {
          report([side, field, i], net, `IPv${c.family} network in a rule matching IPv${family}`);
        }
      });
    }
  }

  if (rule.http) {
    if (rule.action !== 'Allow') report(['http'], rule.http, 'http match is only valid on Allow rules');
    if (proto !== undefined && proto !== 6)
      report(['http'], rule.http, 'http match requires protocol TCP (or unset)');
  }
}
