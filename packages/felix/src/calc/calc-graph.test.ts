import {
  type AnyResource,
  formatIssues,
  type KindName,
  keyFor,
  namespaceProfile,
  type ResourceOf,
  validateResource,
} from '@calico-ts/datastore';
import { describe, expect, it } from 'vitest';
import type { SyncerUpdate } from '../syncer.ts';
import { CalcGraph } from './calc-graph.ts';
import type { DataplaneUpdate } from './dataplane-update.ts';
import { vtepMacForNode } from './vtep-mac.ts';

/** A resource as the datastore stores it: validated, with Calico's defaults filled in. */
function res<K extends KindName>(
  kind: K,
  name: string,
  spec: unknown,
  namespace?: string,
  labels?: Record<string, string>,
): ResourceOf<K> {
  const metadata = {
    name,
    ...(namespace ? { namespace } : {}),
    ...(labels ? { labels } : {}),
    resourceVersion: '1',
  };
  const result = validateResource(kind, { metadata, spec });
  if (!result.ok) throw new Error(`test fixture ${kind} ${name} is invalid:\n${formatIssues(result.issues)}`);
  return result.value;
}

function upd(kind: KindName, r: AnyResource, deleted = false): SyncerUpdate {
  return { kind, key: keyFor(kind, r.metadata.name, r.metadata.namespace), value: deleted ? null : r };
}

const pool = (name: string, cidr: string, extra: Record<string, unknown> = {}) =>
  upd(
    'IPPool',
    res('IPPool', name, { cidr, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, ...extra }),
  );
const node = (name: string, ip: string, vxlanAddr?: string, extra: Record<string, unknown> = {}) =>
  upd(
    'Node',
    res('Node', name, {
      bgp: { ipv4Address: ip },
      ...(vxlanAddr ? { ipv4VXLANTunnelAddr: vxlanAddr } : {}),
      ...extra,
    }),
  );
/** A /26 block, optionally with addresses allocated to nodes (ordinal → the node using it). */
const block = (cidr: string, host: string | undefined, usedBy: Record<number, string> = {}) => {
  const nodes = [...new Set(Object.values(usedBy))];
  const allocations = Array.from({ length: 64 }, (_, ord) =>
    usedBy[ord] === undefined ? null : nodes.indexOf(usedBy[ord]),
  );
  return upd(
    'IPAMBlock',
    res('IPAMBlock', cidr.replaceAll('.', '-').replace('/', '-'), {
      cidr,
      ...(host ? { affinity: `host:${host}` } : {}),
      allocations,
      unallocated: allocations.flatMap((a, ord) => (a === null ? [ord] : [])),
      attributes: nodes.map((node) => ({ secondary: { node } })),
    }),
  );
};
const wep = (
  name: string,
  nodeName: string,
  iface: string,
  ip: string,
  labels: Record<string, string> = {},
) =>
  upd(
    'WorkloadEndpoint',
    res(
      'WorkloadEndpoint',
      name,
      {
        node: nodeName,
        orchestrator: 'k8s',
        pod: name,
        endpoint: 'eth0',
        interfaceName: iface,
        mac: 'AA:BB:CC:00:00:01',
        ipNetworks: [ip],
        profiles: ['kns.default'],
      },
      'default',
      labels,
    ),
  );

/** Applies intent to a plain model of "what the dataplane was told", to compare outcomes. */
function model(batches: DataplaneUpdate[][]) {
  const m = {
    endpoints: new Map<string, unknown>(),
    routes: new Map<string, unknown>(),
    vteps: new Map<string, unknown>(),
    pools: new Map<string, unknown>(),
    hosts: new Map<string, unknown>(),
    ipsets: new Map<string, Set<string>>(),
    config: undefined as unknown,
    inSync: false,
  };
  for (const u of batches.flat()) {
    switch (u.type) {
      case 'configUpdate':
        m.config = u.config;
        break;
      case 'inSync':
        m.inSync = true;
        break;
      case 'ipsetUpdate':
        m.ipsets.set(u.id, new Set(u.members));
        break;
      case 'ipsetDeltaUpdate': {
        const s = m.ipsets.get(u.id)!;
        for (const x of u.removedMembers) s.delete(x);
        for (const x of u.addedMembers) s.add(x);
        break;
      }
      case 'ipsetRemove':
        m.ipsets.delete(u.id);
        break;
      case 'workloadEndpointUpdate':
        m.endpoints.set(u.key, u.endpoint);
        break;
      case 'workloadEndpointRemove':
        m.endpoints.delete(u.key);
        break;
      case 'routeUpdate':
        m.routes.set(u.route.dst, u.route);
        break;
      case 'routeRemove':
        m.routes.delete(u.dst);
        break;
      case 'vtepUpdate':
        m.vteps.set(u.vtep.node, u.vtep);
        break;
      case 'vtepRemove':
        m.vteps.delete(u.node);
        break;
      case 'ipamPoolUpdate':
        m.pools.set(u.id, u.pool);
        break;
      case 'ipamPoolRemove':
        m.pools.delete(u.id);
        break;
      case 'hostMetadataUpdate':
        m.hosts.set(u.hostname, u.metadata);
        break;
      case 'hostMetadataRemove':
        m.hosts.delete(u.hostname);
        break;
      default:
        break;
    }
  }
  return m;
}

