import { createHash } from 'node:crypto';

/**
 * Host-side veth name, as Calico computes it (libcalico-go VethNameForWorkload): the interface
 * prefix plus the first 11 hex characters of SHA-1 of "<namespace>.<pod>" — 15 characters, the
 * longest name Linux allows. Felix computes the same name, so the two agree without talking.
 */
export function vethNameForWorkload(namespace: string, pod: string, prefix = 'cali'): string {
  const h = createHash('sha1').update(`${namespace}.${pod}`).digest('hex');
  return `${prefix}${h.slice(0, 15 - prefix.length)}`;
}

/**
 * WorkloadEndpoint name (libcalico-go names/workloadendpoint.go): segments joined with '-', each
 * segment's own '-' doubled so the name splits back unambiguously.
 *   k8s: <node>-k8s-<pod>-<endpoint>      cni: <node>-cni-<containerID>-<endpoint>
 */
export function workloadEndpointName(ids: {
  node: string;
  orchestrator: 'k8s' | 'cni' | string;
  workload: string;
  endpoint: string;
}): string {
  const esc = (s: string): string => s.replaceAll('-', '--');
  return [ids.node, ids.orchestrator, ids.workload, ids.endpoint].map(esc).join('-');
}

/** IPAM handle for a pod's addresses: "<network name>.<container ID>" (Calico's convention). */
export function ipamHandle(network: string, containerId: string): string {
  return `${network}.${containerId}`;
}
