/**
 * Host endpoints (endpoint_mgr.go `resolveHostEndpoints` / `updateHostEndpoints`): which host
 * endpoint governs each interface, and its chains in filter, mangle and raw with the dispatch
 * chains that reach them. An interface is governed by the host endpoint naming it, else by one
 * whose expected IPs are on it (the alphabetically first endpoint wins a tie); an all-interfaces
 * endpoint (`interfaceName: "*"`) covers every other interface through the dispatch default.
 * Untracked chains are only rendered for endpoints with doNotTrack policy and never for the
 * all-interfaces endpoint; preDNAT chains only for endpoints with preDNAT policy. The policy and
 * profile chains the raw and mangle chains jump to are rendered into those tables here (the
 * policy manager writes the filter table's); Felix puts every policy in every table and lets the
 * table layer skip the unreferenced ones, which comes to the same kernel state.
 */
import type { Address, Link } from '@calico-ts/kernel';
import type { ActivePolicy, ActiveProfile, DataplaneUpdate, HostEndpoint } from '../calc/dataplane-update.ts';
import { type IpFamily, policyChains, profileChains } from '../calc/policy/rule-render.ts';
import type { FelixConfig } from '../config.ts';
import type { Chain, TableName } from './chains.ts';
import {
  ALL_INTERFACES,
  hostDispatchChains,
  hostEndpointFilterChains,
  hostEndpointMangleEgressChain,
  hostEndpointMangleIngressChain,
  hostEndpointRawChains,
} from './host-endpoint-chains.ts';
import type { ApplyContext, Manager } from './manager.ts';
import type { MarkBits } from './mark-bits.ts';

/** What host endpoint resolution reads of a link and of an address. */
type InterfaceLink = Pick<Link, 'index' | 'name'>;
type InterfaceAddress = Pick<Address, 'index' | 'address'>;

export class HostEndpointManager implements Manager {
  readonly name = 'host-endpoints';
  #endpoints = new Map<string, HostEndpoint>();
  #policies = new Map<string, ActivePolicy>();
  #profiles = new Map<string, ActiveProfile>();
  /** Interface name → its addresses (IPv4, and IPv6 when needed), as of the last apply. */
  #ifaceAddrs = new Map<string, Set<string>>();
  #marks: () => MarkBits;
  #policyProgrammed: (endpoint: HostEndpoint) => boolean;

  constructor(marks: () => MarkBits, policyProgrammed: (endpoint: HostEndpoint) => boolean = () => true) {
    this.#marks = marks;
    this.#policyProgrammed = policyProgrammed;
  }

  get count(): number {
    return this.#endpoints.size;
  }

  onUpdate(msg: DataplaneUpdate): void {
    switch (msg.type) {
      case 'hostEndpointUpdate':
        this.#endpoints.set(msg.id, msg.endpoint);
        return;
      case 'hostEndpointRemove':
        this.#endpoints.delete(msg.id);
        return;
      case 'activePolicyUpdate':
        this.#policies.set(msg.policy.key, msg.policy);
        return;
      case 'activePolicyRemove':
        this.#policies.delete(msg.key);
        return;
      case 'activeProfileUpdate':
        this.#profiles.set(msg.profile.name, msg.profile);
        return;
      case 'activeProfileRemove':
        this.#profiles.delete(msg.name);
        return;
      default:
        return;
    }
  }

  async completeDeferredWork(ctx: ApplyContext): Promise<void> {
    const addresses: InterfaceAddress[] = [...ctx.addresses];
    // IPv6 addresses only when an endpoint is matched by one (the apply lists IPv4 only).
    const wantsV6 = [...this.#endpoints.values()].some(
      (ep) => ep.interfaceName === undefined && ep.expectedIpv6Addrs.length > 0,
    );
    if (wantsV6) addresses.push(...(await ctx.kernel.netlink.listAddresses({ family: 6 })));
    this.observeInterfaces(ctx.links.values(), addresses);
  }

  /** Records which addresses each interface holds, for endpoints matched by expected IPs. */
  observeInterfaces(links: Iterable<InterfaceLink>, addresses: readonly InterfaceAddress[]): void {
    const byIndex = new Map<number, string>();
    for (const l of links) byIndex.set(l.index, l.name);
    const addrs = new Map<string, Set<string>>();
    for (const a of addresses) {
      const name = byIndex.get(a.index);
      if (name === undefined) continue;
      const set = addrs.get(name) ?? new Set<string>();
      set.add(a.address);
      addrs.set(name, set);
    }
    this.#ifaceAddrs = addrs;
    const resolved = JSON.stringify([...this.resolve()].sort());
    if (resolved !== this.#lastResolved) {
      this.#lastResolved = resolved;
      this.#chainsDirty = true;
    }
  }

