/** @calico-ts/bgp: a BGP-4 speaker (codec, FSM, RIBs, policy) with no workspace dependencies. */

export { ControlError, callControl, DEFAULT_CONTROL_SOCKET } from './daemon/control.ts';
export { type Clock, ManualClock, systemClock, type TimerHandle } from './fsm/clock.ts';
export {
  DEFAULT_TIMERS,
  FSM_TABLE,
  Fsm,
  type FsmEvent,
  type FsmIo,
  FsmState,
  type FsmTimers,
} from './fsm/fsm.ts';
export { AttrInterner, type AttrSet, LOCAL_SOURCE, type Route, type RouteSource } from './rib/attr-set.ts';
export { comparePreference, compareRoutes, DEFAULT_LOCAL_PREF } from './rib/best-path.ts';
export { AdjRibIn, type BestPathChange, LocRib } from './rib/loc-rib.ts';
export {
  CompiledPolicy,
  formatAsPath,
  formatCommunity,
  type Policy,
  PolicyError,
  type PolicyMatch,
  type PolicyRule,
  type PolicySet,
  type PrefixMatch,
  parseCommunity,
} from './rib/policy.ts';
export {
  type ExportTarget,
  exportAttributes,
  importViolation,
  type LocalIdentity,
} from './rib/route-rules.ts';
export { resolveCollision, Session, type SessionConfig, type SessionHandlers } from './session/session.ts';
export { type ConnectOptions, type SocketOptions, SocketOptionsError } from './session/socket-options.ts';
export * from './speaker.ts';
export * from './wire/index.ts';