const vxlanCluster: SyncerUpdate[] = [
  pool('vx', '10.65.0.0/16', { vxlanMode: 'Always', natOutgoing: true }),
  node('node-a', '192.0.2.11/24', '10.65.0.1'),
  node('node-b', '192.0.2.12/24', '10.65.1.1'),
  block('10.65.0.0/26', 'node-a'),
  block('10.65.1.0/26', 'node-b'),
  wep('pod-a1', 'node-a', 'cali1111', '10.65.0.5/32', { app: 'a' }),
  wep('pod-b1', 'node-b', 'cali2222', '10.65.1.5/32', { app: 'b' }),
  upd('Profile', namespaceProfile('default')),
];

function run(updates: SyncerUpdate[], nodeName = 'node-a'): DataplaneUpdate[] {
  const g = new CalcGraph({ nodeName });
  g.onUpdates(updates);
  g.onStatus('in-sync');
  return g.flush();
}

describe('CalcGraph', () => {
  it('keeps only this node’s workload endpoints', () => {
    const out = run(vxlanCluster);
    const eps = out.filter((u) => u.type === 'workloadEndpointUpdate');
    expect(eps).toHaveLength(1);
    expect(eps[0]).toMatchObject({
      key: 'default/pod-a1',
      id: { orchestratorId: 'k8s', workloadId: 'default/pod-a1', endpointId: 'eth0' },
      endpoint: {
        name: 'cali1111',
        mac: 'aa:bb:cc:00:00:01',
        ipv4Nets: ['10.65.0.5/32'],
        profileIds: ['kns.default'],
      },
    });
  });

  it('resolves VXLAN routes, VTEPs and blackhole-able local blocks', () => {
    const m = model([run(vxlanCluster)]);
    expect(m.routes.get('10.65.1.0/26')).toEqual({
      type: 'remoteBlock',
      dst: '10.65.1.0/26',
      ipPoolType: 'vxlan',
      sameSubnet: true,
      natOutgoing: true,
      dstNodeName: 'node-b',
      dstNodeIp: '192.0.2.12',
    });
    expect(m.routes.get('10.65.0.0/26')).toMatchObject({ type: 'localBlock', dstNodeName: 'node-a' });
    expect(m.routes.get('10.65.0.5/32')).toMatchObject({ type: 'localWorkload' });
    // Remote workloads are covered by their block; no per-pod route.
    expect(m.routes.has('10.65.1.5/32')).toBe(false);
    expect(m.vteps.get('node-b')).toEqual({
      node: 'node-b',
      mac: vtepMacForNode('node-b'),
      ipv4Addr: '10.65.1.1',
      parentDeviceIp: '192.0.2.12',
    });
    expect(m.vteps.has('node-a')).toBe(true);
    expect(m.ipsets.get('all-vxlan-net')).toEqual(new Set(['192.0.2.12/32']));
    expect(m.ipsets.get('network-ip-pools')).toEqual(new Set(['10.65.0.0/16']));
    expect(m.ipsets.get('masq-ipam-pools')).toEqual(new Set(['10.65.0.0/16']));
    expect(m.config).toMatchObject({ vxlanEnabled: true, ipipEnabled: false });
    expect(m.inSync).toBe(true);
  });

  it('derives the VTEP MAC as 0x66 + SHA-1(nodename)[0:5] unless the node sets one', () => {
    // SHA-1("node-a") = 0702c1cc60ff9e13…, SHA-1("node-b") = 893a227aaca1e12a… (`printf %s node-a | sha1sum`).
    expect(vtepMacForNode('node-a')).toBe('66:07:02:c1:cc:60');
    expect(vtepMacForNode('node-b')).toBe('66:89:3a:22:7a:ac');
    expect(model([run(vxlanCluster)]).vteps.get('node-b')).toMatchObject({ mac: '66:89:3a:22:7a:ac' });
    const m = model([
      run([node('node-b', '192.0.2.12/24', '10.65.1.1', { vxlanTunnelMACAddr: '66:AA:BB:CC:DD:EE' })]),
    ]);
    expect(m.vteps.get('node-b')).toMatchObject({ mac: '66:aa:bb:cc:dd:ee' });
  });

  it('flushes in Felix order: config, ipsets, endpoints, VTEPs before routes, inSync last', () => {
    const types = run(vxlanCluster).map((u) => u.type);
    const first = (t: string) => types.indexOf(t as never);
    const last = (t: string) => types.lastIndexOf(t as never);
    expect(types[0]).toBe('configUpdate');
    expect(last('ipsetUpdate')).toBeLessThan(first('workloadEndpointUpdate'));
    expect(last('vtepUpdate')).toBeLessThan(first('routeUpdate'));
    expect(types.at(-1)).toBe('inSync');
  });

  it('removes routes before the VTEPs they use', () => {
    const g = new CalcGraph({ nodeName: 'node-a' });
    g.onUpdates(vxlanCluster);
    g.flush();
    g.onUpdates([node('node-b', '192.0.2.12/24', '10.65.1.1'), block('10.65.1.0/26', 'node-b')].map(deleted));
    const types = g.flush().map((u) => u.type);
    expect(types).toEqual([
      'ipsetDeltaUpdate',
      'ipsetDeltaUpdate',
      'routeRemove',
      'vtepRemove',
      'hostMetadataRemove',
    ]);
  });

  it('reaches the same intent whatever the order, batching or duplication of updates', () => {
    const expected = model([run(vxlanCluster)]);
    const reversed = model([run([...vxlanCluster].reverse())]);
    expect(reversed).toEqual(expected);

    const g = new CalcGraph({ nodeName: 'node-a' });
    const batches: DataplaneUpdate[][] = [];
    for (const u of [...vxlanCluster].reverse()) {
      g.onUpdates([u, u]);
      batches.push(g.flush());
    }
    // A spurious delete followed by the object again (the syncer contract allows both).
    g.onUpdates([deleted(vxlanCluster[1]!), vxlanCluster[1]!]);
    g.onStatus('in-sync');
    batches.push(g.flush());
    expect(model(batches)).toEqual(expected);
  });

  it('coalesces changes to one key between flushes and drops no-ops', () => {
    const g = new CalcGraph({ nodeName: 'node-a' });
    g.onUpdates(vxlanCluster);
    g.flush();
    g.onUpdates([
      wep('pod-a1', 'node-a', 'cali1111', '10.65.0.6/32', { app: 'a' }),
      wep('pod-a1', 'node-a', 'cali1111', '10.65.0.5/32', { app: 'a' }),
    ]);
    expect(g.flush()).toEqual([]);
  });

  it('CrossSubnet encapsulates only towards nodes in other subnets', () => {
    const m = model([
      run([
        pool('vx', '10.65.0.0/16', { vxlanMode: 'CrossSubnet' }),
        node('node-a', '192.0.2.11/24', '10.65.0.1'),
        node('node-b', '192.0.2.12/24', '10.65.1.1'),
        node('node-c', '198.51.100.7/24', '10.65.2.1'),
        block('10.65.1.0/26', 'node-b'),
        block('10.65.2.0/26', 'node-c'),
      ]),
    ]);
    expect(m.routes.get('10.65.1.0/26')).toMatchObject({ ipPoolType: 'none', sameSubnet: true });
    expect(m.routes.get('10.65.2.0/26')).toMatchObject({ ipPoolType: 'vxlan', sameSubnet: false });
  });

  it('IPIP pools give ipip routes; pools without encapsulation give none', () => {
    const m = model([
      run([
        pool('ipip', '10.70.0.0/16', { ipipMode: 'Always' }),
        pool('plain', '10.80.0.0/16'),
        node('node-a', '192.0.2.11/24'),
        node('node-b', '192.0.2.12/24'),
        block('10.70.1.0/26', 'node-b'),
        block('10.80.1.0/26', 'node-b'),
      ]),
    ]);
    expect(m.routes.get('10.70.1.0/26')).toMatchObject({ ipPoolType: 'ipip', dstNodeIp: '192.0.2.12' });
    expect(m.routes.get('10.80.1.0/26')).toMatchObject({ ipPoolType: 'none' });
    expect(m.config).toMatchObject({ ipipEnabled: true, vxlanEnabled: false });
  });

  it('routes addresses borrowed by other nodes as /32s', () => {
    const m = model([
      run([
        pool('vx', '10.65.0.0/16', { vxlanMode: 'Always' }),
        node('node-a', '192.0.2.11/24', '10.65.0.1'),
        node('node-c', '192.0.2.13/24', '10.65.2.1'),
        block('10.65.0.0/26', 'node-a', { 0: 'node-a', 2: 'node-c' }),
      ]),
    ]);
    expect(m.routes.get('10.65.0.2/32')).toMatchObject({ type: 'remoteWorkload', dstNodeName: 'node-c' });
    expect(m.routes.get('10.65.0.0/26')).toMatchObject({ type: 'localBlock' });
  });

  it('treats a resource it cannot use as deleted', () => {
    const g = new CalcGraph({ nodeName: 'node-a' });
    const good = pool('p', '10.65.0.0/16');
    g.onUpdates([good]);
    g.flush();
    // Written around the datastore's validation (another tool writing etcd directly).
    const stored = res('IPPool', 'p', { cidr: '10.65.0.0/16' });
    g.onUpdates([{ ...good, value: { ...stored, spec: { ...stored.spec, cidr: 'not-a-cidr' } } }]);
    const out = g.flush();
    expect(out).toContainEqual({ type: 'ipamPoolRemove', id: '10.65.0.0/16' });
    expect(out).toContainEqual({
      type: 'ipsetDeltaUpdate',
      id: 'network-ip-pools',
      addedMembers: [],
      removedMembers: ['10.65.0.0/16'],
    });
  });

  it('layers configuration: defaults < default < node.<name> < host overrides', () => {
    const g = new CalcGraph({ nodeName: 'node-a', overrides: { iptablesRefreshInterval: 5 } });
    g.onUpdates([
      upd(
        'FelixConfiguration',
        res('FelixConfiguration', 'default', { routeRefreshInterval: '30s', vxlanVNI: 5000 }),
      ),
      upd(
        'FelixConfiguration',
        res('FelixConfiguration', 'node.node-a', {
          routeRefreshInterval: '1m30s',
          iptablesRefreshInterval: '10s',
          failsafeInboundHostPorts: [{ protocol: 'TCP', port: 2222 }],
        }),
      ),
      upd('FelixConfiguration', res('FelixConfiguration', 'node.node-b', { vxlanVNI: 9 })),
    ]);
    const cfg = model([g.flush()]).config;
    expect(cfg).toMatchObject({
      routeRefreshInterval: 90,
      iptablesRefreshInterval: 5,
      vxlanVNI: 5000,
      vxlanPort: 4789,
      failsafeInboundHostPorts: [{ protocol: 'tcp', port: 2222 }],
    });
  });

  it('takes iptablesBackend from FelixConfiguration unless the host sets it (Auto by default)', () => {
    expect(model([new CalcGraph({ nodeName: 'node-a' }).flush()]).config).toMatchObject({
      iptablesBackend: 'Auto',
    });
    const spec = res('FelixConfiguration', 'default', { iptablesBackend: 'Legacy' });
    const g = new CalcGraph({ nodeName: 'node-a' });
    g.onUpdates([upd('FelixConfiguration', spec)]);
    expect(model([g.flush()]).config).toMatchObject({ iptablesBackend: 'Legacy' });
    const host = new CalcGraph({ nodeName: 'node-a', overrides: { iptablesBackend: 'NFT' } });
    host.onUpdates([upd('FelixConfiguration', spec)]);
    expect(model([host.flush()]).config).toMatchObject({ iptablesBackend: 'NFT' });
  });

  describe('policy', () => {
    const allowFromB = upd(
      'NetworkPolicy',
      res(
        'NetworkPolicy',
        'allow-from-b',
        {
          selector: "app == 'a'",
          types: ['Ingress'],
          ingress: [{ action: 'Allow', source: { selector: "app == 'b'" } }],
        },
        'default',
      ),
    );

    it('gives a local endpoint its tiers and known profiles, and activates what they need', () => {
      const out = run([...vxlanCluster, allowFromB]);
      const ep = out.find((u) => u.type === 'workloadEndpointUpdate');
      expect(ep).toMatchObject({
        endpoint: {
          profileIds: ['kns.default'],
          tiers: [
            {
              name: 'default',
              ingressPolicies: ['np/default/allow-from-b'],
              egressPolicies: [],
              defaultAction: 'Deny',
            },
          ],
        },
      });
      const types = out.map((u) => u.type);
      // IP sets, then policies and profiles, then endpoints.
      expect(types.indexOf('ipsetUpdate')).toBeLessThan(types.indexOf('activePolicyUpdate'));
      expect(types.indexOf('activePolicyUpdate')).toBeLessThan(types.indexOf('workloadEndpointUpdate'));
      expect(
        out
          .filter((u) => u.type === 'activeProfileUpdate')
          .map((u) => u.type === 'activeProfileUpdate' && u.profile.name),
      ).toEqual(['kns.default']);
      // The selector matches the remote pod: its address is in the set.
      const m = model([out]);
      const selectorSets = [...m.ipsets].filter(([id]) => id.startsWith('s:'));
      expect(selectorSets.map(([, members]) => [...members])).toEqual([['10.65.1.5/32']]);
    });

    it('reports a pod entering a selector as a one-member delta, and a deleted policy as removes', () => {
      const g = new CalcGraph({ nodeName: 'node-a' });
      g.onUpdates([...vxlanCluster, allowFromB]);
      g.onStatus('in-sync');
      const first = model([g.flush()]);
      g.onUpdates([wep('pod-b2', 'node-b', 'cali3333', '10.65.1.6/32', { app: 'b' })]);
      const second = g.flush();
      expect(second.filter((u) => u.type.startsWith('ipset'))).toEqual([
        {
          type: 'ipsetDeltaUpdate',
          id: expect.stringMatching(/^s:/),
          addedMembers: ['10.65.1.6/32'],
          removedMembers: [],
        },
      ]);
      g.onUpdates([{ ...allowFromB, value: null }]);
      const third = g.flush();
      expect(third.map((u) => u.type)).toEqual([
        'workloadEndpointUpdate',
        'activePolicyRemove',
        'ipsetRemove',
      ]);
      expect(first.endpoints.size).toBe(1);
    });

    it('puts network set nets into the sets of selectors that match them', () => {
      const fromNets = upd(
        'GlobalNetworkPolicy',
        res('GlobalNetworkPolicy', 'from-partners', {
          selector: "app == 'a'",
          types: ['Ingress'],
          ingress: [{ action: 'Allow', source: { selector: "role == 'partner'" } }],
        }),
      );
      const partners = upd(
        'GlobalNetworkSet',
        res('GlobalNetworkSet', 'partners', { nets: ['198.51.100.0/28'] }, undefined, { role: 'partner' }),
      );
      const g = new CalcGraph({ nodeName: 'node-a' });
      g.onUpdates([...vxlanCluster, fromNets, partners]);
      g.onStatus('in-sync');
      const m = model([g.flush()]);
      expect([...m.ipsets].filter(([id]) => id.startsWith('s:')).map(([, v]) => [...v])).toEqual([
        ['198.51.100.0/28'],
      ]);
      g.onUpdates([{ ...partners, value: null }]);
      expect(g.flush().filter((u) => u.type.startsWith('ipset'))).toEqual([
        {
          type: 'ipsetDeltaUpdate',
          id: expect.stringMatching(/^s:/),
          addedMembers: [],
          removedMembers: ['198.51.100.0/28'],
        },
      ]);
    });

    it('leaves a missing profile out, so the endpoint falls to the final drop', () => {
      const out = run(vxlanCluster.filter((u) => u.kind !== 'Profile'));
      const ep = out.find((u) => u.type === 'workloadEndpointUpdate');
      expect(ep).toMatchObject({ endpoint: { profileIds: [], tiers: [] } });
      expect(out.some((u) => u.type === 'activeProfileUpdate')).toBe(false);
    });
  });
});

