/**
 * @calico-ts/bgp-agent: the calico-node BGP agent (confd + BIRD's job, live from the datastore),
 * and `calico-bgpd`, the config-file daemon; both on the @calico-ts/bgp speaker, with the kernel
 * glue (route writer, TCP socket options) from @calico-ts/kernel.
 */
export { BgpAgent, type BgpAgentOptions, DEFAULT_SECRETS_DIR } from './agent.ts';
export {
  type AgentControlMethods,
  type AgentPeerStatus,
  type BgpAgentStatus,
  type BirdProtocolState,
  DEFAULT_AGENT_CONTROL_SOCKET,
} from './agent-control.ts';
export { Daemon } from './daemon/daemon.ts';
export { type KernelExport, KernelExportUnavailable, openKernelExport } from './daemon/kernel-export.ts';
export { type ChainRule, compileChain, convertFilterRules } from './filters.ts';
export { type BgpIntent, computeIntent, type IntendedPeer } from './intent.ts';
export {
  bestPathRoutePlan,
  type KernelNextHop,
  type KernelRouteIntent,
  type KernelRoutePlan,
  type KernelRouteRemoval,
  type KernelRouteState,
  learnedNextHops,
  planKernelRoutes,
} from './kernel/route-plan.ts';
export {
  type KernelRouteApplyResult,
  type KernelRouteFailure,
  KernelRouteWriter,
  type KernelRouteWriterOptions,
} from './kernel/route-writer.ts';
export { kernelSocketOptions } from './kernel/socket-options.ts';
export {
  desiredKernelRoutes,
  type LearnedRoute,
  ownedKernelRoute,
  type ProgramClusterRoutes,
} from './kernel-routes.ts';
export {
  bgpReadiness,
  calicoNodeStatusOf,
  NodeStatusReporter,
  type NodeStatusReporterOptions,
  reportedPeers,
} from './node-status-report.ts';
export {
  computePeers,
  type DesiredPeer,
  type LocalNode,
  localNode,
  type PeerType,
  type SecretResolver,
} from './peers.ts';
export { computeRoutes, type ExportedRoute, type PoolRouting, poolsOf } from './routes.ts';
export { type AgentSnapshot, EMPTY_SNAPSHOT } from './snapshot.ts';
export { AGENT_KINDS, type AgentKind, SnapshotWatch } from './snapshot-watch.ts';
