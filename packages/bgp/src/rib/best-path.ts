/**
 * Best-path selection, RFC 4271 §9.1.2.2 with the RFC 4456 §9 additions, in the order of
 * bgp-anchors §1.4. Returns < 0 when `a` is better.
 */
import type { Route } from './attr-set.ts';

/** RFC 4271 §5.1.5: a route without LOCAL_PREF (eBGP-learned or local) counts as 100. */
export const DEFAULT_LOCAL_PREF = 100;

/** An IPv4 address as a number, or -1 for anything else (IPv6). No allocation: runs per compare. */
function ipv4Number(s: string): number {
  let n = 0;
  let octet = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + octet;
      octet = 0;
      dots++;
    } else if (c >= 48 && c <= 57) octet = octet * 10 + (c - 48);
    else return -1;
  }
  return dots === 3 ? n * 256 + octet : -1;
}

/** Compare addresses numerically: IPv4 by value, otherwise as text (as before: IPv6 as written). */
function compareIp(a: string, b: string): number {
  if (a === b) return 0;
  const x = ipv4Number(a);
  const y = ipv4Number(b);
  if (x >= 0 && y >= 0) return x - y;
  if (x >= 0 || y >= 0) return x >= 0 ? -1 : 1;
  return a < b ? -1 : 1;
}

/** Steps 1–6 (everything before the tie-breakers); equal here means ECMP-equal. */
export function comparePreference(a: Route, b: Route): number {
  const lpA = a.attrs.localPref ?? DEFAULT_LOCAL_PREF;
  const lpB = b.attrs.localPref ?? DEFAULT_LOCAL_PREF;
  if (lpA !== lpB) return lpB - lpA; // 1. highest LOCAL_PREF
  if (a.attrs.asPathLength !== b.attrs.asPathLength) return a.attrs.asPathLength - b.attrs.asPathLength; // 2.
  const oA = a.attrs.origin ?? 2;
  const oB = b.attrs.origin ?? 2;
  if (oA !== oB) return oA - oB; // 3. lowest ORIGIN
  if (a.attrs.neighborAs === b.attrs.neighborAs) {
    const mA = a.attrs.med ?? 0;
    const mB = b.attrs.med ?? 0;
    if (mA !== mB) return mA - mB; // 4. lowest MED from the same neighbour AS
  }
  const eA = a.source.local || !a.source.ibgp ? 0 : 1;
  const eB = b.source.local || !b.source.ibgp ? 0 : 1;
  if (eA !== eB) return eA - eB; // 5. eBGP (and local) over iBGP
  // 6. IGP cost to the next hop: not known to this speaker, skipped.
  return 0;
}

export function compareRoutes(a: Route, b: Route): number {
  if (a.stale !== b.stale) return a.stale ? 1 : -1; // fresh over stale (RFC 4724 keeps both usable)
  const p = comparePreference(a, b);
  if (p !== 0) return p;
  // 7. lowest BGP identifier, the ORIGINATOR_ID for reflected routes (RFC 4456 §9).
  const id = compareIp(a.attrs.originatorId ?? a.source.routerId, b.attrs.originatorId ?? b.source.routerId);
  if (id !== 0) return id;
  // 8. shortest CLUSTER_LIST.
  const cA = a.attrs.clusterList?.length ?? 0;
  const cB = b.attrs.clusterList?.length ?? 0;
  if (cA !== cB) return cA - cB;
  // 9. lowest peer address.
  const peer = compareIp(a.source.peerAddress, b.source.peerAddress);
  if (peer !== 0) return peer;
  return a.pathId - b.pathId;
}
