import { describe, expect, it } from 'vitest';
import { defaultResource, type ResourceInput, validateResource } from './index.ts';
import {
  k8sLabelSelectorToCalico,
  kubernetesNetworkPolicyToCalico,
  namespaceProfile,
  serviceAccountProfile,
  simplifyPorts,
} from './k8s-network-policy-conversion.ts';

const ORCH = "projectcalico.org/orchestrator == 'k8s'";

function knp(
  spec: ResourceInput<'KubernetesNetworkPolicy'>['spec'],
  name = 'test.policy',
  namespace = 'ns1',
) {
  return defaultResource('KubernetesNetworkPolicy', {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace },
    spec,
  });
}

describe('kubernetesNetworkPolicyToCalico', () => {
  it('names the policy knp.default.<name> in tier default at order 1000 and scopes the pod selector to k8s pods', () => {
    const np = kubernetesNetworkPolicyToCalico(
      knp({
        podSelector: { matchLabels: { label2: 'value2', label: 'value' } },
        ingress: [{ from: [{ podSelector: { matchLabels: { k2: 'v2', k: 'v' } } }], ports: [{ port: 80 }] }],
      }),
    );
    expect(np.kind).toBe('NetworkPolicy');
    expect(np.apiVersion).toBe('projectcalico.org/v3');
    expect(np.metadata).toMatchObject({ name: 'knp.default.test.policy', namespace: 'ns1' });
    expect(np.spec.tier).toBe('default');
    expect(np.spec.order).toBe(1000);
    expect(np.spec.selector).toBe(`${ORCH} && label == 'value' && label2 == 'value2'`);
    expect(np.spec.types).toEqual(['Ingress']);
    expect(np.spec.ingress).toEqual([
      {
        action: 'Allow',
        protocol: 'TCP',
        source: { selector: `${ORCH} && k == 'v' && k2 == 'v2'` },
        destination: { ports: [80] },
      },
    ]);
    expect(np.spec.egress).toBeUndefined();
  });

  it('converts every matchExpressions operator, after matchLabels', () => {
    const sel = k8sLabelSelectorToCalico(
      {
        matchLabels: { app: 'db' },
        matchExpressions: [
          { key: 'k1', operator: 'In', values: ['a', 'b'] },
          { key: 'k2', operator: 'NotIn', values: ['c'] },
          { key: 'k3', operator: 'Exists' },
          { key: 'k4', operator: 'DoesNotExist' },
        ],
      },
      'pod',
    );
    expect(sel).toBe(
      `${ORCH} && app == 'db' && k1 in { 'a', 'b' } && k2 not in { 'c' } && has(k3) && ! has(k4)`,
    );
  });

  it('treats an empty podSelector as every pod of the namespace', () => {
    const np = kubernetesNetworkPolicyToCalico(knp({ podSelector: {}, policyTypes: ['Ingress'] }));
    expect(np.spec.selector).toBe(ORCH);
    expect(np.spec.ingress).toBeUndefined();
    expect(np.spec.types).toEqual(['Ingress']);
  });

  it('maps a namespaceSelector: absent = policy namespace, {} = all(), labels as given (prefixed later)', () => {
    const np = kubernetesNetworkPolicyToCalico(
      knp({
        podSelector: {},
        ingress: [
          {
            from: [
              { podSelector: { matchLabels: { pod: 'b' } } },
              { namespaceSelector: {} },
              { namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'a' } } },
            ],
          },
        ],
      }),
    );
    expect(np.spec.ingress?.map((r) => r.source)).toEqual([
      { selector: `${ORCH} && pod == 'b'` },
      { selector: ORCH, namespaceSelector: 'all()' },
      { selector: `${ORCH} && pod == 'a'`, namespaceSelector: "ns == 'y'" },
    ]);
  });

  it('turns ipBlock into nets/notNets in network form', () => {
    const np = kubernetesNetworkPolicyToCalico(
      knp({
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '10.2.0.0/16'] } }] }],
      }),
    );
    expect(np.spec.types).toEqual(['Egress']);
    expect(np.spec.egress).toEqual([
      { action: 'Allow', destination: { nets: ['10.0.0.0/8'], notNets: ['10.1.0.0/16', '10.2.0.0/16'] } },
    ]);
    expect(np.spec.ingress).toBeUndefined();
  });

  it('groups ports by protocol (sorted), lets a protocol-only entry win, merges ranges and keeps named ports', () => {
    const np = kubernetesNetworkPolicyToCalico(
      knp({
        podSelector: {},
        ingress: [
          {
            ports: [
              { protocol: 'UDP', port: 53 },
              { protocol: 'TCP', port: 80 },
              { protocol: 'TCP', port: 'http-alt' },
              { protocol: 'TCP', port: 81 },
              { protocol: 'TCP', port: 82 },
              { protocol: 'TCP', port: 90, endPort: 92 },
              { protocol: 'SCTP', port: 7 },
              { protocol: 'SCTP' },
            ],
          },
        ],
      }),
    );
    expect(np.spec.ingress).toEqual([
      { action: 'Allow', protocol: 'SCTP' },
      { action: 'Allow', protocol: 'TCP', destination: { ports: ['http-alt', '80:82', '90:92'] } },
      { action: 'Allow', protocol: 'UDP', destination: { ports: [53] } },
    ]);
  });

  it('reads an entry without port or protocol as all TCP ports, and no ports at all as anything', () => {
    const np = kubernetesNetworkPolicyToCalico(
      knp({ podSelector: {}, ingress: [{ ports: [{}] }, {}], egress: [{ to: [] }] }),
    );
    expect(np.spec.ingress).toEqual([{ action: 'Allow', protocol: 'TCP' }, { action: 'Allow' }]);
    expect(np.spec.egress).toEqual([{ action: 'Allow' }]);
  });

  it('keeps an endPort range and a named port as they are', () => {
    const np = kubernetesNetworkPolicyToCalico(
      knp({
        podSelector: {},
        ingress: [{ ports: [{ port: 8000, endPort: 8080 }] }, { ports: [{ port: 'serve-80-tcp' }] }],
      }),
    );
    expect(np.spec.ingress).toEqual([
      { action: 'Allow', protocol: 'TCP', destination: { ports: ['8000:8080'] } },
      { action: 'Allow', protocol: 'TCP', destination: { ports: ['serve-80-tcp'] } },
    ]);
  });

  it('emits one rule per protocol × peer', () => {
    const np = kubernetesNetworkPolicyToCalico(
      knp({
        podSelector: {},
        egress: [
          {
            to: [{ podSelector: { matchLabels: { a: '1' } } }, { podSelector: { matchLabels: { b: '2' } } }],
            ports: [{ protocol: 'UDP', port: 53 }, { port: 53 }],
          },
        ],
      }),
    );
    expect(np.spec.egress?.map((r) => [r.protocol, r.destination?.selector])).toEqual([
      ['TCP', `${ORCH} && a == '1'`],
      ['TCP', `${ORCH} && b == '2'`],
      ['UDP', `${ORCH} && a == '1'`],
      ['UDP', `${ORCH} && b == '2'`],
    ]);
  });

  it('follows Kubernetes policyTypes defaulting: an egress section also isolates ingress', () => {
    const np = kubernetesNetworkPolicyToCalico(knp({ podSelector: {}, egress: [{}] }));
    expect(np.spec.types).toEqual(['Ingress', 'Egress']);
  });

  it('produces a NetworkPolicy the model accepts unchanged', () => {
    const np = kubernetesNetworkPolicyToCalico(
      knp({
        podSelector: { matchLabels: { app: 'web' } },
        ingress: [
          {
            from: [
              { namespaceSelector: { matchLabels: { team: 'a' } } },
              { ipBlock: { cidr: '192.168.0.0/16' } },
            ],
            ports: [{ port: 80 }, { port: 'https' }],
          },
        ],
        egress: [{ ports: [{ protocol: 'UDP', port: 53 }] }],
      }),
    );
    const checked = validateResource('NetworkPolicy', np);
    expect(checked.ok).toBe(true);
    if (checked.ok) expect(checked.value.spec).toEqual(np.spec);
  });
});

