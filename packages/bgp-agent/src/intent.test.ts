import { CompiledPolicy } from '@calico-ts/bgp';
import { type KindName, type ResourceOf, RouteProtocol, validateResource } from '@calico-ts/datastore';
import { describe, expect, it } from 'vitest';
import { compileChain } from './filters.ts';
import { computeIntent } from './intent.ts';
import { planKernelRoutes } from './kernel/route-plan.ts';
import { desiredKernelRoutes, ownedKernelRoute } from './kernel-routes.ts';
import { parsePeerIp } from './peers.ts';
import { type AgentSnapshot, durationSeconds, EMPTY_SNAPSHOT } from './snapshot.ts';

// Plain objects shaped like stored resources (defaults as the model fills them).
function res<K extends KindName>(
  kind: K,
  name: string,
  spec: object,
  labels?: Record<string, string>,
): ResourceOf<K> {
  return {
    apiVersion: 'projectcalico.org/v3',
    kind,
    metadata: { name, ...(labels ? { labels } : {}) },
    spec,
  } as unknown as ResourceOf<K>;
}

const node = (name: string, ip: string | undefined, bgp: object = {}, labels?: Record<string, string>) =>
  res('Node', name, { bgp: { ...(ip ? { ipv4Address: `${ip}/24` } : {}), ...bgp } }, labels);
const pool = (name: string, cidr: string, extra: object = {}) =>
  res('IPPool', name, {
    cidr,
    blockSize: 26,
    ipipMode: 'Never',
    vxlanMode: 'Never',
    natOutgoing: false,
    disabled: false,
    disableBGPExport: false,
    nodeSelector: 'all()',
    allowedUses: ['Workload', 'Tunnel'],
    assignmentMode: 'Automatic',
    ...extra,
  });
const affinity = (nodeName: string, cidr: string, state = 'confirmed') =>
  res('BlockAffinity', `${nodeName}-${cidr.replace(/[./]/g, '-')}`, {
    node: nodeName,
    cidr,
    state,
    type: 'host',
    deleted: false,
  });
const peer = (name: string, spec: object) => res('BGPPeer', name, { sourceAddress: 'UseNodeIP', ...spec });
const config = (name: string, spec: object) => res('BGPConfiguration', name, spec);

const threeNodes: AgentSnapshot = {
  ...EMPTY_SNAPSHOT,
  nodes: [node('n1', '192.0.2.11'), node('n2', '192.0.2.12'), node('n3', '192.0.2.13')],
  ipPools: [pool('p', '10.10.0.0/16')],
};
const noSecrets = () => undefined;