function deleted(u: SyncerUpdate): SyncerUpdate {
  return { ...u, value: null };
}

describe('CalcGraph: a policy change re-resolves only the local endpoints it touches', () => {
  const policy = (name: string, selector: string, port: number) =>
    upd(
      'NetworkPolicy',
      res(
        'NetworkPolicy',
        name,
        {
          selector,
          types: ['Ingress'],
          ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [port] } }],
        },
        'default',
      ),
    );
  const profile = upd('Profile', namespaceProfile('default'));
  const endpoints = [
    wep('a1', 'node-a', 'cali-a1', '10.65.0.1/32', { app: 'a' }),
    wep('a2', 'node-a', 'cali-a2', '10.65.0.2/32', { app: 'a' }),
    wep('b1', 'node-a', 'cali-b1', '10.65.0.3/32', { app: 'b' }),
    wep('c1', 'node-a', 'cali-c1', '10.65.0.4/32', { app: 'c' }),
  ];

  function graph() {
    const g = new CalcGraph({ nodeName: 'node-a' });
    g.onUpdates([...vxlanCluster, profile, ...endpoints, policy('pa', "app == 'a'", 80)]);
    g.onStatus('in-sync');
    g.flush();
    const resolved: string[] = [];
    const resolve = g.policy.resolve.bind(g.policy);
    g.policy.resolve = (endpoint) => {
      resolved.push(String(endpoint.labels['app']));
      return resolve(endpoint);
    };
    return { g, resolved };
  }
  const tiersOf = (out: DataplaneUpdate[]) =>
    Object.fromEntries(
      out.flatMap((u) =>
        u.type === 'workloadEndpointUpdate'
          ? [[u.endpoint.name, u.endpoint.tiers.flatMap((t) => t.ingressPolicies)]]
          : [],
      ),
    );

  it('a rule change re-resolves the endpoints the policy selects, and only those', () => {
    const { g, resolved } = graph();
    g.onUpdates([policy('pa', "app == 'a'", 81)]);
    const out = g.flush();
    // pod-a1 (vxlanCluster), a1 and a2.
    expect(resolved.sort()).toEqual(['a', 'a', 'a']);
    expect(out.filter((u) => u.type === 'activePolicyUpdate')).toHaveLength(1);
    expect(out.filter((u) => u.type === 'activeProfileUpdate')).toHaveLength(0);
  });

  it('a selector change re-resolves the endpoints selected before and after; they gain and lose it', () => {
    const { g, resolved } = graph();
    g.onUpdates([policy('pa', "app == 'b'", 80)]);
    const out = g.flush();
    expect(resolved.sort()).toEqual(['a', 'a', 'a', 'b']);
    expect(tiersOf(out)).toEqual({
      cali1111: [],
      'cali-a1': [],
      'cali-a2': [],
      'cali-b1': ['np/default/pa'],
    });
  });

  it('a policy selecting no local endpoint resolves nothing and reports nothing to the dataplane', () => {
    const { g, resolved } = graph();
    g.onUpdates([policy('elsewhere', "app == 'remote-only'", 80)]);
    expect(g.flush()).toEqual([]);
    g.onUpdates([deleted(policy('elsewhere', "app == 'remote-only'", 80))]);
    expect(g.flush()).toEqual([]);
    expect(resolved).toEqual([]);
  });

  it('a Calico NetworkPolicy named knp.default.<x> and the Kubernetes policy <x> are two policies', () => {
    const { g } = graph();
    const pod = wep('k1', 'node-a', 'cali-k1', '10.65.0.9/32', {
      app: 'k',
      'projectcalico.org/orchestrator': 'k8s',
    });
    const k8s = upd(
      'KubernetesNetworkPolicy',
      res(
        'KubernetesNetworkPolicy',
        'web',
        { podSelector: { matchLabels: { app: 'k' } }, policyTypes: ['Ingress'] },
        'default',
      ),
    );
    const calico = policy('knp.default.web', "app == 'k'", 80);
    g.onUpdates([pod, k8s, calico]);
    expect(tiersOf(g.flush())['cali-k1']).toEqual(['knp/default/web', 'np/default/knp.default.web']);
    // Deleting the Calico one leaves the Kubernetes one in force, and the other way round.
    g.onUpdates([deleted(calico)]);
    expect(tiersOf(g.flush())['cali-k1']).toEqual(['knp/default/web']);
    g.onUpdates([calico, deleted(k8s)]);
    expect(tiersOf(g.flush())['cali-k1']).toEqual(['np/default/knp.default.web']);
  });

  it('a profile change re-resolves the endpoints that use it', () => {
    const { g, resolved } = graph();
    g.onUpdates([upd('Profile', namespaceProfile('default', { team: 'blue' }))]);
    g.flush();
    expect(resolved.sort()).toEqual(['a', 'a', 'a', 'b', 'c']);
  });
});