describe('simplifyPorts', () => {
  it('returns short or single-numeric lists unchanged', () => {
    expect(simplifyPorts([80])).toEqual([80]);
    expect(simplifyPorts(['b', 80, 'a'])).toEqual(['b', 80, 'a']);
  });
  it('merges adjacent and duplicate ports into ranges after the named ports', () => {
    expect(simplifyPorts([9090, 'foo', 82, 80, 81, 81, '100:101', 102])).toEqual([
      'foo',
      '80:82',
      '100:102',
      9090,
    ]);
  });
});

describe('namespace and service account profiles', () => {
  it('kns.<ns> allows all and applies pcns.* labels plus the namespace name', () => {
    const p = namespaceProfile('x', { ns: 'x', 'kubernetes.io/metadata.name': 'x' });
    expect(p.metadata.name).toBe('kns.x');
    expect(p.spec.ingress).toEqual([{ action: 'Allow' }]);
    expect(p.spec.egress).toEqual([{ action: 'Allow' }]);
    expect(p.spec.labelsToApply).toEqual({
      'pcns.ns': 'x',
      'pcns.kubernetes.io/metadata.name': 'x',
      'pcns.projectcalico.org/name': 'x',
    });
    expect(validateResource('Profile', p).ok).toBe(true);
  });
  it('ksa.<ns>.<sa> carries pcsa.* labels and no rules', () => {
    const p = serviceAccountProfile('x', 'builder', { role: 'ci' });
    expect(p.metadata.name).toBe('ksa.x.builder');
    expect(p.spec.ingress).toBeUndefined();
    expect(p.spec.labelsToApply).toEqual({ 'pcsa.role': 'ci', 'pcsa.projectcalico.org/name': 'builder' });
  });
});
