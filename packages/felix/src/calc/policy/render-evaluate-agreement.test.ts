/**
 * The rendered chains and the evaluator must agree: this runs the rendered iptables rules
 * through a small interpreter of the matches and targets the renderer emits, for every pair of
 * endpoints of the e2e model (and some outside addresses) under policy sets that exercise match
 * blocks, named ports, negations, tiers and Pass, and compares with evaluateFlow.
 */
import { describe, expect, it } from 'vitest';
import type { Chain, Rule } from '../../dataplane/chains.ts';
import { allocateMarkBits, hex } from '../../dataplane/mark-bits.ts';
import { evaluateDirection, type FlowPacket, packetProtocolNumber } from './flow-evaluator.ts';
import { PolicyCatalog, type PolicyCatalogInput, type ResolvedEndpointPolicy } from './policy-catalog.ts';
import type { PolicyDirection } from './policy-id.ts';
import { resolvedPolicyStage } from './policy-stage.ts';
import { gnp, indexFor, knp, namespaces, np, pod, type TestPod, tier } from './policy-test-model.ts';
import { policyChains, policyIpsetName, profileChains } from './rule-render.ts';
import type { SelectorIndex } from './selector-index.ts';

const marks = allocateMarkBits(0xffff0000);
const PROTO_NAMES: Record<string, number> = { tcp: 6, udp: 17, sctp: 132, icmp: 1, icmpv6: 58, udplite: 136 };

interface SimPacket extends FlowPacket {
  mark: number;
}

function inCidr(ip: string, cidr: string): boolean {
  const [net, len] = cidr.split('/');
  const toNum = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const bits = 32 - Number(len ?? 32);
  return Math.floor(toNum(ip) / 2 ** bits) === Math.floor(toNum(net!) / 2 ** bits);
}

function parsePortList(list: string): [number, number][] {
  return list.split(',').map((p) => {
    const [a, b] = p.split(':');
    return [Number(a), Number(b ?? a)];
  });
}

/** Interprets the match part of a rule as iptables would for this packet. */
function matches(
  match: string | undefined,
  pkt: SimPacket,
  sets: (name: string, dir: string, p: SimPacket) => boolean,
) {
  if (!match) return true;
  const t = match.split(' ');
  let i = 0;
  let negate = false;
  const proto = packetProtocolNumber(pkt.protocol)!;
  const check = (ok: boolean) => (negate ? !ok : ok);
  while (i < t.length) {
    const tok = t[i++]!;
    let ok: boolean;
    if (tok === '!') {
      negate = true;
      continue;
    } else if (tok === '-p') {
      const p = t[i++]!;
      ok = check((PROTO_NAMES[p] ?? Number(p)) === proto);
    } else if (tok === '--source' || tok === '--destination') {
      ok = check(inCidr(tok === '--source' ? pkt.srcIp : pkt.dstIp, t[i++]!));
    } else if (tok === '-m') {
      const mod = t[i++]!;
      if (t[i] === '!') {
        negate = true;
        i++;
      }
      const opt = t[i++]!;
      if (mod === 'set') {
        ok = check(sets(t[i++]!, t[i++]!, pkt));
      } else if (mod === 'multiport') {
        if (![6, 17, 132].includes(proto)) return false;
        const port = opt === '--source-ports' ? pkt.srcPort : pkt.dstPort;
        ok = check(parsePortList(t[i++]!).some(([a, b]) => port! >= a && port! <= b));
      } else if (mod === 'icmp') {
        const [type, code] = t[i++]!.split('/').map(Number);
        if (proto !== 1) return false;
        ok = check(pkt.icmpType === type && (code === undefined || pkt.icmpCode === code));
      } else if (mod === 'mark') {
        const [v, m] = t[i++]!.split('/').map(Number);
        ok = (pkt.mark & m!) === v;
      } else {
        throw new Error(`unknown match module ${mod} in ${match}`);
      }
    } else {
      throw new Error(`unknown match token ${tok} in ${match}`);
    }
    negate = false;
    if (!ok) return false;
  }
  return true;
}

type Verdict = 'DROP' | 'RETURN';

