/**
 * VXLAN (vxlan_mgr.go, vxlanfdb, calico-internals §3.8): the VXLAN device on this node
 * (`vxlan.calico`, VNI and UDP port from the configuration, learning off, source = node IP,
 * parent = the NIC holding the node IP),
 * and for every remote VTEP a permanent ARP entry (tunnel IP → VTEP MAC) and an FDB entry
 * (VTEP MAC → node IP), so the kernel never has to learn or flood; remote blocks are routed
 * `via <remote tunnel IP> dev vxlan.calico onlink`. In CrossSubnet pools, nodes on our own
 * subnet are reached directly over the parent NIC instead.
 *
 * The device's tx checksum offload (`tx-checksum-ip-generic`) is kept on (off with Calico's
 * `ChecksumOffloadBroken=true`), through ethtool: with it on, TCP hands the device 64 KB GSO
 * packets that are encapsulated once and segmented (or not at all, on veth) below it; with it
 * off the kernel also drops TSO and encapsulates every MTU-sized segment on its own. It is read
 * when the device is created or reports a change, and on the periodic route refresh.
 */
import {
  cidrContains,
  ENCAPSULATION_OVERHEAD,
  parseCidr,
  poolEncapsulation,
  RouteProtocol,
  VXLAN_DEVICE,
} from '@calico-ts/datastore';
import { KernelError, type Link } from '@calico-ts/kernel';
import type { DataplaneUpdate, Vtep } from '../calc/dataplane-update.ts';
import { ClusterState } from './cluster-state.ts';
import type { ApplyContext, Manager } from './manager.ts';
import { OwnedAddress } from './owned-address.ts';
import type { DesiredNeighbour, DesiredRoute } from './route-table.ts';

/** ethtool's name for the VXLAN device's tx checksum offload (TSO depends on it). */
const TX_CHECKSUM = 'tx-checksum-ip-generic';

export class VxlanManager implements Manager {
  readonly name = 'vxlan';
  readonly #nodeName: string;
  readonly #state = new ClusterState();
  #dirty = true;
  /** vxlan.calico's address as last applied (a kernel event that undoes it makes us apply again). */
  readonly address = new OwnedAddress();
  /** The tx checksum setting last confirmed on the device; undefined: read it on the next apply. */
  #txChecksumConfirmed: boolean | undefined;
  /** The host has no ethtool: offloads are left as they are (warned once). */
  #ethtoolMissing = false;

  constructor(nodeName: string) {
    this.#nodeName = nodeName;
  }

