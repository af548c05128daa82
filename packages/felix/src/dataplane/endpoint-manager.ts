/**
 * Workload endpoints (endpoint_mgr.go): per-interface sysctls once an interface appears (again
 * if it is recreated), a device route and a permanent ARP/NDP entry for each workload address,
 * and the per-endpoint and dispatch chains.
 */
import { workloadInterfaceSysctls } from '@calico-ts/datastore';
import type { DataplaneUpdate, WorkloadEndpoint } from '../calc/dataplane-update.ts';
import type { FelixConfig } from '../config.ts';
import type { Chain, TableName } from './chains.ts';
import { dispatchChains, workloadEndpointChains } from './endpoint-chains.ts';
import type { DataplaneKernel } from './kernel-port.ts';
import type { ApplyContext, Manager } from './manager.ts';
import type { MarkBits } from './mark-bits.ts';
import type { DesiredNeighbour, DesiredRoute } from './route-table.ts';

export class EndpointManager implements Manager {
  readonly name = 'endpoints';
  #endpoints = new Map<string, WorkloadEndpoint>();
  /** Interface name → index it had when we configured it. */
  #configured = new Map<string, number>();
  #marks: () => MarkBits;
  #policyProgrammed: (endpoint: WorkloadEndpoint) => boolean;

  /** `policyProgrammed`: whether every policy and profile chain the endpoint jumps to exists. */
  constructor(marks: () => MarkBits, policyProgrammed: (endpoint: WorkloadEndpoint) => boolean = () => true) {
    this.#marks = marks;
    this.#policyProgrammed = policyProgrammed;
  }

  get count(): number {
    return this.#endpoints.size;
  }

  onUpdate(msg: DataplaneUpdate): void {
    if (msg.type === 'workloadEndpointUpdate') {
      const old = this.#endpoints.get(msg.key);
      if (old && old.name !== msg.endpoint.name) this.#configured.delete(old.name);
      this.#endpoints.set(msg.key, msg.endpoint);
    } else if (msg.type === 'workloadEndpointRemove') {
      const old = this.#endpoints.get(msg.key);
      if (old) this.#configured.delete(old.name);
      this.#endpoints.delete(msg.key);
    }
  }

  async completeDeferredWork(ctx: ApplyContext): Promise<void> {
    const routes: DesiredRoute[] = [];
    const neighbours: DesiredNeighbour[] = [];
    for (const ep of this.#endpoints.values()) {
      const link = ctx.links.get(ep.name);
      if (link && this.#configured.get(ep.name) !== link.index) {
        this.#configureInterface(ctx, ep);
        this.#configured.set(ep.name, link.index);
      }
      for (const net of [...ep.ipv4Nets, ...ep.ipv6Nets]) {
        routes.push({
          dst: net,
          type: 'unicast',
          dev: ep.name,
          scope: 'link',
          protocol: ctx.config.deviceRouteProtocol,
        });
        if (ep.mac) neighbours.push({ dev: ep.name, ip: net.split('/')[0]!, mac: ep.mac });
      }
    }
    for (const name of this.#configured.keys()) if (!ctx.links.has(name)) this.#configured.delete(name);
    ctx.routes.setRoutes('endpoints', routes);
    ctx.routes.setNeighbours('endpoints', neighbours);
  }

  /**
   * Reads the sysctls of every interface we configured (no writes); one that someone changed is
   * configured again on the next apply. True when any drifted.
   */
  checkSysctls(kernel: DataplaneKernel): boolean {
    if (!kernel.interfaceSysctlsDrifted || this.#configured.size === 0) return false;
    const wanted = new Map<string, ReturnType<typeof workloadInterfaceSysctls>>();
    for (const ep of this.#endpoints.values())
      if (this.#configured.has(ep.name))
        wanted.set(ep.name, workloadInterfaceSysctls({ ipv6: ep.ipv6Nets.length > 0 }));
    const drifted = kernel.interfaceSysctlsDrifted(wanted);
    for (const name of drifted) this.#configured.delete(name);
    return drifted.length > 0;
  }

  #configureInterface(ctx: ApplyContext, ep: WorkloadEndpoint): void {
    // The same set the CNI plugin wrote when it made the veth (proxy ARP for the pod's gateway,
    // forwarding, route_localnet, strict rp_filter; the IPv6 set with IPv6 addresses), written
    // again in case the interface was made or changed by someone else.
    ctx.kernel.setInterfaceSysctls(ep.name, workloadInterfaceSysctls({ ipv6: ep.ipv6Nets.length > 0 }));
    ctx.log.info({ iface: ep.name }, 'configured workload interface');
  }

  chains(config: FelixConfig): Partial<Record<TableName, { chains: Chain[] }>> {
    const marks = this.#marks();
    const chains: Chain[] = [...dispatchChains([...this.#endpoints.values()].map((e) => e.name))];
    for (const ep of this.#endpoints.values())
      chains.push(...workloadEndpointChains(ep, config, marks, this.#policyProgrammed(ep)));
    return { filter: { chains } };
  }

  /** The workload and dispatch chains are the same in ip6tables (they match no addresses). */
  chains6(config: FelixConfig): Partial<Record<TableName, { chains: Chain[] }>> {
    return this.chains(config);
  }
}
