import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { KIND_NAMES, type KindName } from '../kinds.ts';
import type { ValidationIssue } from '../resource.ts';
import { defaultResource, schemaFor, validateResource } from './index.ts';

const V3 = 'projectcalico.org/v3';

function issuesOf(kind: KindName, input: unknown): ValidationIssue[] {
  const result = validateResource(kind, input);
  return result.ok ? [] : result.issues;
}

function pathsOf(kind: KindName, input: unknown): string[] {
  return issuesOf(kind, input)
    .map((i) => i.path)
    .sort();
}

const pool = (spec: Record<string, unknown>, name = 'pool-1') => ({
  apiVersion: V3,
  kind: 'IPPool',
  metadata: { name },
  spec,
});
const gnp = (spec: Record<string, unknown>, name = 'allow-things') => ({
  apiVersion: V3,
  kind: 'GlobalNetworkPolicy',
  metadata: { name },
  spec,
});
const np = (spec: Record<string, unknown>, name = 'allow-things') => ({
  apiVersion: V3,
  kind: 'NetworkPolicy',
  metadata: { name, namespace: 'prod' },
  spec,
});
const peer = (spec: Record<string, unknown>) => ({
  apiVersion: V3,
  kind: 'BGPPeer',
  metadata: { name: 'peer-1' },
  spec,
});

