/**
 * Routes out to peers: paths through the export rules (RFC 4271 §9.1.3, RFC 4456 §6) and export
 * policy into the Adj-RIB-Out of the peer's update group, packed into UPDATEs per attribute set
 * once per group and handed to every member (minus the routes a member sent us). A peer that
 * joins a group with routes already advertised gets them from the group's Adj-RIB-Out alone
 * (its "dump"), then follows the group. With ADD-PATH send negotiated (RFC 7911) every path
 * allowed by the rules is advertised, each under its own path id, as BIRD's `add paths tx` does.
 */

import { FsmState } from '../fsm/fsm.ts';
import type { AttrSet, Route, RouteSource } from '../rib/attr-set.ts';
import type { BestPathChange } from '../rib/loc-rib.ts';
import { afterExportPolicy, exportAttributes } from '../rib/route-rules.ts';
import type { FamilyKey } from '../wire/constants.ts';
import {
  encodeEndOfRib,
  encodeRouteRefresh,
  type PackRoute,
  packUpdates,
  packWithdrawals,
  type RouteRefreshMessage,
} from '../wire/messages.ts';
import { prefixAfi } from '../wire/prefix.ts';
import { familyKeyOf, type PeerEntry, type SpeakerCore } from './peer.ts';
import { OutSlot, signatureOf, UpdateGroup } from './update-group.ts';

/** Prefixes packed per event-loop turn (about 25 UPDATEs of /32s). */
const FLUSH_SLICE = 20_000;

/**
 * Queued changes that are sent at once rather than at the end of the event-loop turn. One socket
 * read can carry a whole table (64 KB is ~13,000 /32s in 4 KB UPDATEs), and one turn can read
 * every peer's socket, so waiting for the turn to end would hold the first re-advertisement back
 * until everything received had been imported.
 */
const FLUSH_EAGER = 4_000;

/** The address of a group's only member (whose own routes it never sends), else undefined. */
function soloMember(g: UpdateGroup): string | undefined {
  if (g.members.size !== 1) return undefined;
  for (const p of g.members) return p.config.address;
  return undefined;
}

/** Messages for the members of a group: to all but `except`, or to `only`. */
interface Chunk {
  messages: Uint8Array[];
  except?: string;
  only?: string;
}

export class AdjRibOut {
  readonly #core: SpeakerCore;
  readonly #groups = new Map<string, UpdateGroup>();
  /** RFC 7911 path ids we send, per route source and the path id it came with. */
  readonly #pathIds = new WeakMap<RouteSource, Map<number, number>>();
  #nextPathId = 1;

  constructor(core: SpeakerCore) {
    this.#core = core;
  }

