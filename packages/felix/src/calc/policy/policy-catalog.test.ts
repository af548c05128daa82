import { describe, expect, it } from 'vitest';
import { activePolicySet, PolicyCatalog } from './policy-catalog.ts';
import { gnp, knp, namespaces, np, pod, profile, tier } from './policy-test-model.ts';

const allow = [{ action: 'Allow' as const }];
const names = (tiers: readonly { name: string; policies: readonly { key: string }[] }[]) =>
  tiers.map((t) => [t.name, t.policies.map((p) => p.key)]);

describe('PolicyCatalog.resolve: ordering', () => {
  it('orders tiers by order (unset last, then name), tiers without an object after all others', () => {
    const catalog = PolicyCatalog.from({
      tiers: [tier('security', { order: 100 }), tier('platform', { order: 200 }), tier('zz'), tier('aa')],
      globalNetworkPolicies: [
        gnp('default.d', { ingress: allow }),
        gnp('platform.p', { tier: 'platform', ingress: allow }),
        gnp('security.s', { tier: 'security', ingress: allow }),
        gnp('zz.z', { tier: 'zz', ingress: allow }),
        gnp('aa.a', { tier: 'aa', ingress: allow }),
        gnp('ghost.g', { tier: 'ghost', ingress: allow }),
      ],
    });
    const r = catalog.resolve(pod('x', 'a', '10.0.0.1'));
    expect(r.tiers.ingress.map((t) => t.name)).toEqual([
      'security',
      'platform',
      'default',
      'aa',
      'zz',
      'ghost',
    ]);
    expect(r.tierOrder).toEqual(['security', 'platform', 'default', 'aa', 'zz', 'ghost']);
  });

  it('orders policies by order (unset = last), ties by name; Kubernetes policies sit at 1000 in default (pitfall 7)', () => {
    const catalog = PolicyCatalog.from({
      networkPolicies: [
        np('x', 'no-order', { ingress: allow }),
        np('x', 'late', { order: 2000, ingress: allow }),
        np('x', 'early', { order: 10, ingress: allow }),
        np('x', 'b-tie', { order: 10, ingress: allow }),
      ],
      globalNetworkPolicies: [gnp('a-tie', { order: 10, ingress: allow })],
      kubernetesNetworkPolicies: [knp('x', 'k8s', { podSelector: {} })],
    });
    const r = catalog.resolve(pod('x', 'a', '10.0.0.1'));
    expect(names(r.tiers.ingress)).toEqual([
      ['default', ['gnp/a-tie', 'np/x/b-tie', 'np/x/early', 'knp/x/k8s', 'np/x/late', 'np/x/no-order']],
    ]);
    expect(r.tiers.ingress[0]!.defaultAction).toBe('Deny');
    expect(catalog.policy('knp/x/k8s')?.calicoName).toBe('knp.default.k8s');
    expect(catalog.policy('knp/x/k8s')?.order).toBe(1000);
  });

  it('gives the fixed tiers their order and default action without a Tier object', () => {
    const catalog = PolicyCatalog.from({});
    expect(catalog.tier('kube-admin')).toMatchObject({ order: 1000, defaultAction: 'Pass', exists: true });
    expect(catalog.tier('default')).toMatchObject({ order: 1_000_000, defaultAction: 'Deny', exists: true });
    expect(catalog.tier('kube-baseline')).toMatchObject({ order: 10_000_000, defaultAction: 'Pass' });
    expect(catalog.tier('other')).toMatchObject({ order: undefined, defaultAction: 'Deny', exists: false });
  });
});

