/** Adj-RIB-In and Loc-RIB as maps (RFC 4271 §3.2), plus the per-prefix decision. */
import type { Route, RouteSource } from './attr-set.ts';
import { comparePreference, compareRoutes } from './best-path.ts';

export interface BestPathChange {
  prefix: string;
  /** The new best route, undefined when the prefix is gone. */
  best: Route | undefined;
  previous: Route | undefined;
  /** Routes equal to the best through step 6 (ECMP), best first; only when multipath is on. */
  multipath: Route[];
  /**
   * Only a path other than the best and ECMP set changed (reported when the Loc-RIB was made with
   * `everyPath`, for ADD-PATH senders); nothing to install.
   */
  pathsOnly?: true;
}

const NO_MULTIPATH: Route[] = [];

interface Destination {
  paths: Route[];
  best: Route | undefined;
  multipath: Route[];
}

export class LocRib {
  #dest = new Map<string, Destination>();
  multipath: boolean;
  /** Report changes to any path of a prefix, not only to its best and ECMP set. */
  readonly everyPath: boolean;

  constructor(opts: { multipath?: boolean; everyPath?: boolean } = {}) {
    this.multipath = opts.multipath ?? false;
    this.everyPath = opts.everyPath ?? false;
  }

  get size(): number {
    return this.#dest.size;
  }

  /** Add or replace the path from `route.source` with the same path id. */
  add(route: Route): BestPathChange | undefined {
    let d = this.#dest.get(route.prefix);
    if (!d) {
      // A literal one-element array: push() on [] would reserve 17 slots per prefix.
      d = { paths: [route], best: undefined, multipath: NO_MULTIPATH };
      this.#dest.set(route.prefix, d);
      return this.#decide(route.prefix, d);
    }
    const i = d.paths.findIndex((p) => p.source === route.source && p.pathId === route.pathId);
    if (i >= 0) d.paths[i] = route;
    else d.paths.push(route);
    return this.#decide(route.prefix, d);
  }

  remove(prefix: string, source: RouteSource, pathId = 0): BestPathChange | undefined {
    const d = this.#dest.get(prefix);
    if (!d) return undefined;
    const i = d.paths.findIndex((p) => p.source === source && p.pathId === pathId);
    if (i < 0) return undefined;
    d.paths.splice(i, 1);
    return this.#decide(prefix, d);
  }

  /** Re-run the decision (e.g. after a stale flag changed). */
  recompute(prefix: string): BestPathChange | undefined {
    const d = this.#dest.get(prefix);
    return d ? this.#decide(prefix, d) : undefined;
  }

  get(prefix: string): Readonly<Destination> | undefined {
    return this.#dest.get(prefix);
  }

  *entries(): IterableIterator<[string, Readonly<Destination>]> {
    yield* this.#dest.entries();
  }

  #decide(prefix: string, d: Destination): BestPathChange | undefined {
    const previous = d.best;
    const prevMulti = d.multipath;
    let best: Route | undefined;
    for (const p of d.paths) if (!best || compareRoutes(p, best) < 0) best = p;
    d.best = best;
    d.multipath =
      this.multipath && best
        ? [best, ...d.paths.filter((p) => p !== best && !p.stale && comparePreference(p, best!) === 0)]
        : NO_MULTIPATH;
    if (d.paths.length === 0) this.#dest.delete(prefix);
    const multiChanged =
      prevMulti.length !== d.multipath.length || prevMulti.some((r, i) => r !== d.multipath[i]);
    if (previous === best && !multiChanged) {
      return this.everyPath ? { prefix, best, previous, multipath: d.multipath, pathsOnly: true } : undefined;
    }
    return { prefix, best, previous, multipath: d.multipath };
  }
}

/** Routes received from one peer, before import policy (kept for refresh and GR). */
export class AdjRibIn {
  readonly routes = new Map<string, Route>();

  static key(prefix: string, pathId: number): string {
    return pathId === 0 ? prefix : `${prefix}#${pathId}`;
  }
}