  /** Update groups in use (for status and tests). */
  groups(): readonly UpdateGroup[] {
    return [...this.#groups.values()];
  }

  /** A new session: the peer joins its group and gets the group's routes, then End-of-RIB. */
  sessionUp(p: PeerEntry): void {
    p.sentEndOfRib = false;
    this.#join(p);
  }

  /** The session is gone: nothing is advertised any more. */
  sessionDown(p: PeerEntry): void {
    this.#leave(p);
    p.endOfRefresh = [];
  }

  /** Prefixes now advertised to the peer. */
  sent(p: PeerEntry): number {
    return p.group?.sentTo(p) ?? 0;
  }

  /** The peer's export settings changed: move it to the group that matches them now. */
  readvertise(p: PeerEntry): void {
    if (p.session.state !== FsmState.Established || !p.group) return;
    const old = p.group;
    const sig = signatureOf(p);
    if (!sig || UpdateGroup.keyOf(sig) === old.key) return;
    this.#leave(p);
    const g = this.#join(p);
    // What the old group sent and the new one does not (now or queued) is withdrawn.
    const gone: Record<number, PackRoute[]> = { 1: [], 2: [] };
    for (const [k, e] of old.adjOut) {
      if (e.attrs === null || e.source?.peerAddress === p.config.address) continue;
      const now = g.adjOut.get(k);
      if (!now || (now.attrs === null && !now.nextAttrs)) gone[prefixAfi(e.prefix)]!.push(e);
    }
    const out: Uint8Array[] = [];
    for (const afi of [1, 2]) {
      if (gone[afi]!.length) out.push(...packWithdrawals({ afi, safi: 1, routes: gone[afi]!, ctx: old.ctx }));
    }
    if (out.length) p.session.send(out);
  }

  /** Loc-RIB changes to every group with members. */
  propagate(changes: readonly BestPathChange[]): void {
    for (const g of this.#groups.values()) {
      const solo = soloMember(g);
      // The change carries the prefix's best path, so no Loc-RIB lookup is needed per prefix
      // unless the group advertises every path (ADD-PATH).
      for (const c of changes) this.#exportPrefix(g, c.prefix, solo, c);
      if (g.queued >= FLUSH_EAGER && !g.awaitingDrain) this.#flush(g);
      else if (g.queued) this.#scheduleFlush(g);
    }
  }

  /** RFC 2918 §4 / RFC 7313 §4: resend a family to one peer, bracketed by BoRR/EoRR when enhanced. */
  resend(p: PeerEntry, m: RouteRefreshMessage): void {
    if (!p.group) return;
    const fam = `${m.afi}/${m.safi}` as FamilyKey;
    const enhanced = p.session.negotiated?.enhancedRouteRefresh ?? false;
    if (enhanced) {
      p.session.send([encodeRouteRefresh(m.afi, m.safi, 1)], false);
      p.endOfRefresh.push([m.afi, m.safi]);
    }
    p.dump = { entries: p.group.adjOut.values(), family: fam };
    this.#scheduleDump(p);
  }

  #join(p: PeerEntry): UpdateGroup {
    const sig = signatureOf(p)!;
    const key = UpdateGroup.keyOf(sig);
    let g = this.#groups.get(key);
    if (!g) {
      g = new UpdateGroup(key, sig);
      this.#groups.set(key, g);
      const solo = soloMember(g);
      for (const prefix of this.#core.locRib.prefixes()) this.#exportPrefix(g, prefix, solo);
    }
    const wasSolo = g.members.size === 1;
    g.members.add(p);
    p.group = g;
    // The group's first member's own routes were left out (see #exportPrefix); now they are owed.
    if (wasSolo) for (const prefix of this.#core.locRib.prefixes()) this.#exportPrefix(g, prefix, undefined);
    p.dump = { entries: g.adjOut.values(), family: undefined };
    this.#scheduleDump(p);
    if (g.queued) this.#scheduleFlush(g);
    return g;
  }

  #leave(p: PeerEntry): void {
    const g = p.group;
    p.group = undefined;
    p.dump = undefined;
    if (!g) return;
    g.members.delete(p);
    if (g.members.size === 0) this.#groups.delete(g.key);
  }

  #pathIdOf(r: Route): number {
    let m = this.#pathIds.get(r.source);
    if (!m) {
      m = new Map();
      this.#pathIds.set(r.source, m);
    }
    let id = m.get(r.pathId);
    if (id === undefined) {
      id = this.#nextPathId++;
      m.set(r.pathId, id);
    }
    return id;
  }

