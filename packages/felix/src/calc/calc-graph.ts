/**
 * The calculation graph: datastore updates in, dataplane intent out, no I/O. It keeps the
 * validated state of every kind Felix reads, works out what this node needs (its endpoints,
 * routes, VTEPs, IP sets, effective configuration) and reports every change to the
 * EventSequencer, which batches and orders it.
 *
 * Derived state is recomputed lazily at flush time for only what an update touched (one node's
 * blocks when a node moves, everything when a pool or this node changes), so a resync of
 * thousands of objects costs one pass, not one per object.
 */
import {
  type AnyResource,
  cidrContains,
  cidrContainsIp,
  encapsulatedBetween,
  type FelixConfigurationSpec,
  formatMaskedCidr,
  isResourceOf,
  type KindName,
  parseCidr,
  parseIp,
} from '@calico-ts/datastore';
import {
  configFromSpec,
  defaultFelixConfig,
  type FelixConfig,
  type FelixConfigOverrides,
} from '../config.ts';
import type { SyncerUpdate, SyncStatus } from '../syncer.ts';
import { ActiveRulesCalculator, type StagedView } from './active-rules.ts';
import {
  type DataplaneUpdate,
  IPSET_ALL_HOSTS_NET,
  IPSET_ALL_POOLS,
  IPSET_ALL_VXLAN_NET,
  IPSET_MASQ_POOLS,
  type PoolEncapsulation,
  type RouteIntent,
  type Vtep,
} from './dataplane-update.ts';
import { EventSequencer } from './event-sequencer.ts';
import {
  endpointIndexItem,
  type ResolvedEndpointPolicy,
  type ResolvedHostEndpointPolicy,
  tierInfos,
} from './policy/index.ts';
import {
  type BlockView,
  blockView,
  type HostEndpointView,
  hostEndpointView,
  ipFamilyOf,
  type NodeView,
  nodeView,
  type PoolView,
  poolView,
  type WorkloadEndpointView,
  workloadEndpointView,
} from './resource-view.ts';
import { vtepMacForNode } from './vtep-mac.ts';

export interface CalcGraphOptions {
  nodeName: string;
  /** Host-level configuration that beats the datastore (Felix's env/config-file layer). */
  overrides?: FelixConfigOverrides;
}

export class CalcGraph {
  readonly nodeName: string;
  readonly sequencer = new EventSequencer();
  /** Policies, profiles, tiers, network sets and every endpoint's selector labels. */
  readonly policy = new ActiveRulesCalculator(this.sequencer);
  #overrides: FelixConfigOverrides;
  #felixConfigs = new Map<string, FelixConfigurationSpec>();
  #pools = new Map<string, PoolView>();
  #nodes = new Map<string, NodeView>();
  #blocks = new Map<string, BlockView>();
  #blocksByNode = new Map<string, Set<string>>();
  #workloads = new Map<string, WorkloadEndpointView>();
  #hostEndpoints = new Map<string, HostEndpointView>();
  /** Local host endpoints whose resolution must be reported again. */
  #dirtyHostEndpoints = new Set<string>();
  #hostResolutions = new Map<string, ResolvedHostEndpointPolicy>();
  /** Local workloads whose endpoint (and so policy resolution) must be reported again. */
  #dirtyWorkloads = new Set<string>();
  #resolutions = new Map<string, ResolvedEndpointPolicy>();
  /** Local workloads' staged views (only those some staged policy changes). */
  #stagedViews = new Map<string, StagedView>();
  /** Routes as last reported, per source (block key or workload key), to retract stale ones. */
  #routesBySource = new Map<string, Map<string, RouteIntent>>();
  /** Which sources currently claim each destination; the highest-priority one is reported. */
  #routeClaims = new Map<string, Map<string, RouteIntent>>();
  #dirtyBlocks = new Set<string>();
  #allRoutesDirty = true;
  #configDirty = true;
  #poolSetsDirty = true;
  #dirtyNodes = new Set<string>();
  #inSyncSeen = false;
  /** The active policies, profiles and IP sets must be worked out again from the resolutions. */
  #policyDirty = true;
  #reportedPools = new Set<string>();

  constructor(options: CalcGraphOptions) {
    this.nodeName = options.nodeName;
    this.#overrides = options.overrides ?? {};
    this.sequencer.onIpsetAdded(IPSET_ALL_POOLS, 'hash:net');
    this.sequencer.onIpsetAdded(IPSET_MASQ_POOLS, 'hash:net');
    this.sequencer.onIpsetAdded(IPSET_ALL_VXLAN_NET, 'hash:net');
    this.sequencer.onIpsetAdded(IPSET_ALL_HOSTS_NET, 'hash:net');
  }

