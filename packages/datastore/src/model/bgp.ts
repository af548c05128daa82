/**
 * BGP kinds: BGPConfiguration, BGPPeer, BGPFilter (api/pkg/apis/projectcalico/v3/bgpconfig.go,
 * bgppeer.go, bgpfilter.go; checks from validateBGPConfigurationSpec / validateBGPPeerSpec).
 */
import { z } from 'zod';
import {
  asNumber,
  checkedString,
  cidrProblem,
  cidrString,
  durationString,
  ipPortProblem,
  ipString,
  secretKeyRef,
} from './field-types.ts';
import { parseCidr } from './ip.ts';
import type { Report } from './issues.ts';
import { kindSchema } from './resource-schema.ts';
import { selectorString } from './selector-field.ts';

export const LOG_SEVERITIES = ['Trace', 'Debug', 'Info', 'Warning', 'Error', 'Fatal'] as const;

/** BGPConfiguration defaults (confd's table), applied to the cluster-wide `default` object only. */
export const BGP_CONFIGURATION_DEFAULTS = {
  asNumber: 64512,
  nodeToNodeMeshEnabled: true,
  listenPort: 179,
  logSeverityScreen: 'Info',
} as const;

/** `aa:nn` (RFC 1997) or `aa:nn:mm` (RFC 8092 large community). */
export function communityValueProblem(value: string): string | undefined {
  const std = /^(\d+):(\d+)$/.exec(value);
  if (std) {
    return Number(std[1]) <= 65535 && Number(std[2]) <= 65535
      ? undefined
      : 'standard community parts must be 0–65535';
  }
  const large = /^(\d+):(\d+):(\d+)$/.exec(value);
  if (large) {
    return large.slice(1).every((p) => Number(p) <= 4294967295)
      ? undefined
      : 'large community parts must be 0–4294967295';
  }
  return 'expected a community "<as>:<value>" or a large community "<as>:<value>:<value>"';
}

// Calico's blocks have `cidr,omitempty`; an empty entry (seen in confd's test data) advertises nothing.
const serviceCidrList = () =>
  z.array(z.strictObject({ cidr: cidrString({ masked: true }).optional() })).optional();

export const bgpConfigurationSpecSchema = z
  .strictObject({
    asNumber: asNumber().optional(),
    nodeToNodeMeshEnabled: z.boolean().optional(),
    listenPort: z.number().int().min(1).max(65535).optional(),
    logSeverityScreen: z.enum(LOG_SEVERITIES).optional(),
    serviceClusterIPs: serviceCidrList(),
    serviceExternalIPs: serviceCidrList(),
    serviceLoadBalancerIPs: serviceCidrList(),
    serviceLoadBalancerAggregation: z.enum(['Enabled', 'Disabled']).optional(),
    communities: z
      .array(z.strictObject({ name: z.string().min(1), value: checkedString(communityValueProblem) }))
      .optional(),
    prefixAdvertisements: z
      .array(
        z.strictObject({ cidr: cidrString({ masked: true }), communities: z.array(z.string()).optional() }),
      )
      .optional(),
    nodeMeshPassword: secretKeyRef().optional(),
    nodeMeshMaxRestartTime: durationString().optional(),
    bindMode: z.enum(['None', 'NodeIP']).optional(),
    ignoredInterfaces: z
      .array(z.string().regex(/^[a-zA-Z0-9_.*-]{1,15}$/, 'expected an interface name or glob'))
      .optional(),
    localWorkloadPeeringIPV4: ipString(4).optional(),
    localWorkloadPeeringIPV6: ipString(6).optional(),
    programClusterRoutes: z.enum(['Enabled', 'Disabled', 'EnabledNoEncapOnly', 'EnabledIPIPOnly']).optional(),
    ipv4NormalRoutePriority: z.number().int().min(1).max(2147483646).optional(),
    ipv6NormalRoutePriority: z.number().int().min(1).max(2147483646).optional(),
  })
  .superRefine((spec, ctx) => {
    // A prefix advertisement's community is either a name defined above or a literal value.
    const names = new Set((spec.communities ?? []).map((c) => c.name));
    spec.prefixAdvertisements?.forEach((adv, i) => {
      adv.communities?.forEach((c, j) => {
        if (names.has(c) || communityValueProblem(c) === undefined) return;
        ctx.addIssue({
          code: 'custom',
          path: ['prefixAdvertisements', i, 'communities', j],
          input: c,
          message:
            'expected the name of a community in spec.communities or a community value "<as>:<value>[:<value>]"',
        });
      });
    });
  })
  .prefault({});

