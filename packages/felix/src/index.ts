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
  type PortSpec,
} from './config.ts';
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
