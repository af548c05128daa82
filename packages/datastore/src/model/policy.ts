/**
 * Calico policy kinds (NetworkPolicy, GlobalNetworkPolicy, their staged forms), Profile, Tier and
 * the network sets rules select. Field lists follow api/pkg/apis/projectcalico/v3; `tier`
 * defaults to `default` and `types` from which rule lists are present
 * (api/pkg/defaults/networkpolicy.go).
 */
import { z } from 'zod';
import { cidrString, labelMap } from './field-types.ts';
import type { Report } from './issues.ts';
import { globalNetworkPolicyNameProblem, networkPolicyNameProblem, tierNameProblem } from './names.ts';
import { plainSelector, ruleSchema } from './policy-rule.ts';
import { kindSchema } from './resource-schema.ts';

export const POLICY_TYPES = ['Ingress', 'Egress'] as const;
export type PolicyType = (typeof POLICY_TYPES)[number];
export const STAGED_ACTIONS = ['Set', 'Delete', 'Learn', 'Ignore'] as const;

const MAX_RULES = 1024;

const tierField = () =>
  z
    .string()
    .superRefine((tier, ctx) => {
      const message = tierNameProblem(tier);
      if (message) ctx.addIssue({ code: 'custom', input: tier, message });
    })
    .default('default');

const typesField = () =>
  z
    .array(z.enum(POLICY_TYPES))
    .min(1)
    // No .max(2): zod checks lengths before items, and the bad items are what users need to see;
    // uniqueness bounds the list to two anyway.
    .refine((types) => new Set(types).size === types.length, 'each type may appear once')
    .optional();

const commonPolicyFields = {
  tier: tierField(),
  /** Lower orders apply first; absent = after every ordered policy. */
  order: z.number().optional(),
  selector: plainSelector().optional(),
  types: typesField(),
  ingress: z.array(ruleSchema).max(MAX_RULES).optional(),
  egress: z.array(ruleSchema).max(MAX_RULES).optional(),
  serviceAccountSelector: plainSelector().optional(),
  performanceHints: z.array(z.enum(['AssumeNeededOnEveryNode'])).optional(),
};

const globalPolicyExtraFields = {
  namespaceSelector: plainSelector().optional(),
  doNotTrack: z.boolean().optional(),
  preDNAT: z.boolean().optional(),
  applyOnForward: z.boolean().optional(),
};

/** The `types` Calico stores when the user gave none: derived from which rule lists exist. */
export function defaultPolicyTypes(spec: {
  ingress?: unknown[] | undefined;
  egress?: unknown[] | undefined;
}): PolicyType[] {
  const hasEgress = (spec.egress?.length ?? 0) > 0;
  const hasIngress = (spec.ingress?.length ?? 0) > 0;
  if (hasEgress && hasIngress) return ['Ingress', 'Egress'];
  if (hasEgress) return ['Egress'];
  return ['Ingress'];
}

function checkGlobalPolicyFlags(
  spec: {
    preDNAT?: boolean | undefined;
    doNotTrack?: boolean | undefined;
    applyOnForward?: boolean | undefined;
    egress?: unknown[] | undefined;
    types?: PolicyType[] | undefined;
  },
  report: Report,
): void {
  if (spec.preDNAT && spec.doNotTrack)
    report(['spec', 'preDNAT'], true, 'preDNAT and doNotTrack cannot both be true');
  if ((spec.preDNAT || spec.doNotTrack) && !spec.applyOnForward) {
    report(
      ['spec', 'applyOnForward'],
      spec.applyOnForward,
      'applyOnForward must be true when preDNAT or doNotTrack is',
    );
  }
  if (spec.preDNAT) {
    if ((spec.egress?.length ?? 0) > 0)
      report(['spec', 'egress'], spec.egress, 'preDNAT policies cannot have egress rules');
    if (spec.types?.includes('Egress'))
      report(['spec', 'types'], spec.types, 'preDNAT policies cannot have type Egress');
  }
}

/**
 * A policy named `<tier>.<name>` must be in that tier: older Calico required the prefix for
 * non-default tiers, and a mismatch means the user is looking at the wrong tier. Runs even when
 * other fields are broken, so it reads its input defensively.
 */
function tierPrefixCheck(nameProblem: (name: string) => string | undefined) {
  return (resource: { metadata?: unknown; spec?: unknown }, report: Report): void => {
    const name = (resource.metadata as { name?: unknown } | undefined)?.name;
    const tier = (resource.spec as { tier?: unknown } | undefined)?.tier ?? 'default';
    if (typeof name !== 'string' || typeof tier !== 'string' || nameProblem(name) !== undefined) return;
    if (/^(knp|ossg)\.default\./.test(name)) return;
    const dot = name.indexOf('.');
    if (dot < 0) return;
    const prefix = name.slice(0, dot);
    if (prefix !== tier) {
      report(
        ['metadata', 'name'],
        name,
        `the name's tier prefix "${prefix}" does not match spec.tier "${tier}"`,
      );
    }
  };
}

