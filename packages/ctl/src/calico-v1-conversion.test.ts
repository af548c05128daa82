import { isResourceOf, kindNameOf, validateResource } from '@calico-ts/datastore';
import { describe, expect, it } from 'vitest';
import {
  convertV1Name,
  convertV1NameNoDots,
  convertV1ProfileName,
  convertV1Resource,
  isCalicoV1Document,
  normalizeV1Name,
} from './calico-v1-conversion.ts';

/** Converts and asserts success; the result must also pass the model's validation again. */
function converted(object: Record<string, unknown>) {
  const result = convertV1Resource(object);
  if (!result.ok) throw new Error(`conversion failed: ${JSON.stringify(result.issues)}`);
  const kind = kindNameOf(result.resource.apiVersion, result.resource.kind);
  expect(kind && validateResource(kind, result.resource).ok).toBe(true);
  return result.resource;
}

function refused(object: Record<string, unknown>) {
  const result = convertV1Resource(object);
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.resource)}`);
  return result.issues;
}

describe('v1 names', () => {
  it('normalises to lower case, / to ., other characters to -, and trims dots and dashes', () => {
    expect(normalizeV1Name('-My_Policy/Web..Tier-')).toBe('my-policy.web.tier');
    expect(normalizeV1Name('a-.-b')).toBe('a.b');
  });

  it('keeps a valid name and qualifies a changed one with 8 hex digits of SHA-1 of the original', () => {
    expect(convertV1Name('allow-tcp')).toBe('allow-tcp');
    expect(convertV1NameNoDots('Allow_TCP/6379')).toBe('allow-tcp-6379-2b7e79fb');
    expect(convertV1Name('Web_Tier')).toBe('web-tier-38278387');
  });

  it('renames k8s_ns.<ns> profiles to kns.<ns>', () => {
    expect(convertV1ProfileName('k8s_ns.default')).toBe('kns.default');
  });

  it('recognises v1 documents by apiVersion v1 and a lower-case kind', () => {
    expect(isCalicoV1Document({ apiVersion: 'v1', kind: 'policy' })).toBe(true);
    expect(isCalicoV1Document({ apiVersion: 'v1', kind: 'List', items: [] })).toBe(false);
    expect(isCalicoV1Document({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool' })).toBe(false);
  });
});

describe('v1 policy → GlobalNetworkPolicy', () => {
  it('converts order, selector, rules, tags and the untracked flags', () => {
    const gnp = converted({
      apiVersion: 'v1',
      kind: 'policy',
      metadata: { name: 'Allow_TCP/6379', annotations: { owner: 'db-team' } },
      spec: {
        order: 100,
        selector: "role == 'db'",
        ingress: [
          {
            action: 'allow',
            protocol: 'tcp',
            source: {
              tag: 'frontend',
              selector: "env == 'prod'",
              net: '10.1.2.3/16',
              nets: ['192.168.0.0/24'],
            },
            destination: { ports: [6379, '7000:7010'] },
          },
          {
            action: 'deny',
            protocol: 'icmp',
            icmp: { type: 8, code: 0 },
            source: { notNet: '172.16.0.0/12' },
          },
          { action: 'log', source: { notTag: 'trusted' } },
        ],
        egress: [{ action: 'pass', destination: { tag: 'dns' } }],
        doNotTrack: true,
      },
    });
    expect(gnp).toEqual({
      apiVersion: 'projectcalico.org/v3',
      kind: 'GlobalNetworkPolicy',
      metadata: {
        name: 'default.allow-tcp-6379-2b7e79fb',
        labels: { 'projectcalico.org/tier': 'default' },
        annotations: { owner: 'db-team' },
      },
      spec: {
        tier: 'default',
        order: 100,
        selector: "role == 'db'",
        types: ['Ingress', 'Egress'],
        ingress: [
          {
            action: 'Allow',
            protocol: 'TCP',
            source: {
              nets: ['10.1.0.0/16', '192.168.0.0/24'],
              selector: "(env == 'prod') && frontend == ''",
            },
            destination: { ports: [6379, '7000:7010'] },
          },
          {
            action: 'Deny',
            protocol: 'ICMP',
            icmp: { type: 8, code: 0 },
            source: { notNets: ['172.16.0.0/12'] },
          },
          { action: 'Log', source: { notSelector: "trusted == ''" } },
        ],
        egress: [{ action: 'Pass', destination: { selector: "dns == ''" } }],
        doNotTrack: true,
        applyOnForward: true,
      },
    });
  });

  it('derives types from the rule lists present: ingress only unless only egress rules exist', () => {
    const types = (spec: Record<string, unknown>) => {
      const r = converted({ apiVersion: 'v1', kind: 'policy', metadata: { name: 'p' }, spec });
      return isResourceOf('GlobalNetworkPolicy', r) ? r.spec.types : undefined;
    };
    expect(types({})).toEqual(['Ingress']);
    expect(types({ ingress: [{ action: 'allow' }] })).toEqual(['Ingress']);
    expect(types({ egress: [{ action: 'allow' }] })).toEqual(['Egress']);
    expect(types({ egress: [{ action: 'allow' }], types: ['ingress'] })).toEqual(['Ingress']);
  });

  it('applies pre-DNAT policy to forwarded traffic too', () => {
    const r = converted({
      apiVersion: 'v1',
      kind: 'policy',
      metadata: { name: 'pre' },
      spec: { preDNAT: true, ingress: [{ action: 'deny' }] },
    });
    expect(r.spec).toMatchObject({ preDNAT: true, applyOnForward: true, types: ['Ingress'] });
  });

  it('refuses an unknown action and an invalid net with the field, value and what was expected', () => {
    expect(
      refused({
        apiVersion: 'v1',
        kind: 'policy',
        metadata: { name: 'p' },
        spec: { ingress: [{ action: 'accept', source: { net: '10.0.0.0/33' } }] },
      }),
    ).toEqual([
      { path: 'spec.ingress[0].action', value: 'accept', message: 'expected allow, deny, log or pass' },
      {
        path: 'spec.ingress[0].source.net',
        value: '10.0.0.0/33',
        message: 'expected a CIDR such as 10.0.0.0/8',
      },
    ]);
  });
});

describe('v1 profile → Profile', () => {
  it('merges labels and tags into labelsToApply and renames k8s_ns profiles', () => {
    expect(
      converted({
        apiVersion: 'v1',
        kind: 'profile',
        metadata: { name: 'k8s_ns.default', tags: ['web'], labels: { team: 'a' } },
        spec: { ingress: [{ action: 'allow', source: { tag: 'web' } }], egress: [{ action: 'allow' }] },
      }),
    ).toEqual({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Profile',
      metadata: { name: 'kns.default' },
      spec: {
        labelsToApply: { team: 'a', web: '' },
        ingress: [{ action: 'Allow', source: { selector: "web == ''" } }],
        egress: [{ action: 'Allow' }],
      },
    });
  });

  it('refuses a tag that collides with a label key', () => {
    expect(
      refused({
        apiVersion: 'v1',
        kind: 'profile',
        metadata: { name: 'p', tags: ['a'], labels: { a: 'x' } },
      }),
    ).toEqual([
      {
        path: 'metadata.tags[0]',
        value: 'a',
        message: 'a label has the same key; tags become labels (a: ""), so rename one',
      },
    ]);
  });
});

describe('v1 ipPool → IPPool', () => {
  it('maps ipip enabled and mode to ipipMode, nat-outgoing to natOutgoing, and names the pool by CIDR', () => {
    const pool = converted({
      apiVersion: 'v1',
      kind: 'ipPool',
      metadata: { cidr: '10.1.0.0/16' },
      spec: { ipip: { enabled: true, mode: 'cross-subnet' }, 'nat-outgoing': true, disabled: true },
    });
    expect(pool.metadata.name).toBe('10-1-0-0-16');
    expect(pool.spec).toMatchObject({
      cidr: '10.1.0.0/16',
      ipipMode: 'CrossSubnet',
      vxlanMode: 'Never',
      natOutgoing: true,
      disabled: true,
      blockSize: 26,
      nodeSelector: 'all()',
    });
    const ipipMode = (ipip: unknown) =>
      converted({ apiVersion: 'v1', kind: 'ipPool', metadata: { cidr: '10.2.0.0/16' }, spec: { ipip } }).spec;
    expect(ipipMode({ enabled: true })).toMatchObject({ ipipMode: 'Always' });
    expect(ipipMode({ enabled: true, mode: 'always' })).toMatchObject({ ipipMode: 'Always' });
    expect(ipipMode({ enabled: false, mode: 'cross-subnet' })).toMatchObject({ ipipMode: 'Never' });
    expect(ipipMode(undefined)).toMatchObject({ ipipMode: 'Never' });
  });

  it('names an IPv6 pool by its CIDR with IPv6 block size', () => {
    expect(
      converted({ apiVersion: 'v1', kind: 'ipPool', metadata: { cidr: 'fd00:1::/64' }, spec: {} }),
    ).toMatchObject({
      metadata: { name: 'fd00-1---64' },
      spec: { cidr: 'fd00:1::/64', ipipMode: 'Never', blockSize: 122 },
    });
  });

  it('refuses an invalid CIDR and a bad ipip mode', () => {
    expect(
      refused({
        apiVersion: 'v1',
        kind: 'ipPool',
        metadata: { cidr: '10.1.0.0/40' },
        spec: { ipip: { enabled: true, mode: 'sometimes' } },
      }),
    ).toEqual([
      { path: 'metadata.cidr', value: '10.1.0.0/40', message: 'expected a CIDR such as 10.1.0.0/16' },
      { path: 'spec.ipip.mode', value: 'sometimes', message: 'expected always or cross-subnet' },
    ]);
  });
});

describe('v1 bgpPeer → BGPPeer', () => {
  it('names a global peer by its IP and a node peer by node and IP', () => {
    expect(
      converted({
        apiVersion: 'v1',
        kind: 'bgpPeer',
        metadata: { scope: 'global', peerIP: '192.168.1.1' },
        spec: { asNumber: 64514 },
      }),
    ).toMatchObject({ metadata: { name: '192-168-1-1' }, spec: { peerIP: '192.168.1.1', asNumber: 64514 } });
    expect(
      converted({
        apiVersion: 'v1',
        kind: 'bgpPeer',
        metadata: { scope: 'node', node: 'Rack1.Node', peerIP: 'fd00::1' },
        spec: { asNumber: '1.10' },
      }),
    ).toMatchObject({
      metadata: { name: 'rack1.node.fd00-0000-0000-0000-0000-0000-0000-0001' },
      spec: { node: 'rack1.node', peerIP: 'fd00::1', asNumber: '1.10' },
    });
  });

  it('refuses a missing scope, a node on a global peer and a node peer without its node', () => {
    const peer = (metadata: Record<string, unknown>) =>
      refused({ apiVersion: 'v1', kind: 'bgpPeer', metadata: { peerIP: '10.0.0.1', ...metadata } });
    expect(peer({})).toEqual([
      { path: 'metadata.scope', value: undefined, message: 'expected global or node' },
    ]);
    expect(peer({ scope: 'global', node: 'n' })).toEqual([
      { path: 'metadata.node', value: 'n', message: 'expected no node for scope global' },
    ]);
    expect(peer({ scope: 'node' })).toEqual([
      { path: 'metadata.node', value: undefined, message: 'expected the node name for scope node' },
    ]);
  });
});

describe('v1 node → Node', () => {
  it('keeps the BGP addresses with their prefix, the AS number and orchRefs', () => {
    expect(
      converted({
        apiVersion: 'v1',
        kind: 'node',
        metadata: { name: 'Node1' },
        spec: {
          bgp: { ipv4Address: '10.0.0.5/24', ipv6Address: 'fd00::5', asNumber: 64512 },
          orchRefs: [{ nodeName: 'k8s-node1', orchestrator: 'k8s' }],
        },
      }),
    ).toEqual({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: { name: 'node1' },
      spec: {
        bgp: { ipv4Address: '10.0.0.5/24', ipv6Address: 'fd00::5/128', asNumber: 64512 },
        orchRefs: [{ nodeName: 'k8s-node1', orchestrator: 'k8s' }],
      },
    });
  });

  it('refuses BGP settings without an address', () => {
    expect(
      refused({
        apiVersion: 'v1',
        kind: 'node',
        metadata: { name: 'n' },
        spec: { bgp: { asNumber: 64512 } },
      }),
    ).toEqual([
      { path: 'spec.bgp', value: { asNumber: 64512 }, message: 'expected ipv4Address or ipv6Address' },
    ]);
  });
});

describe('v1 hostEndpoint → HostEndpoint', () => {
  it('names the endpoint <node>.<name> and converts profiles, IPs and ports', () => {
    expect(
      converted({
        apiVersion: 'v1',
        kind: 'hostEndpoint',
        metadata: { name: 'eth0', node: 'node1', labels: { role: 'host' } },
        spec: {
          interfaceName: 'eth0',
          expectedIPs: ['fd00::5', '10.0.0.5'],
          profiles: ['k8s_ns.x', 'edge'],
          ports: [{ name: 'ssh', protocol: 'tcp', port: 22 }],
        },
      }),
    ).toEqual({
      apiVersion: 'projectcalico.org/v3',
      kind: 'HostEndpoint',
      metadata: { name: 'node1.eth0', labels: { role: 'host' } },
      spec: {
        node: 'node1',
        interfaceName: 'eth0',
        expectedIPs: ['10.0.0.5', 'fd00::5'],
        profiles: ['kns.x', 'edge'],
        ports: [{ name: 'ssh', protocol: 'TCP', port: 22 }],
      },
    });
  });
});

describe('v1 workloadEndpoint → WorkloadEndpoint', () => {
  it('splits a k8s workload id into namespace and pod and builds the v3 name from the ids', () => {
    expect(
      converted({
        apiVersion: 'v1',
        kind: 'workloadEndpoint',
        metadata: {
          name: 'eth0',
          workload: 'ns1.frontend-abc',
          orchestrator: 'k8s',
          node: 'node1',
          activeInstanceID: 'abc123',
          labels: { 'calico/k8s_ns': 'ns1', app: 'web' },
        },
        spec: {
          interfaceName: 'cali0123456789a',
          mac: 'ee:ee:ee:ee:ee:ee',
          ipNetworks: ['fd00::5/128', '10.244.1.5'],
          profiles: ['k8s_ns.ns1'],
        },
      }),
    ).toEqual({
      apiVersion: 'projectcalico.org/v3',
      kind: 'WorkloadEndpoint',
      metadata: {
        name: 'node1-k8s-frontend--abc-eth0',
        namespace: 'ns1',
        labels: { app: 'web', 'projectcalico.org/namespace': 'ns1' },
      },
      spec: {
        orchestrator: 'k8s',
        node: 'node1',
        pod: 'frontend-abc',
        containerID: 'abc123',
        endpoint: 'eth0',
        interfaceName: 'cali0123456789a',
        mac: 'ee:ee:ee:ee:ee:ee',
        ipNetworks: ['10.244.1.5/32', 'fd00::5/128'],
        profiles: ['kns.ns1'],
      },
    });
  });

  it('uses the container id for cni workloads and the converted workload id for others', () => {
    const wep = (orchestrator: string, workload: string) =>
      converted({
        apiVersion: 'v1',
        kind: 'workloadEndpoint',
        metadata: { name: 'eth0', workload, orchestrator, node: 'node1' },
        spec: { ipNetworks: ['10.0.0.1/32'] },
      });
    expect(wep('cni', 'abc123')).toMatchObject({
      metadata: { name: 'node1-cni-abc123-eth0', namespace: 'default' },
      spec: { containerID: 'abc123' },
    });
    expect(wep('openstack', 'VM_1')).toMatchObject({
      metadata: { name: `node1-openstack-vm--1--${convertV1Name('VM_1').split('-').pop()}-eth0` },
      spec: { workload: convertV1Name('VM_1') },
    });
  });

  it('refuses a k8s workload id without a namespace', () => {
    expect(
      refused({
        apiVersion: 'v1',
        kind: 'workloadEndpoint',
        metadata: { name: 'eth0', workload: 'frontend', orchestrator: 'k8s', node: 'node1' },
      }),
    ).toEqual([
      {
        path: 'metadata.workload',
        value: 'frontend',
        message: 'expected "<namespace>.<pod>" for orchestrator k8s',
      },
    ]);
  });
});

describe('v1 kinds', () => {
  it('refuses an unknown v1 kind, listing the ones it reads', () => {
    expect(refused({ apiVersion: 'v1', kind: 'tier', metadata: { name: 't' } })).toEqual([
      {
        path: 'kind',
        value: 'tier',
        message:
          'unknown v1 kind; expected one of node, bgpPeer, hostEndpoint, ipPool, policy, profile, workloadEndpoint',
      },
    ]);
  });
});
