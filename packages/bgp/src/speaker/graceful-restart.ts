/**
 * Stale routes (RFC 4724 graceful restart, RFC 7313 enhanced route refresh): the capability we
 * advertise, a restarting peer's routes kept stale until its End-of-RIB or a timer, and the
 * stale period of an enhanced route refresh between BoRR and EoRR.
 */
import type { BestPathChange } from '../rib/loc-rib.ts';
import type { FamilyKey } from '../wire/constants.ts';
import type { Capability } from '../wire/open.ts';
import { familyKeyOf, type PeerEntry, type SpeakerCore } from './peer.ts';

/** RFC 4724 §3: seconds peers keep our routes when we do not say (BIRD's default too). */
const DEFAULT_RESTART_TIME = 120;
/** Seconds stale routes wait for End-of-RIB after the peer is back. */
const DEFAULT_STALE_TIME = 360;

export class GracefulRestart {
  readonly #core: SpeakerCore;
  readonly #startedAt: number;

  constructor(core: SpeakerCore) {
    this.#core = core;
    this.#startedAt = core.clock.now();
  }

  get enabled(): boolean {
    return this.#core.config.gracefulRestart?.enabled !== false;
  }

  /** The capability in our OPEN; the R bit only during the first restartTime after start. */
  capability(): Capability | undefined {
    const gr = this.#core.config.gracefulRestart;
    if (gr?.enabled === false) return undefined;
    const restartTime = gr?.restartTime ?? DEFAULT_RESTART_TIME;
    const restarting =
      (gr?.restarting ?? false) && this.#core.clock.now() - this.#startedAt < restartTime * 1000;
    return {
      kind: 'graceful-restart',
      restarting,
      notification: false,
      restartTime,
      families: [
        { afi: 1, safi: 1, forwardingPreserved: gr?.forwardingPreserved ?? true },
        { afi: 2, safi: 1, forwardingPreserved: gr?.forwardingPreserved ?? true },
      ],
    };
  }

  /** RFC 4724 §4.2: the peer is back; its stale routes wait for End-of-RIB (or staleTime). */
  peerUp(p: PeerEntry): void {
    if (p.stale.size === 0) return;
    this.#armStaleTimer(p, this.#core.config.gracefulRestart?.staleTime ?? DEFAULT_STALE_TIME);
  }

  /**
   * RFC 4724 §4.2: the session went down in a way that allows a restart: keep the peer's routes,
   * marked stale, for the restart time it advertised.
   */
  keepThroughRestart(p: PeerEntry): void {
    const core = this.#core;
    const restartTime = p.session.negotiated?.peerGracefulRestart?.restartTime ?? DEFAULT_RESTART_TIME;
    core.log.info(
      { peer: p.config.address, routes: p.accepted.size, restartTime },
      'peer down: keeping routes stale (graceful restart)',
    );
    const changes: BestPathChange[] = [];
    for (const [k, r] of p.accepted) {
      r.stale = true;
      p.stale.set(k, r);
      const c = core.locRib.recompute(r.prefix);
      if (c) changes.push(c);
    }
    p.accepted.clear();
    p.adjIn.routes.clear();
    this.#armStaleTimer(p, restartTime);
    if (changes.length) core.propagate(changes);
  }

  /** RFC 4724 §4.2: End-of-RIB ends the stale period for the family. */
  endOfRib(p: PeerEntry, family: FamilyKey): void {
    if (p.stale.size) this.dropStale(p, family);
  }

  /** A fresh route (or a withdrawal) replaces the stale copy from before the restart. */
  clearStale(p: PeerEntry, key: string, changes: BestPathChange[]): void {
    const old = p.stale.get(key);
    if (!old) return;
    p.stale.delete(key);
    const c = this.#core.locRib.remove(old.prefix, old.source, old.pathId);
    if (c) changes.push(c);
  }

  /** Remove the stale routes (of one family, or all) from the Loc-RIB. */
  dropStale(p: PeerEntry, family?: FamilyKey): void {
    const changes: BestPathChange[] = [];
    for (const [k, r] of p.stale) {
      if (family && familyKeyOf(r.prefix) !== family) continue;
      p.stale.delete(k);
      const c = this.#core.locRib.remove(r.prefix, r.source, r.pathId);
      if (c) changes.push(c);
    }
    if (p.stale.size === 0) this.cancelTimer(p);
    if (changes.length) this.#core.propagate(changes);
  }

  /** Remove every stale route of a peer that is gone for good, into `changes`. */
  discard(p: PeerEntry, changes: BestPathChange[]): void {
    for (const r of p.stale.values()) {
      const c = this.#core.locRib.remove(r.prefix, r.source, r.pathId);
      if (c) changes.push(c);
    }
    p.stale.clear();
    this.cancelTimer(p);
  }

  cancelTimer(p: PeerEntry): void {
    if (p.staleTimer) this.#core.clock.clearTimer(p.staleTimer);
    p.staleTimer = undefined;
  }

  /** RFC 7313 §4 BoRR: everything currently held for the family is stale until EoRR. */
  beginRefresh(p: PeerEntry, family: FamilyKey): void {
    p.refreshing.add(family);
    for (const [k, r] of p.accepted) {
      if (familyKeyOf(r.prefix) !== family) continue;
      r.stale = true;
      p.stale.set(k, r);
    }
  }

  /** RFC 7313 §4 EoRR: routes the peer did not resend since BoRR go. */
  endRefresh(p: PeerEntry, family: FamilyKey): void {
    if (!p.refreshing.delete(family)) return;
    for (const [k, r] of p.stale) if (r.source === p.source && p.accepted.get(k) === r) p.accepted.delete(k);
    this.dropStale(p, family);
  }

  #armStaleTimer(p: PeerEntry, seconds: number): void {
    const core = this.#core;
    if (p.staleTimer) core.clock.clearTimer(p.staleTimer);
    p.staleTimer = core.clock.setTimer(seconds * 1000, () => {
      p.staleTimer = undefined;
      core.log.info({ peer: p.config.address, routes: p.stale.size }, 'stale routes expired');
      this.dropStale(p);
    });
  }
}
