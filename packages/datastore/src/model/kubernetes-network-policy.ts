/**
 * networking.k8s.io/v1 NetworkPolicy, validated with the API server's own rules (k8s.io/api
 * networking/v1 and apis/networking/validation), and Calico's StagedKubernetesNetworkPolicy,
 * which carries the same spec plus a staged action.
 */
import { z } from 'zod';
import { checkedString, cidrProblem, labelMap } from './field-types.ts';
import { cidrContains, parseCidr } from './ip.ts';
import { labelKeyProblem } from './names.ts';
import { STAGED_ACTIONS } from './policy.ts';
import { kindSchema } from './resource-schema.ts';

export const labelSelectorSchema = z.strictObject({
  matchLabels: labelMap().optional(),
  matchExpressions: z
    .array(
      z
        .strictObject({
          key: checkedString(labelKeyProblem),
          operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
          values: z.array(z.string()).optional(),
        })
        .superRefine((expr, ctx) => {
          const n = expr.values?.length ?? 0;
          if ((expr.operator === 'In' || expr.operator === 'NotIn') && n === 0) {
            ctx.addIssue({
              code: 'custom',
              path: ['values'],
              input: expr.values,
              message: `${expr.operator} needs at least one value`,
            });
          }
          if ((expr.operator === 'Exists' || expr.operator === 'DoesNotExist') && n > 0) {
            ctx.addIssue({
              code: 'custom',
              path: ['values'],
              input: expr.values,
              message: `${expr.operator} takes no values`,
            });
          }
        }),
    )
    .optional(),
});
export type LabelSelector = z.output<typeof labelSelectorSchema>;

const k8sPortSchema = z
  .strictObject({
    protocol: z.enum(['TCP', 'UDP', 'SCTP']).default('TCP'),
    port: z
      .union([z.number(), z.string()], { error: 'expected a port number or name' })
      .superRefine((port, ctx) => {
        const ok =
          typeof port === 'number'
            ? Number.isInteger(port) && port >= 1 && port <= 65535
            : port.length <= 15 && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(port) && /[a-z]/.test(port);
        if (!ok) {
          ctx.addIssue({
            code: 'custom',
            input: port,
            message: 'expected a port number 1–65535 or an IANA port name',
          });
        }
      })
      .optional(),
    endPort: z.number().int().min(1).max(65535).optional(),
  })
  .superRefine((p, ctx) => {
    if (p.endPort === undefined) return;
    if (typeof p.port !== 'number') {
      ctx.addIssue({
        code: 'custom',
        path: ['endPort'],
        input: p.endPort,
        message: 'endPort requires a numeric port',
      });
    } else if (p.endPort < p.port) {
      ctx.addIssue({
        code: 'custom',
        path: ['endPort'],
        input: p.endPort,
        message: `endPort must be ≥ port (${p.port})`,
      });
    }
  });

const ipBlockSchema = z
  .strictObject({
    cidr: checkedString((v) => cidrProblem(v)),
    except: z.array(checkedString((v) => cidrProblem(v))).optional(),
  })
  .superRefine((block, ctx) => {
    const outer = parseCidr(block.cidr);
    if (!outer) return;
    block.except?.forEach((e, i) => {
      const inner = parseCidr(e);
      if (inner && (!cidrContains(outer, inner) || inner.prefixLength === outer.prefixLength)) {
        ctx.addIssue({
          code: 'custom',
          path: ['except', i],
          input: e,
          message: `must lie strictly inside ${block.cidr}`,
        });
      }
    });
  });

const peerSchema = z
  .strictObject({
    podSelector: labelSelectorSchema.optional(),
    namespaceSelector: labelSelectorSchema.optional(),
    ipBlock: ipBlockSchema.optional(),
  })
  .superRefine((peer, ctx) => {
    if (!peer.podSelector && !peer.namespaceSelector && !peer.ipBlock) {
      ctx.addIssue({
        code: 'custom',
        input: peer,
        message: 'set at least one of podSelector, namespaceSelector, ipBlock',
      });
    }
    if (peer.ipBlock && (peer.podSelector || peer.namespaceSelector)) {
      ctx.addIssue({
        code: 'custom',
        path: ['ipBlock'],
        input: peer.ipBlock,
        message: 'ipBlock cannot be combined with podSelector or namespaceSelector',
      });
    }
  });

export const kubernetesNetworkPolicySpecSchema = z
  .strictObject({
    podSelector: labelSelectorSchema.prefault({}),
    policyTypes: z
      .array(z.enum(['Ingress', 'Egress']))
      .refine((t) => new Set(t).size === t.length, 'each type may appear once')
      .optional(),
    ingress: z
      .array(
        z.strictObject({ from: z.array(peerSchema).optional(), ports: z.array(k8sPortSchema).optional() }),
      )
      .optional(),
    egress: z
      .array(z.strictObject({ to: z.array(peerSchema).optional(), ports: z.array(k8sPortSchema).optional() }))
      .optional(),
  })
  .prefault({});

export type KubernetesNetworkPolicySpec = Omit<
  z.output<typeof kubernetesNetworkPolicySpecSchema>,
  'policyTypes'
> & {
  policyTypes: ('Ingress' | 'Egress')[];
};

/**
 * Kubernetes' defaulting of policyTypes: always Ingress, plus Egress when an egress section is
 * present (unlike Calico's own policies, an egress-only Kubernetes policy also isolates ingress).
 */
export function defaultKubernetesPolicyTypes(spec: {
  egress?: unknown[] | undefined;
}): ('Ingress' | 'Egress')[] {
  return spec.egress !== undefined ? ['Ingress', 'Egress'] : ['Ingress'];
}

export const kubernetesNetworkPolicySchema = kindSchema(
  'KubernetesNetworkPolicy',
  kubernetesNetworkPolicySpecSchema,
);

export const stagedKubernetesNetworkPolicySpecSchema = z
  .strictObject({
    ...kubernetesNetworkPolicySpecSchema.unwrap().shape,
    stagedAction: z.enum(STAGED_ACTIONS).default('Set'),
  })
  .prefault({});

export type StagedKubernetesNetworkPolicySpec = Omit<
  z.output<typeof stagedKubernetesNetworkPolicySpecSchema>,
  'policyTypes'
> & { policyTypes: ('Ingress' | 'Egress')[] };

export const stagedKubernetesNetworkPolicySchema = kindSchema(
  'StagedKubernetesNetworkPolicy',
  stagedKubernetesNetworkPolicySpecSchema,
);
