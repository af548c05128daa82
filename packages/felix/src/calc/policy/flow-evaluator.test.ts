import { defaultResource } from '@calico-ts/datastore';
import { describe, expect, it } from 'vitest';
import { evaluateFlow, type FlowPacket, type FlowPeer } from './flow-evaluator.ts';
import { PolicyCatalog, type PolicyCatalogInput } from './policy-catalog.ts';
import { gnp, indexFor, knp, namespaces, np, pod, profile, type TestPod, tier } from './policy-test-model.ts';
import { endpointIndexItem, type IndexedItem, networkSetIndexItem } from './selector-index.ts';

// The upstream Kubernetes e2e model (policy-semantics §4): namespaces x, y, z labelled ns=<name>,
// pods a, b, c labelled pod=<name>, each serving 80 and 81 over TCP and UDP under named ports.
const NS = ['x', 'y', 'z'] as const;
const PODS = ['a', 'b', 'c'] as const;
const servePorts = (['tcp', 'udp'] as const).flatMap((proto) =>
  [80, 81].map((port) => ({ name: `serve-${port}-${proto}`, protocol: proto.toUpperCase(), port })),
);
const MODEL_PODS: TestPod[] = NS.flatMap((ns, i) =>
  PODS.map((p, j) => pod(ns, p, `10.0.${i + 1}.${j + 1}`, { pod: p }, { ports: servePorts })),
);

function cluster(
  input: PolicyCatalogInput,
  extra: {
    pods?: TestPod[];
    items?: Record<string, IndexedItem>;
  } = {},
) {
  const catalog = PolicyCatalog.from({
    ...input,
    profiles: [...namespaces({ x: { ns: 'x' }, y: { ns: 'y' }, z: { ns: 'z' } }), ...(input.profiles ?? [])],
  });
  const pods = [...MODEL_PODS, ...(extra.pods ?? [])];
  const index = indexFor(catalog, pods, extra.items);
  const peer = (name: string): { peer: FlowPeer; ip: string } => {
    const p = pods.find((q) => q.name === name);
    if (!p) return { peer: { kind: 'address' }, ip: name };
    return { peer: { kind: 'endpoint', name, resolved: catalog.resolve(p) }, ip: p.ip };
  };
  const flow = (from: string, to: string, dstPort = 80, protocol = 'TCP', more: Partial<FlowPacket> = {}) => {
    const src = peer(from);
    const dst = peer(to);
    const packet: FlowPacket = { protocol, srcIp: src.ip, dstIp: dst.ip, srcPort: 40000, dstPort, ...more };
    return evaluateFlow({ source: src.peer, destination: dst.peer, packet, ipsets: index });
  };
  const allowed = (from: string, to: string, dstPort = 80, protocol = 'TCP') =>
    flow(from, to, dstPort, protocol).allowed;
  return { catalog, index, flow, allowed };
}

const allPods = NS.flatMap((ns) => PODS.map((p) => `${ns}/${p}`));

