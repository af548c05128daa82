/**
 * The protocol rules between Adj-RIB-In, Loc-RIB and Adj-RIB-Out that are not policy:
 * loop detection (RFC 4271 §9.1.2, RFC 4456 §8), iBGP split horizon and route reflection
 * (RFC 4456 §6), and the attribute rewrites for eBGP/iBGP (RFC 4271 §5.1).
 */
import type { PathAttributes } from '../wire/attributes.ts';
import { AsPathSegmentType } from '../wire/constants.ts';
import type { Route, RouteSource } from './attr-set.ts';
import { DEFAULT_LOCAL_PREF } from './best-path.ts';

export interface LocalIdentity {
  asNumber: number;
  routerId: string;
  /** RFC 4456 §7: defaults to the router ID. */
  clusterId: string;
}

/**
 * Why an incoming route is refused before policy, or undefined when it is acceptable.
 * `allowLocalAs`: our AS may appear this many times in an eBGP path (BIRD `allow local as`).
 */
export function importViolation(
  a: PathAttributes,
  from: RouteSource,
  me: LocalIdentity,
  allowLocalAs = 0,
): string | undefined {
  if (!from.ibgp) {
    const ours = (a.asPath ?? []).reduce((n, s) => n + s.asns.filter((x) => x === me.asNumber).length, 0);
    if (ours > allowLocalAs) return 'AS_PATH loop';
  }
  if (from.ibgp && a.originatorId === me.routerId) return 'ORIGINATOR_ID is our router ID';
  if (a.clusterList?.includes(me.clusterId)) return 'CLUSTER_LIST loop';
  return undefined;
}

/** RFC 4271 §5.1.5: LOCAL_PREF from an external peer is ignored. */
export function sanitizeImported<A extends PathAttributes>(a: A, from: RouteSource): A {
  if (from.ibgp || a.localPref === undefined) return a;
  const { localPref: _drop, ...rest } = a;
  return rest as A;
}

export interface ExportTarget {
  peerAddress: string;
  peerAs: number;
  ibgp: boolean;
  rrClient: boolean;
  /** Next hop to use for "self" in this route's family on this session. */
  selfNextHop: string;
  selfLinkLocal?: string;
  /** Rewrite the next hop to ourselves on iBGP too (eBGP always does). */
  nextHopSelf?: boolean;
  /** eBGP: keep a learned route's next hop (our own routes still carry ours). */
  nextHopKeep?: boolean;
}

/** The attributes to advertise, before export policy, or undefined when the rules forbid it. */
export function exportAttributes(
  route: Route,
  to: ExportTarget,
  me: LocalIdentity,
): (PathAttributes & { nextHop: string; linkLocalNextHop?: string }) | undefined {
  const src = route.source;
  if (!src.local && src.peerAddress === to.peerAddress) return undefined; // never back to the sender
  const a = route.attrs;
  const { key: _k, asPathLength: _l, neighborAs: _n, ...base } = a;
  const out: PathAttributes & { nextHop: string; linkLocalNextHop?: string } = { ...base };
  if (to.ibgp) {
    if (!src.local && src.ibgp) {
      // RFC 4456 §6: iBGP routes go to iBGP peers only through a reflector.
      if (!src.rrClient && !to.rrClient) return undefined;
      out.originatorId = a.originatorId ?? src.routerId;
      out.clusterList = [me.clusterId, ...(a.clusterList ?? [])];
    }
    out.localPref = a.localPref ?? DEFAULT_LOCAL_PREF;
    if (src.local || to.nextHopSelf) {
      out.nextHop = to.selfNextHop;
      if (to.selfLinkLocal) out.linkLocalNextHop = to.selfLinkLocal;
      else delete out.linkLocalNextHop;
    }
    if (out.asPath === undefined) out.asPath = [];
    return out;
  }
  // eBGP: prepend our AS, next hop self, drop iBGP-only attributes (RFC 4271 §5.1.2, §5.1.3).
  // RFC 5065 §5.3: confederation segments never leave the confederation (we run none).
  const path = (a.asPath ?? []).filter(
    (s) => s.type !== AsPathSegmentType.ConfedSequence && s.type !== AsPathSegmentType.ConfedSet,
  );
  const first = path[0];
  out.asPath =
    first?.type === AsPathSegmentType.Sequence && first.asns.length < 255
      ? [{ type: AsPathSegmentType.Sequence, asns: [me.asNumber, ...first.asns] }, ...path.slice(1)]
      : [{ type: AsPathSegmentType.Sequence, asns: [me.asNumber] }, ...path];
  if (!(to.nextHopKeep && !src.local)) {
    out.nextHop = to.selfNextHop;
    if (to.selfLinkLocal) out.linkLocalNextHop = to.selfLinkLocal;
    else delete out.linkLocalNextHop;
  }
  // LOCAL_PREF stays for the export policy to match, as BIRD's export filters see
  // bgp_local_pref toward any peer; `afterExportPolicy` drops it before the wire.
  delete out.originatorId;
  delete out.clusterList;
  // RFC 4271 §5.1.4: MED learned from one AS is not passed on to another.
  if (!src.local) delete out.med;
  return out;
}

/** RFC 4271 §5.1.5: no LOCAL_PREF toward an external peer, whatever export policy matched or set. */
export function afterExportPolicy<A extends PathAttributes>(a: A, to: { ibgp: boolean }): A {
  if (to.ibgp || a.localPref === undefined) return a;
  const { localPref: _drop, ...rest } = a;
  return rest as A;
}
