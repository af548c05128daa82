/**
 * Node, WorkloadEndpoint and HostEndpoint (libcalico-go internalapi node.go,
 * workloadendpoint.go; api hostendpoint.go).
 */
import { z } from 'zod';
import { HOST_VETH_MAC } from '../calico-constants.ts';
import { asNumber, checkedString, cidrString, ipString } from './field-types.ts';
import { subdomainProblem } from './names.ts';
import { protocolSchema } from './policy-rule.ts';
import { kindSchema } from './resource-schema.ts';

const MAC_RE = /^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/;
export const macAddress = () => z.string().regex(MAC_RE, `expected a MAC address such as ${HOST_VETH_MAC}`);

// Linux interface names: at most 15 bytes (IFNAMSIZ - 1).
const INTERFACE_RE = /^[a-zA-Z0-9_.-]{1,15}$/;
const interfaceName = () =>
  z.string().regex(INTERFACE_RE, 'expected an interface name (1–15 of letters, digits, "_", ".", "-")');

// An address in CIDR form whose host bits may be set (`10.0.0.5/24`), or a bare address.
const addressWithPrefix = (family: 4 | 6) => cidrString({ family, allowBareIp: true });

export const nodeSpecSchema = z
  .strictObject({
    bgp: z
      .strictObject({
        asNumber: asNumber().optional(),
        ipv4Address: addressWithPrefix(4).optional(),
        ipv6Address: addressWithPrefix(6).optional(),
        ipv4IPIPTunnelAddr: ipString(4).optional(),
        /** Route reflector cluster ID, written like an IPv4 address (RFC 4456 §7). */
        routeReflectorClusterID: ipString(4).optional(),
      })
      .optional(),
    ipv4VXLANTunnelAddr: ipString(4).optional(),
    vxlanTunnelMACAddr: macAddress().optional(),
    ipv6VXLANTunnelAddr: ipString(6).optional(),
    vxlanTunnelMACAddrV6: macAddress().optional(),
    orchRefs: z
      .array(z.strictObject({ nodeName: z.string().optional(), orchestrator: z.string().min(1) }))
      .optional(),
    wireguard: z
      .strictObject({
        interfaceIPv4Address: ipString(4).optional(),
        interfaceIPv6Address: ipString(6).optional(),
      })
      .optional(),
    addresses: z
      .array(
        z.strictObject({
          address: cidrString({ allowBareIp: true }),
          type: z.enum(['CalicoNodeIP', 'InternalIP', 'ExternalIP']).optional(),
        }),
      )
      .optional(),
    interfaces: z
      .array(z.strictObject({ name: z.string().min(1), addresses: z.array(z.string()).optional() }))
      .optional(),
  })
  .prefault({});

export type NodeSpec = z.output<typeof nodeSpecSchema>;
export const nodeSchema = kindSchema('Node', nodeSpecSchema);

const endpointPortSchema = z.strictObject({
  name: z.string().min(1),
  protocol: protocolSchema,
  port: z.number().int().min(1).max(65535),
});

export const workloadEndpointSpecSchema = z
  .strictObject({
    orchestrator: z.string().optional(),
    workload: z.string().optional(),
    node: checkedString(subdomainProblem).optional(),
    containerID: z
      .string()
      .regex(/^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/, 'expected a container ID')
      .optional(),
    pod: z.string().optional(),
    endpoint: z.string().optional(),
    serviceAccountName: z.string().optional(),
    /** The workload's own addresses: /32 and /128 networks. */
    ipNetworks: z.array(cidrString({ masked: true, allowBareIp: true })).optional(),
    ipNATs: z.array(z.strictObject({ internalIP: ipString(), externalIP: ipString() })).optional(),
    ipv4Gateway: ipString(4).optional(),
    ipv6Gateway: ipString(6).optional(),
    profiles: z.array(z.string().min(1)).optional(),
    /** The host end of the veth (`cali…`). */
    interfaceName: interfaceName().optional(),
    mac: macAddress().optional(),
    ports: z
      .array(
        endpointPortSchema.extend({
          hostPort: z.number().int().min(0).max(65535).optional(),
          hostIP: ipString().optional(),
        }),
      )
      .optional(),
    allowSpoofedSourcePrefixes: z.array(cidrString({ masked: true })).optional(),
    qosControls: z
      .strictObject({
        ingressBandwidth: z.number().int().min(0).optional(),
        egressBandwidth: z.number().int().min(0).optional(),
        ingressBurst: z.number().int().min(0).optional(),
        egressBurst: z.number().int().min(0).optional(),
        ingressPeakrate: z.number().int().min(0).optional(),
        egressPeakrate: z.number().int().min(0).optional(),
        ingressMinburst: z.number().int().min(0).optional(),
        egressMinburst: z.number().int().min(0).optional(),
        ingressPacketRate: z.number().int().min(0).optional(),
        egressPacketRate: z.number().int().min(0).optional(),
        ingressPacketBurst: z.number().int().min(0).optional(),
        egressPacketBurst: z.number().int().min(0).optional(),
        ingressMaxConnections: z.number().int().min(0).optional(),
        egressMaxConnections: z.number().int().min(0).optional(),
        dscp: z.union([z.number().int().min(0).max(63), z.string()]).optional(),
      })
      .optional(),
  })
  .prefault({});

export type WorkloadEndpointSpec = z.output<typeof workloadEndpointSpecSchema>;
export const workloadEndpointSchema = kindSchema('WorkloadEndpoint', workloadEndpointSpecSchema);

export const hostEndpointSpecSchema = z
  .strictObject({
    node: checkedString(subdomainProblem).optional(),
    /** `*` means every interface of the host. */
    interfaceName: z
      .string()
      .refine((v) => v === '*' || INTERFACE_RE.test(v), 'expected an interface name or "*"')
      .optional(),
    expectedIPs: z.array(ipString()).optional(),
    profiles: z.array(z.string().min(1)).optional(),
    ports: z.array(endpointPortSchema).optional(),
  })
  .superRefine((spec, ctx) => {
    if (spec.interfaceName === undefined && (spec.expectedIPs?.length ?? 0) === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['interfaceName'],
        input: undefined,
        message: 'set interfaceName or expectedIPs',
      });
    }
  })
  .prefault({});

export type HostEndpointSpec = z.output<typeof hostEndpointSpecSchema>;
export const hostEndpointSchema = kindSchema('HostEndpoint', hostEndpointSpecSchema);
