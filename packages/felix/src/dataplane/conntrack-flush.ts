/**
 * Established connections obeying new policy (FelixConfiguration `policyConntrackFlush`). The
 * endpoint chains accept RELATED/ESTABLISHED packets before any policy, so a flow that a new
 * policy denies keeps running while its conntrack entry lives. When the policy of a local
 * endpoint changes (a policy it uses changed, or its tier list or profiles did), its conntrack
 * entries — those whose original or reply source is one of its addresses, as Felix matches
 * entries of a removed endpoint — are deleted once the new rules are in the kernel. The kernel
 * then judges each flow's next packet again: with `nf_conntrack_tcp_loose` (the default) a TCP
 * packet mid-stream starts a new entry as NEW, so it passes through the new policy; an allowed
 * flow goes on, a denied one is dropped (and logged). A flow whose first packet after the change
 * comes from the responder is judged in that direction.
 */
import type { DataplaneUpdate, WorkloadEndpoint } from '../calc/dataplane-update.ts';

/** Which local endpoint addresses need their conntrack entries deleted after the next apply. */
export class PolicyChangeTracker {
  /** Local endpoints by key, as last sent. */
  readonly #endpoints = new Map<string, WorkloadEndpoint>();
  #pending = new Set<string>();

  /** Records the endpoints whose policy a batch changes (call before the dataplane applies it). */
  onIntent(batch: readonly DataplaneUpdate[]): void {
    const changedPolicies = new Set<string>();
    const changedProfiles = new Set<string>();
    for (const u of batch) {
      if (u.type === 'activePolicyUpdate') changedPolicies.add(u.policy.key);
      else if (u.type === 'activeProfileUpdate') changedProfiles.add(u.profile.name);
    }
    for (const u of batch) {
      if (u.type === 'workloadEndpointUpdate') {
        const before = this.#endpoints.get(u.key);
        if (before && policyShape(before) !== policyShape(u.endpoint)) this.#add(u.endpoint);
        this.#endpoints.set(u.key, u.endpoint);
      } else if (u.type === 'workloadEndpointRemove') {
        this.#endpoints.delete(u.key);
      }
    }
    if (changedPolicies.size === 0 && changedProfiles.size === 0) return;
    for (const ep of this.#endpoints.values()) {
      const uses =
        ep.profileIds.some((p) => changedProfiles.has(p)) ||
        ep.tiers.some((t) => [...t.ingressPolicies, ...t.egressPolicies].some((k) => changedPolicies.has(k)));
      if (uses) this.#add(ep);
    }
  }

  #add(ep: WorkloadEndpoint): void {
    for (const net of [...ep.ipv4Nets, ...ep.ipv6Nets]) this.#pending.add(net.split('/')[0]!);
  }

  /** The addresses collected since the last call. */
  take(): string[] {
    const out = [...this.#pending];
    this.#pending = new Set();
    return out;
  }
}

const policyShape = (ep: WorkloadEndpoint) => JSON.stringify([ep.tiers, ep.profileIds]);

/** `conntrack -D` arguments deleting every entry with this address as original or reply source. */
export function conntrackDeleteArgs(ip: string): string[][] {
  const family = ip.includes(':') ? 'ipv6' : 'ipv4';
  return [
    ['-D', '-f', family, '--orig-src', ip],
    ['-D', '-f', family, '--reply-src', ip],
  ];
}
