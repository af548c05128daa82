import type { Datastore } from '@calico-ts/datastore';
import type { Ipam } from '@calico-ts/ipam';
import type { AutoAssignRequest, IpamPort } from './ports.ts';

/** The plugin's view of @calico-ts/ipam. */
export class IpamAdapter implements IpamPort {
  readonly #ipam: Ipam;
  readonly #datastore: Datastore;

  constructor(ipam: Ipam, datastore: Datastore) {
    this.#ipam = ipam;
    this.#datastore = datastore;
  }

  async autoAssign(req: AutoAssignRequest): Promise<{ ipv4: string[]; ipv6: string[] }> {
    const pools = [...(req.pools4 ?? []), ...(req.pools6 ?? [])];
    const r = await this.#ipam.autoAssign({
      num4: req.num4,
      num6: req.num6,
      handleId: req.handleId,
      attrs: req.attrs,
      node: req.node,
      intendedUse: 'Workload',
      ...(pools.length > 0 ? { pools } : {}),
    });
    return { ipv4: r.ipv4.map((a) => a.address), ipv6: r.ipv6.map((a) => a.address) };
  }

  async assignIP(req: {
    ip: string;
    handleId: string;
    attrs: Record<string, string>;
    node: string;
  }): Promise<void> {
    await this.#ipam.assignIP(req);
  }

  async releaseByHandle(handleId: string): Promise<void> {
    // A handle that is already gone releases nothing and succeeds (DEL is idempotent).
    await this.#ipam.releaseByHandle(handleId);
  }

  async listHandles(prefix: string): Promise<string[]> {
    const { items } = await this.#datastore.list('IPAMHandle', { prefix });
    return items.map((h) => h.metadata.name);
  }
}
