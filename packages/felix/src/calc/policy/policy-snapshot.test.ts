import { defaultResource, namespaceProfile } from '@calico-ts/datastore';
import { describe, expect, it } from 'vitest';
import { explainFlow, policySnapshot } from './policy-snapshot.ts';
import { knp } from './policy-test-model.ts';

const wep = (namespace: string, pod: string, ip: string, labels: Record<string, string> = {}) =>
  defaultResource('WorkloadEndpoint', {
    // The orchestrator label the CNI plugin writes: Kubernetes policies select only k8s pods.
    metadata: {
      name: `node-1-k8s-${pod}-eth0`,
      namespace,
      labels: { pod, 'projectcalico.org/orchestrator': 'k8s', ...labels },
    },
    spec: {
      node: 'node-1',
      pod,
      interfaceName: `cali${pod}`,
      ipNetworks: [`${ip}/32`],
      profiles: [`kns.${namespace}`],
    },
  });

describe('policySnapshot and explainFlow', () => {
  const snapshot = policySnapshot({
    profiles: [namespaceProfile('x', { ns: 'x' }), namespaceProfile('y', { ns: 'y' })],
    kubernetesNetworkPolicies: [
      knp('x', 'from-y-b', {
        podSelector: {},
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [
              { namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } },
            ],
          },
        ],
      }),
    ],
    workloadEndpoints: [wep('x', 'a', '10.0.0.1'), wep('y', 'a', '10.0.0.2'), wep('y', 'b', '10.0.0.3')],
  });
  const tcp80 = (srcIp: string, dstIp: string) => ({
    protocol: 'TCP',
    srcIp,
    dstIp,
    srcPort: 40000,
    dstPort: 80,
  });

  it('finds endpoints by address and explains both directions', () => {
    const denied = explainFlow(snapshot, tcp80('10.0.0.2', '10.0.0.1'));
    expect(denied.source?.name).toBe('y/node-1-k8s-a-eth0');
    expect(denied.allowed).toBe(false);
    expect(denied.egress.decision).toEqual({
      by: 'profile',
      profile: 'kns.y',
      ruleIndex: 0,
      action: 'allow',
    });
    expect(denied.ingress.decision).toEqual({ by: 'endOfTier', tier: 'default' });

    const allowed = explainFlow(snapshot, tcp80('10.0.0.3', '10.0.0.1'));
    expect(allowed.allowed).toBe(true);
    expect(allowed.ingress.decision).toMatchObject({ by: 'rule', policy: 'knp/x/from-y-b', action: 'allow' });
  });

  it('treats an address outside every endpoint as unpoliced on its side', () => {
    const v = explainFlow(snapshot, tcp80('192.0.2.9', '10.0.0.2'));
    expect(v.source).toBeUndefined();
    expect(v.egress.decision).toEqual({ by: 'notAnEndpoint' });
    expect(v.allowed).toBe(true);
  });
});
