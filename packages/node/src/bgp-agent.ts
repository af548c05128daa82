import type { BgpAgentFactory } from './calico-node.ts';

/**
 * Wires @calico-ts/bgp's node agent into calico-node. Until that agent exists, BGP networking is
 * refused at start-up rather than silently running without routes.
 */
export function createBgpAgentFactory(): BgpAgentFactory {
  return () => {
    throw new Error(
      'CALICO_NETWORKING_BACKEND=bird needs the BGP agent, which this build does not include yet; use vxlan or none',
    );
  };
}
