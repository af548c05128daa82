/**
 * An update group: the peers whose sessions would be sent exactly the same UPDATEs (same export
 * rules, policy, next hop, and encoding), sharing one Adj-RIB-Out and one encoding of every
 * UPDATE, as FRR's update groups and BIRD's per-channel buckets do. Split horizon (never back to
 * the peer a route came from) is applied when the shared messages are handed to each member.
 */
import type { AttrSet, RouteSource } from '../rib/attr-set.ts';
import { CompiledPolicy, type Policy } from '../rib/policy.ts';
import type { ExportTarget } from '../rib/route-rules.ts';
import type { EncodeContext } from '../wire/attributes.ts';
import { type FamilyKey, MAX_EXTENDED_MESSAGE_LENGTH, MAX_MESSAGE_LENGTH } from '../wire/constants.ts';
import type { PeerEntry } from './peer.ts';

/**
 * One prefix (or prefix and path id, with ADD-PATH) of a group's Adj-RIB-Out: what is advertised
 * and, while a change waits for the next flush, what comes next. Keeping both in one object means
 * queueing a change costs one map lookup and no allocation once the prefix is known.
 */
export class OutSlot {
  readonly key: string;
  readonly prefix: string;
  /** RFC 7911 path id; 0 without ADD-PATH. */
  readonly pathId: number;
  /** What is advertised now; null while nothing is. */
  attrs: AttrSet | null = null;
  source: RouteSource | undefined = undefined;
  /** The queued change: undefined when none, null for a withdrawal. */
  nextAttrs: AttrSet | null | undefined = undefined;
  nextSource: RouteSource | undefined = undefined;

  constructor(key: string, prefix: string, pathId: number) {
    this.key = key;
    this.prefix = prefix;
    this.pathId = pathId;
  }
}

/** What makes two sessions' outbound UPDATEs identical. */
export interface GroupSignature {
  ibgp: boolean;
  rrClient: boolean;
  nextHopSelf: boolean;
  nextHopKeep: boolean;
  /** Our next hop in each family on these sessions; undefined: the family is not exported. */
  selfNextHopV4: string | undefined;
  selfNextHopV6: string | undefined;
  families: FamilyKey[];
  addPathSend: FamilyKey[];
  fourOctetAs: boolean;
  extendedMessage: boolean;
  exportPolicy: Policy | null;
  /** The AS we are on these sessions (prepended on eBGP). */
  localAs: number;
}

/** The signature of an established peer's session, or undefined while it has none. */
export function signatureOf(p: PeerEntry): GroupSignature | undefined {
  const s = p.session;
  const n = s.negotiated;
  if (!n || !p.source) return undefined;
  const local = s.localAddress ?? '';
  const localIsV6 = local.includes(':');
  const v4 = n.families.has('1/1')
    ? (p.config.nextHopV4 ??
      (localIsV6 ? (n.extendedNextHop.has('1/1') ? local : undefined) : local || undefined))
    : undefined;
  const v6 = n.families.has('2/1')
    ? (p.config.nextHopV6 ?? (localIsV6 ? local : local ? `::ffff:${local}` : undefined))
    : undefined;
  return {
    ibgp: p.source.ibgp,
    rrClient: p.source.rrClient,
    nextHopSelf: p.config.nextHopSelf ?? false,
    nextHopKeep: p.config.nextHopKeep ?? false,
    selfNextHopV4: v4,
    selfNextHopV6: v6,
    families: [...n.families].sort() as FamilyKey[],
    addPathSend: [...n.addPathSend].sort() as FamilyKey[],
    fourOctetAs: n.fourOctetAs,
    extendedMessage: n.extendedMessage,
    exportPolicy: p.config.exportPolicy ?? null,
    localAs: p.session.config.localAs,
  };
}

export class UpdateGroup {
  readonly key: string;
  readonly signature: GroupSignature;
  readonly policy: CompiledPolicy;
  readonly ctx: EncodeContext;
  readonly families: ReadonlySet<FamilyKey>;
  readonly addPath: ReadonlySet<FamilyKey>;
  readonly members = new Set<PeerEntry>();
  /** What the group advertises or has queued, by prefix (or prefix#pathId with ADD-PATH). */
  readonly adjOut = new Map<string, OutSlot>();
  /** Paths advertised now (slots with attributes). */
  advertised = 0;
  /** ADD-PATH families: the path ids advertised or queued per prefix. */
  readonly pathsOf = new Map<string, number[]>();
  /** Slots with a queued change, in queueing order, from `queueHead` on. */
  queue: OutSlot[] = [];
  queueHead = 0;
  /** Export results per (AFI, source, attribute set) while the policy ignores prefixes. */
  readonly exportCache: Map<RouteSource, Map<AttrSet, AttrSet | null>>[] = [new Map(), new Map(), new Map()];
  flushScheduled = false;
  /** Every member's socket was full at the last flush: the next one waits for a 'drain'. */
  awaitingDrain = false;

  constructor(key: string, signature: GroupSignature) {
    this.key = key;
    this.signature = signature;
    this.policy = new CompiledPolicy(signature.exportPolicy ?? undefined);
    this.families = new Set(signature.families);
    this.addPath = new Set(signature.addPathSend);
    this.ctx = {
      fourOctetAs: signature.fourOctetAs,
      addPathSend: this.addPath,
      maxMessageLength: signature.extendedMessage ? MAX_EXTENDED_MESSAGE_LENGTH : MAX_MESSAGE_LENGTH,
    };
  }

  static keyOf(sig: GroupSignature): string {
    return JSON.stringify(sig);
  }

  /** The export target for a family, or undefined when the group does not take it. */
  target(afi: number): ExportTarget | undefined {
    const sig = this.signature;
    const selfNextHop = afi === 1 ? sig.selfNextHopV4 : sig.selfNextHopV6;
    if (!selfNextHop) return undefined;
    // No peer address: split horizon is applied per member when messages are handed out.
    const t: ExportTarget = {
      peerAddress: '',
      peerAs: 0,
      ibgp: sig.ibgp,
      rrClient: sig.rrClient,
      selfNextHop,
    };
    if (sig.nextHopSelf) t.nextHopSelf = true;
    if (sig.nextHopKeep) t.nextHopKeep = true;
    return t;
  }

  /** Prefixes now advertised to one member (everything but its own routes). */
  sentTo(p: PeerEntry): number {
    let n = 0;
    for (const e of this.adjOut.values())
      if (e.source && e.attrs && e.source.peerAddress !== p.config.address) n++;
    return n;
  }

  /** Changes queued and not yet flushed. */
  get queued(): number {
    return this.queue.length - this.queueHead;
  }
}
