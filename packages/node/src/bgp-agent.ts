import { BgpAgent } from '@calico-ts/bgp-agent';
import type { BgpAgentFactory } from './calico-node.ts';

/**
 * The BGP agent inside calico-node (BIRD + confd in Calico). Felix programs the blackholes for this
 * node's blocks, so the agent installs only the routes it learns (`proto bird`). It writes its
 * sessions to the datastore as the node's CalicoNodeStatus.
 */
export function createBgpAgentFactory(options: { statusSocket?: string } = {}): BgpAgentFactory {
  return ({ datastore, nodeName, logger }) =>
    new BgpAgent({
      datastore,
      nodeName,
      logger,
      blackholes: false,
      // Every node writes its sessions as its CalicoNodeStatus (`calico node status --all`).
      nodeStatus: {},
      ...(options.statusSocket ? { statusSocket: options.statusSocket } : {}),
    });
}
