/**
 * The whole pure calculation: datastore snapshot → what this node's BGP speaker and kernel should
 * hold. No I/O; the agent applies the result.
 */
import type { PeerConfig } from '@calico-ts/bgp';
import { type ChainRule, compileChain, convertFilterRules } from './filters.ts';
import type { ProgramClusterRoutes } from './kernel-routes.ts';
import {
  computePeers,
  type DesiredPeer,
  type LocalNode,
  localNode,
  restartTimeOf,
  type SecretResolver,
} from './peers.ts';
import {
  computeRoutes,
  type ExportedRoute,
  exportChain,
  importChain,
  type PoolRouting,
  poolsOf,
} from './routes.ts';
import { type AgentSnapshot, bgpConfigurations } from './snapshot.ts';

export interface IntendedPeer extends DesiredPeer {
  /** Speaker config including compiled import/export policies. */
  config: PeerConfig;
  /** The BGPFilters with rules for this session's family, in order, per direction. */
  importFilters: string[];
  exportFilters: string[];
}

export interface BgpIntent {
  /** Undefined when this node has no Node resource or no IPv4 address (no router id: BGP off). */
  node: LocalNode | undefined;
  /** Graceful restart time we advertise (seconds). */
  restartTime: number;
  peers: IntendedPeer[];
  exports: ExportedRoute[];
  localBlocks: string[];
  /** Static routes we originate (blocks, service CIDRs). */
  originated: string[];
  /** Every block of this node, /32s included: exported as itself, nothing beneath it. */
  aggregatedBlocks: string[];
  /** Service CIDRs (confd's /rejectcidrs): never programmed into the kernel from a peer. */
  staticRoutes: string[];
  /** BIRD-style address to listen on (BGPConfiguration bindMode NodeIP); all addresses otherwise. */
  listenAddress: string | undefined;
  /** Host routes to BGPPeers with reachableBy. */
  peerRoutes: { prefix: string; via: string }[];
  pools: PoolRouting[];
  programClusterRoutes: ProgramClusterRoutes;
  /** Configuration we could not apply in full, for logs and status. */
  problems: string[];
}

export interface IntentOptions {
  /** confd's CALICO_ROUTER_ID: an IPv4 address, or `hash` (from the node name). Default: the node's IPv4. */
  routerId?: string | undefined;
}

export function computeIntent(
  snapshot: AgentSnapshot,
  nodeName: string,
  resolveSecret: SecretResolver,
  options: IntentOptions = {},
): BgpIntent {
  const pools = poolsOf(snapshot);
  const { global } = bgpConfigurations(snapshot, nodeName);
  const programClusterRoutes = global?.programClusterRoutes ?? 'EnabledNoEncapOnly';
  const restartTime = restartTimeOf(snapshot, nodeName);
  const me = localNode(snapshot, nodeName, options.routerId);
  const base = { restartTime, pools, programClusterRoutes, listenAddress: undefined, peerRoutes: [] };
  if (!me?.routerId) {
    const why = me ? `Node ${nodeName} has no spec.bgp.ipv4Address` : `Node ${nodeName} does not exist`;
    return {
      ...base,
      node: me,
      peers: [],
      exports: [],
      localBlocks: [],
      originated: [],
      aggregatedBlocks: [],
      staticRoutes: [],
      problems: [`${why}: BGP is off`],
    };
  }
  const { peers, problems } = computePeers(snapshot, me, resolveSecret);
  const routes = computeRoutes(snapshot, me, pools);
  problems.push(...routes.problems);
  const filters = new Map(snapshot.bgpFilters.map((f) => [f.metadata.name, f.spec]));
  const intended: IntendedPeer[] = peers.map((peer) => {
    const v4 = peer.family === 'ipv4';
    const ibgp = peer.config.asNumber === (peer.localAsNumber ?? me.asNumber);
    const importRules: ChainRule[] = [];
    const exportRules: ChainRule[] = [];
    const importFilters: string[] = [];
    const exportFilters: string[] = [];
    for (const name of peer.filters) {
      const spec = filters.get(name);
      if (!spec) {
        problems.push(`${peer.name}: BGPFilter ${name} does not exist`);
        continue;
      }
      if (((v4 ? spec.importV4 : spec.importV6) ?? []).length > 0) importFilters.push(name);
      if (((v4 ? spec.exportV4 : spec.exportV6) ?? []).length > 0) exportFilters.push(name);
      const ctx = { family: v4 ? (4 as const) : (6 as const), ibgp };
      importRules.push(...convertFilterRules((v4 ? spec.importV4 : spec.importV6) ?? [], ctx));
      exportRules.push(...convertFilterRules((v4 ? spec.exportV4 : spec.exportV6) ?? [], ctx));
    }
    const afi = v4 ? 1 : 2;
    importRules.push(...importChain());
    exportRules.push(...exportChain(snapshot, me, pools, routes.aggregatedBlocks, afi));
    return {
      ...peer,
      importFilters,
      exportFilters,
      config: {
        ...peer.config,
        importPolicy: compileChain(importRules, 'accept'),
        exportPolicy: compileChain(exportRules, 'reject'),
      },
    };
  });
  const { global: cfg } = bgpConfigurations(snapshot, nodeName);
  const peerRoutes = intended
    .filter((p) => p.reachableBy !== undefined)
    .map((p) => ({ prefix: `${p.config.address}/${p.family === 'ipv4' ? 32 : 128}`, via: p.reachableBy! }));
  return {
    ...base,
    node: me,
    // BIRD runs one daemon per family; our one speaker binds the node's IPv4 only when it has no IPv6.
    listenAddress: cfg?.bindMode === 'NodeIP' ? me.ipv4 : undefined,
    peers: intended,
    exports: routes.exports,
    localBlocks: routes.localBlocks,
    originated: routes.originated,
    aggregatedBlocks: routes.aggregatedBlocks,
    staticRoutes: routes.staticRoutes,
    peerRoutes,
    problems,
  };
}