  onStatus(status: SyncStatus): void {
    if (status === 'in-sync' && !this.#inSyncSeen) {
      this.#inSyncSeen = true;
      this.sequencer.onDatastoreInSync();
    }
  }

  onUpdates(updates: readonly SyncerUpdate[]): void {
    for (const u of updates) this.#onUpdate(u.kind, u.key, u.value);
  }

  /** Recomputes what the updates since the last flush touched and returns the ordered intent. */
  flush(): DataplaneUpdate[] {
    this.#recompute();
    return this.sequencer.flush();
  }

  /** The effective configuration as of the last flush inputs. */
  effectiveConfig(): FelixConfig {
    const config: FelixConfig = { ...defaultFelixConfig() };
    const layers = [
      configFromSpec(this.#felixConfigs.get('default')),
      configFromSpec(this.#felixConfigs.get(`node.${this.nodeName}`)),
      this.#overrides,
    ];
    let vxlanSet = false;
    let ipipSet = false;
    for (const layer of layers) {
      Object.assign(config, layer);
      vxlanSet ||= layer.vxlanEnabled !== undefined;
      ipipSet ||= layer.ipipEnabled !== undefined;
    }
    // Felix's EncapsulationResolver: unless configured, an encapsulation is on while any pool uses it.
    const pools = [...this.#pools.values()];
    if (!vxlanSet) config.vxlanEnabled = pools.some((p) => p.encapsulation.type === 'vxlan');
    if (!ipipSet) config.ipipEnabled = pools.some((p) => p.encapsulation.type === 'ipip');
    return config;
  }

  #onUpdate(kind: KindName, key: string, value: AnyResource | null): void {
    if (this.policy.onUpdate(kind, key, value)) return;
    switch (kind) {
      case 'FelixConfiguration':
        if (value && isResourceOf('FelixConfiguration', value))
          this.#felixConfigs.set(nameFromKey(key), value.spec);
        else this.#felixConfigs.delete(nameFromKey(key));
        this.#configDirty = true;
        return;
      case 'IPPool': {
        const pool = value && isResourceOf('IPPool', value) ? poolView(value) : undefined;
        if (pool) this.#pools.set(key, pool);
        else if (!this.#pools.delete(key)) return;
        this.#configDirty = true;
        this.#poolSetsDirty = true;
        this.#allRoutesDirty = true;
        return;
      }
      case 'Node': {
        const node = value && isResourceOf('Node', value) ? nodeView(value) : undefined;
        const name = node?.name ?? this.#nodeNameForKey(key);
        if (name === undefined) return;
        if (node) this.#nodes.set(name, node);
        else if (!this.#nodes.delete(name)) return;
        this.#dirtyNodes.add(name);
        // This node's own subnet decides CrossSubnet for every route.
        if (name === this.nodeName) this.#allRoutesDirty = true;
        for (const b of this.#blocksByNode.get(name) ?? []) this.#dirtyBlocks.add(b);
        return;
      }
      case 'IPAMBlock': {
        const old = this.#blocks.get(key);
        const block = value && isResourceOf('IPAMBlock', value) ? blockView(value) : undefined;
        if (old?.affineNode) this.#blocksByNode.get(old.affineNode)?.delete(key);
        if (block) {
          this.#blocks.set(key, block);
          if (block.affineNode) {
            const set = this.#blocksByNode.get(block.affineNode) ?? new Set<string>();
            this.#blocksByNode.set(block.affineNode, set);
            set.add(key);
          }
        } else if (!this.#blocks.delete(key)) {
          return;
        }
        this.#dirtyBlocks.add(key);
        return;
      }
      case 'WorkloadEndpoint': {
        const wep =
          value && isResourceOf('WorkloadEndpoint', value) ? workloadEndpointView(value) : undefined;
        // Every node's endpoints: selectors match remote pods' addresses too.
        this.policy.setEndpoint(
          `wep:${key}`,
          wep &&
            endpointIndexItem(
              {
                namespace: wep.namespace,
                labels: wep.labels,
                profiles: wep.profiles,
                serviceAccount: wep.serviceAccount,
              },
              [...wep.ipv4Nets, ...wep.ipv6Nets],
              wep.ports,
            ),
        );
        this.#onWorkloadEndpoint(key, wep);
        return;
      }
      case 'HostEndpoint': {
        const hep = value && isResourceOf('HostEndpoint', value) ? hostEndpointView(value) : undefined;
        this.policy.setEndpoint(
          `hep:${key}`,
          hep &&
            endpointIndexItem(
              { namespace: undefined, labels: hep.labels, profiles: hep.profiles },
              hep.expectedIPs.map((ip) => `${ip}/${ipFamilyOf(ip) === 6 ? 128 : 32}`),
            ),
        );
        if (hep && hep.node === this.nodeName) {
          const old = this.#hostEndpoints.get(key);
          if (old && old.name !== hep.name) this.sequencer.onHostEndpoint(old.name, null);
          this.#hostEndpoints.set(key, hep);
          this.#dirtyHostEndpoints.add(key);
        } else {
          const old = this.#hostEndpoints.get(key);
          if (!old) return;
          this.#hostEndpoints.delete(key);
          this.#dirtyHostEndpoints.delete(key);
          this.#hostResolutions.delete(key);
          this.#policyDirty = true;
          this.sequencer.onHostEndpoint(old.name, null);
        }
        return;
      }
      default:
        // ClusterInformation carries nothing the graph computes from; other kinds are not watched.
        return;
    }
  }

  /**
   * Profiles that local workloads name but that do not exist, as of the last flush. Such a
   * profile allows nothing (Calico's behaviour), so without another allow its pods get no traffic.
   */
  missingProfiles(): string[] {
    const names = new Set<string>();
    for (const r of this.#resolutions.values()) for (const n of r.missingProfiles) names.add(n);
    return [...names].sort();
  }

  #nodeNameForKey(key: string): string | undefined {
    const name = nameFromKey(key);
    return this.#nodes.has(name) ? name : undefined;
  }

  #onWorkloadEndpoint(key: string, wep: WorkloadEndpointView | undefined): void {
    const local = wep && wep.node === this.nodeName ? wep : undefined;
    const old = this.#workloads.get(key);
    if (!local && !old) return;
    if (local) {
      this.#workloads.set(key, local);
      this.#dirtyWorkloads.add(key);
    } else if (old) {
      this.#workloads.delete(key);
      this.#dirtyWorkloads.delete(key);
      this.#resolutions.delete(key);
      this.#stagedViews.delete(key);
      this.#policyDirty = true;
      this.sequencer.onWorkloadEndpoint(old.key, workloadEndpointId(old), null);
    }
    const routes = new Map<string, RouteIntent>();
    for (const dst of [...(local?.ipv4Nets ?? []), ...(local?.ipv6Nets ?? [])]) {
      routes.set(dst, this.#route('localWorkload', dst, this.nodeName));
    }
    this.#setRoutesFrom(`wep:${key}`, routes);
  }

  #recompute(): void {
    if (this.#configDirty) {
      this.#configDirty = false;
      this.sequencer.onConfigUpdate(this.effectiveConfig());
    }
    if (this.#poolSetsDirty) {
      this.#poolSetsDirty = false;
      const pools = [...this.#pools.values()];
      this.sequencer.onIpsetMembers(
        IPSET_ALL_POOLS,
        pools.filter((p) => p.cidr.family === 4).map((p) => p.cidrText),
      );
      this.sequencer.onIpsetMembers(
        IPSET_MASQ_POOLS,
        pools.filter((p) => p.cidr.family === 4 && p.natOutgoing).map((p) => p.cidrText),
      );
      const seen = new Set<string>();
      for (const p of pools) {
        seen.add(p.cidrText);
        this.sequencer.onPool(p.cidrText, {
          cidr: p.cidrText,
          masquerade: p.natOutgoing,
          ipipMode: p.ipipMode,
          vxlanMode: p.vxlanMode,
          disabled: p.disabled,
        });
      }
      for (const id of this.#reportedPools) if (!seen.has(id)) this.sequencer.onPool(id, null);
      this.#reportedPools = seen;
    }
    if (this.#dirtyNodes.size > 0) this.#recomputeNodes();
    if (this.#allRoutesDirty) {
      this.#allRoutesDirty = false;
      for (const key of this.#blocks.keys()) this.#dirtyBlocks.add(key);
      // Workload routes carry pool attributes too.
      for (const [key, w] of this.#workloads) this.#onWorkloadEndpoint(key, w);
    }
    for (const key of this.#dirtyBlocks) this.#recomputeBlock(key);
    this.#dirtyBlocks.clear();
    this.#recomputePolicy();
  }

  /**
   * Resolves the local workloads that changed (and those a policy or profile change touches; all
   * of them when a tier did), reports them with their tiers and known profiles, then the active policies, profiles and
   * IP sets they need, then the members selectors gained or lost.
   */
  #recomputePolicy(): void {
    const changes = this.policy.takeCatalogChanges();
    if (changes) {
      // Only the workloads a changed policy selected before or selects now, or whose profile changed.
      for (const key of this.#workloads.keys()) {
        const before = this.#resolutions.get(key);
        if (!before || changes.affects(before)) this.#dirtyWorkloads.add(key);
      }
      for (const key of this.#hostEndpoints.keys()) this.#dirtyHostEndpoints.add(key);
      this.#policyDirty = true;
    }
    for (const key of this.#dirtyHostEndpoints) {
      const h = this.#hostEndpoints.get(key);
      if (!h) continue;
      const resolved = this.policy.catalog.resolveHostEndpoint({
        namespace: undefined,
        labels: h.labels,
        profiles: h.profiles,
      });
      this.#hostResolutions.set(key, resolved);
      this.#policyDirty = true;
      this.sequencer.onHostEndpoint(h.name, {
        name: h.name,
        interfaceName: h.interfaceName,
        expectedIpv4Addrs: h.expectedIPs.filter((ip) => ipFamilyOf(ip) === 4),
        expectedIpv6Addrs: h.expectedIPs.filter((ip) => ipFamilyOf(ip) === 6),
        profileIds: resolved.profiles.map((p) => p.name),
        tiers: tierInfos(resolved),
        untrackedTiers: tierInfos(resolved.untracked),
        preDnatTiers: tierInfos(resolved.preDNAT),
        forwardTiers: tierInfos(resolved.forward),
      });
    }
    this.#dirtyHostEndpoints.clear();
    for (const key of this.#dirtyWorkloads) {
      const w = this.#workloads.get(key);
      if (!w) continue;
      const resolved = this.policy.resolve({
        namespace: w.namespace,
        labels: w.labels,
        profiles: w.profiles,
        serviceAccount: w.serviceAccount,
      });
      this.#resolutions.set(key, resolved);
      const staged = this.policy.catalog.resolveStaged(resolved);
      if (staged) this.#stagedViews.set(key, { tiers: staged, profiles: resolved.profiles });
      else this.#stagedViews.delete(key);
      this.#policyDirty = true;
      this.sequencer.onWorkloadEndpoint(w.key, workloadEndpointId(w), {
        state: 'active',
        name: w.interfaceName,
        mac: w.mac,
        profileIds: resolved.profiles.map((p) => p.name),
        ipv4Nets: w.ipv4Nets,
        ipv6Nets: w.ipv6Nets,
        tiers: tierInfos(resolved),
        ...(staged ? { stagedTiers: tierInfos(staged) } : {}),
        labels: w.labels,
      });
    }
    this.#dirtyWorkloads.clear();
    if (this.#policyDirty) {
      this.#policyDirty = false;
      this.policy.publish(
        [
          ...this.#resolutions.values(),
          ...[...this.#hostResolutions.values()].flatMap(hostEndpointPolicySets),
        ],
        this.#stagedViews.values(),
      );
    } else {
      this.policy.publishDeltas();
    }
  }

  #recomputeNodes(): void {
    for (const name of this.#dirtyNodes) {
      const node = this.#nodes.get(name);
      this.sequencer.onHostMetadata(
        name,
        node
          ? {
              hostname: name,
              ipv4Addr: node.ipv4Address,
              ipv4Subnet: node.ipv4Subnet && formatMaskedCidr(node.ipv4Subnet),
              ipv6Addr: node.ipv6Address,
              asNumber: node.asNumber,
              ipv4IPIPTunnelAddr: node.ipv4IPIPTunnelAddr,
            }
          : null,
      );
      this.sequencer.onVtep(name, node ? vtepOf(node) : null);
    }
    this.#dirtyNodes.clear();
    const hosts: string[] = [];
    const vxlanHosts: string[] = [];
    for (const node of this.#nodes.values()) {
      if (!node.ipv4Address) continue;
      hosts.push(`${node.ipv4Address}/32`);
      if (node.name !== this.nodeName && vtepOf(node)) vxlanHosts.push(`${node.ipv4Address}/32`);
    }
    this.sequencer.onIpsetMembers(IPSET_ALL_HOSTS_NET, hosts);
    this.sequencer.onIpsetMembers(IPSET_ALL_VXLAN_NET, vxlanHosts);
  }

  #recomputeBlock(key: string): void {
    const block = this.#blocks.get(key);
    const routes = new Map<string, RouteIntent>();
    if (block) {
      const owner = block.affineNode;
      if (owner !== undefined) {
        const type = owner === this.nodeName ? 'localBlock' : 'remoteBlock';
        routes.set(block.cidrText, this.#route(type, block.cidrText, owner));
      }
      for (const b of block.borrowed) {
        if (b.node === this.nodeName) continue;
        routes.set(b.dst, this.#route('remoteWorkload', b.dst, b.node));
      }
    }
    this.#setRoutesFrom(`block:${key}`, routes);
  }

  #route(type: RouteIntent['type'], dst: string, nodeName: string): RouteIntent {
    const cidr = parseCidr(dst);
    let pool: PoolView | undefined;
    for (const p of this.#pools.values()) {
      if (cidr && cidrContains(p.cidr, cidr) && (!pool || p.cidr.prefixLength > pool.cidr.prefixLength))
        pool = p;
    }
    const node = this.#nodes.get(nodeName);
    const me = this.#nodes.get(this.nodeName);
    const nodeIp = node?.ipv4Address === undefined ? undefined : parseIp(node.ipv4Address);
    const sameSubnet =
      nodeIp !== undefined && me?.ipv4Subnet !== undefined && cidrContainsIp(me.ipv4Subnet, nodeIp);
    const ipPoolType: PoolEncapsulation =
      pool && encapsulatedBetween(pool.encapsulation, sameSubnet) ? pool.encapsulation.type : 'none';
    return {
      type,
      dst,
      ipPoolType,
      sameSubnet,
      natOutgoing: pool?.natOutgoing ?? false,
      dstNodeName: nodeName,
      dstNodeIp: node?.ipv4Address,
    };
  }

  /**
   * Replaces the routes one source (a block or a workload) contributes. A destination claimed by
   * several sources (a borrowed address inside a local block, a workload inside a block) is
   * reported once, the most specific kind winning: local workload > borrowed > block.
   */
  #setRoutesFrom(source: string, routes: Map<string, RouteIntent>): void {
    const before = this.#routesBySource.get(source) ?? new Map<string, RouteIntent>();
    const touched = new Set<string>([...before.keys(), ...routes.keys()]);
    if (routes.size > 0) this.#routesBySource.set(source, routes);
    else this.#routesBySource.delete(source);
    for (const dst of touched) {
      let claims = this.#routeClaims.get(dst);
      const r = routes.get(dst);
      if (r) {
        claims ??= new Map();
        this.#routeClaims.set(dst, claims);
        claims.set(source, r);
      } else {
        claims?.delete(source);
      }
      if (!claims || claims.size === 0) {
        this.#routeClaims.delete(dst);
        this.sequencer.onRoute(dst, null);
        continue;
      }
      let best: RouteIntent | undefined;
      for (const c of claims.values()) if (!best || RANK[c.type] > RANK[best.type]) best = c;
      this.sequencer.onRoute(dst, best!);
    }
  }
}

function workloadEndpointId(w: WorkloadEndpointView) {
  return {
    orchestratorId: w.orchestrator,
    workloadId: `${w.namespace}/${w.workload}`,
    endpointId: w.endpoint,
  };
}

const RANK: Record<RouteIntent['type'], number> = {
  localWorkload: 3,
  remoteWorkload: 2,
  localBlock: 1,
  remoteBlock: 1,
};

function vtepOf(node: NodeView): Vtep | null {
  if (!node.ipv4VXLANTunnelAddr || !node.ipv4Address) return null;
  return {
    node: node.name,
    mac: (node.vxlanTunnelMACAddr ?? vtepMacForNode(node.name)).toLowerCase(),
    ipv4Addr: node.ipv4VXLANTunnelAddr,
    parentDeviceIp: node.ipv4Address,
  };
}

function nameFromKey(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

/**
 * A host endpoint's policies as resolutions the active-rules calculation reads: the normal
 * tiers with the profiles, and each extra tier list (untracked, preDNAT, forward) on its own.
 */
function hostEndpointPolicySets(r: ResolvedHostEndpointPolicy): ResolvedEndpointPolicy[] {
  const only = (tiers: ResolvedHostEndpointPolicy['untracked']): ResolvedEndpointPolicy => ({
    ...tiers,
    labels: r.labels,
    profiles: [],
    missingProfiles: [],
  });
  return [r, only(r.untracked), only(r.preDNAT), only(r.forward)];
}