describe('invalid resources: every issue at its exact path', () => {
  const table: Array<{ name: string; kind: KindName; input: unknown; paths: string[] }> = [
    {
      name: 'unmasked pool CIDR',
      kind: 'IPPool',
      input: pool({ cidr: '10.1.2.3/16' }),
      paths: ['spec.cidr'],
    },
    {
      name: 'IPIP and VXLAN together',
      kind: 'IPPool',
      input: pool({ cidr: '10.1.0.0/16', ipipMode: 'Always', vxlanMode: 'CrossSubnet' }),
      paths: ['spec.vxlanMode'],
    },
    {
      name: 'IPIP on IPv6',
      kind: 'IPPool',
      input: pool({ cidr: 'fd00::/64', ipipMode: 'Always' }),
      paths: ['spec.ipipMode'],
    },
    {
      name: 'block size out of range and link-local overlap',
      kind: 'IPPool',
      input: pool({ cidr: '169.254.0.0/16', blockSize: 33 }),
      paths: ['spec.blockSize', 'spec.cidr'],
    },
    {
      name: 'pool prefix longer than block size',
      kind: 'IPPool',
      input: pool({ cidr: '10.0.0.0/28', blockSize: 26 }),
      paths: ['spec.cidr'],
    },
    {
      name: 'IPv6 pool overlapping fe80::/10 and a v4 block size',
      kind: 'IPPool',
      input: pool({ cidr: 'fe80::/64', blockSize: 26 }),
      paths: ['spec.blockSize', 'spec.cidr'],
    },
    {
      name: 'LoadBalancer mixed with Workload, with encapsulation and a node selector',
      kind: 'IPPool',
      input: pool({
        cidr: '10.0.0.0/24',
        allowedUses: ['LoadBalancer', 'Workload'],
        vxlanMode: 'Always',
        nodeSelector: "zone == 'a'",
      }),
      paths: ['spec.allowedUses', 'spec.allowedUses', 'spec.nodeSelector'],
    },
    {
      name: 'typo in a field name and a bad enum value',
      kind: 'IPPool',
      input: pool({ cidr: '10.0.0.0/16', natOutgoin: true, ipipMode: 'Sometimes' }),
      paths: ['spec.ipipMode', 'spec.natOutgoin'],
    },
    {
      name: 'bad selector',
      kind: 'IPPool',
      input: pool({ cidr: '10.0.0.0/16', nodeSelector: 'zone ==' }),
      paths: ['spec.nodeSelector'],
    },
    {
      name: 'resource name not a DNS subdomain, bad label key and value',
      kind: 'IPPool',
      input: {
        apiVersion: V3,
        kind: 'IPPool',
        metadata: { name: 'My_Pool', labels: { 'bad key!': 'x', ok: 'not ok value' } },
        spec: { cidr: '10.0.0.0/16' },
      },
      paths: ['metadata.labels["bad key!"]', 'metadata.labels.ok', 'metadata.name'],
    },
    {
      name: 'port range reversed, bad port name, port out of range, ICMP with ports',
      kind: 'GlobalNetworkPolicy',
      input: gnp({
        ingress: [
          { action: 'Allow', protocol: 'TCP', destination: { ports: [80, '80:70', 'Not_A_Name', 70000] } },
          { action: 'Allow', protocol: 'ICMP', destination: { ports: [22] } },
        ],
      }),
      paths: [
        'spec.ingress[0].destination.ports[1]',
        'spec.ingress[0].destination.ports[2]',
        'spec.ingress[0].destination.ports[3]',
        'spec.ingress[1].destination.ports',
      ],
    },
    {
      name: 'protocol names and numbers, ICMP ranges, code without type',
      kind: 'GlobalNetworkPolicy',
      input: gnp({
        ingress: [
          { action: 'Allow', protocol: 'tcp' },
          { action: 'Allow', protocol: 0 },
          { action: 'Allow', protocol: 'ICMP', icmp: { type: 255, code: 256 } },
          { action: 'Allow', protocol: 'ICMPv6', icmp: { code: 1 } },
          { action: 'Allow', protocol: 'TCP', icmp: { type: 8 } },
          { action: 'Allow', protocol: 'ICMP', ipVersion: 6 },
        ],
      }),
      paths: [
        'spec.ingress[0].protocol',
        'spec.ingress[1].protocol',
        'spec.ingress[2].icmp.code',
        'spec.ingress[2].icmp.type',
        'spec.ingress[3].icmp.code',
        'spec.ingress[4].icmp',
        'spec.ingress[5].ipVersion',
      ],
    },
    {
      name: 'global() outside a whole rule namespaceSelector',
      kind: 'GlobalNetworkPolicy',
      input: gnp({
        selector: 'global()',
        ingress: [
          { action: 'Allow', source: { namespaceSelector: 'global()' } },
          { action: 'Allow', source: { namespaceSelector: "global() && a == 'b'" } },
          { action: 'Allow', source: { selector: 'global()' } },
        ],
      }),
      paths: ['spec.ingress[1].source.namespaceSelector', 'spec.ingress[2].source.selector', 'spec.selector'],
    },
    {
      name: 'rule nets: unmasked, mixed families, everything in notNets',
      kind: 'GlobalNetworkPolicy',
      input: gnp({
        ingress: [
          { action: 'Deny', source: { nets: ['10.0.0.1/8'] } },
          { action: 'Deny', source: { nets: ['10.0.0.0/8'] }, destination: { nets: ['fd00::/8'] } },
          { action: 'Deny', source: { notNets: ['0.0.0.0/0'] } },
        ],
      }),
      paths: [
        'spec.ingress[0].source.nets[0]',
        'spec.ingress[1].destination.nets[0]',
        'spec.ingress[2].source.notNets[0]',
      ],
    },
    {
      name: 'preDNAT with doNotTrack, without applyOnForward, with egress',
      kind: 'GlobalNetworkPolicy',
      input: gnp({ preDNAT: true, doNotTrack: true, egress: [{ action: 'Allow' }] }),
      paths: ['spec.applyOnForward', 'spec.egress', 'spec.preDNAT'],
    },
    {
      name: 'policy names: two dots, and a tier prefix that is not the tier',
      kind: 'GlobalNetworkPolicy',
      input: gnp({ tier: 'security' }, 'a.b.c'),
      paths: ['metadata.name'],
    },
    {
      name: 'tier prefix mismatch and a bad action',
      kind: 'NetworkPolicy',
      input: np({ tier: 'security', ingress: [{ action: 'Accept' }] }, 'devops.allow'),
      paths: ['metadata.name', 'spec.ingress[0].action'],
    },
    {
      name: 'namespaceSelector is GlobalNetworkPolicy-only',
      kind: 'NetworkPolicy',
      input: np({ namespaceSelector: 'all()' }),
      paths: ['spec.namespaceSelector'],
    },
    {
      name: 'tier with a dotted name and a wrong fixed order',
      kind: 'Tier',
      input: { apiVersion: V3, kind: 'Tier', metadata: { name: 'a.b' }, spec: { defaultAction: 'Allow' } },
      paths: ['metadata.name', 'spec.defaultAction'],
    },
    {
      name: 'default tier order is fixed',
      kind: 'Tier',
      input: { apiVersion: V3, kind: 'Tier', metadata: { name: 'default' }, spec: { order: 5 } },
      paths: ['spec.order'],
    },
    {
      name: 'BGPPeer with neither peerIP nor peerSelector',
      kind: 'BGPPeer',
      input: peer({ node: 'node-1' }),
      paths: ['spec.peerIP'],
    },
    {
      name: 'BGPPeer with bad ip:port, node and nodeSelector (no AS: the cluster AS, as Calico)',
      kind: 'BGPPeer',
      input: peer({ peerIP: '10.0.0.1:99999', node: 'a', nodeSelector: 'all()' }),
      paths: ['spec.nodeSelector', 'spec.peerIP'],
    },
    {
      name: 'BGPPeer AS numbers: 0, too big, bad dotted form',
      kind: 'BGPPeer',
      input: peer({ peerIP: '[fd00::1]:179', asNumber: 0, localASNumber: '70000.1' }),
      paths: ['spec.asNumber', 'spec.localASNumber'],
    },
    {
      name: 'BGPPeer peerSelector with an AS number',
      kind: 'BGPPeer',
      input: peer({ peerSelector: 'all()', asNumber: 64512 }),
      paths: ['spec.asNumber'],
    },
    {
      name: 'BGPConfiguration: bad community, unknown advertisement community, node-level mesh flag',
      kind: 'BGPConfiguration',
      input: {
        apiVersion: V3,
        kind: 'BGPConfiguration',
        metadata: { name: 'node.node-1' },
        spec: {
          nodeToNodeMeshEnabled: false,
          communities: [{ name: 'c1', value: '70000:1' }],
          prefixAdvertisements: [{ cidr: '10.0.0.0/8', communities: ['c1', 'c2'] }],
        },
      },
      paths: [
        'spec.communities[0].value',
        'spec.nodeToNodeMeshEnabled',
        'spec.prefixAdvertisements[0].communities[1]',
      ],
    },
    {
      name: 'BGPFilter: wrong family, cidr without matchOperator, min > max',
      kind: 'BGPFilter',
      input: {
        apiVersion: V3,
        kind: 'BGPFilter',
        metadata: { name: 'f' },
        spec: {
          exportV4: [{ action: 'Accept', cidr: 'fd00::/64', matchOperator: 'In' }],
          importV4: [{ action: 'Reject', cidr: '10.0.0.0/8', prefixLength: { min: 28, max: 24 } }],
        },
      },
      paths: ['spec.exportV4[0].cidr', 'spec.importV4[0].matchOperator', 'spec.importV4[0].prefixLength.min'],
    },
    {
      name: 'HostEndpoint without interface or IPs',
      kind: 'HostEndpoint',
      input: { apiVersion: V3, kind: 'HostEndpoint', metadata: { name: 'h' }, spec: { node: 'n1' } },
      paths: ['spec.interfaceName'],
    },
    {
      name: 'WorkloadEndpoint: bad MAC, interface name too long, bad gateway family',
      kind: 'WorkloadEndpoint',
      input: {
        apiVersion: V3,
        kind: 'WorkloadEndpoint',
        metadata: { name: 'w', namespace: 'default' },
        spec: { mac: 'zz:zz', interfaceName: 'cali0123456789abcdef', ipv4Gateway: 'fd00::1' },
      },
      paths: ['spec.interfaceName', 'spec.ipv4Gateway', 'spec.mac'],
    },
    {
      name: 'Kubernetes NetworkPolicy: endPort below port, empty peer, ipBlock with selector, except outside',
      kind: 'KubernetesNetworkPolicy',
      input: {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'k', namespace: 'default' },
        spec: {
          ingress: [
            {
              from: [{}, { ipBlock: { cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] }, podSelector: {} }],
              ports: [{ port: 90, endPort: 80 }],
            },
          ],
        },
      },
      paths: [
        'spec.ingress[0].from[0]',
        'spec.ingress[0].from[1].ipBlock',
        'spec.ingress[0].from[1].ipBlock.except[0]',
        'spec.ingress[0].ports[0].endPort',
      ],
    },
    {
      name: 'wrong apiVersion and kind, missing metadata',
      kind: 'IPPool',
      input: { apiVersion: 'v1', kind: 'Pool', spec: { cidr: '10.0.0.0/16' } },
      paths: ['apiVersion', 'kind', 'metadata'],
    },
  ];

  it.each(table)('$name', ({ kind, input, paths }) => {
    expect(pathsOf(kind, input)).toEqual([...paths].sort());
  });

  it('names the value and what was expected', () => {
    expect(issuesOf('IPPool', pool({ cidr: '10.1.2.3/16' }))).toEqual([
      {
        path: 'spec.cidr',
        value: '10.1.2.3/16',
        message: 'CIDR is not masked (host bits set): expected 10.1.0.0/16',
      },
    ]);
    const [reversed] = issuesOf(
      'GlobalNetworkPolicy',
      gnp({ ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: ['80:70'] } }] }),
    );
    expect(reversed).toEqual({
      path: 'spec.ingress[0].destination.ports[0]',
      value: '80:70',
      message: 'port range must run from low to high: expected "70:80"',
    });
    const [typo] = issuesOf('IPPool', pool({ cidr: '10.0.0.0/16', natOutgoin: true }));
    expect(typo).toEqual({ path: 'spec.natOutgoin', value: true, message: 'unknown field' });
  });

  it('reports problems in different parts of one resource together', () => {
    const issues = issuesOf(
      'GlobalNetworkPolicy',
      gnp(
        {
          selector: 'app ==',
          ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: ['9:1'] } }],
          egress: [{ action: 'Deny', source: { nets: ['10.0.0.1/24'] } }],
        },
        'Bad_Name',
      ),
    );
    expect(issues.map((i) => i.path).sort()).toEqual([
      'metadata.name',
      'spec.egress[0].source.nets[0]',
      'spec.ingress[0].destination.ports[0]',
      'spec.selector',
    ]);
  });
});

