/**
 * Felix's EventSequencer: the calc graph reports changes here as they happen; flush() turns the
 * accumulated changes into one batch in the order the dataplane relies on. At most one pending
 * change is kept per key (later ones replace earlier ones), and a change equal to what was last
 * flushed is dropped, so duplicates and flapping between flushes cost nothing downstream.
 *
 * Flush order (calico-internals §3.1): config; IP set adds/deltas; policy and profile updates;
 * endpoint updates; endpoint removes; policy and profile removes; IP set removes; host metadata; pools; route removes before
 * VTEP removes; VTEP adds before route adds; pool and host removes; finally inSync.
 */
import type { FelixConfig } from '../config.ts';
import type {
  ActivePolicy,
  ActiveProfile,
  DataplaneUpdate,
  HostEndpoint,
  HostMetadata,
  IpamPool,
  IpsetType,
  RouteIntent,
  Vtep,
  WorkloadEndpoint,
  WorkloadEndpointId,
} from './dataplane-update.ts';

/** Pending changes of one message family, keyed; remembers what was sent to drop no-ops. */
class KeyedChanges<V> {
  #pending = new Map<string, V | null>();
  #sent = new Map<string, string>();

  set(key: string, value: V | null): void {
    this.#pending.set(key, value);
  }

  get size(): number {
    return this.#sent.size;
  }