function runChain(
  chains: Map<string, Rule[]>,
  rules: readonly Rule[],
  pkt: SimPacket,
  sets: (name: string, dir: string, p: SimPacket) => boolean,
): Verdict {
  for (const rule of rules) {
    if (!matches(rule.match, pkt, sets)) continue;
    const a = rule.action.split(' ');
    if (a[1] === 'RETURN') return 'RETURN';
    if (a[1] === 'DROP') return 'DROP';
    if (a[1] === 'LOG') continue;
    if (a[1] === 'MARK') {
      const [v, m] = a[3]!.split('/').map(Number);
      pkt.mark = ((pkt.mark & ~m!) ^ v!) >>> 0;
      continue;
    }
    const target = chains.get(a[1]!);
    if (!target) throw new Error(`jump to unknown chain ${a[1]}`);
    if (runChain(chains, target, pkt, sets) === 'DROP') return 'DROP';
  }
  return 'RETURN';
}

function simulate(
  direction: PolicyDirection,
  resolved: ResolvedEndpointPolicy,
  chains: Map<string, Rule[]>,
  packet: FlowPacket,
  index: SelectorIndex,
): boolean {
  const byName = new Map(index.ipsetIds().map((id) => [policyIpsetName(id, 4), id]));
  const sets = (name: string, dir: string, p: SimPacket) => {
    const id = byName.get(name);
    if (!id) throw new Error(`unknown ipset ${name}`);
    const side = dir.startsWith('src') ? 'src' : 'dst';
    const ip = side === 'src' ? p.srcIp : p.dstIp;
    if (!dir.includes(',')) return index.containsAddress(id, ip);
    const port = side === 'src' ? p.srcPort : p.dstPort;
    return port !== undefined && index.containsAddressPort(id, ip, packetProtocolNumber(p.protocol)!, port);
  };
  const pkt: SimPacket = { ...packet, mark: 0 };
  const entry: Rule[] = [
    { action: `-j MARK --set-xmark 0x0/${hex(marks.accept + marks.pass)}` },
    ...resolvedPolicyStage(direction, resolved, marks),
  ];
  const verdict = runChain(chains, entry, pkt, sets);
  return verdict === 'RETURN' && (pkt.mark & marks.accept) !== 0;
}

const servePorts = (['tcp', 'udp'] as const).flatMap((proto) =>
  [80, 81].map((port) => ({ name: `serve-${port}-${proto}`, protocol: proto.toUpperCase(), port })),
);
const PODS: TestPod[] = ['x', 'y', 'z'].flatMap((ns, i) =>
  ['a', 'b', 'c'].map((p, j) => pod(ns, p, `10.0.${i + 1}.${j + 1}`, { pod: p }, { ports: servePorts })),
);
const OUTSIDE = ['192.0.2.7', '10.0.9.9'];

function agree(input: PolicyCatalogInput) {
  const catalog = PolicyCatalog.from({
    ...input,
    profiles: [...namespaces({ x: { ns: 'x' }, y: { ns: 'y' }, z: { ns: 'z' } }), ...(input.profiles ?? [])],
  });
  const index = indexFor(catalog, PODS);
  const chains = new Map<string, Rule[]>();
  const add = (c: Chain) => chains.set(c.name, c.rules);
  for (const p of catalog.policies()) policyChains(p, { marks, family: 4 }).forEach(add);
  for (const p of catalog.profiles()) profileChains(p, { marks, family: 4 }).forEach(add);
  let compared = 0;
  let denied = 0;
  for (const local of PODS) {
    const resolved = catalog.resolve(local);
    for (const remote of [...PODS.map((p) => p.ip), ...OUTSIDE]) {
      for (const [protocol, dstPort] of [
        ['TCP', 80],
        ['TCP', 81],
        ['UDP', 80],
        ['TCP', 22],
      ] as const) {
        for (const direction of ['ingress', 'egress'] as const) {
          const packet: FlowPacket =
            direction === 'ingress'
              ? { protocol, srcIp: remote, dstIp: local.ip, srcPort: 40000, dstPort }
              : { protocol, srcIp: local.ip, dstIp: remote, srcPort: 40000, dstPort };
          const evaluated = evaluateDirection(direction, resolved, packet, index).allowed;
          const simulated = simulate(direction, resolved, chains, packet, index);
          if (evaluated !== simulated) {
            throw new Error(
              `${direction} ${JSON.stringify(packet)} on ${local.name}: evaluator ${evaluated}, iptables ${simulated}`,
            );
          }
          compared++;
          if (!evaluated) denied++;
        }
      }
    }
  }
  return { compared, denied };
}

