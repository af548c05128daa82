/**
 * @calico-ts/bgp: a BGP-4 speaker (codec, FSM, RIBs, policy), calico-bgpd's configuration and the
 * control protocol, with no workspace dependencies.
 */

export {
  type BgpdConfig,
  BgpdConfigError,
  loadBgpdConfig,
  validateBgpdConfig,
} from './config/bgpd-config.ts';
export {
  type BgpdControlMethods,
  type CallControlOptions,
  ControlError,
  type ControlFailure,
  type ControlHandlers,
  type ControlMethods,
  type ControlRequest,
  type ControlResponse,
  type ControlServer,
  callControl,
  DEFAULT_BGPD_CONTROL_SOCKET,
  type ReloadResult,
  type RoutesQuery,
  type ServeControlOptions,
  serveControl,
} from './control/control-protocol.ts';
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
  type PolicyContext,
  PolicyError,
  type PolicyMatch,
  type PolicyRule,
  type PolicySet,
  type PrefixMatch,
  parseCommunity,
} from './rib/policy.ts';
export {
  afterExportPolicy,
  type ExportTarget,
  exportAttributes,
  importViolation,
  type LocalIdentity,
} from './rib/route-rules.ts';
export { resolveCollision, Session, type SessionConfig, type SessionHandlers } from './session/session.ts';
export {
  notificationText,
  receivedNotification,
  type SessionError,
  type SessionErrorKind,
  sentNotification,
  shutdownCommunication,
  socketFailure,
} from './session/session-error.ts';
export { type ConnectOptions, type SocketOptions, SocketOptionsError } from './session/socket-options.ts';
export { BgpSpeaker } from './speaker/bgp-speaker.ts';
export * from './speaker/types.ts';
export * from './wire/index.ts';