describe('accepted forms', () => {
  it('accepts dotted and plain AS numbers, ip:port peers, named ports and protocol numbers', () => {
    expect(issuesOf('BGPPeer', peer({ peerIP: '10.0.0.1:1179', asNumber: '1.10' }))).toEqual([]);
    expect(issuesOf('BGPPeer', peer({ peerIP: '[fd00::1]:179', asNumber: 4294967295 }))).toEqual([]);
    expect(
      issuesOf(
        'GlobalNetworkPolicy',
        gnp({
          ingress: [
            { action: 'Allow', destination: { ports: ['http', 'metrics-port'] } },
            { action: 'Allow', protocol: 17, destination: { ports: ['53', '1000:2000'] } },
            { action: 'Allow', protocol: '132', notProtocol: 'UDPLite' },
            { action: 'Allow', source: { namespaceSelector: 'global()', selector: "role == 'x'" } },
          ],
        }),
      ),
    ).toEqual([]);
  });
});

describe('defaults', () => {
  it('fills IPPool defaults by family', () => {
    const v4 = defaultResource('IPPool', {
      metadata: { name: 'p4' },
      spec: { cidr: '10.0.0.0/16' },
    } as never);
    expect(v4.spec).toEqual({
      cidr: '10.0.0.0/16',
      blockSize: 26,
      ipipMode: 'Never',
      vxlanMode: 'Never',
      natOutgoing: false,
      disabled: false,
      disableBGPExport: false,
      nodeSelector: 'all()',
      allowedUses: ['Workload', 'Tunnel'],
      assignmentMode: 'Automatic',
    });
    const v6 = validateResource('IPPool', pool({ cidr: 'fd00::/48' }));
    expect(v6.ok && v6.value.spec.blockSize).toBe(122);
    const explicit = validateResource('IPPool', pool({ cidr: '10.0.0.0/16', blockSize: 24 }));
    expect(explicit.ok && explicit.value.spec.blockSize).toBe(24);
  });

  it('defaults policy tier and types from the rules present', () => {
    const typesOf = (spec: Record<string, unknown>) => {
      const r = validateResource('GlobalNetworkPolicy', gnp(spec));
      return r.ok ? [r.value.spec.tier, r.value.spec.types] : r.issues;
    };
    expect(typesOf({})).toEqual(['default', ['Ingress']]);
    expect(typesOf({ ingress: [{ action: 'Allow' }] })).toEqual(['default', ['Ingress']]);
    expect(typesOf({ egress: [{ action: 'Allow' }] })).toEqual(['default', ['Egress']]);
    expect(typesOf({ ingress: [{ action: 'Allow' }], egress: [{ action: 'Deny' }] })).toEqual([
      'default',
      ['Ingress', 'Egress'],
    ]);
    expect(typesOf({ egress: [{ action: 'Allow' }], types: ['Ingress', 'Egress'] })).toEqual([
      'default',
      ['Ingress', 'Egress'],
    ]);
  });

  it('defaults Kubernetes policyTypes the Kubernetes way', () => {
    const r = validateResource('KubernetesNetworkPolicy', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'k', namespace: 'default' },
      spec: { egress: [{ ports: [{ port: 53, protocol: 'UDP' }, { port: 80 }] }] },
    });
    expect(r.ok && r.value.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(r.ok && r.value.spec.egress?.[0]?.ports?.[1]?.protocol).toBe('TCP');
    expect(r.ok && r.value.spec.podSelector).toEqual({});
  });

  it('fills BGPConfiguration defaults only in the default object', () => {
    const global = validateResource('BGPConfiguration', {
      apiVersion: V3,
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: { listenPort: 178 },
    });
    expect(global.ok && global.value.spec).toEqual({
      asNumber: 64512,
      nodeToNodeMeshEnabled: true,
      listenPort: 178,
      logSeverityScreen: 'Info',
    });
    const node = validateResource('BGPConfiguration', {
      apiVersion: V3,
      kind: 'BGPConfiguration',
      metadata: { name: 'node.n1' },
      spec: {},
    });
    expect(node.ok && node.value.spec).toEqual({});
  });

  it('fills Tier, BGPPeer, staged policy and KubeControllersConfiguration defaults', () => {
    const tier = validateResource('Tier', { apiVersion: V3, kind: 'Tier', metadata: { name: 'security' } });
    expect(tier.ok && tier.value.spec).toEqual({ defaultAction: 'Deny' });
    const p = validateResource('BGPPeer', peer({ peerIP: '10.0.0.1', asNumber: 65000 }));
    expect(p.ok && p.value.spec.sourceAddress).toBe('UseNodeIP');
    const staged = validateResource('StagedNetworkPolicy', {
      apiVersion: V3,
      kind: 'StagedNetworkPolicy',
      metadata: { name: 's', namespace: 'n' },
    });
    expect(staged.ok && staged.value.spec).toEqual({
      tier: 'default',
      stagedAction: 'Set',
      types: ['Ingress'],
    });
    const kcc = validateResource('KubeControllersConfiguration', {
      apiVersion: V3,
      kind: 'KubeControllersConfiguration',
      metadata: { name: 'default' },
    });
    expect(kcc.ok && kcc.value.spec).toEqual({
      logSeverityScreen: 'Info',
      healthChecks: 'Enabled',
      etcdV3CompactionPeriod: '10m',
      prometheusMetricsPort: 9094,
      controllers: {},
    });
  });

  it('keeps unknown FelixConfiguration fields but checks the modelled ones', () => {
    const felix = (spec: Record<string, unknown>) => ({
      apiVersion: V3,
      kind: 'FelixConfiguration',
      metadata: { name: 'default' },
      spec,
    });
    const ok = validateResource(
      'FelixConfiguration',
      felix({ bpfKubeProxyIptablesCleanupEnabled: false, vxlanVNI: 4096 }),
    );
    expect(ok.ok && ok.value.spec).toEqual({ bpfKubeProxyIptablesCleanupEnabled: false, vxlanVNI: 4096 });
    expect(pathsOf('FelixConfiguration', felix({ vxlanVNI: 0, chainInsertMode: 'Top' }))).toEqual([
      'spec.chainInsertMode',
      'spec.vxlanVNI',
    ]);
  });

  it('throws from defaultResource with every issue in the message', () => {
    expect(() =>
      defaultResource('IPPool', { metadata: { name: 'x' }, spec: { cidr: '10.0.0.1/8' } } as never),
    ).toThrow(/spec.cidr: "10.0.0.1\/8" — CIDR is not masked/);
  });
});

describe('schemas', () => {
  it('convert to JSON Schema for every kind (CRD generation)', () => {
    for (const kind of KIND_NAMES) {
      const json = z.toJSONSchema(schemaFor(kind), { io: 'input', unrepresentable: 'any' }) as {
        properties?: Record<string, unknown>;
      };
      expect(Object.keys(json.properties ?? {})).toEqual([
        'apiVersion',
        'kind',
        'metadata',
        'spec',
        'status',
      ]);
    }
  });
});
