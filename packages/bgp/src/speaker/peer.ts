/**
 * What the speaker keeps per peer, and the context its parts share. Each part owns its fields:
 * the peer registry the config and session, import the Adj-RIB-In and accepted routes, graceful
 * restart the stale routes and their timer, the Adj-RIB-Out the export state.
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../fsm/clock.ts';
import type { AttrInterner, Route, RouteSource } from '../rib/attr-set.ts';
import { AdjRibIn, type BestPathChange, type LocRib } from '../rib/loc-rib.ts';
import { CompiledPolicy } from '../rib/policy.ts';
import type { LocalIdentity } from '../rib/route-rules.ts';
import type { Session } from '../session/session.ts';
import type { FamilyKey } from '../wire/constants.ts';
import { prefixAfi } from '../wire/prefix.ts';
import type { Family, PeerConfig, SpeakerConfig } from './types.ts';
import type { OutSlot, UpdateGroup } from './update-group.ts';

export const FAMILY_KEY: Record<Family, FamilyKey> = { ipv4: '1/1', ipv6: '2/1' };

/** The AFI/SAFI key of a unicast prefix. */
export function familyKeyOf(prefix: string): FamilyKey {
  return FAMILY_KEY[prefixAfi(prefix) === 1 ? 'ipv4' : 'ipv6'];
}

export interface PeerEntry {
  config: PeerConfig;
  session: Session;
  /** The current session's route source; undefined while not Established. */
  source: RouteSource | undefined;
  // --- import
  adjIn: AdjRibIn;
  /** Post-policy routes of this peer in the Loc-RIB, by AdjRibIn key. */
  accepted: Map<string, Route>;
  importPolicy: CompiledPolicy;
  received: number;
  // --- graceful restart and enhanced route refresh
  /** RFC 4724: routes from the previous session kept through the peer's restart. */
  stale: Map<string, Route>;
  staleTimer: TimerHandle | undefined;
  /** Families where an enhanced route refresh (RFC 7313) is in progress. */
  refreshing: Set<FamilyKey>;
  // --- export: the shared Adj-RIB-Out of the peer's update group, and this peer's catch-up
  group: UpdateGroup | undefined;
  /** The group's Adj-RIB-Out being sent to this peer alone (session start, route refresh). */
  dump: { entries: Iterator<OutSlot>; family: FamilyKey | undefined } | undefined;
  dumpScheduled: boolean;
  /** EoRR messages owed to the peer once its dump is out. */
  endOfRefresh: [number, number][];
  sentEndOfRib: boolean;
}

/** A peer's state before its session exists (the registry attaches the session). */
export function newPeerEntry(config: PeerConfig): Omit<PeerEntry, 'session'> {
  return {
    config,
    source: undefined,
    adjIn: new AdjRibIn(),
    accepted: new Map(),
    stale: new Map(),
    staleTimer: undefined,
    group: undefined,
    dump: undefined,
    dumpScheduled: false,
    importPolicy: new CompiledPolicy(config.importPolicy),
    received: 0,
    refreshing: new Set(),
    endOfRefresh: [],
    sentEndOfRib: false,
  };
}

/** What the speaker's parts share: identity, the Loc-RIB, and how changes leave a part. */
export interface SpeakerCore {
  readonly config: SpeakerConfig;
  readonly me: LocalIdentity;
  readonly locRib: LocRib;
  readonly interner: AttrInterner;
  readonly log: Logger;
  readonly clock: Clock;
  /** Hand best-path changes on: to the `best-path` listeners and every established peer. */
  propagate(changes: BestPathChange[]): void;
}
