/**
 * Routes out to a peer: best paths through the export rules (RFC 4271 §9.1.3, RFC 4456 §6) and
 * export policy into the peer's Adj-RIB-Out, then packed into UPDATEs per attribute set.
 */

import { FsmState } from '../fsm/fsm.ts';
import type { AttrSet, Route } from '../rib/attr-set.ts';
import type { BestPathChange } from '../rib/loc-rib.ts';
import { type ExportTarget, exportAttributes } from '../rib/route-rules.ts';
import { type FamilyKey, MAX_EXTENDED_MESSAGE_LENGTH, MAX_MESSAGE_LENGTH } from '../wire/constants.ts';
import {
  encodeEndOfRib,
  encodeRouteRefresh,
  packUpdates,
  packWithdrawals,
  type RouteRefreshMessage,
} from '../wire/messages.ts';
import { prefixAfi } from '../wire/prefix.ts';
import { familyKeyOf, type PeerEntry, type SpeakerCore } from './peer.ts';

/** Prefixes packed per event-loop turn (about 25 UPDATEs of /32s). */
const FLUSH_SLICE = 20_000;

export class AdjRibOut {
  readonly #core: SpeakerCore;

  constructor(core: SpeakerCore) {
    this.#core = core;
  }

  /** A new session: the whole Loc-RIB goes out, then End-of-RIB. */
  sessionUp(p: PeerEntry): void {
    p.sentEndOfRib = false;
    for (const c of p.exportCache) c.clear();
    this.#exportAll(p);
    this.#scheduleFlush(p);
  }

  /** The session is gone: nothing is advertised any more. */
  sessionDown(p: PeerEntry): void {
    p.adjOut.clear();
    p.pendingOut.clear();
    p.flushScheduled = false;
    p.endOfRefresh = [];
    for (const c of p.exportCache) c.clear();
  }

  /** The peer's export policy or next-hop settings are about to change: cached results are void. */
  clearCache(p: PeerEntry): void {
    for (const c of p.exportCache) c.clear();
  }

  /** Re-evaluate every route for an established peer (after its export settings changed). */
  readvertise(p: PeerEntry): void {
    if (p.session.state !== FsmState.Established) return;
    this.#exportAll(p);
    this.#scheduleFlush(p);
  }

  /** Best-path changes to every established peer. */
  propagate(peers: Iterable<PeerEntry>, changes: readonly BestPathChange[]): void {
    for (const p of peers) {
      if (p.session.state !== FsmState.Established) continue;
      for (const c of changes) if (c.best !== c.previous) this.#exportOne(p, c.prefix, c.best);
    }
  }

  /** RFC 2918 §4 / RFC 7313 §4: resend the Adj-RIB-Out of a family, bracketed by BoRR/EoRR when enhanced. */
  resend(p: PeerEntry, m: RouteRefreshMessage): void {
    const fam = `${m.afi}/${m.safi}` as FamilyKey;
    const enhanced = p.session.negotiated?.enhancedRouteRefresh ?? false;
    if (enhanced) p.session.send([encodeRouteRefresh(m.afi, m.safi, 1)], false);
    for (const prefix of [...p.adjOut.keys()]) if (familyKeyOf(prefix) === fam) p.adjOut.delete(prefix);
    this.#exportAll(p, fam);
    // EoRR goes out once the re-sent routes have (see #flush).
    if (enhanced) p.endOfRefresh.push([m.afi, m.safi]);
    this.#flush(p);
  }

