import type { DataplaneUpdate, HostMetadata, IpamPool, RouteIntent, Vtep } from '../calc/dataplane-update.ts';

/**
 * What the cluster-route managers (VXLAN, IPIP) know about other nodes: route intents, host
 * addresses, VTEPs and pools, folded from the intent stream. One copy of the bookkeeping, so the
 * two managers differ only in how they program it.
 */
export class ClusterState {
  readonly routes = new Map<string, RouteIntent>();
  readonly hosts = new Map<string, HostMetadata>();
  readonly vteps = new Map<string, Vtep>();
  readonly pools = new Map<string, IpamPool>();

  /** Folds in one update; true when it is one these managers care about (they then re-program). */
  apply(msg: DataplaneUpdate): boolean {
    switch (msg.type) {
      case 'routeUpdate':
        this.routes.set(msg.route.dst, msg.route);
        return true;
      case 'routeRemove':
        this.routes.delete(msg.dst);
        return true;
      case 'hostMetadataUpdate':
        this.hosts.set(msg.hostname, msg.metadata);
        return true;
      case 'hostMetadataRemove':
        this.hosts.delete(msg.hostname);
        return true;
      case 'vtepUpdate':
        this.vteps.set(msg.vtep.node, msg.vtep);
        return true;
      case 'vtepRemove':
        this.vteps.delete(msg.node);
        return true;
      case 'ipamPoolUpdate':
        this.pools.set(msg.id, msg.pool);
        return true;
      case 'ipamPoolRemove':
        this.pools.delete(msg.id);
        return true;
      case 'configUpdate':
        return true;
      default:
        return false;
    }
  }
}
