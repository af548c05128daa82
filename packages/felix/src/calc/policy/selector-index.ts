/**
 * The incremental index behind the policy IP sets (felix/labelindex: InheritIndex + the named
 * port index): which endpoints and network sets each active selector matches, and so which
 * addresses (or address/protocol/port triples for named ports) each IP set holds. Every change
 * — an endpoint's labels or addresses, a profile's labels, a set becoming active — updates only
 * what it touches and records the members each set gained or lost, ready to send as
 * `ipsetDeltaUpdate`s.
 */
import {
  cidrContains,
  LABEL_NAMESPACE,
  type Labels,
  NAMESPACE_PROFILE_PREFIX,
  parseCidr,
  type ResourceOf,
} from '@calico-ts/datastore';
import type { IpsetSpec } from './parsed-rule.ts';
import {
  effectiveLabels,
  endpointOwnLabels,
  endpointProfiles,
  type PolicyEndpoint,
} from './policy-catalog.ts';

/** A named port an endpoint declares (WorkloadEndpoint / HostEndpoint `spec.ports`). */
export interface EndpointPort {
  name: string;
  protocol: string | number;
  port: number;
}

/** Something selectors match whose addresses land in IP sets. */
export interface IndexedItem {
  /** Own labels (a workload's already carry projectcalico.org/namespace etc.). */
  labels: Labels;
  /** Profiles whose labelsToApply it inherits, earlier first. */
  profiles: readonly string[];
  /** CIDRs: a workload's ipNetworks, a host endpoint's expected IPs, a network set's nets. */
  nets: readonly string[];
  /** Named ports; network sets have none, so they never enter named-port sets. */
  ports?: readonly EndpointPort[];
}

/** The kernel type of a policy IP set: addresses/networks, or address,protocol:port for named ports. */
export function ipsetTypeOf(spec: IpsetSpec): 'hash:net' | 'hash:ip,port' {
  return spec.namedPort ? 'hash:ip,port' : 'hash:net';
}

/** The IP family of a set member (`10.0.0.1/32`, `fd00::1/128`, `10.0.0.1,tcp:80`). */
export function memberFamily(member: string): 4 | 6 {
  return member.includes(':') && !/^[\d.]+,/.test(member) ? 6 : 4;
}

/** An endpoint as the index holds it: the same labels and profiles resolution uses. */
export function endpointIndexItem(
  endpoint: PolicyEndpoint,
  nets: readonly string[],
  ports: readonly EndpointPort[] = [],
): IndexedItem {
  return { labels: endpointOwnLabels(endpoint), profiles: endpointProfiles(endpoint), nets, ports };
}

/**
 * A (Global)NetworkSet as the index holds it (networksetprocessor.go): a NetworkSet carries
 * `projectcalico.org/namespace` and inherits its namespace profile's labels; a GlobalNetworkSet
 * has neither, which is what `global()` selects.
 */
export function networkSetIndexItem(
  set: ResourceOf<'NetworkSet'> | ResourceOf<'GlobalNetworkSet'>,
): IndexedItem {
  const namespace = set.metadata.namespace;
  const labels: Record<string, string> = { ...(set.metadata.labels ?? {}) };
  if (namespace !== undefined) labels[LABEL_NAMESPACE] = namespace;
  return {
    labels,
    profiles: namespace !== undefined ? [NAMESPACE_PROFILE_PREFIX + namespace] : [],
    nets: set.spec.nets ?? [],
  };
}

export interface IpsetDelta {
  id: string;
  added: string[];
  removed: string[];
}

const PORT_PROTOCOL_NUMBERS: Readonly<Record<string, number>> = { tcp: 6, udp: 17, sctp: 132 };

function portProtocolNumber(protocol: string | number): number | undefined {
  if (typeof protocol === 'number') return protocol;
  if (/^\d+$/.test(protocol)) return Number(protocol);
  return PORT_PROTOCOL_NUMBERS[protocol.toLowerCase()];
}

/** An address without its prefix length, for `hash:ip,port` members. */
function hostAddress(net: string): string {
  return net.split('/')[0] ?? net;
}

/** The members an item puts into one set, given whether the set's selector matches it. */
function contributions(spec: IpsetSpec, item: IndexedItem, labels: Labels): string[] {
  if (!spec.selector.evaluate(labels)) return [];
  const named = spec.namedPort;
  if (!named) return [...item.nets];
  const wanted = PORT_PROTOCOL_NUMBERS[named.protocol];
  const out: string[] = [];
  for (const p of item.ports ?? []) {
    if (p.name !== named.name || portProtocolNumber(p.protocol) !== wanted) continue;
    for (const net of item.nets) out.push(`${hostAddress(net)},${named.protocol}:${p.port}`);
  }
  return out;
}

interface SetState {
  spec: IpsetSpec;
  /** member → how many items contribute it (two network sets may list the same net). */
  members: Map<string, number>;
}

interface ItemState {
  item: IndexedItem;
  labels: Record<string, string>;
  /** set id → members this item contributes to it. */
  contributed: Map<string, string[]>;
}

export class SelectorIndex {
  #sets = new Map<string, SetState>();
  #items = new Map<string, ItemState>();
  #profileLabels = new Map<string, Labels>();
  #pending = new Map<string, { added: Set<string>; removed: Set<string> }>();

  /** Adds or replaces an endpoint or network set under `key`. */
  setItem(key: string, item: IndexedItem): void {
    const state = this.#items.get(key) ?? { item, labels: {}, contributed: new Map() };
    state.item = item;
    this.#items.set(key, state);
    this.#refreshItem(state);
  }

