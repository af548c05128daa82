import { describe, expect, it } from 'vitest';
import { workloadInterfaceSysctls } from './calico-constants.ts';

describe('workloadInterfaceSysctls', () => {
  it('is the IPv4 set for an IPv4-only workload', () => {
    expect(workloadInterfaceSysctls({ ipv6: false })).toEqual({
      proxyArp: true,
      proxyDelay: 0,
      forwarding: true,
      routeLocalnet: true,
      rpFilter: 1,
    });
  });

  it('adds the IPv6 set when the workload has IPv6 addresses', () => {
    expect(workloadInterfaceSysctls({ ipv6: true })).toEqual({
      proxyArp: true,
      proxyDelay: 0,
      forwarding: true,
      routeLocalnet: true,
      rpFilter: 1,
      acceptRa: 0,
      proxyNdp: true,
      ipv6Forwarding: true,
    });
  });
});