export type BGPConfigurationSpec = z.output<typeof bgpConfigurationSpecSchema>;

export const bgpConfigurationSchema = kindSchema('BGPConfiguration', bgpConfigurationSpecSchema, {
  check: ({ metadata, spec }, report) => {
    // Only the cluster-wide object sets the mesh and the default AS; per-node ones (node.<name>)
    // override node-level settings.
    if (metadata.name !== 'default') {
      for (const field of ['nodeToNodeMeshEnabled', 'asNumber'] as const) {
        if (spec[field] !== undefined)
          report(['spec', field], spec[field], 'may only be set in the BGPConfiguration named "default"');
      }
    }
  },
});

/** Fills confd's defaults into the `default` BGPConfiguration. */
export function deriveBGPConfigurationSpec(name: string, spec: BGPConfigurationSpec): BGPConfigurationSpec {
  if (name !== 'default') return spec;
  return { ...BGP_CONFIGURATION_DEFAULTS, ...spec };
}

const bgpPeerSpecFields = z.strictObject({
  /** Only this node peers; neither node nor nodeSelector = every node (a global peer). */
  node: z.string().min(1).optional(),
  nodeSelector: selectorString().optional(),
  peerIP: checkedString(ipPortProblem).optional(),
  peerSelector: selectorString().optional(),
  asNumber: asNumber().optional(),
  localASNumber: asNumber().optional(),
  keepOriginalNextHop: z.boolean().optional(),
  nextHopMode: z.enum(['Auto', 'Self', 'Keep']).optional(),
  password: secretKeyRef().optional(),
  sourceAddress: z.enum(['UseNodeIP', 'None']).default('UseNodeIP'),
  maxRestartTime: durationString().optional(),
  keepaliveTime: durationString().optional(),
  numAllowedLocalASNumbers: z.number().int().min(0).optional(),
  ttlSecurity: z.number().int().min(0).max(255).optional(),
  reachableBy: ipString().optional(),
  filters: z.array(z.string().min(1)).optional(),
  localWorkloadSelector: selectorString().optional(),
  reversePeering: z.enum(['Auto', 'Manual']).optional(),
});

export type BGPPeerSpec = z.output<typeof bgpPeerSpecFields>;

export const bgpPeerSpecSchema = bgpPeerSpecFields
  .superRefine((spec, ctx) =>
    checkBGPPeerSpec(spec, (p, input, message) =>
      ctx.addIssue({ code: 'custom', path: [...p], input, message }),
    ),
  )
  .prefault({});

function checkBGPPeerSpec(spec: BGPPeerSpec, report: Report): void {
  if (spec.node !== undefined && spec.nodeSelector !== undefined) {
    report(['nodeSelector'], spec.nodeSelector, 'set node or nodeSelector, not both');
  }
  // A peer is an address with an AS, other Calico nodes by selector, or local workloads.
  if (spec.peerIP !== undefined && spec.peerSelector !== undefined) {
    report(['peerSelector'], spec.peerSelector, 'set peerIP or peerSelector, not both');
  } else if (spec.peerSelector !== undefined) {
    if (spec.asNumber !== undefined) {
      report(
        ['asNumber'],
        spec.asNumber,
        'asNumber comes from the selected nodes: leave it unset with peerSelector',
      );
    }
  } else if (spec.peerIP !== undefined || spec.localWorkloadSelector !== undefined) {
    // Calico's CRD rule: a workload peer needs its AS; a peerIP without one is in the cluster's AS.
    if (spec.peerIP === undefined && spec.asNumber === undefined)
      report(['asNumber'], undefined, 'required with localWorkloadSelector');
  } else {
    report(['peerIP'], undefined, 'set peerIP and asNumber, or peerSelector (or localWorkloadSelector)');
  }
  if (
    spec.localWorkloadSelector !== undefined &&
    (spec.peerIP !== undefined || spec.peerSelector !== undefined)
  ) {
    report(
      ['localWorkloadSelector'],
      spec.localWorkloadSelector,
      'cannot be combined with peerIP or peerSelector',
    );
  }
  if (spec.reachableBy !== undefined && spec.peerIP === undefined) {
    report(['reachableBy'], spec.reachableBy, 'requires peerIP');
  }
  if (spec.keepOriginalNextHop && spec.nextHopMode !== undefined) {
    report(
      ['nextHopMode'],
      spec.nextHopMode,
      'set nextHopMode or the deprecated keepOriginalNextHop, not both',
    );
  }
}

