/**
 * The rendered chains and the evaluator must agree: this runs the rendered iptables rules
 * through a small interpreter of the matches and targets the renderer emits, for every pair of
 * endpoints of the e2e model (and some outside addresses) under policy sets that exercise match
 * blocks, named ports, negations, tiers and Pass, and compares with evaluateFlow.
 */
import { describe, expect, it } from 'vitest';
import { defaultFelixConfig } from '../../config.ts';
import type { Chain, Rule } from '../../dataplane/chains.ts';
import { HostEndpointManager } from '../../dataplane/host-endpoint-manager.ts';
import { allocateMarkBits, hex } from '../../dataplane/mark-bits.ts';
import { staticFilter, staticMangle, staticRaw } from '../../dataplane/static-chains.ts';
import {
  evaluateDirection,
  evaluateHostFlow,
  type FlowPacket,
  type HostEndpointPeer,
  packetProtocolNumber,
} from './flow-evaluator.ts';
import { PolicyCatalog, type PolicyCatalogInput, type ResolvedEndpointPolicy } from './policy-catalog.ts';
import type { PolicyDirection } from './policy-id.ts';
import { resolvedPolicyStage, tierInfos } from './policy-stage.ts';
import { gnp, indexFor, knp, namespaces, np, pod, type TestPod, tier } from './policy-test-model.ts';
import { policyChains, policyIpsetName, profileChains } from './rule-render.ts';
import type { SelectorIndex } from './selector-index.ts';

const marks = allocateMarkBits(0xffff0000);
const PROTO_NAMES: Record<string, number> = { tcp: 6, udp: 17, sctp: 132, icmp: 1, icmpv6: 58, udplite: 136 };

interface SimPacket extends FlowPacket {
  mark: number;
}

type SetLookup = (name: string, dir: string, p: SimPacket) => boolean;

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

/**
 * Host endpoints: the static raw, mangle and filter chains, the host endpoint chains and
 * dispatch, and the policy chains, run as the kernel runs a connection's first packet through
 * PREROUTING/INPUT, OUTPUT or PREROUTING/FORWARD, against evaluateHostFlow.
 */