export const networkPolicySpecSchema = z.strictObject(commonPolicyFields).prefault({});
export type NetworkPolicySpec = z.output<typeof networkPolicySpecSchema>;

export const networkPolicySchema = kindSchema('NetworkPolicy', networkPolicySpecSchema, {
  nameProblem: networkPolicyNameProblem,
  robustCheck: tierPrefixCheck(networkPolicyNameProblem),
});

export const globalNetworkPolicySpecSchema = z
  .strictObject({ ...commonPolicyFields, ...globalPolicyExtraFields })
  .prefault({});
export type GlobalNetworkPolicySpec = z.output<typeof globalNetworkPolicySpecSchema>;

export const globalNetworkPolicySchema = kindSchema('GlobalNetworkPolicy', globalNetworkPolicySpecSchema, {
  nameProblem: globalNetworkPolicyNameProblem,
  robustCheck: tierPrefixCheck(globalNetworkPolicyNameProblem),
  check: ({ spec }, report) => checkGlobalPolicyFlags(spec, report),
});

const stagedActionField = () => z.enum(STAGED_ACTIONS).default('Set');

export const stagedNetworkPolicySpecSchema = z
  .strictObject({ ...commonPolicyFields, stagedAction: stagedActionField() })
  .prefault({});
export type StagedNetworkPolicySpec = z.output<typeof stagedNetworkPolicySpecSchema>;

export const stagedNetworkPolicySchema = kindSchema('StagedNetworkPolicy', stagedNetworkPolicySpecSchema, {
  nameProblem: networkPolicyNameProblem,
  robustCheck: tierPrefixCheck(networkPolicyNameProblem),
});

export const stagedGlobalNetworkPolicySpecSchema = z
  .strictObject({ ...commonPolicyFields, ...globalPolicyExtraFields, stagedAction: stagedActionField() })
  .prefault({});
export type StagedGlobalNetworkPolicySpec = z.output<typeof stagedGlobalNetworkPolicySpecSchema>;

export const stagedGlobalNetworkPolicySchema = kindSchema(
  'StagedGlobalNetworkPolicy',
  stagedGlobalNetworkPolicySpecSchema,
  {
    nameProblem: globalNetworkPolicyNameProblem,
    robustCheck: tierPrefixCheck(globalNetworkPolicyNameProblem),
    check: ({ spec }, report) => checkGlobalPolicyFlags(spec, report),
  },
);

export const profileSpecSchema = z
  .strictObject({
    ingress: z.array(ruleSchema).max(MAX_RULES).optional(),
    egress: z.array(ruleSchema).max(MAX_RULES).optional(),
    /** Labels every endpoint using this profile inherits. */
    labelsToApply: labelMap().optional(),
  })
  .prefault({});
export type ProfileSpec = z.output<typeof profileSpecSchema>;
export const profileSchema = kindSchema('Profile', profileSpecSchema);

/** Tiers whose order Calico fixes (tier.go CEL rules). */
export const WELL_KNOWN_TIER_ORDERS: Readonly<Record<string, number>> = {
  'kube-admin': 1_000,
  default: 1_000_000,
  'kube-baseline': 10_000_000,
};

export const tierSpecSchema = z
  .strictObject({
    order: z.number().optional(),
    defaultAction: z.enum(['Deny', 'Pass']).default('Deny'),
  })
  .prefault({});
export type TierSpec = z.output<typeof tierSpecSchema>;

export const tierSchema = kindSchema('Tier', tierSpecSchema, {
  nameProblem: tierNameProblem,
  check: ({ metadata, spec }, report) => {
    const fixed = WELL_KNOWN_TIER_ORDERS[metadata.name];
    if (fixed !== undefined && spec.order !== undefined && spec.order !== fixed) {
      report(['spec', 'order'], spec.order, `the ${metadata.name} tier's order is fixed at ${fixed}`);
    }
  },
});

// Calico's `cidrs` validator: a CIDR (host bits may be set) or a single address.
const setNets = () => z.array(cidrString({ allowBareIp: true })).optional();

export const networkSetSpecSchema = z.strictObject({ nets: setNets() }).prefault({});
export type NetworkSetSpec = z.output<typeof networkSetSpecSchema>;
export const networkSetSchema = kindSchema('NetworkSet', networkSetSpecSchema);

export const globalNetworkSetSpecSchema = z.strictObject({ nets: setNets() }).prefault({});
export type GlobalNetworkSetSpec = z.output<typeof globalNetworkSetSpecSchema>;
export const globalNetworkSetSchema = kindSchema('GlobalNetworkSet', globalNetworkSetSpecSchema);