  #exportTarget(p: PeerEntry, prefix: string): ExportTarget | undefined {
    const s = p.session;
    const n = s.negotiated;
    if (!n || !p.source) return undefined;
    const afi = prefixAfi(prefix);
    const local = s.localAddress ?? '';
    const localIsV6 = local.includes(':');
    let selfNextHop: string | undefined;
    if (afi === 1) {
      if (!n.families.has('1/1')) return undefined;
      selfNextHop =
        p.config.nextHopV4 ?? (localIsV6 ? (n.extendedNextHop.has('1/1') ? local : undefined) : local);
    } else {
      if (!n.families.has('2/1')) return undefined;
      selfNextHop = p.config.nextHopV6 ?? (localIsV6 ? local : local ? `::ffff:${local}` : undefined);
    }
    if (!selfNextHop) return undefined;
    const t: ExportTarget = {
      peerAddress: p.config.address,
      peerAs: n.peerAs,
      ibgp: p.source.ibgp,
      rrClient: p.source.rrClient,
      selfNextHop,
    };
    if (p.config.nextHopSelf) t.nextHopSelf = true;
    return t;
  }

  #exportOne(p: PeerEntry, prefix: string, best: Route | undefined): void {
    const core = this.#core;
    let attrs: AttrSet | null = null;
    if (best) {
      const afi = prefixAfi(prefix);
      const cacheable = p.exportPolicy.prefixIndependent;
      let bySource = cacheable ? p.exportCache[afi]!.get(best.source) : undefined;
      const hit = bySource?.get(best.attrs);
      if (hit !== undefined) attrs = hit;
      else {
        const t = this.#exportTarget(p, prefix);
        const raw = t ? exportAttributes(best, t, core.me) : undefined;
        const filtered = raw ? p.exportPolicy.apply(prefix, raw, core.config.asNumber) : undefined;
        if (filtered) attrs = core.interner.intern(filtered);
        if (cacheable) {
          if (!bySource) {
            bySource = new Map();
            p.exportCache[afi]!.set(best.source, bySource);
          }
          bySource.set(best.attrs, attrs);
        }
      }
    }
    const current = p.adjOut.get(prefix);
    if (attrs === null && current === undefined && !p.pendingOut.has(prefix)) return;
    if (attrs !== null && current === attrs && !p.pendingOut.has(prefix)) return;
    p.pendingOut.set(prefix, attrs);
    this.#scheduleFlush(p);
  }

  #exportAll(p: PeerEntry, family?: FamilyKey): void {
    for (const [prefix, d] of this.#core.locRib.entries()) {
      if (family && familyKeyOf(prefix) !== family) continue;
      this.#exportOne(p, prefix, d.best);
    }
  }

  #scheduleFlush(p: PeerEntry): void {
    if (p.flushScheduled) return;
    p.flushScheduled = true;
    setImmediate(() => {
      p.flushScheduled = false;
      this.#flush(p);
    });
  }

  /**
   * Pack pending changes: withdrawals per family, announcements per (family, attribute set).
   * At most FLUSH_SLICE prefixes per turn; when the socket buffer is full the rest waits for
   * 'drain' (anchors §5.3), so a table dump neither blocks the event loop nor piles up in memory.
   */
  #flush(p: PeerEntry): void {
    const s = p.session;
    const n = s.negotiated;
    if (s.state !== FsmState.Established || !n) return;
    const ctx = {
      fourOctetAs: n.fourOctetAs,
      addPathSend: n.addPathSend,
      maxMessageLength: n.extendedMessage ? MAX_EXTENDED_MESSAGE_LENGTH : MAX_MESSAGE_LENGTH,
    };
    const withdrawals: Record<number, { prefix: string }[]> = { 1: [], 2: [] };
    const groups = new Map<AttrSet, { prefix: string }[]>();
    let taken = 0;
    for (const [prefix, attrs] of p.pendingOut) {
      if (taken++ >= FLUSH_SLICE) break;
      p.pendingOut.delete(prefix);
      if (attrs === null) {
        if (p.adjOut.delete(prefix)) withdrawals[prefixAfi(prefix)]!.push({ prefix });
        continue;
      }
      p.adjOut.set(prefix, attrs);
      const g = groups.get(attrs);
      if (g) g.push({ prefix });
      else groups.set(attrs, [{ prefix }]);
    }
    const out: Uint8Array[] = [];
    for (const afi of [1, 2]) {
      const routes = withdrawals[afi]!;
      if (routes.length) out.push(...packWithdrawals({ afi, safi: 1, routes, ctx }));
    }
    for (const [attrs, routes] of groups) {
      const afi = prefixAfi(routes[0]!.prefix);
      const { key: _k, asPathLength: _l, neighborAs: _n, nextHop, linkLocalNextHop, ...rest } = attrs;
      const opts: Parameters<typeof packUpdates>[0] = {
        afi,
        safi: 1,
        attributes: rest,
        nextHop,
        routes,
        ctx,
      };
      if (linkLocalNextHop) opts.linkLocalNextHop = linkLocalNextHop;
      out.push(...packUpdates(opts));
    }
    if (!p.sentEndOfRib && p.pendingOut.size === 0) {
      // RFC 4724 §2: End-of-RIB after the initial table for every family.
      p.sentEndOfRib = true;
      for (const f of n.families) {
        const [afi, safi] = f.split('/').map(Number);
        out.push(encodeEndOfRib(afi!, safi!));
      }
    }
    if (p.pendingOut.size === 0) {
      for (const [afi, safi] of p.endOfRefresh) out.push(encodeRouteRefresh(afi, safi, 2));
      p.endOfRefresh = [];
    }
    const writable = out.length ? s.send(out) : true;
    if (p.pendingOut.size === 0) return;
    if (writable) this.#scheduleFlush(p);
    else {
      p.flushScheduled = true;
      s.onceDrained(() => {
        p.flushScheduled = false;
        this.#flush(p);
      });
    }
  }
}