  /**
   * True once after the interface → endpoint mapping changed because an address came or went:
   * the chains must be written again although no intent changed.
   */
  takeIptablesDirty(): boolean {
    const dirty = this.#chainsDirty;
    this.#chainsDirty = false;
    return dirty;
  }

  #lastResolved = '';
  #chainsDirty = false;

  /** Interface → governing host endpoint id (`*` for the all-interfaces one). */
  resolve(): Map<string, string> {
    const out = new Map<string, string>();
    const ids = [...this.#endpoints.keys()].sort();
    for (const id of ids) {
      const ep = this.#endpoints.get(id)!;
      const iface = ep.interfaceName;
      if (iface === undefined || out.has(iface)) continue;
      out.set(iface, id);
    }
    for (const [iface, addrs] of this.#ifaceAddrs) {
      if (out.has(iface)) continue;
      const id = ids.find((i) => {
        const ep = this.#endpoints.get(i)!;
        return (
          ep.interfaceName === undefined &&
          [...ep.expectedIpv4Addrs, ...ep.expectedIpv6Addrs].some((a) => addrs.has(a))
        );
      });
      if (id !== undefined) out.set(iface, id);
    }
    return out;
  }

  chains(config: FelixConfig): Partial<Record<TableName, { chains: Chain[] }>> {
    return this.#chains(config, 4);
  }

  /** ip6tables: the same chains, with the raw and mangle policy chains rendered for IPv6. */
  chains6(config: FelixConfig): Partial<Record<TableName, { chains: Chain[] }>> {
    return this.#chains(config, 6);
  }

  #chains(config: FelixConfig, family: IpFamily): Partial<Record<TableName, { chains: Chain[] }>> {
    const marks = this.#marks();
    const resolved = this.resolve();
    const filter: Chain[] = [];
    const mangle: Chain[] = [];
    const raw: Chain[] = [];
    const preDnat: string[] = [];
    const untracked: string[] = [];
    for (const [iface, id] of [...resolved].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const ep = this.#endpoints.get(id)!;
      const programmed = this.#policyProgrammed(ep);
      filter.push(...hostEndpointFilterChains(iface, ep, config, marks, programmed));
      mangle.push(hostEndpointMangleEgressChain(iface, ep, config, marks, programmed));
      if (ep.preDnatTiers.length > 0) {
        preDnat.push(iface);
        mangle.push(hostEndpointMangleIngressChain(iface, ep, config, marks, programmed));
      }
      // doNotTrack policy is not supported on the all-interfaces endpoint (Felix ignores it too).
      if (ep.untrackedTiers.length > 0 && iface !== ALL_INTERFACES) {
        untracked.push(iface);
        raw.push(...hostEndpointRawChains(iface, ep, config, marks, programmed));
      }
    }
    const workloadPrefixes = config.interfacePrefix
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const named = (list: Iterable<string>) => [...list].filter((i) => i !== ALL_INTERFACES);
    const wildcard = (has: boolean) => (has ? ALL_INTERFACES : undefined);
    filter.push(
      ...hostDispatchChains(named(resolved.keys()), {
        directions: 'to+from',
        applyOnForward: true,
        defaultIface: wildcard(resolved.has(ALL_INTERFACES)),
        workloadPrefixes,
      }),
    );
    mangle.push(
      ...hostDispatchChains(named(preDnat), {
        directions: 'from',
        applyOnForward: false,
        defaultIface: wildcard(preDnat.includes(ALL_INTERFACES)),
        workloadPrefixes,
      }),
      ...hostDispatchChains(named(resolved.keys()), {
        directions: 'to',
        applyOnForward: false,
        defaultIface: wildcard(resolved.has(ALL_INTERFACES)),
        workloadPrefixes,
      }),
    );
    raw.push(
      ...hostDispatchChains(untracked, {
        directions: 'to+from',
        applyOnForward: false,
        defaultIface: undefined,
        workloadPrefixes,
      }),
    );
    mangle.push(...this.#referencedPolicyChains(mangle, marks, family));
    raw.push(...this.#referencedPolicyChains(raw, marks, family));
    return { filter: { chains: filter }, mangle: { chains: mangle }, raw: { chains: raw } };
  }

  /** The policy and profile chains these chains jump to, rendered for this table. */
  #referencedPolicyChains(chains: readonly Chain[], marks: MarkBits, family: IpFamily): Chain[] {
    const targets = new Set<string>();
    for (const c of chains)
      for (const r of c.rules) if (r.action.startsWith('-j cali-p')) targets.add(r.action.slice(3));
    if (targets.size === 0) return [];
    const opts = { marks, family };
    const rendered = [
      ...[...this.#policies.values()].flatMap((p) => policyChains(p, opts)),
      ...[...this.#profiles.values()].flatMap((p) => profileChains(p, opts)),
    ];
    return rendered.filter((c) => targets.has(c.name)).sort((a, b) => (a.name < b.name ? -1 : 1));
  }
}