describe('rendered chains agree with evaluateFlow', () => {
  it('on Kubernetes policies: namespace/pod selectors, named ports, ipBlock except', () => {
    const r = agree({
      kubernetesNetworkPolicies: [
        knp('x', 'deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
        knp('x', 'a', {
          podSelector: { matchLabels: { pod: 'a' } },
          ingress: [
            {
              from: [
                {
                  namespaceSelector: { matchLabels: { ns: 'y' } },
                  podSelector: { matchLabels: { pod: 'b' } },
                },
              ],
              ports: [{ port: 'serve-80-tcp' }, { port: 81 }],
            },
          ],
          egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.2.0/24', '10.0.3.3/32'] } }] }],
        }),
        knp('y', 'udp', {
          podSelector: {},
          ingress: [
            {
              ports: [
                { protocol: 'UDP', port: 'serve-80-udp' },
                { protocol: 'UDP', port: 79, endPort: 81 },
              ],
            },
          ],
        }),
      ],
    });
    expect(r.denied).toBeGreaterThan(100);
    expect(r.compared).toBe(9 * 11 * 4 * 2);
  });

  it('on Calico policies: match blocks, negations, notSelector, ports without protocol, Log', () => {
    const r = agree({
      networkPolicies: [
        np('x', 'blocks', {
          order: 1,
          ingress: [
            { action: 'Log', source: { nets: ['10.0.2.0/24', '10.0.3.0/24'] } },
            {
              action: 'Deny',
              source: { nets: ['10.0.2.0/24', '10.0.3.0/24'], notNets: ['10.0.2.1/32'] },
              destination: { notPorts: [81] },
            },
            { action: 'Allow', source: { nets: ['10.0.0.0/8'], notNets: ['10.0.3.0/24', '10.0.1.2/32'] } },
          ],
          egress: [
            {
              action: 'Allow',
              destination: {
                ports: [80, 'serve-81-tcp'],
                selector: "pod in {'a', 'b'}",
                namespaceSelector: 'all()',
              },
            },
            { action: 'Deny', protocol: 'TCP', destination: { notSelector: "pod == 'c'" } },
            { action: 'Allow', notProtocol: 'TCP' },
          ],
        }),
        np('y', 'not', {
          ingress: [{ action: 'Allow', source: { notSelector: "pod == 'c'" }, destination: { ports: [80] } }],
        }),
      ],
      globalNetworkPolicies: [
        gnp('z-only', {
          selector: "projectcalico.org/namespace == 'z'",
          ingress: [
            {
              action: 'Allow',
              protocol: 'TCP',
              source: { notSelector: "pod == 'b'" },
              destination: { ports: ['80:81'] },
            },
          ],
        }),
      ],
    });
    expect(r.denied).toBeGreaterThan(50);
  });

  it('on tiers: Pass, tier default Pass, end-of-tier deny, profiles', () => {
    const r = agree({
      tiers: [tier('security', { order: 10 }), tier('observe', { order: 20, defaultAction: 'Pass' })],
      globalNetworkPolicies: [
        gnp('security.base', {
          tier: 'security',
          selector: 'all()',
          ingress: [
            {
              action: 'Deny',
              source: { namespaceSelector: "ns == 'z'" },
              destination: { ports: [22] },
              protocol: 'TCP',
            },
            { action: 'Pass', source: { nets: ['10.0.0.0/16'] } },
          ],
          egress: [{ action: 'Pass' }],
        }),
        gnp('observe.udp', {
          tier: 'observe',
          ingress: [{ action: 'Deny', protocol: 'UDP', source: { selector: "pod == 'a'" } }],
        }),
      ],
      kubernetesNetworkPolicies: [
        knp('y', 'y-in', {
          podSelector: { matchLabels: { pod: 'b' } },
          ingress: [{ from: [{ podSelector: {} }] }],
        }),
      ],
    });
    expect(r.denied).toBeGreaterThan(50);
  });
});