describe('evaluateFlow on the Kubernetes e2e model', () => {
  it('allows everything without policy: the kns.<ns> profile accepts', () => {
    const c = cluster({});
    const v = c.flow('y/a', 'x/a');
    expect(v.allowed).toBe(true);
    expect(v.ingress.decision).toEqual({ by: 'profile', profile: 'kns.x', ruleIndex: 0, action: 'allow' });
    expect(v.egress.decision).toEqual({ by: 'profile', profile: 'kns.y', ruleIndex: 0, action: 'allow' });
  });

  it('default-deny-ingress in x: every pod of x denies ingress at the end of tier default', () => {
    const c = cluster({
      kubernetesNetworkPolicies: [knp('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] })],
    });
    for (const from of allPods) {
      expect(c.allowed(from, 'x/a')).toBe(false);
      expect(c.allowed(from, 'y/a')).toBe(true);
    }
    expect(c.flow('y/a', 'x/b').ingress.decision).toEqual({ by: 'endOfTier', tier: 'default' });
  });

  it('allows from a namespace by namespaceSelector (pcns. labels); names the deciding rule', () => {
    const c = cluster({
      kubernetesNetworkPolicies: [
        knp('x', 'from-y', {
          podSelector: { matchLabels: { pod: 'a' } },
          ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
        }),
      ],
    });
    expect(PODS.map((p) => c.allowed(`y/${p}`, 'x/a'))).toEqual([true, true, true]);
    expect(c.allowed('z/a', 'x/a')).toBe(false);
    expect(c.allowed('x/b', 'x/a')).toBe(false);
    expect(c.allowed('z/a', 'x/b')).toBe(true);
    expect(c.flow('y/b', 'x/a').ingress.decision).toEqual({
      by: 'rule',
      tier: 'default',
      policy: 'knp/x/from-y',
      ruleIndex: 0,
      action: 'allow',
    });
  });

  it('ANDs podSelector and namespaceSelector in one peer, ORs two peers', () => {
    const and = cluster({
      kubernetesNetworkPolicies: [
        knp('x', 'and', {
          podSelector: { matchLabels: { pod: 'a' } },
          ingress: [
            {
              from: [
                {
                  namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['x'] }] },
                  podSelector: { matchLabels: { pod: 'b' } },
                },
              ],
            },
          ],
        }),
      ],
    });
    expect(allPods.filter((p) => and.allowed(p, 'x/a'))).toEqual(['y/b', 'z/b']);
    const or = cluster({
      kubernetesNetworkPolicies: [
        knp('x', 'or', {
          podSelector: { matchLabels: { pod: 'a' } },
          ingress: [
            {
              from: [
                {
                  namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['x'] }] },
                },
                { podSelector: { matchLabels: { pod: 'b' } } },
              ],
            },
          ],
        }),
      ],
    });
    expect(allPods.filter((p) => !or.allowed(p, 'x/a'))).toEqual(['x/a', 'x/c']);
  });

  it('enforces ports and protocols: TCP 81 only; SCTP-only and UDP-only policies isolate TCP', () => {
    const c = cluster({
      kubernetesNetworkPolicies: [
        knp('x', 'tcp-81', {
          podSelector: { matchLabels: { pod: 'a' } },
          ingress: [{ ports: [{ port: 81 }] }],
        }),
        knp('x', 'udp-81', {
          podSelector: { matchLabels: { pod: 'b' } },
          ingress: [{ ports: [{ protocol: 'UDP', port: 81 }] }],
        }),
      ],
    });
    expect(c.allowed('y/a', 'x/a', 81)).toBe(true);
    expect(c.allowed('y/a', 'x/a', 80)).toBe(false);
    expect(c.allowed('y/a', 'x/a', 81, 'UDP')).toBe(false);
    expect(c.allowed('y/a', 'x/b', 81, 'UDP')).toBe(true);
    expect(c.allowed('y/a', 'x/b', 81, 'TCP')).toBe(false);
  });

  it('allows a named port only for the protocol it is declared with, on the destination pod', () => {
    const c = cluster({
      kubernetesNetworkPolicies: [
        knp('x', 'named', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-81-tcp' }] }] }),
      ],
    });
    expect(c.allowed('y/a', 'x/a', 81)).toBe(true);
    expect(c.allowed('y/a', 'x/a', 80)).toBe(false);
    expect(c.allowed('y/a', 'x/a', 81, 'UDP')).toBe(false);
  });

  it('pitfall 9: a named port never matches an address outside the cluster', () => {
    const c = cluster({
      kubernetesNetworkPolicies: [
        knp('x', 'egress-named', {
          podSelector: {},
          policyTypes: ['Egress'],
          egress: [{ ports: [{ port: 'serve-80-tcp' }] }],
        }),
      ],
    });
    expect(c.allowed('x/a', 'y/b', 80)).toBe(true);
    expect(c.allowed('x/a', '192.0.2.10', 80)).toBe(false);
    expect(c.flow('x/a', '192.0.2.10', 80).ingress.decision).toEqual({ by: 'notAnEndpoint' });
  });

  it('honours ipBlock except (e2e "except clause while egress access to server in CIDR block")', () => {
    const c = cluster({
      kubernetesNetworkPolicies: [
        knp('x', 'cidr', {
          podSelector: { matchLabels: { pod: 'a' } },
          policyTypes: ['Egress'],
          egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.1.2/32'] } }] }],
        }),
      ],
    });
    expect(c.allowed('x/a', 'x/b')).toBe(false);
    expect(c.allowed('x/a', 'x/c')).toBe(true);
    expect(c.allowed('x/a', 'y/a')).toBe(true);
    expect(c.allowed('x/a', '192.0.2.1')).toBe(false);
  });

  it('denies egress on the client even when the server allows (e2e 28)', () => {
    const c = cluster({
      kubernetesNetworkPolicies: [
        knp('x', 'client', {
          podSelector: { matchLabels: { pod: 'a' } },
          policyTypes: ['Egress'],
          egress: [
            {
              to: [
                {
                  namespaceSelector: { matchLabels: { ns: 'y' } },
                  podSelector: { matchLabels: { pod: 'a' } },
                },
              ],
            },
          ],
        }),
        knp('y', 'server', {
          podSelector: { matchLabels: { pod: 'b' } },
          ingress: [
            {
              from: [
                {
                  namespaceSelector: { matchLabels: { ns: 'x' } },
                  podSelector: { matchLabels: { pod: 'a' } },
                },
              ],
            },
          ],
        }),
      ],
    });
    expect(c.allowed('x/a', 'y/a')).toBe(true);
    const v = c.flow('x/a', 'y/b');
    expect(v.allowed).toBe(false);
    expect(v.egress.decision).toEqual({ by: 'endOfTier', tier: 'default' });
    expect(v.ingress.allowed).toBe(true);
  });

  it('pitfall 3: an egress-only Kubernetes policy also isolates ingress', () => {
    const c = cluster({ kubernetesNetworkPolicies: [knp('x', 'eg', { podSelector: {}, egress: [{}] })] });
    expect(c.allowed('x/a', 'y/a')).toBe(true);
    expect(c.allowed('y/a', 'x/a')).toBe(false);
    const calico = cluster({ networkPolicies: [np('x', 'eg', { egress: [{ action: 'Allow' }] })] });
    expect(calico.allowed('y/a', 'x/a')).toBe(true);
  });
});

