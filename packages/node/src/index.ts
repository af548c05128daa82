export { AutodetectError, autodetectAddress, type HostAddress, hostAddresses } from './autodetect.ts';
export {
  type BgpAgentFactory,
  type BgpAgentLike,
  CalicoNode,
  type CalicoNodeOptions,
} from './calico-node.ts';
export { ConfigError, loadNodeConfig, type NodeConfig, type PoolSettings } from './config.ts';
export { HealthAggregator, type HealthReport, serveHealth } from './health.ts';
export {
  CNI_NODE_RUNTIME,
  type CniInstallSettings,
  cniInstallSettings,
  runCniInstall,
} from './install-cni.ts';
export { main } from './main.ts';
export { NodeMetrics, serveMetrics } from './metrics.ts';
export { type StartupResult, startup, type TunnelAddressAllocator } from './startup.ts';
export { ipamTunnelAllocator } from './tunnel-allocator.ts';