  /** Splits pending changes into updates and removes, forgetting no-ops. */
  take(): { updates: [string, V][]; removes: string[] } {
    const updates: [string, V][] = [];
    const removes: string[] = [];
    for (const [key, value] of this.#pending) {
      if (value === null) {
        if (this.#sent.delete(key)) removes.push(key);
        continue;
      }
      const text = JSON.stringify(value);
      if (this.#sent.get(key) === text) continue;
      this.#sent.set(key, text);
      updates.push([key, value]);
    }
    this.#pending.clear();
    return { updates, removes };
  }
}

interface IpsetState {
  type: IpsetType;
  members: Set<string>;
}

export class EventSequencer {
  #config: FelixConfig | undefined;
  #sentConfig: string | undefined;
  #inSyncPending = false;
  #ipsets = new Map<string, IpsetState>();
  #sentIpsets = new Map<string, IpsetState>();
  #dirtyIpsets = new Set<string>();
  #workloads = new KeyedChanges<{ id: WorkloadEndpointId; endpoint: WorkloadEndpoint }>();
  #workloadIds = new Map<string, WorkloadEndpointId>();
  #hostEndpoints = new KeyedChanges<HostEndpoint>();
  #policies = new KeyedChanges<ActivePolicy>();
  #profiles = new KeyedChanges<ActiveProfile>();
  #hosts = new KeyedChanges<HostMetadata>();
  #pools = new KeyedChanges<IpamPool>();
  #routes = new KeyedChanges<RouteIntent>();
  #vteps = new KeyedChanges<Vtep>();

  onConfigUpdate(config: FelixConfig): void {
    this.#config = config;
  }

  onDatastoreInSync(): void {
    this.#inSyncPending = true;
  }

  /** Declares an IP set (or changes its type); members start empty. */
  onIpsetAdded(id: string, type: IpsetType): void {
    const existing = this.#ipsets.get(id);
    if (existing && existing.type === type) return;
    this.#ipsets.set(id, { type, members: new Set(existing?.members) });
    this.#dirtyIpsets.add(id);
  }

  onIpsetMemberAdded(id: string, member: string): void {
    const set = this.#ipsets.get(id);
    if (!set || set.members.has(member)) return;
    set.members.add(member);
    this.#dirtyIpsets.add(id);
  }

  onIpsetMemberRemoved(id: string, member: string): void {
    const set = this.#ipsets.get(id);
    if (!set?.members.delete(member)) return;
    this.#dirtyIpsets.add(id);
  }

  /** Replaces an IP set's members wholesale (small computed sets such as pool CIDRs). */
  onIpsetMembers(id: string, members: Iterable<string>): void {
    const set = this.#ipsets.get(id);
    if (!set) return;
    const next = new Set(members);
    if (next.size === set.members.size && [...next].every((m) => set.members.has(m))) return;
    set.members = next;
    this.#dirtyIpsets.add(id);
  }

  onIpsetRemoved(id: string): void {
    if (!this.#ipsets.delete(id)) return;
    this.#dirtyIpsets.add(id);
  }

  onWorkloadEndpoint(key: string, id: WorkloadEndpointId, endpoint: WorkloadEndpoint | null): void {
    if (endpoint) this.#workloadIds.set(key, id);
    this.#workloads.set(key, endpoint ? { id, endpoint } : null);
  }

  onActivePolicy(key: string, policy: ActivePolicy | null): void {
    this.#policies.set(key, policy);
  }

  onActiveProfile(name: string, profile: ActiveProfile | null): void {
    this.#profiles.set(name, profile);
  }

  onHostEndpoint(id: string, endpoint: HostEndpoint | null): void {
    this.#hostEndpoints.set(id, endpoint);
  }

  onHostMetadata(hostname: string, metadata: HostMetadata | null): void {
    this.#hosts.set(hostname, metadata);
  }

  onPool(id: string, pool: IpamPool | null): void {
    this.#pools.set(id, pool);
  }

  onRoute(dst: string, route: RouteIntent | null): void {
    this.#routes.set(dst, route);
  }

  onVtep(node: string, vtep: Vtep | null): void {
    this.#vteps.set(node, vtep);
  }

  /** Numbers of objects the dataplane currently holds, for status reporting. */
  counts(): { endpoints: number; routes: number; vteps: number; ipsets: number } {
    return {
      endpoints: this.#workloads.size,
      routes: this.#routes.size,
      vteps: this.#vteps.size,
      ipsets: this.#sentIpsets.size,
    };
  }

  flush(): DataplaneUpdate[] {
    const out: DataplaneUpdate[] = [];
    if (this.#config) {
      const text = JSON.stringify(this.#config);
      if (text !== this.#sentConfig) {
        this.#sentConfig = text;
        out.push({ type: 'configUpdate', config: structuredClone(this.#config) });
      }
      this.#config = undefined;
    }
    const ipsetRemoves = this.#flushIpsets(out);
    const policies = this.#policies.take();
    const profiles = this.#profiles.take();
    for (const [, policy] of policies.updates) out.push({ type: 'activePolicyUpdate', policy });
    for (const [, profile] of profiles.updates) out.push({ type: 'activeProfileUpdate', profile });
    const wl = this.#workloads.take();
    const hep = this.#hostEndpoints.take();
    for (const [key, v] of wl.updates)
      out.push({ type: 'workloadEndpointUpdate', key, id: v.id, endpoint: v.endpoint });
    for (const [id, endpoint] of hep.updates) out.push({ type: 'hostEndpointUpdate', id, endpoint });
    for (const key of wl.removes) {
      const id = this.#workloadIds.get(key)!;
      this.#workloadIds.delete(key);
      out.push({ type: 'workloadEndpointRemove', key, id });
    }
    for (const id of hep.removes) out.push({ type: 'hostEndpointRemove', id });
    // After the endpoints that used them are gone.
    for (const key of policies.removes) out.push({ type: 'activePolicyRemove', key });
    for (const name of profiles.removes) out.push({ type: 'activeProfileRemove', name });
    for (const id of ipsetRemoves) out.push({ type: 'ipsetRemove', id });
    const hosts = this.#hosts.take();
    const pools = this.#pools.take();
    const routes = this.#routes.take();
    const vteps = this.#vteps.take();
    for (const [hostname, metadata] of hosts.updates)
      out.push({ type: 'hostMetadataUpdate', hostname, metadata });
    for (const [id, pool] of pools.updates) out.push({ type: 'ipamPoolUpdate', id, pool });
    for (const dst of routes.removes) out.push({ type: 'routeRemove', dst });
    for (const node of vteps.removes) out.push({ type: 'vtepRemove', node });
    for (const [, vtep] of vteps.updates) out.push({ type: 'vtepUpdate', vtep });
    for (const [, route] of routes.updates) out.push({ type: 'routeUpdate', route });
    for (const id of pools.removes) out.push({ type: 'ipamPoolRemove', id });
    for (const hostname of hosts.removes) out.push({ type: 'hostMetadataRemove', hostname });
    if (this.#inSyncPending) {
      this.#inSyncPending = false;
      out.push({ type: 'inSync' });
    }
    return out;
  }

  /** Emits IP set adds and deltas; returns the ids to remove (sent later, after endpoints). */
  #flushIpsets(out: DataplaneUpdate[]): string[] {
    const removes: string[] = [];
    for (const id of [...this.#dirtyIpsets].sort()) {
      const want = this.#ipsets.get(id);
      const sent = this.#sentIpsets.get(id);
      if (!want) {
        if (sent) {
          this.#sentIpsets.delete(id);
          removes.push(id);
        }
        continue;
      }
      if (!sent || sent.type !== want.type) {
        out.push({ type: 'ipsetUpdate', id, ipsetType: want.type, members: [...want.members].sort() });
      } else {
        const addedMembers = [...want.members].filter((m) => !sent.members.has(m)).sort();
        const removedMembers = [...sent.members].filter((m) => !want.members.has(m)).sort();
        if (addedMembers.length === 0 && removedMembers.length === 0) continue;
        out.push({ type: 'ipsetDeltaUpdate', id, addedMembers, removedMembers });
      }
      this.#sentIpsets.set(id, { type: want.type, members: new Set(want.members) });
    }
    this.#dirtyIpsets.clear();
    return removes;
  }
}