  /** A route's attributes as this group advertises them, or null when not advertised. */
  #exported(g: UpdateGroup, prefix: string, route: Route): AttrSet | null {
    const core = this.#core;
    const afi = prefixAfi(prefix);
    const cacheable = g.policy.prefixIndependent;
    let bySource = cacheable ? g.exportCache[afi]!.get(route.source) : undefined;
    const hit = bySource?.get(route.attrs);
    if (hit !== undefined) return hit;
    const t = g.target(afi);
    const localAs = g.signature.localAs;
    const me = localAs === core.me.asNumber ? core.me : { ...core.me, asNumber: localAs };
    const raw = t ? exportAttributes(route, t, me) : undefined;
    const policed = raw
      ? g.policy.apply(prefix, raw, localAs, { source: route.source.local ? 'local' : 'peer' })
      : undefined;
    const filtered = policed && t ? afterExportPolicy(policed, t) : undefined;
    const attrs = filtered ? core.interner.intern(filtered) : null;
    if (cacheable) {
      if (!bySource) {
        bySource = new Map();
        g.exportCache[afi]!.set(route.source, bySource);
      }
      bySource.set(route.attrs, attrs);
    }
    return attrs;
  }

  /**
   * Queue what changed for one prefix in one group. A group of one peer does not keep (or
   * encode) that peer's own routes, which it would never send (FRR's "onlypeer"): a table
   * received from a single peer costs no Adj-RIB-Out at all.
   */
  #exportPrefix(g: UpdateGroup, prefix: string, solo: string | undefined, change?: BestPathChange): void {
    const family = familyKeyOf(prefix);
    if (!g.families.has(family)) return;
    if (g.addPath.has(family)) {
      const d = this.#core.locRib.get(prefix);
      const ids: number[] = [];
      for (const r of d?.paths ?? []) {
        if (r.source.peerAddress === solo) continue;
        const attrs = this.#exported(g, prefix, r);
        if (!attrs) continue;
        const pathId = this.#pathIdOf(r);
        ids.push(pathId);
        this.#queue(g, `${prefix}#${pathId}`, prefix, pathId, attrs, r.source);
      }
      for (const id of g.pathsOf.get(prefix) ?? []) {
        if (!ids.includes(id)) this.#queue(g, `${prefix}#${id}`, prefix, id, null, undefined);
      }
      if (ids.length) g.pathsOf.set(prefix, ids);
      else g.pathsOf.delete(prefix);
      return;
    }
    const best = change ? change.best : this.#core.locRib.get(prefix)?.best;
    const attrs = best && best.source.peerAddress !== solo ? this.#exported(g, prefix, best) : null;
    if (attrs && best) this.#queue(g, prefix, prefix, 0, attrs, best.source);
    else this.#queue(g, prefix, prefix, 0, null, undefined);
  }

  /** Queue a change (null attributes: a withdrawal); the last one queued before a flush wins. */
  #queue(
    g: UpdateGroup,
    key: string,
    prefix: string,
    pathId: number,
    attrs: AttrSet | null,
    source: RouteSource | undefined,
  ): void {
    let slot = g.adjOut.get(key);
    if (!slot) {
      if (attrs === null) return;
      slot = new OutSlot(key, prefix, pathId);
      g.adjOut.set(key, slot);
    } else if (slot.nextAttrs === undefined) {
      // Nothing queued yet: a change that matches what is advertised is no change.
      if (attrs === null ? slot.attrs === null : slot.attrs === attrs && slot.source === source) return;
    }
    if (slot.nextAttrs === undefined) g.queue.push(slot);
    slot.nextAttrs = attrs;
    slot.nextSource = source;
  }

  #scheduleFlush(g: UpdateGroup): void {
    if (g.flushScheduled) return;
    g.flushScheduled = true;
    setImmediate(() => {
      g.flushScheduled = false;
      this.#flush(g);
    });
  }

  /**
   * Pack queued changes once for the whole group: withdrawals per family, announcements per
   * (attribute set, source), at most FLUSH_SLICE per turn, so a table dump does not block the
   * event loop. When every member's socket buffer is full the group waits for a 'drain'
   * (anchors §5.3).
   */
  #flush(g: UpdateGroup): void {
    if (this.#groups.get(g.key) !== g) return;
    const withdrawExcept = new Map<string, PackRoute[][]>();
    const withdrawOnly = new Map<string, PackRoute[][]>();
    const announce = new Map<AttrSet, Map<string, PackRoute[]>>();
    const add = (m: Map<string, PackRoute[][]>, who: string, afi: number, r: PackRoute) => {
      let l = m.get(who);
      if (!l) {
        l = [[], [], []];
        m.set(who, l);
      }
      l[afi]!.push(r);
    };
    const queue = g.queue;
    const end = Math.min(queue.length, g.queueHead + FLUSH_SLICE);
    for (let i = g.queueHead; i < end; i++) {
      const e = queue[i]!;
      const next = e.nextAttrs ?? null;
      const nextSource = e.nextSource;
      e.nextAttrs = undefined;
      e.nextSource = undefined;
      const afi = prefixAfi(e.prefix);
      const prevSource = e.attrs === null ? undefined : e.source;
      if (next === null || !nextSource) {
        g.adjOut.delete(e.key);
        if (!prevSource) continue;
        e.attrs = null;
        e.source = undefined;
        g.advertised--;
        // The peer the route came from never got it.
        add(withdrawExcept, prevSource.peerAddress, afi, e);
        continue;
      }
      if (next === e.attrs && nextSource === e.source) continue;
      if (!prevSource) g.advertised++;
      e.attrs = next;
      e.source = nextSource;
      const from = nextSource.peerAddress;
      let bySource = announce.get(next);
      if (!bySource) {
        bySource = new Map();
        announce.set(next, bySource);
      }
      // The slot itself carries prefix and path id: no per-prefix copy for packing.
      const l = bySource.get(from);
      if (l) l.push(e);
      else bySource.set(from, [e]);
      // The new best came from a member that had the previous one from us: withdraw it there.
      if (prevSource && from && prevSource.peerAddress !== from) add(withdrawOnly, from, afi, e);
    }
    if (end === queue.length) {
      g.queue = [];
      g.queueHead = 0;
    } else g.queueHead = end;
    const chunks: Chunk[] = [];
    const withdrawals = (m: Map<string, PackRoute[][]>, only: boolean) => {
      for (const [who, perAfi] of m) {
        const messages: Uint8Array[] = [];
        for (const afi of [1, 2]) {
          const routes = perAfi[afi]!;
          if (routes.length) messages.push(...packWithdrawals({ afi, safi: 1, routes, ctx: g.ctx }));
        }
        chunks.push(only ? { messages, only: who } : { messages, except: who });
      }
    };
    withdrawals(withdrawExcept, false);
    withdrawals(withdrawOnly, true);
    for (const [attrs, bySource] of announce) {
      for (const [from, routes] of bySource) {
        chunks.push({ messages: this.#pack(g, attrs, routes), except: from });
      }
    }
    const blocked: PeerEntry[] = [];
    for (const p of g.members) {
      if (p.session.state !== FsmState.Established) continue;
      const me = p.config.address;
      const out: Uint8Array[] = [];
      for (const c of chunks) {
        if (c.only !== undefined ? c.only === me : c.except !== me) out.push(...c.messages);
      }
      if (out.length && !p.session.send(out)) blocked.push(p);
      this.#maybeEndOfRib(p);
    }
    if (g.queued === 0) return;
    // A slow member does not hold the group back: what it has not taken yet are references to
    // the group's messages (one encoding for all), not copies. Wait only when no member can
    // take more, then go on with the first that drains.
    if (blocked.length < g.members.size) {
      this.#scheduleFlush(g);
      return;
    }
    g.flushScheduled = true;
    g.awaitingDrain = true;
    let resumed = false;
    for (const p of blocked) {
      p.session.onceDrained(() => {
        if (resumed) return;
        resumed = true;
        g.flushScheduled = false;
        g.awaitingDrain = false;
        this.#flush(g);
      });
    }
  }

  #pack(g: UpdateGroup, attrs: AttrSet, routes: PackRoute[]): Uint8Array[] {
    const afi = prefixAfi(routes[0]!.prefix);
    const { key: _k, asPathLength: _l, neighborAs: _n, nextHop, linkLocalNextHop, ...rest } = attrs;
    const opts: Parameters<typeof packUpdates>[0] = {
      afi,
      safi: 1,
      attributes: rest,
      nextHop,
      routes,
      ctx: g.ctx,
    };
    if (linkLocalNextHop) opts.linkLocalNextHop = linkLocalNextHop;
    return packUpdates(opts);
  }

  #scheduleDump(p: PeerEntry): void {
    if (p.dumpScheduled) return;
    p.dumpScheduled = true;
    setImmediate(() => {
      p.dumpScheduled = false;
      this.#dumpSlice(p);
    });
  }

  /** Send the next slice of the group's Adj-RIB-Out to one member catching up. */
  #dumpSlice(p: PeerEntry): void {
    const g = p.group;
    const dump = p.dump;
    if (!g || !dump || p.session.state !== FsmState.Established) return;
    const me = p.config.address;
    const groups = new Map<AttrSet, PackRoute[]>();
    let taken = 0;
    let done = false;
    while (taken < FLUSH_SLICE) {
      const n = dump.entries.next();
      if (n.done) {
        done = true;
        break;
      }
      const e: OutSlot = n.value;
      const attrs = e.attrs;
      if (attrs === null || e.source?.peerAddress === me) continue;
      if (dump.family && familyKeyOf(e.prefix) !== dump.family) continue;
      taken++;
      const l = groups.get(attrs);
      if (l) l.push(e);
      else groups.set(attrs, [e]);
    }
    const out: Uint8Array[] = [];
    for (const [attrs, routes] of groups) out.push(...this.#pack(g, attrs, routes));
    if (done) {
      p.dump = undefined;
      for (const [afi, safi] of p.endOfRefresh) out.push(encodeRouteRefresh(afi, safi, 2));
      p.endOfRefresh = [];
    }
    const writable = out.length ? p.session.send(out) : true;
    if (done) {
      this.#maybeEndOfRib(p);
      return;
    }
    if (writable) this.#scheduleDump(p);
    else {
      p.dumpScheduled = true;
      p.session.onceDrained(() => {
        p.dumpScheduled = false;
        this.#dumpSlice(p);
      });
    }
  }

  /** RFC 4724 §2: End-of-RIB once the initial table is out, for every family. */
  #maybeEndOfRib(p: PeerEntry): void {
    const g = p.group;
    if (p.sentEndOfRib || p.dump || !g || g.queued > 0) return;
    p.sentEndOfRib = true;
    const out: Uint8Array[] = [];
    for (const f of g.families) {
      const [afi, safi] = f.split('/').map(Number);
      out.push(encodeEndOfRib(afi!, safi!));
    }
    p.session.send(out);
  }
}