describe('evaluateFlow: tiers, Pass and ordering', () => {
  it('a Deny in an earlier tier wins over an Allow in default; Pass hands over to the next tier', () => {
    const c = cluster({
      tiers: [tier('security', { order: 100 })],
      globalNetworkPolicies: [
        gnp('security.rules', {
          tier: 'security',
          ingress: [{ action: 'Deny', source: { namespaceSelector: "ns == 'z'" } }, { action: 'Pass' }],
        }),
      ],
      kubernetesNetworkPolicies: [knp('x', 'allow-all', { podSelector: {}, ingress: [{}] })],
    });
    const denied = c.flow('z/a', 'x/a');
    expect(denied.ingress.decision).toEqual({
      by: 'rule',
      tier: 'security',
      policy: 'gnp/security.rules',
      ruleIndex: 0,
      action: 'deny',
    });
    const passed = c.flow('y/a', 'x/a');
    expect(passed.allowed).toBe(true);
    expect(passed.ingress.trace).toEqual([
      { event: 'pass', tier: 'security', policy: 'gnp/security.rules', ruleIndex: 1 },
    ]);
    expect(passed.ingress.decision).toMatchObject({ by: 'rule', tier: 'default', policy: 'knp/x/allow-all' });
  });

  it('pitfall 4: a GNP selecting all() that only Passes some traffic isolates every endpoint for the rest', () => {
    const c = cluster({
      tiers: [tier('platform', { order: 100 })],
      globalNetworkPolicies: [
        gnp('platform.from-y', {
          tier: 'platform',
          selector: 'all()',
          ingress: [{ action: 'Pass', source: { namespaceSelector: "ns == 'y'" } }],
        }),
      ],
    });
    expect(c.flow('z/a', 'x/a').ingress.decision).toEqual({ by: 'endOfTier', tier: 'platform' });
    expect(c.allowed('z/a', 'z/b')).toBe(false);
    // pitfall 5: Pass at the last tier lands in the profiles, which allow pods.
    expect(c.flow('y/a', 'x/a').ingress.decision).toEqual({
      by: 'profile',
      profile: 'kns.x',
      ruleIndex: 0,
      action: 'allow',
    });
  });

  it('pitfall 5: a tier with defaultAction Pass sends unmatched traffic on (here to the profiles)', () => {
    const c = cluster({
      tiers: [tier('observe', { order: 100, defaultAction: 'Pass' })],
      globalNetworkPolicies: [
        gnp('observe.deny-z', {
          tier: 'observe',
          ingress: [{ action: 'Deny', source: { namespaceSelector: "ns == 'z'" } }],
        }),
      ],
    });
    expect(c.allowed('z/a', 'x/a')).toBe(false);
    const v = c.flow('y/a', 'x/a');
    expect(v.allowed).toBe(true);
    expect(v.ingress.trace).toEqual([{ event: 'tierDefaultPass', tier: 'observe' }]);
  });

  it('pitfall 6: a tier whose policies do not select the endpoint is skipped (no end-of-tier deny)', () => {
    const c = cluster({
      tiers: [tier('strict', { order: 100 })],
      globalNetworkPolicies: [gnp('strict.c-only', { tier: 'strict', selector: "pod == 'c'", ingress: [] })],
    });
    expect(c.allowed('y/a', 'x/a')).toBe(true);
    expect(c.flow('y/a', 'x/c').ingress.decision).toEqual({ by: 'endOfTier', tier: 'strict' });
  });

  it('pitfall 7: Calico policies with a lower order run before Kubernetes ones (order 1000), higher after', () => {
    const allowY = knp('x', 'allow-y', {
      podSelector: {},
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
    });
    const before = cluster({
      kubernetesNetworkPolicies: [allowY],
      networkPolicies: [
        np('x', 'deny-y', {
          order: 100,
          ingress: [{ action: 'Deny', source: { namespaceSelector: "ns == 'y'" } }],
        }),
      ],
    });
    expect(before.flow('y/a', 'x/a').ingress.decision).toMatchObject({
      policy: 'np/x/deny-y',
      action: 'deny',
    });
    const after = cluster({
      kubernetesNetworkPolicies: [allowY],
      networkPolicies: [
        np('x', 'deny-y', {
          order: 2000,
          ingress: [{ action: 'Deny', source: { namespaceSelector: "ns == 'y'" } }],
        }),
      ],
    });
    expect(after.flow('y/a', 'x/a').ingress.decision).toMatchObject({
      policy: 'knp/x/allow-y',
      action: 'allow',
    });
  });

  it('logs and goes on', () => {
    const c = cluster({
      networkPolicies: [
        np('x', 'log', { ingress: [{ action: 'Log' }, { action: 'Allow', protocol: 'UDP' }] }),
      ],
    });
    const v = c.flow('y/a', 'x/a', 53, 'UDP');
    expect(v.ingress.trace).toEqual([{ event: 'log', tier: 'default', policy: 'np/x/log', ruleIndex: 0 }]);
    expect(v.ingress.decision).toMatchObject({ ruleIndex: 1, action: 'allow' });
    expect(c.allowed('y/a', 'x/a', 53, 'TCP')).toBe(false);
  });
});