export const BGP_FILTER_ACTIONS = ['Accept', 'Reject'] as const;

const bgpFilterRuleSchema = (family: 4 | 6) =>
  z
    .strictObject({
      cidr: cidrString({ family, masked: true }).optional(),
      prefixLength: z
        .strictObject({
          min: z
            .number()
            .int()
            .min(0)
            .max(family === 4 ? 32 : 128)
            .optional(),
          max: z
            .number()
            .int()
            .min(0)
            .max(family === 4 ? 32 : 128)
            .optional(),
        })
        .optional(),
      matchOperator: z.enum(['Equal', 'NotEqual', 'In', 'NotIn']).optional(),
      source: z.enum(['RemotePeers']).optional(),
      interface: z
        .string()
        .regex(/^[a-zA-Z0-9_.*-]{1,15}$/, 'expected an interface name or glob')
        .optional(),
      peerType: z.enum(['eBGP', 'iBGP']).optional(),
      communities: z
        .strictObject({ values: z.array(checkedString(communityValueProblem)).optional() })
        .optional(),
      asPathPrefix: z.array(asNumber()).optional(),
      priority: z.number().int().min(1).max(2147483646).optional(),
      action: z.enum(BGP_FILTER_ACTIONS),
      operations: z
        .array(
          z
            .strictObject({
              addCommunity: z.strictObject({ value: checkedString(communityValueProblem) }).optional(),
              prependASPath: z.strictObject({ prefix: z.array(asNumber()).min(1) }).optional(),
              setPriority: z.strictObject({ value: z.number().int().min(1).max(2147483646) }).optional(),
            })
            .refine(
              (op) => Object.values(op).filter((v) => v !== undefined).length === 1,
              'set exactly one of addCommunity, prependASPath, setPriority',
            ),
        )
        .optional(),
    })
    .superRefine((rule, ctx) => {
      if ((rule.cidr === undefined) !== (rule.matchOperator === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: rule.cidr === undefined ? ['cidr'] : ['matchOperator'],
          input: undefined,
          message: 'cidr and matchOperator must be set together',
        });
      }
      const { min, max } = rule.prefixLength ?? {};
      if (min !== undefined && max !== undefined && min > max) {
        ctx.addIssue({
          code: 'custom',
          path: ['prefixLength', 'min'],
          input: min,
          message: `must be ≤ max (${max})`,
        });
      }
      const cidr = rule.cidr && !cidrProblem(rule.cidr) ? parseCidr(rule.cidr) : undefined;
      if (cidr && min !== undefined && min < cidr.prefixLength) {
        ctx.addIssue({
          code: 'custom',
          path: ['prefixLength', 'min'],
          input: min,
          message: `must be ≥ the cidr's prefix length (${cidr.prefixLength})`,
        });
      }
    });

export const bgpFilterSpecSchema = z
  .strictObject({
    exportV4: z.array(bgpFilterRuleSchema(4)).optional(),
    importV4: z.array(bgpFilterRuleSchema(4)).optional(),
    exportV6: z.array(bgpFilterRuleSchema(6)).optional(),
    importV6: z.array(bgpFilterRuleSchema(6)).optional(),
  })
  .prefault({});

export type BGPFilterSpec = z.output<typeof bgpFilterSpecSchema>;
export type BGPFilterRule = NonNullable<BGPFilterSpec['exportV4']>[number];

export const bgpPeerSchema = kindSchema('BGPPeer', bgpPeerSpecSchema);
export const bgpFilterSchema = kindSchema('BGPFilter', bgpFilterSpecSchema);
