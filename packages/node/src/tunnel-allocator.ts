import type { Ipam } from '@calico-ts/ipam';
import type { TunnelAddressAllocator } from './startup.ts';

/** Tunnel addresses through IPAM, from pools that allow the `Tunnel` use (node/pkg/allocateip). */
export function ipamTunnelAllocator(ipam: Ipam): TunnelAddressAllocator {
  return {
    async assignTunnelAddress(req) {
      const r = await ipam.autoAssign({
        ...(req.family === 4 ? { num4: 1 } : { num6: 1 }),
        handleId: req.handleId,
        attrs: req.attrs,
        node: req.node,
        pools: req.pools,
        intendedUse: 'Tunnel',
      });
      return (req.family === 4 ? r.ipv4 : r.ipv6)[0]?.address;
    },
    addressesOf: (handleId) => ipam.ipsByHandle(handleId),
    async release(handleId) {
      await ipam.releaseByHandle(handleId);
    },
  };
}