describe('evaluateFlow: selectors', () => {
  it('pitfall 2: notSelector means "my namespace except" in a NetworkPolicy, "anything except" in a GNP', () => {
    const inNp = cluster({
      networkPolicies: [
        np('x', 'not-c', { ingress: [{ action: 'Allow', source: { notSelector: "pod == 'c'" } }] }),
      ],
    });
    expect(inNp.allowed('x/b', 'x/a')).toBe(true);
    expect(inNp.allowed('x/c', 'x/a')).toBe(false);
    expect(inNp.allowed('y/b', 'x/a')).toBe(false);
    expect(inNp.allowed('192.0.2.1', 'x/a')).toBe(false);
    const inGnp = cluster({
      globalNetworkPolicies: [
        gnp('not-c', {
          selector: "pod == 'a'",
          ingress: [{ action: 'Allow', source: { notSelector: "pod == 'c'" } }],
        }),
      ],
    });
    expect(inGnp.allowed('y/b', 'x/a')).toBe(true);
    expect(inGnp.allowed('y/c', 'x/a')).toBe(false);
    expect(inGnp.allowed('192.0.2.1', 'x/a')).toBe(true);
  });

  it('pitfall 10: a NetworkSet makes addresses match a selector the pod itself does not match', () => {
    const netset = defaultResource('NetworkSet', {
      metadata: { name: 'trusted', namespace: 'x', labels: { role: 'trusted' } },
      spec: { nets: ['10.0.2.0/24', '203.0.113.0/24'] },
    });
    const c = cluster(
      {
        networkPolicies: [
          np('x', 'trusted', { ingress: [{ action: 'Allow', source: { selector: "role == 'trusted'" } }] }),
        ],
      },
      {
        items: { 'netset:x/trusted': networkSetIndexItem(netset) },
      },
    );
    expect(c.allowed('y/a', 'x/a')).toBe(true);
    expect(c.allowed('203.0.113.9', 'x/a')).toBe(true);
    expect(c.allowed('z/a', 'x/a')).toBe(false);
  });

  it('global() in a rule namespaceSelector matches only non-namespaced things (GlobalNetworkSets, host endpoints)', () => {
    const c = cluster(
      {
        networkPolicies: [
          np('x', 'from-lb', {
            ingress: [
              { action: 'Allow', source: { namespaceSelector: 'global()', selector: "role == 'lb'" } },
            ],
          }),
        ],
      },
      {
        pods: [pod('y', 'lb', '10.0.2.99', { role: 'lb' })],
        items: {
          'gns:lbs': networkSetIndexItem(
            defaultResource('GlobalNetworkSet', {
              metadata: { name: 'lbs', labels: { role: 'lb' } },
              spec: { nets: ['198.51.100.0/28'] },
            }),
          ),
        },
      },
    );
    expect(c.allowed('198.51.100.3', 'x/a')).toBe(true);
    expect(c.allowed('y/lb', 'x/a')).toBe(false);
  });

  it('matches rule serviceAccounts by name and by service account labels', () => {
    const c = cluster(
      {
        profiles: [
          profile('ksa.y.builder', {
            labelsToApply: { 'pcsa.team': 'ci', 'pcsa.projectcalico.org/name': 'builder' },
          }),
        ],
        networkPolicies: [
          np('x', 'sa', {
            ingress: [
              {
                action: 'Allow',
                protocol: 'TCP',
                source: { namespaceSelector: 'all()', serviceAccounts: { names: ['builder'] } },
                destination: { ports: [80] },
              },
              {
                action: 'Allow',
                protocol: 'TCP',
                source: { namespaceSelector: 'all()', serviceAccounts: { selector: "team == 'ci'" } },
                destination: { ports: [81] },
              },
            ],
          }),
        ],
      },
      {
        pods: [
          pod('y', 'build', '10.0.2.50', {}, { serviceAccount: 'builder' }),
          pod('y', 'web', '10.0.2.51', {}, { serviceAccount: 'web' }),
        ],
      },
    );
    expect(c.allowed('y/build', 'x/a', 80)).toBe(true);
    expect(c.allowed('y/build', 'x/a', 81)).toBe(true);
    expect(c.allowed('y/web', 'x/a', 80)).toBe(false);
  });

  it('matches ICMP type and code', () => {
    const c = cluster({
      networkPolicies: [
        np('x', 'ping', { ingress: [{ action: 'Allow', protocol: 'ICMP', icmp: { type: 8 } }] }),
      ],
    });
    expect(c.flow('y/a', 'x/a', 0, 'ICMP', { icmpType: 8, icmpCode: 0 }).allowed).toBe(true);
    expect(c.flow('y/a', 'x/a', 0, 'ICMP', { icmpType: 13, icmpCode: 0 }).allowed).toBe(false);
  });

  it('follows selector index updates: relabelling a pod moves it into a rule selector (e2e 22)', () => {
    const c = cluster({
      kubernetesNetworkPolicies: [
        knp('x', 'from-updated', {
          podSelector: { matchLabels: { pod: 'a' } },
          ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b', pod2: 'updated' } } }] }],
        }),
      ],
    });
    expect(c.allowed('x/b', 'x/a')).toBe(false);
    const xb = MODEL_PODS.find((p) => p.name === 'x/b')!;
    c.index.setItem(
      'x/b',
      endpointIndexItem({ ...xb, labels: { ...xb.labels, pod2: 'updated' } }, [`${xb.ip}/32`]),
    );
    const [delta] = c.index.takeDeltas();
    expect(delta?.added).toEqual(['10.0.1.2/32']);
    expect(c.allowed('x/b', 'x/a')).toBe(true);
  });
});
