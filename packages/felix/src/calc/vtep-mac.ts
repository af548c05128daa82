import { createHash } from 'node:crypto';

/**
 * A node's VXLAN device MAC when `Node.spec.vxlanTunnelMACAddr` is unset, derived the way
 * Calico's vxlan_resolver does so that every node computes the same MAC for every other node:
 * 0x66 ('f', locally administered, unicast) followed by the first five bytes of SHA-1(nodename).
 */
export function vtepMacForNode(nodeName: string): string {
  const sha = createHash('sha1').update(nodeName).digest();
  return [0x66, ...sha.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
