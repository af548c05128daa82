export { CalcGraph, type CalcGraphOptions } from './calc/calc-graph.ts';
export type {
  DataplaneSink,
  DataplaneUpdate,
  DataplaneUpdateType,
  HostEndpoint,
  HostMetadata,
  IpamPool,
  IpsetType,
  PoolEncapsulation,
  RouteIntent,
  TierInfo,
  Vtep,
  WorkloadEndpoint,
  WorkloadEndpointId,
} from './calc/dataplane-update.ts';
export { EventSequencer } from './calc/event-sequencer.ts';
export * from './calc/policy/index.ts';
export { vtepMacForNode } from './calc/vtep-mac.ts';
export {
  configFromSpec,
  defaultFelixConfig,
  type FelixConfig,
  type FelixConfigOverrides,
  IPTABLES_BACKENDS,
  type IptablesBackendSetting,
  type PortSpec,
} from './config.ts';
export {
  type DropCause,
  type DropVerdict,
  decodeDropPrefix,
  encodeDropPrefix,
  NFLOG_GROUP,
} from './dataplane/drop-log.ts';
export {
  DEFAULT_DROP_LOG_SOCKET,
  type DropLogServer,
  type DropsResult,
  serveDropLog,
} from './dataplane/drop-log-server.ts';
export {
  type DropFilter,
  type DropRecord,
  DropRecorder,
  type EndpointRef,
} from './dataplane/drop-recorder.ts';
export { type ApplyStats, InternalDataplane } from './dataplane/internal-dataplane.ts';
export { IpipUnavailableError } from './dataplane/ipip-manager.ts';
export type {
  DataplaneKernel,
  IpsetState,
  IptablesTableState,
  NetlinkPort,
} from './dataplane/kernel-port.ts';
export { LinuxKernel } from './dataplane/linux-kernel.ts';
export { allocateMarkBits, type MarkBits } from './dataplane/mark-bits.ts';
export { MemoryKernel } from './dataplane/memory-kernel.ts';
export { Felix, type FelixEvents, type FelixOptions, type FelixStatus } from './felix.ts';
export {
  FELIX_KINDS,
  Syncer,
  type SyncerCallbacks,
  type SyncerOptions,
  type SyncerUpdate,
  type SyncStatus,
} from './syncer.ts';
