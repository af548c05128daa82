/**
 * IPIP (ipip_mgr.go, calico-internals §3.8): the IPIP device (`tunl0`) carries this node's IPIP
 * tunnel address, and remote blocks in IPIP pools are routed `via <node IP> dev tunl0 onlink`
 * with Calico's route protocol. Where the kernel has no ipip module the device cannot exist;
 * that is reported once as a clear error and the rest of the dataplane carries on.
 */
import { ENCAPSULATION_OVERHEAD, IPIP_DEVICE, RouteProtocol } from '@calico-ts/datastore';
import { isKernelError, type Link } from '@calico-ts/kernel';
import type { DataplaneUpdate } from '../calc/dataplane-update.ts';
import { ClusterState } from './cluster-state.ts';
import type { ApplyContext, Manager } from './manager.ts';
import { OwnedAddress } from './owned-address.ts';
import type { DesiredRoute } from './route-table.ts';

export class IpipUnavailableError extends Error {
  override readonly name = 'IpipUnavailableError';
  readonly code = 'IpipModuleMissing';
}

export class IpipManager implements Manager {
  readonly name = 'ipip';
  readonly #nodeName: string;
  readonly #state = new ClusterState();
  #dirty = true;
  /** tunl0's address as last applied (a kernel event that undoes it makes us apply again). */
  readonly address = new OwnedAddress();
  /** Set while IPIP is wanted but the kernel cannot provide it. */
  unavailable: string | undefined;

  constructor(nodeName: string) {
    this.#nodeName = nodeName;
  }

  onUpdate(msg: DataplaneUpdate): void {
    if (this.#state.apply(msg)) this.#dirty = true;
  }

  markForResync(): void {
    this.#dirty = true;
  }

  desiredRoutes(): DesiredRoute[] {
    const out: DesiredRoute[] = [];
    for (const r of this.#state.routes.values()) {
      if (r.ipPoolType !== 'ipip' || (r.type !== 'remoteBlock' && r.type !== 'remoteWorkload')) continue;
      if (!r.dstNodeIp || r.dstNodeName === this.#nodeName || r.dst.includes(':')) continue;
      out.push({
        dst: r.dst,
        type: 'unicast',
        gateway: r.dstNodeIp,
        dev: IPIP_DEVICE,
        onlink: true,
        protocol: RouteProtocol.calico,
      });
    }
    return out;
  }

  async completeDeferredWork(ctx: ApplyContext): Promise<void> {
    if (!this.#dirty) return;
    if (!ctx.config.ipipEnabled) {
      // tunl0 is the ipip module's fallback device and cannot be deleted; just stop using it.
      ctx.routes.setRoutes('ipip', []);
      this.unavailable = undefined;
      this.#dirty = false;
      return;
    }
    let link = ctx.links.get(IPIP_DEVICE);
    if (!link) {
      try {
        link = await ctx.kernel.netlink.createIpip({ name: IPIP_DEVICE });
      } catch (err) {
        if (!isKernelError(err, 'ModuleMissing')) throw err;
        ctx.routes.setRoutes('ipip', []);
        if (!this.unavailable) {
          this.unavailable =
            'IPIP encapsulation is configured (an IPPool has ipipMode Always/CrossSubnet) but this kernel has ' +
            'no ipip module, so tunl0 cannot be created; IPIP routes are not programmed. Load the ipip module ' +
            'or use a VXLAN pool.';
          ctx.log.error({ err }, this.unavailable);
        }
        this.#dirty = false;
        throw new IpipUnavailableError(this.unavailable, { cause: err });
      }
      ctx.links.set(IPIP_DEVICE, link);
    }
    this.unavailable = undefined;
    await this.#configure(ctx, link);
    ctx.routes.setRoutes('ipip', this.desiredRoutes());
    this.#dirty = false;
  }

  async #configure(ctx: ApplyContext, link: Link): Promise<void> {
    const me = this.#state.hosts.get(this.#nodeName);
    const parentMtu = me?.ipv4Addr
      ? [...ctx.links.values()].find((l) =>
          ctx.addresses.some((a) => a.index === l.index && a.address === me.ipv4Addr),
        )?.mtu
      : undefined;
    const mtu =
      ctx.config.ipipMTU > 0 ? ctx.config.ipipMTU : (parentMtu ?? 1500) - ENCAPSULATION_OVERHEAD.ipip;
    if (link.mtu !== mtu || !link.up) await ctx.kernel.netlink.setLink(IPIP_DEVICE, { mtu, up: true });
    const want = me?.ipv4IPIPTunnelAddr ? `${me.ipv4IPIPTunnelAddr}/32` : undefined;
    const have = await ctx.kernel.netlink.listAddresses({ dev: link.index, family: 4 });
    for (const a of have) if (a.cidr !== want) await ctx.kernel.netlink.deleteAddress(IPIP_DEVICE, a.cidr);
    if (want && !have.some((a) => a.cidr === want)) await ctx.kernel.netlink.addAddress(IPIP_DEVICE, want);
    this.address.set(link.index, want);
  }
}