describe('PolicyCatalog.resolve: which policies apply', () => {
  it('applies a policy only in the directions of its types; Calico defaults types from the rules present', () => {
    const egressOnly = np('x', 'egress-only', { egress: allow });
    const noRules = np('x', 'no-rules', {});
    const both = np('x', 'both', { ingress: allow, egress: allow });
    const explicit = np('x', 'explicit', { types: ['Egress'], ingress: allow });
    expect(egressOnly.spec.types).toEqual(['Egress']);
    expect(noRules.spec.types).toEqual(['Ingress']);
    expect(both.spec.types).toEqual(['Ingress', 'Egress']);
    const r = PolicyCatalog.from({ networkPolicies: [egressOnly, noRules, both, explicit] }).resolve(
      pod('x', 'a', '10.0.0.1'),
    );
    expect(names(r.tiers.ingress)).toEqual([['default', ['np/x/both', 'np/x/no-rules']]]);
    expect(names(r.tiers.egress)).toEqual([['default', ['np/x/both', 'np/x/egress-only', 'np/x/explicit']]]);
  });

  it('pitfall 3: an egress-only Kubernetes policy isolates ingress too, an egress-only Calico policy does not', () => {
    const catalog = PolicyCatalog.from({
      kubernetesNetworkPolicies: [knp('x', 'k', { podSelector: {}, egress: [{}] })],
      networkPolicies: [np('y', 'c', { egress: allow })],
    });
    expect(catalog.resolve(pod('x', 'a', '10.0.0.1')).tiers.ingress).toHaveLength(1);
    expect(catalog.resolve(pod('y', 'a', '10.0.1.1')).tiers.ingress).toHaveLength(0);
  });

  it('scopes NetworkPolicies to their namespace; a GNP namespaceSelector reads namespace labels (pcns.)', () => {
    const catalog = PolicyCatalog.from({
      profiles: namespaces({ x: { team: 'a' }, y: { team: 'b' } }),
      networkPolicies: [np('x', 'in-x', { ingress: allow })],
      globalNetworkPolicies: [gnp('team-b', { namespaceSelector: "team == 'b'", ingress: allow })],
    });
    expect(names(catalog.resolve(pod('x', 'a', '10.0.0.1')).tiers.ingress)).toEqual([
      ['default', ['np/x/in-x']],
    ]);
    expect(names(catalog.resolve(pod('y', 'a', '10.0.1.1')).tiers.ingress)).toEqual([
      ['default', ['gnp/team-b']],
    ]);
    // A host endpoint (no namespace) is not in any namespace.
    const hep = { namespace: undefined, labels: {}, profiles: [] };
    expect(catalog.resolve(hep).tiers.ingress).toEqual([]);
  });

  it('selects by service account: serviceAccountSelector over the ksa profile labels', () => {
    const catalog = PolicyCatalog.from({
      profiles: [
        ...namespaces({ x: {} }),
        profile('ksa.x.builder', {
          labelsToApply: { 'pcsa.role': 'ci', 'pcsa.projectcalico.org/name': 'builder' },
        }),
      ],
      networkPolicies: [np('x', 'ci-only', { serviceAccountSelector: "role == 'ci'", ingress: allow })],
    });
    const builder = pod('x', 'b', '10.0.0.2', {}, { serviceAccount: 'builder' });
    const other = pod('x', 'o', '10.0.0.3', {}, { serviceAccount: 'default' });
    const r = catalog.resolve(builder);
    expect(r.labels['projectcalico.org/serviceaccount']).toBe('builder');
    expect(r.profiles.map((p) => p.name)).toEqual(['kns.x', 'ksa.x.builder']);
    expect(names(r.tiers.ingress)).toEqual([['default', ['np/x/ci-only']]]);
    expect(catalog.resolve(other).tiers.ingress).toEqual([]);
    expect(catalog.resolve(other).missingProfiles).toEqual(['ksa.x.default']);
  });

  it("lets the endpoint's own labels win over inherited ones", () => {
    const catalog = PolicyCatalog.from({
      profiles: [
        profile('p1', { labelsToApply: { tier: 'one', a: '1' } }),
        profile('p2', { labelsToApply: { tier: 'two', b: '2' } }),
      ],
    });
    const r = catalog.resolve({ namespace: undefined, labels: { a: 'own' }, profiles: ['p1', 'p2'] });
    expect(r.labels).toEqual({ tier: 'one', a: 'own', b: '2' });
  });

  it('pitfall 8: preDNAT and doNotTrack policies never join the tiers of an endpoint', () => {
    const catalog = PolicyCatalog.from({
      globalNetworkPolicies: [
        gnp('pre', { preDNAT: true, applyOnForward: true, ingress: [{ action: 'Deny' }] }),
        gnp('untracked', { doNotTrack: true, applyOnForward: true, ingress: [{ action: 'Deny' }] }),
        gnp('forward', { applyOnForward: true, ingress: allow }),
      ],
    });
    expect(names(catalog.resolve(pod('x', 'a', '10.0.0.1')).tiers.ingress)).toEqual([
      ['default', ['gnp/forward']],
    ]);
  });

  it('updates incrementally: replacing and removing policies', () => {
    const catalog = new PolicyCatalog();
    catalog.setNetworkPolicy(np('x', 'p', { ingress: allow }));
    expect(catalog.resolve(pod('x', 'a', '10.0.0.1')).tiers.ingress).toHaveLength(1);
    catalog.setNetworkPolicy(np('x', 'p', { selector: "app == 'none'", ingress: allow }));
    expect(catalog.resolve(pod('x', 'a', '10.0.0.1')).tiers.ingress).toHaveLength(0);
    expect(catalog.removePolicy('np/x/p')).toBe(true);
    expect(catalog.policies()).toEqual([]);
  });

  it('treats a policy whose selector does not parse as deleted', () => {
    const catalog = new PolicyCatalog();
    const good = np('x', 'p', { ingress: allow });
    expect(catalog.setNetworkPolicy(good)?.key).toBe('np/x/p');
    // Only a stored object that skipped validation can carry this; Felix drops it like a deletion.
    const bad = { ...good, spec: { ...good.spec, selector: 'app ==' } };
    expect(catalog.setNetworkPolicy(bad)).toBeUndefined();
    expect(catalog.policy('np/x/p')).toBeUndefined();
  });

  it('collects the IP sets every policy and profile needs', () => {
    const catalog = PolicyCatalog.from({
      networkPolicies: [
        np('x', 'p', { ingress: [{ action: 'Allow', source: { selector: "pod == 'b'" } }] }),
        np('x', 'q', { ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: ['http'] } }] }),
      ],
    });
    const sets = [...catalog.ipsets().values()];
    expect(sets.map((s) => s.selector.toString()).sort()).toEqual([
      '(projectcalico.org/namespace == "x" && pod == "b")',
      'all()',
    ]);
    expect(sets.find((s) => s.namedPort)?.namedPort).toEqual({ name: 'http', protocol: 'tcp' });
  });
});

