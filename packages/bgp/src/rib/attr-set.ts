/**
 * Routes as plain data. Attribute sets are interned: every route with the same attributes
 * (BIRD packs ~800 /32s per UPDATE under one set) points at one frozen object.
 */
import type { PathAttributes } from '../wire/attributes.ts';
import { asPathLength } from '../wire/attributes.ts';
import { AsPathSegmentType } from '../wire/constants.ts';

export interface AttrSet extends Readonly<PathAttributes> {
  readonly nextHop: string;
  readonly linkLocalNextHop?: string;
  /** Intern key; equal keys mean equal attributes. */
  readonly key: string;
  readonly asPathLength: number;
  /** First AS of the path (the neighbour AS for MED comparison), 0 when empty. */
  readonly neighborAs: number;
}

/** Where a route came from; one object per peer session, shared by all its routes. */
export interface RouteSource {
  readonly peerAddress: string;
  readonly peerAs: number;
  readonly routerId: string;
  readonly ibgp: boolean;
  readonly rrClient: boolean;
  /** Originated by this speaker. */
  readonly local: boolean;
}

export interface Route {
  readonly prefix: string;
  readonly pathId: number;
  readonly attrs: AttrSet;
  readonly source: RouteSource;
  /** RFC 4724: kept through a peer's graceful restart, pending refresh. */
  stale: boolean;
}

export const LOCAL_SOURCE: RouteSource = Object.freeze({
  peerAddress: '',
  peerAs: 0,
  routerId: '0.0.0.0',
  ibgp: false,
  rrClient: false,
  local: true,
});

/** A list as text for the intern key; `-` when absent, so [] and undefined stay distinct. */
function listKey(xs: readonly (string | number)[] | undefined): string {
  return xs === undefined ? '-' : `[${xs.join(',')}]`;
}

/**
 * The intern key: every field, each in its own `|`-separated slot, list items joined with
 * characters that cannot occur inside them. Built by concatenation rather than JSON.stringify:
 * it runs for every UPDATE received and every route exported.
 */
function keyOf(a: PathAttributes & { nextHop: string; linkLocalNextHop?: string }): string {
  let k = `${a.nextHop}|${a.linkLocalNextHop ?? ''}|${a.origin ?? -1}|`;
  if (a.asPath === undefined) k += '-';
  else for (const seg of a.asPath) k += `${seg.type}:${seg.asns.join(',')};`;
  k += `|${a.med ?? -1}|${a.localPref ?? -1}|${a.atomicAggregate ? 1 : 0}|`;
  k += a.aggregator ? `${a.aggregator.asNumber}@${a.aggregator.address}` : '-';
  k += `|${listKey(a.communities)}|${listKey(a.largeCommunities)}|${a.originatorId ?? ''}|${listKey(a.clusterList)}|`;
  if (a.unknown)
    for (const u of a.unknown) k += `${u.flags}:${u.code}:${Buffer.from(u.value).toString('hex')};`;
  return k;
}

export class AttrInterner {
  #sets = new Map<string, WeakRef<AttrSet>>();
  #registry = new FinalizationRegistry<string>((key) => {
    const ref = this.#sets.get(key);
    if (ref && ref.deref() === undefined) this.#sets.delete(key);
  });

  intern(a: PathAttributes & { nextHop: string; linkLocalNextHop?: string }): AttrSet {
    const key = keyOf(a);
    const hit = this.#sets.get(key)?.deref();
    if (hit) return hit;
    const first = a.asPath?.find((s) => s.type === AsPathSegmentType.Sequence);
    const set: AttrSet = Object.freeze({
      ...stripUndefined(a),
      key,
      asPathLength: asPathLength(a.asPath),
      neighborAs: first?.asns[0] ?? 0,
    }) as AttrSet;
    this.#sets.set(key, new WeakRef(set));
    this.#registry.register(set, key);
    return set;
  }

  get size(): number {
    return this.#sets.size;
  }
}

function stripUndefined<T extends object>(o: T): T {
  const out = {} as Record<string, unknown>;
  for (const k in o) {
    const v = o[k];
    if (v !== undefined) out[k] = v;
  }
  return out as T;
}
