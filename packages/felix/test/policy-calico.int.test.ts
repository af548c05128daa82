/**
 * Calico's own policy features enforced by Felix on a real kernel, driven only through the
 * datastore, on the e2e model of `policy-harness.ts` (x, y, z × a, b, c; here every pod also runs
 * as service account `sa-<pod>`, whose profile `ksa.<ns>.sa-<pod>` carries `sa=<pod>`). Each case
 * measures its matrix and compares it with `evaluateFlow` (what `calico policy explain` prints)
 * from the same stored objects. Covered here:
 *
 * | feature | case |
 * | --- | --- |
 * | Tier order, `Pass` to the next tier, end-of-tier deny | a tier that passes |
 * | Deny before Allow by `order`, whatever the names | a Deny ordered before an Allow |
 * | GlobalNetworkPolicy with `namespaceSelector` | y only from z |
 * | NetworkSet (namespaced) and GlobalNetworkSet matched by a selector | network sets |
 * | `serviceAccounts` by name (namespaced) and by selector (global) | service accounts |
 * | ICMP `icmp` type/code and `notICMP` | ICMP |
 * | `notPorts`, `notProtocol`, `notNets` | negated matches |
 * | Kubernetes policies with one name in two namespaces; a Calico `knp.default.<name>` beside the Kubernetes `<name>` | knp names |
 * | rules Felix does not own, a restart, a missing namespace profile | dataplane behaviour |
 *
 * HostEndpoint with preDNAT (and normal, applyOnForward, doNotTrack and failsafe) policy is in
 * `host-endpoint.int.test.ts`; IPv6 in `policy-v6.int.test.ts`.
 */
import { execInNamespace } from '@calico-ts/kernel';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { command, describeWith, root } from '../../../test-support/requirements.ts';
import { runPrefix } from '../../../test-support/run-id.ts';
import { type ApplyStats, Felix, policyChainName, profileChainName } from '../src/index.ts';
import { NetpolModel, NODE, type Probe, type Reachability } from './policy-harness.ts';

const pi = (key: string) => policyChainName('ingress', key);

