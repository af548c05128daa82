/**
 * Calico's fixed names and numbers, defined once for every package that programs a node: the CNI
 * plugin, Felix, the BGP agent and calico-node. Sources are in shared/reference/calico-internals.md.
 */

/**
 * rtnetlink `rtm_protocol` values Calico's routes carry. Felix owns routes by protocol: `device`
 * on workload interfaces and `vxlan.calico`, `calico` for blackholes, IPIP and same-subnet routes;
 * BGP-learned routes carry `bird`, as BIRD's kernel protocol writes them in Calico.
 */
export const RouteProtocol = {
  /** RTPROT_KERNEL: routes the kernel made itself (connected subnets); never ours. */
  kernel: 2,
  /** RTPROT_BOOT: Felix's default DeviceRouteProtocol, used for workload and VXLAN routes. */
  device: 3,
  /** RTPROT_BIRD: routes learned over BGP and installed by the node's BGP agent. */
  bird: 12,
  /** Felix's own protocol (dataplanedefs.DefaultRouteProto): blackholes, IPIP, same-subnet routes. */
  calico: 80,
} as const;

/** Felix's VXLAN device, VNI and UDP port (FelixConfiguration vxlanVNI / vxlanPort defaults). */
export const VXLAN_DEVICE = 'vxlan.calico';
export const VXLAN_VNI = 4096;
export const VXLAN_PORT = 4789;
/** The IPIP tunnel device. */
export const IPIP_DEVICE = 'tunl0';

/** Prefix of the host end of a workload veth (`cali` + 11 hex chars). */
export const WORKLOAD_INTERFACE_PREFIX = 'cali';
/** The pod's IPv4 gateway, answered by proxy ARP on the host end of its veth. */
export const WORKLOAD_GATEWAY_V4 = '169.254.1.1';
/** The MAC every host-side workload veth carries. */
export const HOST_VETH_MAC = 'ee:ee:ee:ee:ee:ee';
/** The pod's IPv6 gateway: the link-local (EUI-64) address of the host veth, from HOST_VETH_MAC. */
export const WORKLOAD_GATEWAY_V6 = 'fe80::ecee:eeff:feee:eeee';

/** Bytes each encapsulation adds to a packet; the pod MTU is the underlay's less this. */
export const ENCAPSULATION_OVERHEAD = { vxlan: 50, vxlanV6: 70, ipip: 20 } as const;

/**
 * Sysctls of the host end of a workload veth (Felix's configureInterface, which the CNI plugin
 * also applies before the pod starts): proxy ARP answers the pod's ARP for its gateway at once,
 * forwarding routes its traffic, route_localnet allows DNAT to 127.0.0.0/8, rp_filter is strict.
 */
export const WORKLOAD_INTERFACE_SYSCTLS_V4 = {
  proxyArp: true,
  proxyDelay: 0,
  forwarding: true,
  routeLocalnet: true,
  rpFilter: 1,
} as const;
/** IPv6 counterpart, applied when the endpoint has IPv6 addresses: no RAs, proxy NDP, forwarding. */
export const WORKLOAD_INTERFACE_SYSCTLS_V6 = { acceptRa: 0, proxyNdp: true, ipv6Forwarding: true } as const;

export type WorkloadInterfaceSysctls = typeof WORKLOAD_INTERFACE_SYSCTLS_V4 &
  Partial<typeof WORKLOAD_INTERFACE_SYSCTLS_V6>;

/**
 * The sysctls of one workload's host-side interface: the IPv4 set always, the IPv6 set too when
 * the workload has IPv6 addresses. The CNI plugin applies them when it creates the veth and
 * Felix when it sees the interface, so both write the same values.
 */
export function workloadInterfaceSysctls(options: { ipv6: boolean }): WorkloadInterfaceSysctls {
  return options.ipv6
    ? { ...WORKLOAD_INTERFACE_SYSCTLS_V4, ...WORKLOAD_INTERFACE_SYSCTLS_V6 }
    : { ...WORKLOAD_INTERFACE_SYSCTLS_V4 };
}
