// The background policy set the policy and node benches load: a GlobalNetworkPolicy every third,
// a namespaced NetworkPolicy otherwise; each with two ingress rules (a label selector on remote
// pods + a port; a /24 net + port 443) and one egress rule (nets + UDP 53); one in twenty selects
// local pods (the caller's selector), the rest a label no pod has.
import type { ResourceInput } from '@calico-ts/datastore';

export type BenchPolicy =
  | { kind: 'NetworkPolicy'; body: ResourceInput<'NetworkPolicy'> }
  | { kind: 'GlobalNetworkPolicy'; body: ResourceInput<'GlobalNetworkPolicy'> };

export interface PolicySetShape {
  /** Namespace of namespaced policy k. */
  namespace: (k: number) => string;
  /** Selector of the one policy in twenty that selects local pods. */
  localSelector: (k: number) => string;
}

/** Background policy k. */
export function benchPolicy(k: number, shape: PolicySetShape): BenchPolicy {
  const selector = k % 20 === 0 ? shape.localSelector(k) : `app == 'svc-${k}'`;
  const spec = {
    order: 100 + (k % 50),
    selector,
    types: ['Ingress', 'Egress'] as ('Ingress' | 'Egress')[],
    ingress: [
      {
        action: 'Allow' as const,
        protocol: 'TCP',
        source: { selector: `role == 'r-${k % 100}'` },
        destination: { ports: [8000 + (k % 1000)] },
      },
      {
        action: 'Allow' as const,
        protocol: 'TCP',
        source: { nets: [`172.${16 + (k % 16)}.${(k >> 4) & 255}.0/24`] },
        destination: { ports: [443] },
      },
    ],
    egress: [
      { action: 'Allow' as const, protocol: 'UDP', destination: { nets: ['10.0.0.0/8'], ports: [53] } },
    ],
  };
  return k % 3 === 0
    ? { kind: 'GlobalNetworkPolicy', body: { metadata: { name: `bench-${k}` }, spec } }
    : {
        kind: 'NetworkPolicy',
        body: { metadata: { name: `bench-${k}`, namespace: shape.namespace(k) }, spec },
      };
}

/** Runs `fn` over from..to-1 with `width` calls in flight. */
export async function pool(
  from: number,
  to: number,
  width: number,
  fn: (k: number) => Promise<unknown>,
): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < to) await fn(next++);
    }),
  );
}
