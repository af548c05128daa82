/**
 * Blackhole routes for this node's IPAM blocks (route_mgr.go blackholeRoutes): an address of a
 * local block that no workload holds is dropped here instead of following the default route
 * back out (a routing loop with the upstream router). Workload /32s are more specific and win.
 */

import { RouteProtocol } from '@calico-ts/datastore';
import type { DataplaneUpdate } from '../calc/dataplane-update.ts';
import type { ApplyContext, Manager } from './manager.ts';

export class BlackholeManager implements Manager {
  readonly name = 'blackhole';
  #localBlocks = new Set<string>();

  onUpdate(msg: DataplaneUpdate): void {
    if (msg.type === 'routeUpdate') {
      const single = msg.route.dst.endsWith('/32') || msg.route.dst.endsWith('/128');
      if (msg.route.type === 'localBlock' && !single) this.#localBlocks.add(msg.route.dst);
      else this.#localBlocks.delete(msg.route.dst);
    } else if (msg.type === 'routeRemove') {
      this.#localBlocks.delete(msg.dst);
    }
  }

  async completeDeferredWork(ctx: ApplyContext): Promise<void> {
    ctx.routes.setRoutes(
      'blackhole',
      [...this.#localBlocks]
        .sort()
        .map((dst) => ({ dst, type: 'blackhole' as const, protocol: RouteProtocol.calico })),
    );
  }
}
