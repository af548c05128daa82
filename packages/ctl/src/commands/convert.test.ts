import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { run } from '../calico-program.ts';
import { captureIo } from '../cli-io.ts';

async function convert(stdin: string, ...args: string[]) {
  const io = captureIo({ stdin });
  const code = await run(['convert', '-f', '-', ...args], io, {
    connect: async () => {
      throw new Error('convert needs no datastore');
    },
  });
  return { code, out: io.out, err: io.err };
}

/** A calicoctl v1 file mixing kinds, a top-level list as v1 allowed, and a v3 resource. */
const MIXED_V1 = `apiVersion: v1
kind: policy
metadata:
  name: allow-tcp-6379
spec:
  order: 10
  selector: role == 'database'
  ingress:
  - action: allow
    protocol: tcp
    source:
      tag: frontend
    destination:
      ports: [6379]
  egress:
  - action: allow
---
apiVersion: v1
kind: ipPool
metadata:
  cidr: 192.168.0.0/16
spec:
  ipip:
    enabled: true
    mode: always
  nat-outgoing: true
---
- apiVersion: v1
  kind: bgpPeer
  metadata:
    scope: global
    peerIP: 10.0.0.1
  spec:
    asNumber: 64567
- apiVersion: v1
  kind: profile
  metadata:
    name: k8s_ns.prod
    tags: [prod]
  spec:
    ingress:
    - action: deny
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata:
  name: security
spec:
  order: 100
`;

describe('calico convert with calicoctl v1 resources', () => {
  it('prints the v3 resources of a mixed v1 file, in order, beside the v3 resources it holds', async () => {
    const r = await convert(MIXED_V1);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const docs = parseAllDocuments(r.out).map((d) => d.toJS());
    expect(docs.map((d) => `${d.kind} ${d.metadata.name}`)).toEqual([
      'GlobalNetworkPolicy default.allow-tcp-6379',
      'IPPool 192-168-0-0-16',
      'BGPPeer 10-0-0-1',
      'Profile kns.prod',
      'Tier security',
    ]);
    expect(docs[0].spec).toMatchObject({
      tier: 'default',
      order: 10,
      selector: "role == 'database'",
      types: ['Ingress', 'Egress'],
      ingress: [
        {
          action: 'Allow',
          protocol: 'TCP',
          source: { selector: "frontend == ''" },
          destination: { ports: [6379] },
        },
      ],
      egress: [{ action: 'Allow' }],
    });
    expect(docs[1].spec).toMatchObject({ cidr: '192.168.0.0/16', ipipMode: 'Always', natOutgoing: true });
    expect(docs[2].spec).toMatchObject({ peerIP: '10.0.0.1', asNumber: 64567 });
    expect(docs[3].spec).toMatchObject({ labelsToApply: { prod: '' }, ingress: [{ action: 'Deny' }] });
  });

  it('prints one v3 resource as JSON', async () => {
    const r = await convert(
      '{"apiVersion":"v1","kind":"node","metadata":{"name":"Node1"},"spec":{}}',
      '-o',
      'json',
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: { name: 'node1' },
      spec: {},
    });
  });

  it('refuses bad v1 input with the field, the value and what was expected, printing nothing', async () => {
    const r = await convert(`apiVersion: v1
kind: tier
metadata:
  name: t
---
apiVersion: v1
kind: ipPool
metadata:
  cidr: 10.0.0.0/33
---
apiVersion: v1
kind: ipPool
metadata:
  cidr: 10.1.0.0/16
spec:
  ipip:
    enabled: true
    mode: sometimes
`);
    expect(r).toEqual({
      code: 1,
      out: '',
      err: [
        '<stdin>: document 1: kind: "tier" — unknown v1 kind; expected one of node, bgpPeer, hostEndpoint, ipPool, policy, profile, workloadEndpoint',
        '<stdin>: document 2 (v1 ipPool 10.0.0.0/33): metadata.cidr: "10.0.0.0/33" — expected a CIDR such as 10.1.0.0/16',
        '<stdin>: document 3 (v1 ipPool 10.1.0.0/16): spec.ipip.mode: "sometimes" — expected always or cross-subnet',
        '3 errors found',
        '',
      ].join('\n'),
    });
  });

  it('reports a bad item of a v1 list by its item number, once', async () => {
    const r = await convert(`- apiVersion: v1
  kind: node
  metadata: {name: n1}
- apiVersion: v1
  kind: bgpPeer
  metadata: {scope: node, peerIP: 10.0.0.1}
`);
    expect(r).toEqual({
      code: 1,
      out: '',
      err: '<stdin>: document 1, item 2 (v1 bgpPeer): metadata.node: (missing) — expected the node name for scope node\n1 error found\n',
    });
  });

  it('still converts a Kubernetes NetworkPolicy', async () => {
    const r = await convert(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: ns1}
spec: {podSelector: {}}
`);
    expect(r.code).toBe(0);
    expect(parse(r.out)).toMatchObject({
      kind: 'NetworkPolicy',
      metadata: { name: 'knp.default.deny-all', namespace: 'ns1' },
    });
  });
});