  removeItem(key: string): void {
    const state = this.#items.get(key);
    if (!state) return;
    for (const [id, members] of state.contributed) this.#changeMembers(id, members, []);
    this.#items.delete(key);
  }

  /** A profile's labelsToApply changed (or it appeared/disappeared: pass undefined). */
  setProfileLabels(profile: string, labels: Labels | undefined): void {
    if (labels === undefined) this.#profileLabels.delete(profile);
    else this.#profileLabels.set(profile, labels);
    for (const state of this.#items.values())
      if (state.item.profiles.includes(profile)) this.#refreshItem(state);
  }

  /** Starts tracking a set; its current members are reported as added. */
  addIpset(spec: IpsetSpec): void {
    if (this.#sets.has(spec.id)) return;
    this.#sets.set(spec.id, { spec, members: new Map() });
    for (const state of this.#items.values()) {
      const members = contributions(spec, state.item, state.labels);
      if (members.length > 0) {
        state.contributed.set(spec.id, members);
        this.#changeMembers(spec.id, [], members);
      }
    }
  }

  /** Stops tracking a set (the caller removes it from the dataplane); no delta is reported for it. */
  removeIpset(id: string): void {
    this.#sets.delete(id);
    this.#pending.delete(id);
    for (const state of this.#items.values()) state.contributed.delete(id);
  }

  /** Makes the tracked sets exactly `specs`: adds the new ones, removes the rest. */
  syncIpsets(specs: Iterable<IpsetSpec>): { added: string[]; removed: string[] } {
    const wanted = new Map<string, IpsetSpec>();
    for (const s of specs) wanted.set(s.id, s);
    const removed = [...this.#sets.keys()].filter((id) => !wanted.has(id));
    for (const id of removed) this.removeIpset(id);
    const added = [...wanted.keys()].filter((id) => !this.#sets.has(id));
    for (const id of added) this.addIpset(wanted.get(id)!);
    return { added, removed };
  }

  ipsetIds(): string[] {
    return [...this.#sets.keys()].sort();
  }

  spec(id: string): IpsetSpec | undefined {
    return this.#sets.get(id)?.spec;
  }

  /** Current members of a set, sorted; empty for an unknown set. Kernel sets are per family: pass one. */
  members(id: string, family?: 4 | 6): string[] {
    const all = [...(this.#sets.get(id)?.members.keys() ?? [])].sort();
    return family === undefined ? all : all.filter((m) => memberFamily(m) === family);
  }

  /** The labels selectors see on an item (own labels over inherited ones). */
  labelsOf(key: string): Readonly<Record<string, string>> | undefined {
    return this.#items.get(key)?.labels;
  }

  /** hash:net semantics: is `ip` inside any member of the set? */
  containsAddress(id: string, ip: string): boolean {
    const set = this.#sets.get(id);
    const addr = parseCidr(ip.includes('/') ? ip : `${ip}/${ip.includes(':') ? 128 : 32}`);
    if (!set || !addr) return false;
    for (const member of set.members.keys()) {
      const net = parseCidr(member.includes('/') ? member : `${member}/${member.includes(':') ? 128 : 32}`);
      if (net && cidrContains(net, addr)) return true;
    }
    return false;
  }

  /** hash:ip,port semantics: does the set hold (ip, protocol, port)? */
  containsAddressPort(id: string, ip: string, protocol: number, port: number): boolean {
    const set = this.#sets.get(id);
    const name = Object.entries(PORT_PROTOCOL_NUMBERS).find(([, n]) => n === protocol)?.[0];
    if (!set || !name) return false;
    return set.members.has(`${ip},${name}:${port}`);
  }

  /** Members each set gained and lost since the last call (sets with no net change are left out). */
  takeDeltas(): IpsetDelta[] {
    const out: IpsetDelta[] = [];
    for (const [id, d] of [...this.#pending].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (d.added.size === 0 && d.removed.size === 0) continue;
      out.push({ id, added: [...d.added].sort(), removed: [...d.removed].sort() });
    }
    this.#pending.clear();
    return out;
  }

  #refreshItem(state: ItemState): void {
    state.labels = effectiveLabels(state.item.labels, state.item.profiles, (p) => this.#profileLabels.get(p));
    for (const [id, set] of this.#sets) {
      const before = state.contributed.get(id) ?? [];
      const after = contributions(set.spec, state.item, state.labels);
      if (after.length > 0) state.contributed.set(id, after);
      else state.contributed.delete(id);
      this.#changeMembers(id, before, after);
    }
  }

  #changeMembers(id: string, before: readonly string[], after: readonly string[]): void {
    const set = this.#sets.get(id);
    if (!set) return;
    const gone = before.filter((m) => !after.includes(m));
    const come = after.filter((m) => !before.includes(m));
    if (gone.length === 0 && come.length === 0) return;
    const pending = this.#pending.get(id) ?? { added: new Set<string>(), removed: new Set<string>() };
    this.#pending.set(id, pending);
    for (const m of gone) {
      const n = (set.members.get(m) ?? 0) - 1;
      if (n > 0) {
        set.members.set(m, n);
        continue;
      }
      set.members.delete(m);
      if (pending.added.has(m)) pending.added.delete(m);
      else pending.removed.add(m);
    }
    for (const m of come) {
      const n = (set.members.get(m) ?? 0) + 1;
      set.members.set(m, n);
      if (n > 1) continue;
      if (pending.removed.has(m)) pending.removed.delete(m);
      else pending.added.add(m);
    }
  }
}