describeWith(
  [root(), command('etcd'), command('iptables'), command('ipset'), command('python3')],
  'Calico policy features, enforced by Felix (x, y, z × a, b, c)',
  () => {
    const m = new NetpolModel({ prefix: runPrefix('pc'), serviceAccounts: true });
    const foreignChain = `${runPrefix('pk')}-KEEP`;
    const check = (expected: Partial<Record<Probe, Reachability>>) => m.assertReachability(expected);
    const r = () => m.reachability();

    beforeAll(() => m.start(), 120_000);
    afterAll(() => m.teardown(), 60_000);
    afterEach(() => m.clearPolicies());

    it('a tier that passes: y may reach x past the security tier, then default-tier policy decides', async () => {
      await m.ds.create('Tier', { metadata: { name: 'security' }, spec: { order: 100 } });
      await m.ds.create('GlobalNetworkPolicy', {
        metadata: { name: 'security.guard-x' },
        spec: {
          tier: 'security',
          order: 10,
          selector: "projectcalico.org/namespace == 'x'",
          types: ['Ingress'],
          ingress: [{ action: 'Pass', source: { namespaceSelector: "ns == 'y'" } }, { action: 'Deny' }],
        },
      });
      // In the default tier only x/a is selected: it accepts pod b from any namespace.
      await m.knp('x', 'a-from-b', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'b' } } }] }],
      });
      await m.waitChains([pi('gnp/security.guard-x'), pi('knp/x/a-from-b')]);
      await check({
        'tcp/80': r()
          .expectPeer({}, { ns: 'x' }, false)
          .expectPeer({ ns: 'y' }, { ns: 'x' }, true)
          .expectPeer({ ns: 'y' }, { ns: 'x', pod: 'a' }, false)
          .expect('y/b', 'x/a', true),
      });
    });

    it('a Deny ordered before an Allow wins, whatever the names', async () => {
      await m.ds.create('NetworkPolicy', {
        metadata: { name: 'z-deny-b', namespace: 'x' },
        spec: {
          order: 10,
          selector: 'all()',
          types: ['Ingress'],
          ingress: [{ action: 'Deny', source: { selector: "pod == 'b'", namespaceSelector: 'all()' } }],
        },
      });
      await m.ds.create('NetworkPolicy', {
        metadata: { name: 'a-allow-all', namespace: 'x' },
        spec: { order: 20, selector: 'all()', types: ['Ingress'], ingress: [{ action: 'Allow' }] },
      });
      await m.waitChains([pi('np/x/z-deny-b'), pi('np/x/a-allow-all')]);
      await check({ 'tcp/80': r().expectPeer({ pod: 'b' }, { ns: 'x' }, false) });
    });

    it('a GlobalNetworkPolicy with namespaceSelector: y only from z', async () => {
      await m.ds.create('GlobalNetworkPolicy', {
        metadata: { name: 'y-from-z' },
        spec: {
          namespaceSelector: "ns == 'y'",
          types: ['Ingress'],
          ingress: [{ action: 'Allow', source: { namespaceSelector: "ns == 'z'" } }],
        },
      });
      await m.waitChains([pi('gnp/y-from-z')]);
      await check({
        'tcp/80': r().expectPeer({}, { ns: 'y' }, false).expectPeer({ ns: 'z' }, { ns: 'y' }, true),
      });
    });

    it('network sets: a NetworkSet admits x/b into y, a GlobalNetworkSet admits y/c into z (matched by address)', async () => {
      await m.ds.create('NetworkSet', {
        metadata: { name: 'trusted', namespace: 'y', labels: { role: 'trusted' } },
        spec: { nets: [`${m.pod('x/b').ip}/32`] },
      });
      await m.ds.create('GlobalNetworkSet', {
        metadata: { name: 'partners', labels: { gset: 'yes' } },
        spec: { nets: [`${m.pod('y/c').ip}/32`] },
      });
      // Namespaced: the source selector sees endpoints and network sets of y only.
      await m.ds.create('NetworkPolicy', {
        metadata: { name: 'from-trusted', namespace: 'y' },
        spec: {
          selector: 'all()',
          types: ['Ingress'],
          ingress: [{ action: 'Allow', source: { selector: "role == 'trusted'" } }],
        },
      });
      await m.ds.create('GlobalNetworkPolicy', {
        metadata: { name: 'z-from-partners' },
        spec: {
          namespaceSelector: "ns == 'z'",
          types: ['Ingress'],
          ingress: [{ action: 'Allow', source: { selector: "gset == 'yes'" } }],
        },
      });
      await m.waitChains([pi('np/y/from-trusted'), pi('gnp/z-from-partners')]);
      await check({
        'tcp/80': r()
          .expectPeer({}, { ns: 'y' }, false)
          .expectPeer({ ns: 'x', pod: 'b' }, { ns: 'y' }, true)
          .expectPeer({}, { ns: 'z' }, false)
          .expectPeer({ ns: 'y', pod: 'c' }, { ns: 'z' }, true),
      });
    });

    it('service accounts: by name in a namespaced policy, by selector in a global one', async () => {
      await m.ds.create('NetworkPolicy', {
        metadata: { name: 'from-sa-b', namespace: 'x' },
        spec: {
          selector: 'all()',
          types: ['Ingress'],
          ingress: [{ action: 'Allow', source: { serviceAccounts: { names: ['sa-b'] } } }],
        },
      });
      await m.ds.create('GlobalNetworkPolicy', {
        metadata: { name: 'z-from-sa-c' },
        spec: {
          namespaceSelector: "ns == 'z'",
          types: ['Ingress'],
          ingress: [{ action: 'Allow', source: { serviceAccounts: { selector: "sa == 'c'" } } }],
        },
      });
      await m.waitChains([pi('np/x/from-sa-b'), pi('gnp/z-from-sa-c')]);
      await check({
        'tcp/80': r()
          // A namespaced policy's service accounts are those of its own namespace.
          .expectPeer({}, { ns: 'x' }, false)
          .expect('x/b', 'x/a', true)
          .expect('x/b', 'x/c', true)
          .expectPeer({}, { ns: 'z' }, false)
          .expectPeer({ pod: 'c' }, { ns: 'z' }, true),
      });
    });

    it('ICMP: type and code in x, notICMP in y', async () => {
      const icmp: Probe[] = ['icmp/8/0', 'icmp/8/1', 'icmp/13/0'];
      // The kernel answers all three with no policy: a denied cell below is the policy's doing.
      await check(Object.fromEntries(icmp.map((p) => [p, r()])));
      await m.ds.create('NetworkPolicy', {
        metadata: { name: 'echo-only', namespace: 'x' },
        spec: {
          selector: 'all()',
          types: ['Ingress'],
          ingress: [{ action: 'Allow', protocol: 'ICMP', icmp: { type: 8, code: 0 } }],
        },
      });
      await m.ds.create('NetworkPolicy', {
        metadata: { name: 'no-timestamps', namespace: 'y' },
        spec: {
          selector: 'all()',
          types: ['Ingress'],
          ingress: [{ action: 'Allow', protocol: 'ICMP', notICMP: { type: 13 } }],
        },
      });
      await m.waitChains([pi('np/x/echo-only'), pi('np/y/no-timestamps')]);
      const save = await m.iptablesSave();
      expect(save).toMatch(new RegExp(`^-A ${pi('np/x/echo-only')} -p icmp .*--icmp-type 8/0`, 'm'));
      expect(save).toMatch(new RegExp(`^-A ${pi('np/y/no-timestamps')} -p icmp .*! --icmp-type 13`, 'm'));
      await check({
        'icmp/8/0': r(),
        'icmp/8/1': r().expectPeer({}, { ns: 'x' }, false),
        'icmp/13/0': r().expectPeer({}, { ns: 'x' }, false).expectPeer({}, { ns: 'y' }, false),
        'tcp/80': r().expectPeer({}, { ns: 'x' }, false).expectPeer({}, { ns: 'y' }, false),
      });
    });

    it('negated matches: notPorts in x, notProtocol in y, notNets in z', async () => {
      await m.ds.create('NetworkPolicy', {
        metadata: { name: 'not-81', namespace: 'x' },
        spec: {
          selector: 'all()',
          types: ['Ingress'],
          ingress: [{ action: 'Allow', protocol: 'TCP', destination: { notPorts: [81] } }],
        },
      });
      await m.ds.create('NetworkPolicy', {
        metadata: { name: 'not-tcp', namespace: 'y' },
        spec: { selector: 'all()', types: ['Ingress'], ingress: [{ action: 'Allow', notProtocol: 'TCP' }] },
      });
      await m.ds.create('NetworkPolicy', {
        metadata: { name: 'not-x-a', namespace: 'z' },
        spec: {
          selector: 'all()',
          types: ['Ingress'],
          ingress: [{ action: 'Allow', source: { notNets: [`${m.pod('x/a').ip}/32`] } }],
        },
      });
      await m.waitChains([pi('np/x/not-81'), pi('np/y/not-tcp'), pi('np/z/not-x-a')]);
      await check({
        'tcp/80': r()
          .expectPeer({}, { ns: 'y' }, false)
          .expectPeer({ ns: 'x', pod: 'a' }, { ns: 'z' }, false),
        'tcp/81': r()
          .expectPeer({}, { ns: 'x' }, false)
          .expectPeer({}, { ns: 'y' }, false)
          .expectPeer({ ns: 'x', pod: 'a' }, { ns: 'z' }, false),
        'udp/80': r()
          .expectPeer({}, { ns: 'x' }, false)
          .expectPeer({ ns: 'x', pod: 'a' }, { ns: 'z' }, false),
      });
    });

    it('knp names: one name in two namespaces, or as a Calico knp.default.<name> policy, makes separate policies', async () => {
      for (const ns of ['x', 'y'])
        await m.knp(ns, 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] });
      await m.waitChains([pi('knp/x/deny-ingress'), pi('knp/y/deny-ingress')]);
      await check({ 'tcp/80': r().expectPeer({}, { ns: 'x' }, false).expectPeer({}, { ns: 'y' }, false) });
      // Deleting one leaves the other in force.
      await m.ds.delete('KubernetesNetworkPolicy', 'deny-ingress', 'x');
      await m.waitChains([pi('knp/y/deny-ingress')], [pi('knp/x/deny-ingress')]);
      await check({ 'tcp/80': r().expectPeer({}, { ns: 'y' }, false) });
      // A Calico policy named as `calico convert` names y's (knp.default.<name>) is a second
      // policy: it opens y after the Kubernetes one (order 2000 > 1000), and its deletion leaves
      // the Kubernetes one in force.
      await m.ds.create('NetworkPolicy', {
        metadata: { name: 'knp.default.deny-ingress', namespace: 'y' },
        spec: { order: 2000, selector: 'all()', types: ['Ingress'], ingress: [{ action: 'Allow' }] },
      });
      await m.waitChains([pi('np/y/knp.default.deny-ingress'), pi('knp/y/deny-ingress')]);
      await check({ 'tcp/80': r() });
      await m.ds.delete('NetworkPolicy', 'knp.default.deny-ingress', 'y');
      await m.waitChains([pi('knp/y/deny-ingress')], [pi('np/y/knp.default.deny-ingress')]);
      await check({ 'tcp/80': r().expectPeer({}, { ns: 'y' }, false) });
    });

    it('rules we do not own survive a policy apply', async () => {
      const node = m.node.namespace;
      const run = async (args: string[]) => {
        const res = await execInNamespace(node, 'iptables', args);
        expect(res.exitCode, res.stderr).toBe(0);
      };
      await run(['-t', 'filter', '-N', foreignChain]);
      await run(['-t', 'filter', '-A', foreignChain, '-s', '203.0.113.7/32', '-j', 'DROP']);
      await run(['-t', 'filter', '-A', 'FORWARD', '-s', '203.0.113.7/32', '-j', foreignChain]);
      await m.knp('z', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] });
      await m.waitChains([pi('knp/z/deny-ingress')]);
      await check({ 'tcp/80': r().expectPeer({}, { ns: 'z' }, false) });
      const save = await m.iptablesSave();
      expect(save).toContain(`:${foreignChain} `);
      expect(save).toContain(`-A ${foreignChain} -s 203.0.113.7/32 -j DROP`);
      expect(save).toContain(`-A FORWARD -s 203.0.113.7/32 -j ${foreignChain}`);
      await m.clearPolicies();
      expect(await m.iptablesSave()).toContain(`-A FORWARD -s 203.0.113.7/32 -j ${foreignChain}`);
    });

    it('a Felix restart over a programmed node writes no iptables or ipset change', async () => {
      await m.knp('x', 'from-b', {
        podSelector: {},
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: 'b' } } }] }],
      });
      await m.waitChains([pi('knp/x/from-b')]);
      const iptablesBefore = await m.iptablesSave();
      const ipsetsBefore = await m.ipsetSave();
      expect(ipsetsBefore).toMatch(/create cali40s:/);
      await m.felix?.stop();
      const felix = new Felix({ datastore: m.ds, nodeName: NODE, netns: m.node.namespace });
      m.felix = felix;
      let first: ApplyStats | undefined;
      felix.once('applied', (stats) => {
        first = stats;
      });
      felix.start();
      await felix.whenReady();
      expect(felix.status().errors).toEqual([]);
      expect(first).toMatchObject({ iptablesLines: 0, errors: [] });
      const strip = (s: string) => s.replace(/^#.*$/gm, '').replace(/\[\d+:\d+\]/g, '');
      expect(strip(await m.iptablesSave())).toBe(strip(iptablesBefore));
      expect(await m.ipsetSave()).toBe(ipsetsBefore);
      await check({
        'tcp/80': r().expectPeer({}, { ns: 'x' }, false).expectPeer({ pod: 'b' }, { ns: 'x' }, true),
      });
    });

    it('a pod whose namespace profile is missing gets no traffic, as in Calico', async () => {
      await m.ds.delete('Profile', 'kns.z');
      await m.waitChains([], [profileChainName('ingress', 'kns.z')]);
      expect(m.felix?.status().missingProfiles).toEqual(['kns.z']);
      await check({ 'tcp/80': r().expectPeer({}, { ns: 'z' }, false).expectPeer({ ns: 'z' }, {}, false) });
      await m.ds.create('Profile', m.namespaceProfile('z'));
      await m.waitChains([profileChainName('ingress', 'kns.z')]);
      expect(m.felix?.status().missingProfiles).toEqual([]);
      await check({ 'tcp/80': r() });
    });
  },
);