describe('mesh', () => {
  it('peers with every other node; the larger address is passive so only one side dials', () => {
    const i = computeIntent(threeNodes, 'n2', noSecrets);
    expect(i.node).toMatchObject({
      ipv4: '192.0.2.12',
      routerId: '192.0.2.12',
      asNumber: 64512,
      listenPort: 179,
    });
    expect(i.peers.map((p) => [p.name, p.type, p.config.address, p.config.passive])).toEqual([
      ['Mesh_192_0_2_11', 'node-to-node mesh', '192.0.2.11', false],
      ['Mesh_192_0_2_13', 'node-to-node mesh', '192.0.2.13', true],
    ]);
    const p = i.peers[0]!.config;
    expect(p).toMatchObject({ asNumber: 64512, localAddress: '192.0.2.12', ttl: 64, families: ['ipv4'] });
  });

  it('compares addresses as strings, as confd does (192.0.2.9 > 192.0.2.10)', () => {
    const s = { ...threeNodes, nodes: [node('a', '192.0.2.9'), node('b', '192.0.2.10')] };
    expect(computeIntent(s, 'b', noSecrets).peers[0]!.config.passive).toBe(true);
    expect(computeIntent(s, 'a', noSecrets).peers[0]!.config.passive).toBe(false);
  });

  it('is off with nodeToNodeMeshEnabled: false, and BGP is off for a node without an address', () => {
    const off = { ...threeNodes, bgpConfigurations: [config('default', { nodeToNodeMeshEnabled: false })] };
    expect(computeIntent(off, 'n1', noSecrets).peers).toEqual([]);
    const bare = { ...threeNodes, nodes: [...threeNodes.nodes, node('n4', undefined)] };
    const i = computeIntent(bare, 'n4', noSecrets);
    expect(i.node?.routerId).toBeUndefined();
    expect(i.problems[0]).toMatch(/no spec.bgp.ipv4Address/);
    // and others do not try to peer with it
    expect(computeIntent(bare, 'n1', noSecrets).peers).toHaveLength(2);
  });

  it('uses the mesh password and restart time from BGPConfiguration and the peer listen port', () => {
    const s = {
      ...threeNodes,
      bgpConfigurations: [
        config('default', {
          nodeMeshPassword: { secretKeyRef: { name: 'bgp', key: 'mesh' } },
          nodeMeshMaxRestartTime: '1m30s',
        }),
        config('node.n3', { listenPort: 1790 }),
      ],
    };
    const i = computeIntent(s, 'n1', (name, key) =>
      name === 'bgp' && key === 'mesh' ? 's3cret' : undefined,
    );
    expect(i.restartTime).toBe(90);
    expect(i.peers.map((p) => [p.config.address, p.config.port, p.config.password])).toEqual([
      ['192.0.2.12', undefined, 's3cret'],
      ['192.0.2.13', 1790, 's3cret'],
    ]);
    expect(computeIntent(s, 'n3', noSecrets).node?.listenPort).toBe(1790);
    expect(computeIntent(s, 'n1', noSecrets).problems).toContain(
      'BGPConfiguration default.nodeMeshPassword: secret bgp/mesh not found',
    );
  });
});

describe('AS number', () => {
  it('Node.spec.bgp.asNumber, else BGPConfiguration default, else 64512', () => {
    const s = {
      ...threeNodes,
      nodes: [
        node('n1', '192.0.2.11', { asNumber: 65001 }),
        node('n2', '192.0.2.12'),
        node('n3', '192.0.2.13'),
      ],
    };
    expect(computeIntent(s, 'n1', noSecrets).node?.asNumber).toBe(65001);
    expect(computeIntent(s, 'n2', noSecrets).node?.asNumber).toBe(64512);
    const withGlobal = { ...s, bgpConfigurations: [config('default', { asNumber: 65100 })] };
    expect(computeIntent(withGlobal, 'n2', noSecrets).node?.asNumber).toBe(65100);
    // mesh peers carry the peer's own AS
    const toN1 = computeIntent(withGlobal, 'n2', noSecrets).peers.find(
      (p) => p.config.address === '192.0.2.11',
    );
    expect(toN1?.config.asNumber).toBe(65001);
  });
});

