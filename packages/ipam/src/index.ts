export type {
  AssignedAddress,
  AssignIpArgs,
  AutoAssignArgs,
  AutoAssignResult,
} from './allocation.ts';
export type { ReleaseAffinityOptions } from './block-affinity.ts';
export { fnv1_32, startBlockIndex } from './block-order.ts';
export type { CheckOptions, CheckReport } from './consistency-check.ts';
export { IpamError, type IpamErrorCode, isIpamError } from './errors.ts';
export type { GcOptions, GcReport } from './garbage-collector.ts';
export type { IntendedUse, SelectorMatcher } from './ip-pools.ts';
export {
  type HandleDeleteResult,
  Ipam,
  type IpamOptions,
  type LeakReleaseRequest,
  type LeakReleaseResult,
} from './ipam.ts';
export type { IpamConfig } from './ipam-store.ts';
export type { AssignmentAttributes } from './lookup.ts';
export {
  type AddressUse,
  type AllocationRecord,
  type HandleRecord,
  nodeAddresses,
  type OwnershipAudit,
  workloadAddresses,
} from './ownership-audit.ts';
export type { ReleaseRequest, ReleaseResult } from './release.ts';
export type { BlockUtilization, BorrowedAddress, BorrowedReport, PoolUtilization } from './utilization.ts';
