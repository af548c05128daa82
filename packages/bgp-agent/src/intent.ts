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
}

export interface BgpIntent {
  /** Undefined when this node has no Node resource or no IPv4 address (no router id: BGP off). */
  node: LocalNode | undefined;
  /** Graceful restart time we advertise (seconds). */
  restartTime: number;
  peers: IntendedPeer[];
  exports: ExportedRoute[];
  localBlocks: string[];
  pools: PoolRouting[];
  programClusterRoutes: ProgramClusterRoutes;
  /** Configuration we could not apply in full, for logs and status. */
  problems: string[];
}

export function computeIntent(
  snapshot: AgentSnapshot,
  nodeName: string,
  resolveSecret: SecretResolver,
): BgpIntent {
  const pools = poolsOf(snapshot);
  const { global } = bgpConfigurations(snapshot, nodeName);
  const programClusterRoutes = global?.programClusterRoutes ?? 'EnabledNoEncapOnly';
  const restartTime = restartTimeOf(snapshot, nodeName);
  const me = localNode(snapshot, nodeName);
  const base = { restartTime, pools, programClusterRoutes };
  if (!me?.routerId) {
    const why = me ? `Node ${nodeName} has no spec.bgp.ipv4Address` : `Node ${nodeName} does not exist`;
    return { ...base, node: me, peers: [], exports: [], localBlocks: [], problems: [`${why}: BGP is off`] };
  }
  const { peers, problems } = computePeers(snapshot, me, resolveSecret);
  const routes = computeRoutes(snapshot, me, pools);
  problems.push(...routes.problems);
  const filters = new Map(snapshot.bgpFilters.map((f) => [f.metadata.name, f.spec]));
  const intended: IntendedPeer[] = peers.map((peer) => {
    const v4 = peer.family === 'ipv4';
    const ibgp = peer.config.asNumber === me.asNumber;
    const importRules: ChainRule[] = [];
    const exportRules: ChainRule[] = [];
    for (const name of peer.filters) {
      const spec = filters.get(name);
      if (!spec) {
        problems.push(`${peer.name}: BGPFilter ${name} does not exist`);
        continue;
      }
      const ctx = { family: v4 ? (4 as const) : (6 as const), ibgp };
      const imp = convertFilterRules(
        name,
        v4 ? 'importV4' : 'importV6',
        (v4 ? spec.importV4 : spec.importV6) ?? [],
        ctx,
      );
      const exp = convertFilterRules(
        name,
        v4 ? 'exportV4' : 'exportV6',
        (v4 ? spec.exportV4 : spec.exportV6) ?? [],
        ctx,
      );
      importRules.push(...imp.rules);
      exportRules.push(...exp.rules);
      problems.push(...imp.problems, ...exp.problems);
    }
    const afi = v4 ? 1 : 2;
    importRules.push(...importChain(pools, afi));
    exportRules.push(...exportChain(snapshot, me, pools, routes.localBlocks, afi));
    return {
      ...peer,
      config: {
        ...peer.config,
        importPolicy: compileChain(importRules, 'reject'),
        exportPolicy: compileChain(exportRules, 'reject'),
      },
    };
  });
  return {
    ...base,
    node: me,
    peers: intended,
    exports: routes.exports,
    localBlocks: routes.localBlocks,
    problems,
  };
}