describe('activePolicySet', () => {
  it('keeps only policies that select some endpoint, the profiles in use, and their IP sets', () => {
    const catalog = PolicyCatalog.from({
      profiles: namespaces({ x: {}, y: {} }),
      networkPolicies: [
        np('x', 'used', { ingress: [{ action: 'Allow', source: { selector: "pod == 'b'" } }] }),
        np('y', 'unused', { ingress: [{ action: 'Allow', source: { selector: "pod == 'c'" } }] }),
      ],
    });
    const active = activePolicySet([catalog.resolve(pod('x', 'a', '10.0.0.1'))]);
    expect(active.policies.map((p) => p.key)).toEqual(['np/x/used']);
    expect(active.profiles.map((p) => p.name)).toEqual(['kns.x']);
    expect([...active.ipsets.values()].map((s) => s.selector.toString())).toEqual([
      '(projectcalico.org/namespace == "x" && pod == "b")',
    ]);
  });
});

describe('PolicyCatalog.resolveHostEndpoint', () => {
  it('keeps doNotTrack and preDNAT policies in their own Pass-ending tier lists, applyOnForward in forward', () => {
    const catalog = PolicyCatalog.from({
      globalNetworkPolicies: [
        gnp('untracked', {
          selector: "role == 'edge'",
          doNotTrack: true,
          applyOnForward: true,
          ingress: allow,
          egress: allow,
        }),
        gnp('pre', {
          selector: "role == 'edge'",
          preDNAT: true,
          applyOnForward: true,
          ingress: [{ action: 'Deny' }],
        }),
        gnp('fwd', { selector: "role == 'edge'", applyOnForward: true, ingress: allow }),
        gnp('host', { selector: "role == 'edge'", ingress: allow }),
      ],
    });
    const r = catalog.resolveHostEndpoint({ namespace: undefined, labels: { role: 'edge' }, profiles: [] });
    expect(names(r.tiers.ingress)).toEqual([['default', ['gnp/fwd', 'gnp/host']]]);
    expect(names(r.untracked.tiers.ingress)).toEqual([['default', ['gnp/untracked']]]);
    expect(r.untracked.tiers.ingress[0]!.defaultAction).toBe('Pass');
    expect(names(r.untracked.tiers.egress)).toEqual([['default', ['gnp/untracked']]]);
    expect(names(r.preDNAT.tiers.ingress)).toEqual([['default', ['gnp/pre']]]);
    expect(r.preDNAT.tiers.egress).toEqual([]);
    expect(names(r.forward.tiers.ingress)).toEqual([['default', ['gnp/fwd']]]);
  });
});

describe('PolicyCatalog: the label index behind policiesSelecting', () => {
  it('finds exactly the policies a linear scan of every selector finds, in the order they were added', () => {
    const selectors = [
      "app == 'web'",
      "app in {'web', 'db'}",
      "app == 'web' && tier == 'front'",
      "tier == 'front' || tier == 'back'",
      "app == 'web' || tier == 'back'",
      'has(app)',
      "app != 'web'",
      "!(app == 'db')",
      'all()',
      "app starts with 'w'",
      'app in {}',
      "role == 'r-1' && has(app)",
    ];
    const catalog = PolicyCatalog.from({
      profiles: namespaces({ x: { team: 'blue' }, y: {} }),
      networkPolicies: selectors.flatMap((selector, i) => [
        np('x', `p${i}`, { selector, ingress: allow }),
        np('y', `q${i}`, { selector, ingress: allow }),
      ]),
      globalNetworkPolicies: [
        ...selectors.map((selector, i) => gnp(`g${i}`, { selector, ingress: allow })),
        gnp('ns', { selector: 'all()', namespaceSelector: "team == 'blue'", ingress: allow }),
      ],
    });
    // Replacing a policy keeps its place; removing and adding one again puts it last.
    catalog.setNetworkPolicy(np('x', 'p0', { selector: "app == 'db'", ingress: allow }));
    catalog.removePolicy('gnp/g3');
    catalog.setGlobalNetworkPolicy(gnp('g3', { selector: selectors[3], ingress: allow }));
    const labelSets: Record<string, string>[] = [
      {},
      { app: 'web' },
      { app: 'db' },
      { app: 'web', tier: 'front' },
      { tier: 'back' },
      { app: 'other', role: 'r-1' },
      { role: 'r-1' },
    ];
    for (const ns of ['x', 'y']) {
      for (const labels of labelSets) {
        const r = catalog.resolve({ namespace: ns, labels, profiles: [`kns.${ns}`] });
        const linear = catalog.policies().filter((p) => p.selector.evaluate(r.labels));
        expect(catalog.policiesSelecting(r.labels).map((p) => p.key)).toEqual(linear.map((p) => p.key));
        expect(linear.length).toBeGreaterThan(0);
      }
    }
  });
});
