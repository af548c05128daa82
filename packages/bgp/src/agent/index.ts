/**
 * @calico-ts/bgp/agent: the calico-node BGP agent (confd + BIRD's job, live from the datastore).
 * A second entry point so the library's main entry stays free of datastore and kernel code.
 */
export {
  AGENT_KINDS,
  type AgentPeerStatus,
  BgpAgent,
  type BgpAgentOptions,
  type BgpAgentStatus,
  type BirdProtocolState,
  DEFAULT_SECRETS_DIR,
} from './agent.ts';
export {
  type ControlRequest,
  ControlSocketError,
  DEFAULT_CONTROL_SOCKET,
  queryControlSocket,
  serveControlSocket,
} from './control-socket.ts';
export { type ChainRule, compileChain, convertFilterRules } from './filters.ts';
export { type BgpIntent, computeIntent, type IntendedPeer } from './intent.ts';
export {
  CALICO_ROUTE_PROTOCOL,
  desiredKernelRoutes,
  type KernelRouteIntent,
  type LearnedRoute,
  type ProgramClusterRoutes,
  planKernelRoutes,
} from './kernel-routes.ts';
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