describe('route reflectors', () => {
  const rr: AgentSnapshot = {
    ...threeNodes,
    nodes: [
      node('rr1', '192.0.2.11', { routeReflectorClusterID: '224.0.0.1' }, { 'route-reflector': 'true' }),
      node('n2', '192.0.2.12'),
      node('n3', '192.0.2.13'),
    ],
    bgpPeers: [
      // Every node peers with the reflectors; reflectors peer with every node.
      peer('to-rr', { nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" }),
      peer('rr-to-all', { nodeSelector: "route-reflector == 'true'", peerSelector: 'all()' }),
    ],
  };

  it('a route reflector leaves the mesh and treats iBGP peers outside its cluster as rr clients', () => {
    const i = computeIntent(rr, 'rr1', noSecrets);
    expect(i.node?.clusterId).toBe('224.0.0.1');
    expect(i.peers.map((p) => [p.name, p.type, p.config.routeReflectorClient])).toEqual([
      ['Node_192_0_2_12', 'node specific', true],
      ['Node_192_0_2_13', 'node specific', true],
    ]);
  });

  it('clients keep the mesh among themselves but not to the reflector, and peer with it as non-clients', () => {
    const i = computeIntent(rr, 'n2', noSecrets);
    expect(i.peers.map((p) => [p.name, p.config.routeReflectorClient ?? false])).toEqual([
      ['Mesh_192_0_2_13', false],
      ['Node_192_0_2_11', false],
    ]);
  });

  it('reflectors in the same cluster are not each other’s clients', () => {
    const two = {
      ...rr,
      nodes: [
        ...rr.nodes.slice(0, 1),
        node('rr2', '192.0.2.14', { routeReflectorClusterID: '224.0.0.1' }, { 'route-reflector': 'true' }),
        ...rr.nodes.slice(1),
      ],
    };
    const toRr2 = computeIntent(two, 'rr1', noSecrets).peers.find((p) => p.config.address === '192.0.2.14');
    expect(toRr2?.config.routeReflectorClient).toBeUndefined();
  });
});

describe('BGPPeer resources', () => {
  const s: AgentSnapshot = {
    ...threeNodes,
    nodes: [
      node('n1', '192.0.2.11', {}, { rack: 'a' }),
      node('n2', '192.0.2.12', {}, { rack: 'b' }),
      node('n3', '192.0.2.13'),
    ],
    bgpPeers: [
      peer('tor', { peerIP: '192.0.2.1', asNumber: 65000, keepaliveTime: '10s', maxRestartTime: '30s' }),
      peer('only-n1', {
        node: 'n1',
        peerIP: '198.51.100.7:1179',
        asNumber: '65000',
        password: { secretKeyRef: { name: 'p', key: 'k' } },
      }),
      peer('rack-a', {
        nodeSelector: "rack == 'a'",
        peerIP: '198.51.100.8',
        asNumber: 65002,
        ttlSecurity: 1,
        nextHopMode: 'Self',
      }),
      peer('dup', { node: 'n1', peerIP: '192.0.2.1', asNumber: 65009 }),
    ],
  };

  it('global peers apply to every node; node and nodeSelector peers only where they select', () => {
    const n1 = computeIntent(s, 'n1', (n, k) => (n === 'p' && k === 'k' ? 'pw' : undefined));
    const byName = Object.fromEntries(n1.peers.map((p) => [p.name, p]));
    expect(Object.keys(byName)).toEqual([
      'Global_192_0_2_1',
      'Mesh_192_0_2_12',
      'Mesh_192_0_2_13',
      'Node_198_51_100_7_port_1179',
      'Node_198_51_100_8',
    ]);
    expect(byName['Global_192_0_2_1']).toMatchObject({
      type: 'global',
      restartTime: 30,
      config: { asNumber: 65000, keepaliveTime: 10, localAddress: '192.0.2.11', ttl: 64 },
    });
    expect(byName['Global_192_0_2_1']!.config.passive).toBeUndefined();
    expect(byName['Node_198_51_100_7_port_1179']).toMatchObject({
      type: 'node specific',
      config: { port: 1179, asNumber: 65000, password: 'pw' },
    });
    expect(byName['Node_198_51_100_8']!.config).toMatchObject({ gtsm: true, nextHopSelf: true });
    // Global first: the node-specific peering to the same address is dropped.
    expect(n1.problems).toContain(
      'Node_192_0_2_1: a peering with 192.0.2.1 already exists; duplicate ignored',
    );
    const n2 = computeIntent(s, 'n2', noSecrets);
    expect(n2.peers.map((p) => p.name)).toEqual(['Global_192_0_2_1', 'Mesh_192_0_2_11', 'Mesh_192_0_2_13']);
  });

  it('sourceAddress None leaves the source to the kernel', () => {
    const t = {
      ...s,
      bgpPeers: [peer('tor', { peerIP: '192.0.2.1', asNumber: 65000, sourceAddress: 'None' })],
    };
    expect(computeIntent(t, 'n1', noSecrets).peers[0]!.config.localAddress).toBeUndefined();
  });

  it('a global peerSelector peering dials from both sides (confd: only peerIP peers that are nodes are passive)', () => {
    const t = {
      ...s,
      bgpConfigurations: [config('default', { nodeToNodeMeshEnabled: false })],
      bgpPeers: [peer('mesh-by-hand', { peerSelector: 'all()' })],
    };
    const n2 = computeIntent(t, 'n2', noSecrets);
    expect(n2.peers.map((p) => [p.name, p.type, p.config.passive ?? false])).toEqual([
      ['Global_192_0_2_11', 'global', false],
      ['Global_192_0_2_13', 'global', false],
    ]);
  });

  it('a node a peerSelector selects peers back with the nodes the BGPPeer applies to, unless reversePeering is Manual', () => {
    const rr: AgentSnapshot = {
      ...threeNodes,
      nodes: [
        node('n1', '192.0.2.11', {}, { rr: 'true' }),
        node('n2', '192.0.2.12'),
        node('n3', '192.0.2.13'),
      ],
      bgpConfigurations: [config('default', { nodeToNodeMeshEnabled: false })],
      bgpPeers: [peer('to-rr', { nodeSelector: 'all()', peerSelector: 'has(rr)' })],
    };
    expect(computeIntent(rr, 'n2', noSecrets).peers.map((p) => p.name)).toEqual(['Node_192_0_2_11']);
    const onRr = computeIntent(rr, 'n1', noSecrets);
    expect(onRr.peers.map((p) => p.name)).toEqual(['Node_192_0_2_12', 'Node_192_0_2_13']);
    expect(onRr.problems).toEqual([]);
    const manual = {
      ...rr,
      bgpPeers: [peer('to-rr', { nodeSelector: 'all()', peerSelector: 'has(rr)', reversePeering: 'Manual' })],
    };
    expect(computeIntent(manual, 'n1', noSecrets).peers).toEqual([]);
  });

  it('local workloads peer with the first BGPPeer by name whose localWorkloadSelector matches, passive', () => {
    const wep = (name: string, labels: Record<string, string>, ip: string) => {
      const r = validateResource('WorkloadEndpoint', {
        metadata: { name, namespace: 'default', labels },
        spec: { node: 'n1', ipNetworks: [`${ip}/32`] },
      });
      if (!r.ok) throw new Error(`test WorkloadEndpoint ${name}: ${JSON.stringify(r.issues)}`);
      return r.value;
    };
    const t: AgentSnapshot = {
      ...threeNodes,
      bgpConfigurations: [config('default', { nodeToNodeMeshEnabled: false })],
      bgpPeers: [
        peer('a-router', { localWorkloadSelector: "app == 'router'", asNumber: 65010, localASNumber: 65002 }),
        peer('b-router', { localWorkloadSelector: 'has(app)', asNumber: 65020 }),
      ],
      workloadEndpoints: [wep('r1', { app: 'router' }, '10.10.0.5'), wep('w1', { app: 'web' }, '10.10.0.6')],
    };
    const peers = computeIntent(t, 'n1', noSecrets).peers;
    expect(
      peers.map((p) => [p.name, p.config.asNumber, p.localAsNumber, p.config.passive, p.config.localAddress]),
    ).toEqual([
      ['Local_Workload_10_10_0_5', 65010, 65002, true, undefined],
      ['Local_Workload_10_10_0_6', 65020, undefined, true, undefined],
    ]);
  });

  it('parses peerIP forms', () => {
    expect(parsePeerIp('10.0.0.1')).toEqual({ ip: '10.0.0.1', port: undefined });
    expect(parsePeerIp('10.0.0.1:1790')).toEqual({ ip: '10.0.0.1', port: 1790 });
    expect(parsePeerIp('[2001:db8::1]:179')).toEqual({ ip: '2001:db8::1', port: 179 });
    expect(parsePeerIp('2001:db8::1')).toEqual({ ip: '2001:db8::1', port: undefined });
    expect(durationSeconds('1h2m3.5s')).toBe(3723.5);
    expect(durationSeconds('500ms')).toBe(0.5);
    expect(durationSeconds('soon')).toBeUndefined();
  });
});

describe('exports', () => {
  const s: AgentSnapshot = {
    ...threeNodes,
    ipPools: [pool('p', '10.10.0.0/16'), pool('quiet', '10.20.0.0/16', { disableBGPExport: true })],
    blockAffinities: [
      affinity('n1', '10.10.0.0/26'),
      affinity('n1', '10.10.0.64/26', 'pending'),
      affinity('n1', '10.20.0.0/26'),
      affinity('n2', '10.10.1.0/26'),
    ],
    workloadEndpoints: [
      res('WorkloadEndpoint', 'a', { node: 'n1', ipNetworks: ['10.10.0.5/32'] }),
      // borrowed from n2's block
      res('WorkloadEndpoint', 'b', { node: 'n1', ipNetworks: ['10.10.1.9/32'] }),
      res('WorkloadEndpoint', 'c', { node: 'n2', ipNetworks: ['10.10.1.10/32'] }),
    ],
    bgpConfigurations: [
      config('default', {
        serviceClusterIPs: [{ cidr: '10.96.0.0/12' }],
        communities: [{ name: 'tagged', value: '65000:100' }],
        prefixAdvertisements: [{ cidr: '10.10.0.0/16', communities: ['tagged', '65000:1:2'] }],
      }),
    ],
  };

  it('confirmed blocks (aggregated), borrowed /32s and service CIDRs, with communities and LOCAL_PREF', () => {
    const i = computeIntent(s, 'n1', noSecrets);
    // LOCAL_PREF 2^31-1-1024: the normal route priority, as confd's export filter sets it.
    const localPref = 2147482623;
    expect(i.exports).toEqual([
      { prefix: '10.10.0.0/26', localPref, communities: ['65000:100'], largeCommunities: ['65000:1:2'] },
      { prefix: '10.10.1.9/32', localPref, communities: ['65000:100'], largeCommunities: ['65000:1:2'] },
      { prefix: '10.96.0.0/12', localPref, communities: [], largeCommunities: [] },
    ]);
    const raised = {
      ...s,
      bgpConfigurations: s.bgpConfigurations.map((c) =>
        c.metadata.name === 'default' ? { ...c, spec: { ...c.spec, ipv4NormalRoutePriority: 5000 } } : c,
      ),
    };
    expect(computeIntent(raised, 'n1', noSecrets).exports[0]?.localPref).toBe(2147483647 - 5000);
    // blackholes for every confirmed block, exported or not
    expect(i.localBlocks).toEqual(['10.10.0.0/26', '10.20.0.0/26']);
  });

  it('export policy: own block yes, /32 inside it no, other pool routes yes, disableBGPExport no', () => {
    const i = computeIntent(s, 'n1', noSecrets);
    const policy = new CompiledPolicy(i.peers[0]!.config.exportPolicy);
    const attrs = { origin: 0 as const, asPath: [], nextHop: '192.0.2.11' };
    const exported = (p: string) => policy.apply(p, attrs, 64512) !== undefined;
    expect(exported('10.10.0.0/26')).toBe(true);
    expect(exported('10.10.0.7/32')).toBe(false);
    expect(exported('10.10.1.0/26')).toBe(true);
    expect(exported('10.20.0.0/26')).toBe(false);
    expect(exported('10.96.0.0/12')).toBe(true);
    expect(exported('0.0.0.0/0')).toBe(false);
  });

  it('import policy accepts everything without BGPFilters, as confd (import all)', () => {
    const policy = new CompiledPolicy(computeIntent(s, 'n1', noSecrets).peers[0]!.config.importPolicy);
    const attrs = { origin: 0 as const, asPath: [], nextHop: '192.0.2.12' };
    expect(policy.apply('10.10.1.0/26', attrs, 64512)).toBeDefined();
    expect(policy.apply('0.0.0.0/0', attrs, 64512)).toBeDefined();
  });
});

describe('BGPFilter', () => {
  const filtered: AgentSnapshot = {
    ...threeNodes,
    bgpPeers: [peer('tor', { peerIP: '192.0.2.1', asNumber: 65000, filters: ['f'] })],
    bgpFilters: [
      res('BGPFilter', 'f', {
        importV4: [
          { cidr: '172.16.0.0/12', matchOperator: 'In', prefixLength: { max: 24 }, action: 'Accept' },
          { cidr: '10.10.5.0/24', matchOperator: 'Equal', action: 'Reject' },
        ],
        exportV4: [
          { cidr: '10.10.0.0/17', matchOperator: 'NotIn', action: 'Reject' },
          { peerType: 'iBGP', action: 'Reject' },
        ],
      }),
    ],
  };
  const attrs = { origin: 0 as const, asPath: [], nextHop: '192.0.2.1' };

  it('runs filter rules before the Calico chain, In with a prefix length range, Equal exactly', () => {
    const tor = computeIntent(filtered, 'n1', noSecrets).peers.find((p) => p.name === 'Global_192_0_2_1')!;
    const imp = new CompiledPolicy(tor.config.importPolicy);
    expect(imp.apply('172.16.4.0/24', attrs, 64512)).toBeDefined();
    // No rule matches: confd's import ends in accept (the kernel filter decides what is installed).
    expect(imp.apply('172.16.4.0/25', attrs, 64512)).toBeDefined();
    expect(imp.apply('10.10.5.0/24', attrs, 64512)).toBeUndefined();
    expect(imp.apply('10.10.5.0/26', attrs, 64512)).toBeDefined();
  });

  it('NotIn: outside the CIDR the rule acts, inside it the rest of the chain decides; peerType is per peer', () => {
    const s = {
      ...filtered,
      blockAffinities: [affinity('n1', '10.10.0.0/26'), affinity('n1', '10.10.200.0/26')],
    };
    const tor = computeIntent(s, 'n1', noSecrets).peers.find((p) => p.name === 'Global_192_0_2_1')!;
    const exp = new CompiledPolicy(tor.config.exportPolicy);
    expect(exp.apply('10.10.0.0/26', attrs, 64512)).toBeDefined();
    expect(exp.apply('10.10.200.0/26', attrs, 64512)).toBeUndefined();
    expect(exp.apply('10.10.0.5/32', attrs, 64512)).toBeUndefined();
  });

  it('compiles NotIn with other conditions without losing the fall-through', () => {
    const p = new CompiledPolicy(
      compileChain(
        [
          {
            notPrefixes: [{ prefix: '10.0.0.0/8', ge: 8, le: 32 }],
            match: { communities: ['1:1'] },
            action: 'reject',
          },
          { action: 'accept', match: { prefixes: [{ prefix: '0.0.0.0/0', ge: 0, le: 32 }] } },
        ],
        'reject',
      ),
    );
    const tagged = { origin: 0 as const, asPath: [], nextHop: '1.1.1.1', communities: [65537] };
    const plain = { origin: 0 as const, asPath: [], nextHop: '1.1.1.1' };
    expect(p.apply('192.168.0.0/24', tagged, 1)).toBeUndefined();
    expect(p.apply('192.168.0.0/24', plain, 1)).toBeDefined();
    expect(p.apply('10.1.0.0/24', tagged, 1)).toBeDefined();
  });
});

describe('kernel programming', () => {
  const s: AgentSnapshot = {
    ...threeNodes,
    ipPools: [
      pool('plain', '10.10.0.0/16'),
      pool('vx', '10.30.0.0/16', { vxlanMode: 'Always' }),
      pool('ipip', '10.40.0.0/16', { ipipMode: 'Always' }),
      pool('cross', '10.50.0.0/16', { ipipMode: 'CrossSubnet' }),
    ],
    blockAffinities: [affinity('n1', '10.10.0.0/26')],
  };
  const ctxOf = (snap: AgentSnapshot) => {
    const i = computeIntent(snap, 'n1', noSecrets);
    return {
      me: i.node!,
      pools: i.pools,
      localBlocks: i.localBlocks,
      programClusterRoutes: i.programClusterRoutes,
      staticRoutes: i.staticRoutes,
    };
  };

  it('installs what peers send outside pools, but never a service CIDR every node originates', () => {
    const services = {
      ...s,
      bgpConfigurations: [config('default', { serviceClusterIPs: [{ cidr: '10.96.0.0/12' }] })],
    };
    const { routes, skipped } = desiredKernelRoutes(ctxOf(services), [
      { prefix: '198.51.100.0/24', nextHops: ['192.0.2.1'] },
      { prefix: '10.96.0.0/12', nextHops: ['192.0.2.12'] },
      { prefix: '10.96.0.10/32', nextHops: ['192.0.2.12'] },
    ]);
    expect(routes.get('198.51.100.0/24')?.nexthops).toEqual([{ gateway: '192.0.2.1' }]);
    expect(routes.has('10.96.0.0/12')).toBe(false);
    expect(routes.has('10.96.0.10/32')).toBe(false);
    expect(skipped.map((x) => x.prefix)).toEqual(['10.96.0.0/12', '10.96.0.10/32']);
  });

  it('installs no-encap pool routes via the peer (ECMP when several), blackholes own blocks, skips VXLAN pools', () => {
    const { routes, skipped } = desiredKernelRoutes(ctxOf(s), [
      { prefix: '10.10.1.0/26', nextHops: ['192.0.2.12'] },
      { prefix: '10.10.2.0/26', nextHops: ['192.0.2.13', '192.0.2.12'] },
      { prefix: '10.30.1.0/26', nextHops: ['192.0.2.12'] },
      { prefix: '10.40.1.0/26', nextHops: ['192.0.2.12'] },
    ]);
    expect([...routes.values()]).toEqual([
      { dst: '10.10.0.0/26', type: 'blackhole', nexthops: [] },
      { dst: '10.10.1.0/26', type: 'unicast', nexthops: [{ gateway: '192.0.2.12' }] },
      {
        dst: '10.10.2.0/26',
        type: 'unicast',
        nexthops: [{ gateway: '192.0.2.12' }, { gateway: '192.0.2.13' }],
      },
    ]);
    expect(skipped.map((x) => x.reason)).toEqual([
      'VXLAN pool vx: programmed by Felix',
      'IPIP pool ipip: programmed by Felix',
    ]);
  });

  it('IPIP pools via tunl0 onlink when programClusterRoutes is Enabled; CrossSubnet direct on the same subnet', () => {
    const enabled = { ...s, bgpConfigurations: [config('default', { programClusterRoutes: 'Enabled' })] };
    const { routes } = desiredKernelRoutes(ctxOf(enabled), [
      { prefix: '10.40.1.0/26', nextHops: ['198.51.100.2'] },
      { prefix: '10.50.1.0/26', nextHops: ['192.0.2.12'] },
      { prefix: '10.50.2.0/26', nextHops: ['198.51.100.2'] },
    ]);
    expect(routes.get('10.40.1.0/26')?.nexthops).toEqual([
      { gateway: '198.51.100.2', dev: 'tunl0', onlink: true },
    ]);
    expect(routes.get('10.50.1.0/26')?.nexthops).toEqual([{ gateway: '192.0.2.12' }]);
    expect(routes.get('10.50.2.0/26')?.nexthops).toEqual([
      { gateway: '198.51.100.2', dev: 'tunl0', onlink: true },
    ]);
  });

  it('never installs an own block learned back; installs a covering default route and borrowed /32s inside it', () => {
    const { routes, skipped } = desiredKernelRoutes(ctxOf(s), [
      { prefix: '10.10.0.0/26', nextHops: ['192.0.2.12'] },
      { prefix: '0.0.0.0/0', nextHops: ['192.0.2.1'] },
      { prefix: '10.10.0.9/32', nextHops: ['192.0.2.13'] },
      { prefix: '10.10.9.0/26', nextHops: ['192.0.2.11'] },
    ]);
    expect(routes.get('10.10.0.0/26')?.type).toBe('blackhole');
    // A top-of-rack default route: BIRD's kernel export accepts it (the block's own route is longer).
    expect(routes.get('0.0.0.0/0')?.nexthops).toEqual([{ gateway: '192.0.2.1' }]);
    expect(routes.get('10.10.0.9/32')?.nexthops).toEqual([{ gateway: '192.0.2.13' }]);
    expect(skipped.map((x) => x.reason)).toEqual(['is a block of this node', 'next hop is this node']);
  });

  it('diffs against owned kernel routes, keeping old ones while converging after a restart', () => {
    const { routes } = desiredKernelRoutes(ctxOf(s), [{ prefix: '10.10.1.0/26', nextHops: ['192.0.2.12'] }]);
    const owned = [
      { dst: '10.10.0.0/26', type: 'blackhole', protocol: RouteProtocol.bird, nexthops: [] },
      {
        dst: '10.10.1.0/26',
        type: 'unicast',
        protocol: RouteProtocol.bird,
        nexthops: [{ gateway: '192.0.2.12', dev: 'eth0', onlink: false }],
      },
      {
        dst: '10.10.7.0/26',
        type: 'unicast',
        protocol: RouteProtocol.bird,
        nexthops: [{ gateway: '192.0.2.13', dev: 'eth0', onlink: false }],
      },
    ];
    expect(planKernelRoutes(routes, owned, false)).toEqual({ replace: [], remove: [owned[2]] });
    expect(planKernelRoutes(routes, owned, true)).toEqual({ replace: [], remove: [] });
    const moved = [{ ...owned[1]!, nexthops: [{ gateway: '192.0.2.13', dev: 'eth0', onlink: false }] }];
    expect(planKernelRoutes(routes, moved, false).replace.map((r) => r.dst)).toEqual([
      '10.10.0.0/26',
      '10.10.1.0/26',
    ]);
  });

  it('owns only its protocol’s blackholes and gateway routes, never Felix’s VXLAN or workload routes', () => {
    const r = (
      nexthops: { gateway: string | undefined; dev: string | undefined; onlink: boolean }[],
      protocol: number = RouteProtocol.bird,
    ) => ({
      dst: '10.0.0.0/26',
      type: 'unicast',
      protocol,
      nexthops,
    });
    expect(
      ownedKernelRoute(r([{ gateway: '192.0.2.12', dev: 'eth0', onlink: false }]), RouteProtocol.bird, false),
    ).toBe(true);
    expect(
      ownedKernelRoute(
        r([{ gateway: '192.0.2.12', dev: 'eth0', onlink: false }], RouteProtocol.calico),
        RouteProtocol.bird,
        false,
      ),
    ).toBe(false);
    expect(
      ownedKernelRoute(
        r([{ gateway: '10.30.1.0', dev: 'vxlan.calico', onlink: true }]),
        RouteProtocol.bird,
        false,
      ),
    ).toBe(false);
    expect(
      ownedKernelRoute(r([{ gateway: '192.0.2.12', dev: 'tunl0', onlink: true }]), RouteProtocol.bird, false),
    ).toBe(false);
    expect(
      ownedKernelRoute(r([{ gateway: '192.0.2.12', dev: 'tunl0', onlink: true }]), RouteProtocol.bird, true),
    ).toBe(true);
    expect(ownedKernelRoute(r([]), RouteProtocol.bird, false)).toBe(false);
    expect(
      ownedKernelRoute(
        { dst: '10.0.0.0/26', type: 'blackhole', protocol: RouteProtocol.bird, nexthops: [] },
        RouteProtocol.bird,
        false,
      ),
    ).toBe(true);
  });
});
