/**
 * What the plugin needs from the rest of the node, as narrow interfaces: address management and
 * the kernel work for one workload. calico-node supplies real implementations (IPAM on the
 * datastore, netlink in namespaces); tests of the request logic can supply recording ones.
 */
export interface AutoAssignRequest {
  num4: number;
  num6: number;
  handleId: string;
  attrs: Record<string, string>;
  node: string;
  /** Pool names or CIDRs to draw from; all usable pools when omitted. */
  pools4?: string[];
  pools6?: string[];
}

export interface IpamPort {
  /** Returns plain addresses (no prefix). */
  autoAssign(req: AutoAssignRequest): Promise<{ ipv4: string[]; ipv6: string[] }>;
  assignIP(req: { ip: string; handleId: string; attrs: Record<string, string>; node: string }): Promise<void>;
  /** Releases every address under the handle; a missing handle is not an error. */
  releaseByHandle(handleId: string): Promise<void>;
  /** Handles whose ID starts with `prefix` (for GC). */
  listHandles(prefix: string): Promise<string[]>;
}

/** Where a pod's namespace is: a path, as the process `rootOfPid` sees it (ours when undefined). */
export interface PodNetns {
  /** Path of the pod's network namespace (`/run/netns/x`, `/proc/<pid>/ns/net`). */
  netns: string;
  /** The runtime's process whose mount namespace the path is in (CniRequest.peerPid). */
  rootOfPid?: number;
}

/** What a CNI_NETNS path turned out to be. */
export type NetnsState = { state: 'netns' } | { state: 'missing' } | { state: 'other'; what: string };

export interface WorkloadNetwork extends PodNetns {
  containerIfname: string;
  hostIfname: string;
  mtu: number;
  /** Addresses for the container side, as /32 and /128 CIDRs. */
  addresses: string[];
}

export interface WorkloadInterfaces {
  containerMac: string;
  hostMac: string;
}

export interface WorkloadDataplane {
  /**
   * Creates the veth pair (container end directly in the pod namespace), addresses, the link route
   * to the workload gateway and the default route inside, host-side MAC, sysctls and the /32 route
   * outside.
   * Undoes its own partial work before rejecting.
   */
  setUp(net: WorkloadNetwork): Promise<WorkloadInterfaces>;
  /** Removes the pair and the host route. Missing namespace or interfaces are not errors. */
  tearDown(net: {
    netns?: string;
    rootOfPid?: number;
    containerIfname: string;
    hostIfname: string;
  }): Promise<void>;
  /** Problems found comparing the kernel with what ADD set up; empty when all is well. */
  check(net: WorkloadNetwork): Promise<string[]>;
  /** Whether the path is a network namespace, missing, or something else (and what). */
  netnsState(where: PodNetns): Promise<NetnsState>;
}
