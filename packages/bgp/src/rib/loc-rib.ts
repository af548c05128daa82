/**
 * Adj-RIB-In and Loc-RIB as maps (RFC 4271 §3.2), plus the per-prefix decision. A prefix with a
 * single path (most of a large table) is stored as that Route alone: no per-prefix destination
 * object or path array until a second path arrives.
 */
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

export interface Destination {
  paths: Route[];
  best: Route | undefined;
  multipath: Route[];
}

/** A prefix with two or more paths. */
class Paths implements Destination {
  paths: Route[];
  best: Route | undefined;
  multipath: Route[];
  constructor(paths: Route[], best: Route, multipath: Route[]) {
    this.paths = paths;
    this.best = best;
    this.multipath = multipath;
  }
}

const samePath = (r: Route, source: RouteSource, pathId: number) =>
  r.source === source && r.pathId === pathId;

export class LocRib {
  /** One Route when the prefix has one path, else its Paths. */
  #dest = new Map<string, Route | Paths>();
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
    const prefix = route.prefix;
    const cur = this.#dest.get(prefix);
    if (!cur) {
      this.#dest.set(prefix, route);
      return { prefix, best: route, previous: undefined, multipath: this.#single(route) };
    }
    if (!(cur instanceof Paths)) {
      if (samePath(cur, route.source, route.pathId)) {
        this.#dest.set(prefix, route);
        return { prefix, best: route, previous: cur, multipath: this.#single(route) };
      }
      const d = new Paths([cur, route], cur, this.#single(cur));
      this.#dest.set(prefix, d);
      return this.#decide(prefix, d);
    }
    const i = cur.paths.findIndex((p) => samePath(p, route.source, route.pathId));
    if (i >= 0) cur.paths[i] = route;
    else cur.paths.push(route);
    return this.#decide(prefix, cur);
  }

  remove(prefix: string, source: RouteSource, pathId = 0): BestPathChange | undefined {
    const cur = this.#dest.get(prefix);
    if (!cur) return undefined;
    if (!(cur instanceof Paths)) {
      if (!samePath(cur, source, pathId)) return undefined;
      this.#dest.delete(prefix);
      return { prefix, best: undefined, previous: cur, multipath: NO_MULTIPATH };
    }
    const i = cur.paths.findIndex((p) => samePath(p, source, pathId));
    if (i < 0) return undefined;
    cur.paths.splice(i, 1);
    return this.#decide(prefix, cur);
  }

  /** Re-run the decision (e.g. after a stale flag changed). */
  recompute(prefix: string): BestPathChange | undefined {
    const cur = this.#dest.get(prefix);
    if (!cur) return undefined;
    if (cur instanceof Paths) return this.#decide(prefix, cur);
    // One path stays the best whatever its flags.
    return this.everyPath
      ? { prefix, best: cur, previous: cur, multipath: this.#single(cur), pathsOnly: true }
      : undefined;
  }

  get(prefix: string): Readonly<Destination> | undefined {
    const cur = this.#dest.get(prefix);
    return cur ? this.#view(cur) : undefined;
  }

  *entries(): IterableIterator<[string, Readonly<Destination>]> {
    for (const [prefix, cur] of this.#dest) yield [prefix, this.#view(cur)];
  }

  /** Every prefix, without building a destination view for each. */
  prefixes(): IterableIterator<string> {
    return this.#dest.keys();
  }

  #view(cur: Route | Paths): Readonly<Destination> {
    return cur instanceof Paths ? cur : { paths: [cur], best: cur, multipath: this.#single(cur) };
  }

  /** The ECMP set of a prefix whose only path is `r`. */
  #single(r: Route): Route[] {
    return this.multipath ? [r] : NO_MULTIPATH;
  }

  #decide(prefix: string, d: Paths): BestPathChange | undefined {
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
    else if (d.paths.length === 1) this.#dest.set(prefix, d.paths[0]!);
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
