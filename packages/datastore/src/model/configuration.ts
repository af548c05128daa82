/**
 * Cluster configuration kinds: FelixConfiguration, KubeControllersConfiguration,
 * ClusterInformation. Felix has about 200 settings and kube-controllers grows new ones each
 * release, so those two keep fields we don't model (passthrough) while checking the ones we do.
 */
import { z } from 'zod';
import { LOG_SEVERITIES } from './bgp.ts';
import { cidrString, durationString, ipString, labelMap } from './field-types.ts';
import { protocolSchema } from './policy-rule.ts';
import { kindSchema } from './resource-schema.ts';
import { selectorString } from './selector-field.ts';

const port = () => z.number().int().min(0).max(65535);
const enabledDisabled = () => z.enum(['Enabled', 'Disabled']);

const protoPortSchema = z.strictObject({
  protocol: protocolSchema,
  port: port(),
  net: cidrString().optional(),
});

export const felixConfigurationSpecSchema = z
  .looseObject({
    /** Felix settings for the nodes this selects (a named, non-`default`, non-`node.` object). */
    nodeSelector: selectorString().optional(),
    logSeverityScreen: z.enum(LOG_SEVERITIES).optional(),
    logSeverityFile: z.enum(LOG_SEVERITIES).optional(),
    logFilePath: z.string().optional(),
    logPrefix: z.string().optional(),
    reportingInterval: durationString().optional(),
    ipv6Support: z.boolean().optional(),
    ipipEnabled: z.boolean().optional(),
    ipipMTU: z.number().int().min(0).optional(),
    vxlanEnabled: z.boolean().optional(),
    vxlanVNI: z.number().int().min(1).max(16777215).optional(),
    vxlanPort: port().optional(),
    vxlanMTU: z.number().int().min(0).optional(),
    vxlanMTUV6: z.number().int().min(0).optional(),
    bpfEnabled: z.boolean().optional(),
    nftablesMode: z.enum(['Enabled', 'Disabled', 'Auto']).optional(),
    iptablesBackend: z.enum(['Legacy', 'NFT', 'Auto']).optional(),
    iptablesRefreshInterval: durationString().optional(),
    ipsetsRefreshInterval: durationString().optional(),
    routeRefreshInterval: durationString().optional(),
    interfacePrefix: z.string().min(1).optional(),
    chainInsertMode: z.enum(['Insert', 'Append']).optional(),
    defaultEndpointToHostAction: z.enum(['Drop', 'Accept', 'Return']).optional(),
    failsafeInboundHostPorts: z.array(protoPortSchema).optional(),
    failsafeOutboundHostPorts: z.array(protoPortSchema).optional(),
    healthEnabled: z.boolean().optional(),
    healthHost: z.string().optional(),
    healthPort: port().optional(),
    prometheusMetricsEnabled: z.boolean().optional(),
    prometheusMetricsPort: port().optional(),
    iptablesMarkMask: z.number().int().min(0).max(0xffffffff).optional(),
    natOutgoingAddress: ipString().optional(),
    natPortRange: z
      .union([z.number().int(), z.string().regex(/^\d+(:\d+)?$/, 'expected "<first>:<last>"')])
      .optional(),
    programClusterRoutes: enabledDisabled().optional(),
    routeSource: z.enum(['WorkloadIPs', 'CalicoIPAM']).optional(),
    routeTableRanges: z
      .array(z.strictObject({ min: z.number().int().min(1), max: z.number().int().min(1) }))
      .optional(),
    wireguardEnabled: z.boolean().optional(),
    wireguardEnabledV6: z.boolean().optional(),
    serviceLoopPrevention: z.enum(['Drop', 'Reject', 'Disabled']).optional(),
    mtuIfacePattern: z.string().optional(),
    workloadSourceSpoofing: z.enum(['Disabled', 'Any']).optional(),
  })
  .prefault({});

export type FelixConfigurationSpec = z.output<typeof felixConfigurationSpecSchema>;
export const felixConfigurationSchema = kindSchema('FelixConfiguration', felixConfigurationSpecSchema);

const reconcilerPeriod = () => durationString().optional();

const hostEndpointTemplateSchema = z.looseObject({
  generateName: z.string().min(1).optional(),
  interfaceCIDRs: z.array(cidrString({ allowBareIp: true })).optional(),
  interfacePattern: z.string().optional(),
  labels: labelMap().optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  nodeSelector: selectorString().optional(),
});

const controllersSchema = z.looseObject({
  node: z
    .looseObject({
      reconcilerPeriod: reconcilerPeriod(),
      syncLabels: enabledDisabled().optional(),
      hostEndpoint: z
        .looseObject({
          autoCreate: enabledDisabled().optional(),
          createDefaultHostEndpoint: enabledDisabled().optional(),
          templates: z.array(hostEndpointTemplateSchema).optional(),
        })
        .optional(),
      leakGracePeriod: durationString().optional(),
    })
    .optional(),
  policy: z.looseObject({ reconcilerPeriod: reconcilerPeriod() }).optional(),
  workloadEndpoint: z.looseObject({ reconcilerPeriod: reconcilerPeriod() }).optional(),
  serviceAccount: z.looseObject({ reconcilerPeriod: reconcilerPeriod() }).optional(),
  namespace: z.looseObject({ reconcilerPeriod: reconcilerPeriod() }).optional(),
  loadBalancer: z
    .looseObject({ assignIPs: z.enum(['AllServices', 'RequestedServicesOnly']).optional() })
    .optional(),
  migration: z.looseObject({ policyNameMigrator: enabledDisabled().optional() }).optional(),
});

/** kube-controllers' own defaults for the top-level settings; an absent controller stays off. */
export const kubeControllersConfigurationSpecSchema = z
  .looseObject({
    logSeverityScreen: z.enum(LOG_SEVERITIES).default('Info'),
    healthChecks: enabledDisabled().default('Enabled'),
    etcdV3CompactionPeriod: durationString().default('10m'),
    prometheusMetricsPort: port().default(9094),
    debugProfilePort: port().optional(),
    controllers: controllersSchema.prefault({}),
  })
  .prefault({});

export type KubeControllersConfigurationSpec = z.output<typeof kubeControllersConfigurationSpecSchema>;

const singleton = (kind: string) => (name: string) =>
  name === 'default' ? undefined : `${kind} is a singleton: the name must be "default"`;

export const kubeControllersConfigurationSchema = kindSchema(
  'KubeControllersConfiguration',
  kubeControllersConfigurationSpecSchema,
  { nameProblem: singleton('KubeControllersConfiguration') },
);

export const clusterInformationSpecSchema = z
  .strictObject({
    clusterGUID: z.string().optional(),
    clusterType: z.string().optional(),
    calicoVersion: z.string().optional(),
    datastoreReady: z.boolean().optional(),
    variant: z.string().optional(),
  })
  .prefault({});

export type ClusterInformationSpec = z.output<typeof clusterInformationSpecSchema>;
export const clusterInformationSchema = kindSchema('ClusterInformation', clusterInformationSpecSchema, {
  nameProblem: singleton('ClusterInformation'),
});
