import { describe, expect, it } from 'vitest';
import { defaultResource, isResourceOf } from './index.ts';

describe('isResourceOf', () => {
  const pool = defaultResource('IPPool', { metadata: { name: 'p' }, spec: { cidr: '10.0.0.0/16' } });
  const calicoPolicy = defaultResource('NetworkPolicy', { metadata: { name: 'np', namespace: 'ns' } });
  const k8sPolicy = defaultResource('KubernetesNetworkPolicy', {
    metadata: { name: 'np', namespace: 'ns' },
    spec: { podSelector: {} },
  });

  it('narrows by kind, so the typed spec (with derived defaults) can be read', () => {
    expect(isResourceOf('IPPool', pool)).toBe(true);
    expect(isResourceOf('Node', pool)).toBe(false);
    if (!isResourceOf('IPPool', pool)) throw new Error('unreachable');
    expect(pool.spec.blockSize).toBe(26);
  });

  it('tells Calico and Kubernetes NetworkPolicy apart by apiVersion', () => {
    expect(isResourceOf('NetworkPolicy', calicoPolicy)).toBe(true);
    expect(isResourceOf('KubernetesNetworkPolicy', calicoPolicy)).toBe(false);
    expect(isResourceOf('KubernetesNetworkPolicy', k8sPolicy)).toBe(true);
    expect(isResourceOf('NetworkPolicy', k8sPolicy)).toBe(false);
  });
});