  onUpdate(msg: DataplaneUpdate): void {
    if (this.#state.apply(msg)) this.#dirty = true;
  }

  markForResync(): void {
    this.#dirty = true;
  }

  /**
   * vxlan.calico itself changed (a link event: features, MTU, state) or the periodic refresh is
   * due: its offloads are read again on the next apply.
   */
  markDeviceForCheck(): void {
    this.#txChecksumConfirmed = undefined;
    this.#dirty = true;
  }

  async completeDeferredWork(ctx: ApplyContext): Promise<void> {
    if (!this.#dirty) return;
    const { config, kernel, links } = ctx;
    const existing = links.get(VXLAN_DEVICE);
    const me = this.#state.vteps.get(this.#nodeName);
    if (!config.vxlanEnabled || !me) {
      if (!config.vxlanEnabled && existing) {
        await kernel.netlink.deleteLink(VXLAN_DEVICE, { ifExists: true });
        links.delete(VXLAN_DEVICE);
      }
      if (config.vxlanEnabled)
        ctx.log.info('VXLAN enabled but this node has no VTEP yet (no tunnel address)');
      ctx.routes.setRoutes('vxlan', []);
      ctx.routes.setNeighbours('vxlan', []);
      this.#dirty = false;
      return;
    }

    const parent = this.#parent(ctx, me.parentDeviceIp);
    if (!parent) throw new Error(`VXLAN: no interface holds the node address ${me.parentDeviceIp}`);
    const mtu = config.vxlanMTU > 0 ? config.vxlanMTU : parent.mtu - ENCAPSULATION_OVERHEAD.vxlan;
    const device = await this.#ensureDevice(ctx, existing, parent, me, mtu);
    links.set(VXLAN_DEVICE, device);
    if (device !== existing) this.#txChecksumConfirmed = undefined;
    await this.#ensureOffloads(ctx);
    await this.#ensureAddress(ctx, device, `${me.ipv4Addr}/32`);

    const remotes = [...this.#state.vteps.values()].filter((v) => v.node !== this.#nodeName);
    await this.#syncFdb(ctx, remotes);
    ctx.routes.setNeighbours(
      'vxlan',
      remotes.map((v): DesiredNeighbour => ({ dev: VXLAN_DEVICE, ip: v.ipv4Addr, mac: v.mac })),
    );
    ctx.routes.setRoutes('vxlan', this.#desiredRoutes(ctx, parent));
    this.#dirty = false;
  }

  #desiredRoutes(ctx: ApplyContext, parent: Link): DesiredRoute[] {
    const out: DesiredRoute[] = [];
    for (const r of this.#state.routes.values()) {
      if (r.type !== 'remoteBlock' && r.type !== 'remoteWorkload') continue;
      if (r.dstNodeName === this.#nodeName || r.dst.includes(':')) continue;
      if (r.ipPoolType === 'vxlan') {
        const vtep = r.dstNodeName ? this.#state.vteps.get(r.dstNodeName) : undefined;
        if (!vtep) continue;
        out.push({
          dst: r.dst,
          type: 'unicast',
          gateway: vtep.ipv4Addr,
          dev: VXLAN_DEVICE,
          onlink: true,
          protocol: ctx.config.deviceRouteProtocol,
        });
      } else if (r.ipPoolType === 'none' && r.sameSubnet && r.dstNodeIp && this.#inCrossSubnetPool(r.dst)) {
        out.push({
          dst: r.dst,
          type: 'unicast',
          gateway: r.dstNodeIp,
          dev: parent.name,
          protocol: RouteProtocol.calico,
        });
      }
    }
    return out;
  }

  #inCrossSubnetPool(dst: string): boolean {
    const c = parseCidr(dst);
    if (!c) return false;
    for (const p of this.#state.pools.values()) {
      const pc = parseCidr(p.cidr);
      const encapsulation = poolEncapsulation(p);
      if (pc && encapsulation.type === 'vxlan' && encapsulation.mode === 'CrossSubnet' && cidrContains(pc, c))
        return true;
    }
    return false;
  }

  #parent(ctx: ApplyContext, nodeIp: string): Link | undefined {
    if (ctx.config.vxlanParentInterface) return ctx.links.get(ctx.config.vxlanParentInterface);
    const addr = ctx.addresses.find((a) => a.address === nodeIp);
    if (!addr) return undefined;
    for (const l of ctx.links.values()) if (l.index === addr.index) return l;
    return undefined;
  }

  async #ensureDevice(
    ctx: ApplyContext,
    existing: Link | undefined,
    parent: Link,
    me: Vtep,
    mtu: number,
  ): Promise<Link> {
    const { kernel, config } = ctx;
    const v = existing?.vxlan;
    const fits =
      existing?.kind === 'vxlan' &&
      v !== undefined &&
      v.vni === config.vxlanVNI &&
      v.port === config.vxlanPort &&
      v.local === me.parentDeviceIp &&
      !v.learning &&
      (v.linkIndex === undefined || v.linkIndex === parent.index);
    let link = existing;
    if (existing && !fits) {
      // VNI, port, source and parent cannot be changed in place.
      ctx.log.info(
        { have: existing.vxlan, device: VXLAN_DEVICE },
        'recreating the VXLAN device with new parameters',
      );
      await kernel.netlink.deleteLink(VXLAN_DEVICE, { ifExists: true });
      link = undefined;
    }
    if (!link) {
      link = await kernel.netlink.createVxlan({
        name: VXLAN_DEVICE,
        vni: config.vxlanVNI,
        port: config.vxlanPort,
        local: me.parentDeviceIp,
        dev: parent.index,
        learning: false,
        mtu,
        mac: me.mac,
      });
      ctx.log.info(
        { device: VXLAN_DEVICE, vni: config.vxlanVNI, parent: parent.name, mtu },
        'created the VXLAN device',
      );
    }
    if (link.mtu !== mtu || link.mac?.toLowerCase() !== me.mac || !link.up) {
      await kernel.netlink.setLink(VXLAN_DEVICE, { mtu, mac: me.mac, up: true });
      link = { ...link, mtu, mac: me.mac, up: true };
    }
    return link;
  }

  async #ensureOffloads(ctx: ApplyContext): Promise<void> {
    const { kernel, config, log } = ctx;
    const want = !config.checksumOffloadBroken;
    if (this.#txChecksumConfirmed === want || this.#ethtoolMissing) return;
    if (!kernel.deviceFeatures || !kernel.setDeviceFeatures) return;
    try {
      const have = (await kernel.deviceFeatures(VXLAN_DEVICE)).get(TX_CHECKSUM);
      if (have !== undefined && have !== want) {
        await kernel.setDeviceFeatures(VXLAN_DEVICE, { [TX_CHECKSUM]: want });
        log.info(
          { device: VXLAN_DEVICE, feature: TX_CHECKSUM, was: have, now: want },
          'set VXLAN device offload',
        );
      }
      this.#txChecksumConfirmed = want;
    } catch (e) {
      if (!(e instanceof KernelError && e.errno === 'ENOENT')) throw e;
      this.#ethtoolMissing = true;
      log.warn(
        { device: VXLAN_DEVICE, feature: TX_CHECKSUM, want },
        'ethtool is not installed: the VXLAN device offloads are left as the kernel set them',
      );
    }
  }

  async #ensureAddress(ctx: ApplyContext, device: Link, cidr: string): Promise<void> {
    const have = await ctx.kernel.netlink.listAddresses({ dev: device.index, family: 4 });
    for (const a of have) if (a.cidr !== cidr) await ctx.kernel.netlink.deleteAddress(VXLAN_DEVICE, a.cidr);
    if (!have.some((a) => a.cidr === cidr)) await ctx.kernel.netlink.addAddress(VXLAN_DEVICE, cidr);
    this.address.set(device.index, cidr);
  }

  async #syncFdb(ctx: ApplyContext, remotes: Vtep[]): Promise<void> {
    const want = new Map(remotes.map((v) => [v.mac, v.parentDeviceIp]));
    const have = await ctx.kernel.netlink.listFdb({ dev: VXLAN_DEVICE });
    for (const e of have) {
      if (!e.mac || !e.permanent) continue;
      if (want.get(e.mac) === e.address) {
        want.delete(e.mac);
      } else if (!want.has(e.mac)) {
        await ctx.kernel.netlink.deleteFdb(VXLAN_DEVICE, e.mac, e.address);
      }
    }
    for (const [mac, dst] of want) await ctx.kernel.netlink.replaceFdb(VXLAN_DEVICE, mac, dst);
  }
}
