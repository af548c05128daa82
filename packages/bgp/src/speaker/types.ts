/** The speaker's configuration, status and event types (the public shape of `BgpSpeaker`). */
import type { FsmState } from '../fsm/fsm.ts';
import type { BestPathChange } from '../rib/loc-rib.ts';
import type { Policy } from '../rib/policy.ts';
import type { SessionErrorKind } from '../session/session-error.ts';
import type { FamilyKey } from '../wire/constants.ts';

export type Family = 'ipv4' | 'ipv6';

export interface PeerConfig {
  address: string;
  asNumber: number;
  /** TCP port of the peer (default 179). */
  port?: number;
  /** Source address for outgoing connections. */
  localAddress?: string;
  /** RFC 2385 TCP-MD5 key; needs a SocketOptions implementation. */
  password?: string;
  holdTime?: number;
  keepaliveTime?: number;
  connectRetryTime?: number;
  passive?: boolean;
  routeReflectorClient?: boolean;
  /** eBGP multihop TTL. */
  ttl?: number;
  /** RFC 5082 GTSM: TTL 255 out, at least 254 in (256 − `gtsmHops` when that is set). */
  gtsm?: boolean;
  /** GTSM: the peer is at most this many hops away (BIRD `ttl security on; multihop N`). */
  gtsmHops?: number;
  families?: Family[];
  /** Rewrite the next hop to ourselves on iBGP too. */
  nextHopSelf?: boolean;
  /** eBGP: pass on the next hop a learned route came with instead of ours (BIRD `next hop keep`). */
  nextHopKeep?: boolean;
  /** Accept eBGP paths holding our AS up to this many times (BIRD `allow local as N`; default 0). */
  allowLocalAs?: number;
  /**
   * The AS we are on this session (BIRD `local as N`), when not the speaker's: sent in our OPEN,
   * prepended on eBGP export, checked for loops, and deciding iBGP or eBGP with this peer.
   */
  localAsNumber?: number;
  /** Next hop for IPv4 / IPv6 routes when the session's address family differs. */
  nextHopV4?: string;
  nextHopV6?: string;
  /** RFC 7911: accept path identifiers from this peer. */
  addPathReceive?: boolean;
  /**
   * RFC 7911: advertise every path allowed by the export rules, not only the best, when the peer
   * can receive them (default: on for route-reflector clients, so ECMP survives reflection).
   */
  addPathSend?: boolean;
  importPolicy?: Policy;
  exportPolicy?: Policy;
}

export interface GracefulRestartConfig {
  /** Advertise the capability and act as helper for restarting peers (default true). */
  enabled?: boolean;
  /** Seconds peers should keep our routes while we restart (default 120). */
  restartTime?: number;
  /** We are restarting now: set the R bit in OPENs for the first restartTime seconds. */
  restarting?: boolean;
  /** Forwarding state (kernel routes) survives our restart: the F bit (default true). */
  forwardingPreserved?: boolean;
  /** Seconds stale routes stay after the peer is back, waiting for End-of-RIB (default 360). */
  staleTime?: number;
}

export interface SpeakerConfig {
  routerId: string;
  asNumber: number;
  clusterId?: string;
  /** Where to accept connections; false for none. */
  listen?: { address: string; port: number } | false;
  multipath?: boolean;
  gracefulRestart?: GracefulRestartConfig;
  connectRetryTime?: number;
}

export interface OriginateOptions {
  nextHop?: string;
  communities?: string[];
  largeCommunities?: string[];
  med?: number;
  localPref?: number;
}

export interface PeerStatus {
  address: string;
  asNumber: number;
  state: FsmState;
  uptimeSeconds: number;
  /** Prefixes announced by the peer (cumulative). */
  received: number;
  /** Prefixes currently accepted into the Loc-RIB from this peer. */
  accepted: number;
  /** Prefixes currently advertised to the peer. */
  sent: number;
  lastError: string | null;
  /** What kind of failure `lastError` is, while it explains why the session is not Established. */
  lastErrorKind: SessionErrorKind | null;
  routerId: string | null;
  localAddress: string | null;
  holdTime: number | null;
  families: string[];
  stale: number;
}

export interface RouteEntry {
  prefix: string;
  nextHop: string;
  asPath: string;
  communities: string[];
  best: boolean;
  peer: string;
  localPref: number | null;
  med: number | null;
  origin: 'igp' | 'egp' | 'incomplete';
  stale: boolean;
}

export interface SpeakerStatus {
  routerId: string;
  asNumber: number;
  listen: { address: string; port: number } | null;
  routes: number;
  peers: PeerStatus[];
}

export interface PeerStateEvent {
  address: string;
  from: FsmState;
  to: FsmState;
  lastError: string | undefined;
}

export interface SpeakerEvents {
  'peer-state': [PeerStateEvent];
  /** Best-path changes, batched per UPDATE (what a FIB writer installs). */
  'best-path': [BestPathChange[]];
  'end-of-rib': [{ peer: string; family: FamilyKey }];
}

export class BgpConfigError extends Error {
  readonly code = 'BGP_CONFIG_INVALID';
}