describe('rendered host endpoint chains agree with evaluateHostFlow', () => {
  const config = defaultFelixConfig();
  const PATHS = ['input', 'output', 'forward'] as const;
  type Path = (typeof PATHS)[number];

  interface HostPacket extends SimPacket {
    inIface?: string;
    outIface?: string;
  }

  function hostMatches(match: string | undefined, pkt: HostPacket, sets: SetLookup): boolean {
    if (!match) return true;
    // Split off the tokens this part of the interpreter knows; hand the rest to `matches`.
    const t = match.split(' ');
    const rest: string[] = [];
    for (let i = 0; i < t.length; i++) {
      const tok = t[i]!;
      const neg = tok === '!' && ['-i', '-o', '-s', '-d'].includes(t[i + 1] ?? '');
      const flag = neg ? t[++i]! : tok;
      if (flag === '-i' || flag === '-o') {
        const want = t[++i]!;
        const iface = flag === '-i' ? pkt.inIface : pkt.outIface;
        const ok =
          iface !== undefined && (want.endsWith('+') ? iface.startsWith(want.slice(0, -1)) : iface === want);
        if (ok === neg) return false;
      } else if (flag === '-s' || flag === '-d') {
        const ok = inCidr(flag === '-s' ? pkt.srcIp : pkt.dstIp, t[++i]!);
        if (ok === neg) return false;
      } else if (tok === '-m' && ['tcp', 'udp', 'sctp'].includes(t[i + 1]!)) {
        i++;
        const opt = t[++i]!;
        const port = opt === '--sport' ? pkt.srcPort : pkt.dstPort;
        if (port !== Number(t[++i])) return false;
      } else if (tok === '-m' && t[i + 1] === 'conntrack') {
        i++;
        const neg2 = t[i + 1] === '!';
        if (neg2) i++;
        i++; // --ctstate
        // The first packet of a connection: NEW, not RELATED/ESTABLISHED/INVALID/DNAT.
        const states = t[++i]!.split(',');
        const ok = states.includes('NEW');
        if (ok === neg2) return false;
      } else if (tok === '-m' && (t[i + 1] === 'addrtype' || t[i + 1] === 'rpfilter')) {
        return false;
      } else {
        rest.push(tok);
      }
    }
    return matches(rest.join(' ') || undefined, pkt, sets);
  }

  type TableVerdict = 'ACCEPT' | 'DROP' | 'RETURN';

  function run(
    chains: Map<string, Rule[]>,
    rules: readonly Rule[],
    pkt: HostPacket,
    sets: SetLookup,
  ): TableVerdict {
    for (const rule of rules) {
      if (!hostMatches(rule.match, pkt, sets)) continue;
      const a = rule.action.split(' ');
      const target = a[1]!;
      if (target === 'RETURN' || target === 'DROP' || target === 'ACCEPT') return target;
      if (target === 'LOG' || target === 'NOTRACK') continue;
      if (target === 'MARK') {
        const [v, m] = a[3]!.split('/').map(Number);
        pkt.mark = ((pkt.mark & ~m!) ^ v!) >>> 0;
        continue;
      }
      const sub = chains.get(target);
      if (!sub) throw new Error(`jump to unknown chain ${target}`);
      const r = run(chains, sub, pkt, sets);
      if (a[0] === '-g' || r !== 'RETURN') return r;
    }
    return 'RETURN';
  }

  const HEPS = {
    eth0: { labels: { role: 'uplink' } },
    eth1: { labels: { role: 'lan' } },
  } as const;

  function agreeHost(input: PolicyCatalogInput) {
    const catalog = PolicyCatalog.from(input);
    const index = indexFor(catalog, []);
    const resolved = Object.fromEntries(
      Object.entries(HEPS).map(([iface, h]) => [
        iface,
        catalog.resolveHostEndpoint({ namespace: undefined, labels: h.labels, profiles: [] }),
      ]),
    );
    const dp = new HostEndpointManager(() => marks);
    for (const p of catalog.policies())
      dp.onUpdate({
        type: 'activePolicyUpdate',
        policy: {
          id: p.id,
          key: p.key,
          calicoName: p.calicoName,
          rules: { ingress: [...p.rules.ingress], egress: [...p.rules.egress] },
        },
      });
    for (const [iface, r] of Object.entries(resolved)) {
      dp.onUpdate({
        type: 'hostEndpointUpdate',
        id: `hep-${iface}`,
        endpoint: {
          name: `hep-${iface}`,
          interfaceName: iface,
          expectedIpv4Addrs: [],
          expectedIpv6Addrs: [],
          profileIds: r.profiles.map((p) => p.name),
          tiers: tierInfos(r),
          untrackedTiers: tierInfos(r.untracked),
          preDnatTiers: tierInfos(r.preDNAT),
          forwardTiers: tierInfos(r.forward),
        },
      });
    }
    const hepChains = dp.chains(config);
    const policy: Chain[] = [
      ...catalog.policies().flatMap((p) => policyChains(p, { marks, family: 4 })),
      ...catalog.profiles().flatMap((p) => profileChains(p, { marks, family: 4 })),
    ];
    const tables = {
      raw: staticRaw(config, marks),
      mangle: staticMangle(config, marks),
      filter: staticFilter(config, marks),
    };
    const chainMap = (t: keyof typeof tables) =>
      new Map<string, Rule[]>(
        [...tables[t].chains, ...(hepChains[t]?.chains ?? []), ...(t === 'filter' ? policy : [])].map((c) => [
          c.name,
          c.rules,
        ]),
      );
    const maps = { raw: chainMap('raw'), mangle: chainMap('mangle'), filter: chainMap('filter') };
    const hook = (t: keyof typeof tables, chain: string) =>
      tables[t].hooks.filter((h) => h.chain === chain).flatMap((h) => h.rules);
    const byName = new Map(index.ipsetIds().map((id) => [policyIpsetName(id, 4), id]));
    const sets: SetLookup = (name, dir, p) => {
      const id = byName.get(name);
      if (!id) throw new Error(`unknown ipset ${name}`);
      return index.containsAddress(id, dir.startsWith('src') ? p.srcIp : p.dstIp);
    };
    /** Tables in the order the kernel runs them for the path; DROP anywhere ends it. */
    const simulate = (path: Path, pkt: HostPacket): boolean => {
      const steps: [keyof typeof tables, string][] =
        path === 'input'
          ? [
              ['raw', 'PREROUTING'],
              ['mangle', 'PREROUTING'],
              ['filter', 'INPUT'],
            ]
          : path === 'output'
            ? [
                ['raw', 'OUTPUT'],
                ['filter', 'OUTPUT'],
              ]
            : [
                ['raw', 'PREROUTING'],
                ['mangle', 'PREROUTING'],
                ['filter', 'FORWARD'],
              ];
      for (const [t, chain] of steps) {
        if (run(maps[t], hook(t, chain), pkt, sets) === 'DROP') return false;
      }
      return true;
    };
    const peer = (iface: string | undefined): HostEndpointPeer | undefined =>
      iface && resolved[iface] ? { name: `hep-${iface}`, resolved: resolved[iface]! } : undefined;
    const failsafe = { inbound: config.failsafeInboundHostPorts, outbound: config.failsafeOutboundHostPorts };
    const HOST = '198.51.100.11';
    const REMOTES = ['198.51.100.1', '192.0.2.7', '10.0.9.9'];
    const ifaces = ['eth0', 'eth1', 'eth2'];
    let compared = 0;
    let denied = 0;
    for (const path of PATHS) {
      for (const inIface of path === 'output' ? [undefined] : ifaces) {
        for (const outIface of path === 'input' ? [undefined] : ifaces) {
          if (inIface !== undefined && inIface === outIface) continue;
          for (const remote of REMOTES) {
            for (const [protocol, srcPort, dstPort] of [
              ['TCP', 40000, 80],
              ['TCP', 40000, 443],
              ['TCP', 40000, 22],
              ['TCP', 40000, 2379],
              ['TCP', 179, 40000],
              ['UDP', 40000, 53],
              ['UDP', 40000, 9000],
              ['TCP', 40000, 9000],
              ['TCP', 40000, 8080],
            ] as const) {
              const packet: FlowPacket =
                path === 'output'
                  ? { protocol, srcIp: HOST, dstIp: remote, srcPort, dstPort }
                  : path === 'input'
                    ? { protocol, srcIp: remote, dstIp: HOST, srcPort, dstPort }
                    : { protocol, srcIp: remote, dstIp: '203.0.113.5', srcPort, dstPort };
              const evaluated = evaluateHostFlow({
                path,
                in: peer(inIface),
                out: peer(outIface),
                packet,
                ipsets: index,
                failsafe,
              });
              const simulated = simulate(path, { ...packet, mark: 0, inIface, outIface });
              if (evaluated.allowed !== simulated) {
                throw new Error(
                  `${path} ${inIface ?? '-'}>${outIface ?? '-'} ${JSON.stringify(packet)}: evaluator ${evaluated.allowed} (${JSON.stringify(evaluated.stages.map((s) => [s.stage, s.result, s.decision]))}), iptables ${simulated}`,
                );
              }
              compared++;
              if (!simulated) denied++;
            }
          }
        }
      }
    }
    return { compared, denied };
  }

  it('normal host policy with failsafe ports, preDNAT, doNotTrack and applyOnForward', () => {
    const r = agreeHost({
      globalNetworkPolicies: [
        gnp('uplink', {
          selector: "role == 'uplink'",
          ingress: [
            {
              action: 'Allow',
              protocol: 'TCP',
              source: { nets: ['192.0.2.0/24'] },
              destination: { ports: [80] },
            },
            { action: 'Deny', protocol: 'TCP', destination: { ports: [443] } },
          ],
          egress: [{ action: 'Allow', protocol: 'UDP' }],
        }),
        gnp('uplink-prednat', {
          selector: "role == 'uplink'",
          preDNAT: true,
          applyOnForward: true,
          types: ['Ingress'],
          ingress: [
            {
              action: 'Deny',
              protocol: 'TCP',
              source: { nets: ['198.51.100.0/24'] },
              destination: { ports: [8080] },
            },
            {
              action: 'Allow',
              protocol: 'TCP',
              destination: { ports: [443] },
              source: { nets: ['10.0.0.0/8'] },
            },
          ],
        }),
        gnp('uplink-untracked', {
          selector: "role == 'uplink'",
          doNotTrack: true,
          applyOnForward: true,
          ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [9000] } }],
          egress: [
            { action: 'Deny', protocol: 'UDP', destination: { ports: [53, 9000] } },
            { action: 'Allow', protocol: 'TCP', destination: { ports: [9000] } },
          ],
        }),
        gnp('lan-forward', {
          selector: "role == 'lan'",
          applyOnForward: true,
          ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [80, 22] } }],
          egress: [{ action: 'Deny', source: { nets: ['192.0.2.0/24'] } }, { action: 'Allow' }],
        }),
      ],
    });
    expect(r.compared).toBe(3 * 9 * (3 + 3 + 6));
    expect(r.denied).toBeGreaterThan(40);
  });

  it('a deny-all host policy leaves the failsafe ports open', () => {
    const r = agreeHost({
      globalNetworkPolicies: [gnp('deny-all', { selector: 'has(role)', ingress: [], egress: [] })],
    });
    expect(r.denied).toBeGreaterThan(50);
  });
});
