/**
 * Routes in from a peer: UPDATEs into the Adj-RIB-In, loop checks (RFC 4271 §9.1.2, RFC 4456
 * §8), import policy, and the result into the Loc-RIB.
 */
import type { AttrSet, Route } from '../rib/attr-set.ts';
import { AdjRibIn, type BestPathChange } from '../rib/loc-rib.ts';
import { importViolation, sanitizeImported } from '../rib/route-rules.ts';
import type { PathAttributes } from '../wire/attributes.ts';
import type { FamilyKey } from '../wire/constants.ts';
import type { UpdateMessage } from '../wire/messages.ts';
import type { GracefulRestart } from './graceful-restart.ts';
import type { PeerEntry, SpeakerCore } from './peer.ts';

export class RouteImport {
  readonly #core: SpeakerCore;
  readonly #gr: GracefulRestart;
  readonly #onEndOfRib: (p: PeerEntry, family: FamilyKey) => void;

  constructor(core: SpeakerCore, gr: GracefulRestart, onEndOfRib: (p: PeerEntry, family: FamilyKey) => void) {
    this.#core = core;
    this.#gr = gr;
    this.#onEndOfRib = onEndOfRib;
  }

  update(p: PeerEntry, m: UpdateMessage): void {
    const src = p.source;
    if (!src) return;
    const core = this.#core;
    const changes: BestPathChange[] = [];
    const withdraw = (prefix: string, pathId: number) => {
      const k = AdjRibIn.key(prefix, pathId);
      p.adjIn.routes.delete(k);
      const r = p.accepted.get(k);
      if (r) {
        p.accepted.delete(k);
        const c = core.locRib.remove(prefix, src, pathId);
        if (c) changes.push(c);
      }
      this.#gr.clearStale(p, k, changes);
    };
    for (const n of m.withdrawn) withdraw(n.prefix, n.pathId);
    if (m.mpUnreach) for (const n of m.mpUnreach.withdrawn) withdraw(n.prefix, n.pathId);
    if (m.treatAsWithdraw) {
      // RFC 7606 §2: the announced routes are withdrawn and the session stays up.
      core.log.warn({ peer: p.config.address, problems: m.problems }, 'malformed UPDATE treated as withdraw');
      for (const n of m.nlri) withdraw(n.prefix, n.pathId);
      for (const n of m.mpReach?.nlri ?? []) withdraw(n.prefix, n.pathId);
    } else {
      if (m.problems.length)
        core.log.info({ peer: p.config.address, problems: m.problems }, 'UPDATE attributes discarded');
      const base = sanitizeImported(m.attributes, src);
      const localAs = p.config.localAsNumber;
      const me = localAs === undefined ? core.me : { ...core.me, asNumber: localAs };
      const violation = importViolation(base, src, me, p.config.allowLocalAs ?? 0);
      const announce = (
        list: { prefix: string; pathId: number }[],
        nextHop: string | undefined,
        ll?: string,
      ) => {
        if (list.length === 0) return;
        if (!nextHop || violation) {
          for (const n of list) withdraw(n.prefix, n.pathId);
          p.received += list.length;
          return;
        }
        const full = ll ? { ...base, nextHop, linkLocalNextHop: ll } : { ...base, nextHop };
        const attrs = core.interner.intern(full);
        const plain = p.importPolicy.empty;
        for (const n of list) {
          p.received++;
          const k = AdjRibIn.key(n.prefix, n.pathId);
          const received: Route = { prefix: n.prefix, pathId: n.pathId, attrs, source: src, stale: false };
          // Without an import policy the accepted routes are the Adj-RIB-In; keep no second copy.
          if (!plain) p.adjIn.routes.set(k, received);
          this.#accept(p, k, received, plain ? attrs : undefined, changes);
        }
      };
      announce(m.nlri, m.attributes.nextHop);
      if (m.mpReach) announce(m.mpReach.nlri, m.mpReach.nextHop, m.mpReach.linkLocalNextHop);
    }
    if (m.endOfRib) {
      this.#gr.endOfRib(p, m.endOfRib);
      this.#onEndOfRib(p, m.endOfRib);
    }
    if (changes.length) core.propagate(changes);
  }

  /** Run the (changed) import policy over the peer's Adj-RIB-In again. */
  reimport(p: PeerEntry): void {
    const changes: BestPathChange[] = [];
    // Routes accepted while there was no policy are their own Adj-RIB-In copy.
    if (p.adjIn.routes.size === 0) for (const [k, r] of p.accepted) p.adjIn.routes.set(k, r);
    for (const [k, r] of [...p.adjIn.routes])
      this.#accept(p, k, r, p.importPolicy.empty ? r.attrs : undefined, changes);
    if (p.importPolicy.empty) p.adjIn.routes.clear();
    if (changes.length) this.#core.propagate(changes);
  }

  /** Remove everything a peer contributed (its session is gone for good). */
  withdrawAll(p: PeerEntry, includeStale: boolean): void {
    const changes: BestPathChange[] = [];
    for (const r of p.accepted.values()) {
      const c = this.#core.locRib.remove(r.prefix, r.source, r.pathId);
      if (c) changes.push(c);
    }
    p.accepted.clear();
    p.adjIn.routes.clear();
    if (includeStale) this.#gr.discard(p, changes);
    if (changes.length) this.#core.propagate(changes);
  }

  /** Run import policy for one received route and put the result in the Loc-RIB. */
  #accept(
    p: PeerEntry,
    k: string,
    received: Route,
    unchanged: AttrSet | undefined,
    changes: BestPathChange[],
  ): void {
    const core = this.#core;
    let route: Route | undefined = received;
    if (!unchanged) {
      const out = p.importPolicy.apply(
        received.prefix,
        received.attrs as PathAttributes & { nextHop: string },
        p.config.localAsNumber ?? core.config.asNumber,
        { source: 'peer' },
      );
      if (!out) route = undefined;
      else if (out !== received.attrs) {
        const { key: _k, asPathLength: _l, neighborAs: _n, ...plain } = out as AttrSet;
        route = { ...received, attrs: core.interner.intern(plain as PathAttributes & { nextHop: string }) };
      }
    }
    this.#gr.clearStale(p, k, changes);
    if (!route) {
      if (p.accepted.delete(k)) {
        const c = core.locRib.remove(received.prefix, received.source, received.pathId);
        if (c) changes.push(c);
      }
      return;
    }
    p.accepted.set(k, route);
    const c = core.locRib.add(route);
    if (c) changes.push(c);
  }
}
