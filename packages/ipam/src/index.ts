export type { ReleaseAffinityOptions } from './block-affinity.ts';
export { fnv1_32, startBlockIndex } from './block-order.ts';
export type { CheckOptions, CheckReport } from './consistency-check.ts';
export { IpamError, type IpamErrorCode, isIpamError } from './errors.ts';
export type { GcOptions, GcReport } from './garbage-collector.ts';
export type { IntendedUse, SelectorMatcher } from './ip-pools.ts';
export {
  type AssignedAddress,
  type AssignIpArgs,
  type AssignmentAttributes,
  type AutoAssignArgs,
  type AutoAssignResult,
  type BlockUtilization,
  Ipam,
  type IpamOptions,
  type PoolUtilization,
  type ReleaseRequest,
  type ReleaseResult,
} from './ipam.ts';
export type { IpamConfig } from './ipam-store.ts';
