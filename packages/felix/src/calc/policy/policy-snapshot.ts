/**
 * The whole policy state of a cluster at one moment, built from stored objects the way Felix's
 * calculation graph builds it (one catalog, one selector index over every endpoint and network
 * set), so a flow between two addresses can be evaluated without a dataplane: what
 * `calico policy explain` prints and what tests compare the kernel's behaviour with.
 */
import { parseCidrOrIp, type ResourceOf } from '@calico-ts/datastore';
import { evaluateFlow, type FlowPacket, type FlowPeer, type FlowVerdict } from './flow-evaluator.ts';
import { PolicyCatalog, type PolicyCatalogInput, type PolicyEndpoint } from './policy-catalog.ts';
import { endpointIndexItem, networkSetIndexItem, SelectorIndex } from './selector-index.ts';

export interface PolicySnapshotInput extends PolicyCatalogInput {
  workloadEndpoints?: readonly ResourceOf<'WorkloadEndpoint'>[];
  networkSets?: readonly ResourceOf<'NetworkSet'>[];
  globalNetworkSets?: readonly ResourceOf<'GlobalNetworkSet'>[];
}

export interface SnapshotEndpoint extends PolicyEndpoint {
  /** `<namespace>/<name>` of the WorkloadEndpoint. */
  name: string;
  /** The pod (spec.pod), when set. */
  pod: string | undefined;
  /** Addresses without prefix length. */
  ips: string[];
}

export interface PolicySnapshot {
  catalog: PolicyCatalog;
  index: SelectorIndex;
  endpoints: SnapshotEndpoint[];
}

export function policySnapshot(input: PolicySnapshotInput): PolicySnapshot {
  const catalog = PolicyCatalog.from(input);
  const index = new SelectorIndex();
  for (const p of catalog.profiles()) index.setProfileLabels(p.name, p.labelsToApply);
  const endpoints: SnapshotEndpoint[] = [];
  for (const wep of input.workloadEndpoints ?? []) {
    const namespace = wep.metadata.namespace ?? 'default';
    const endpoint: SnapshotEndpoint = {
      name: `${namespace}/${wep.metadata.name}`,
      pod: wep.spec.pod || undefined,
      namespace,
      labels: wep.metadata.labels ?? {},
      profiles: wep.spec.profiles ?? [],
      serviceAccount: wep.spec.serviceAccountName || undefined,
      ips: (wep.spec.ipNetworks ?? []).map((n) => n.split('/')[0]!),
    };
    endpoints.push(endpoint);
    index.setItem(
      `wep:${endpoint.name}`,
      endpointIndexItem(endpoint, wep.spec.ipNetworks ?? [], wep.spec.ports),
    );
  }
  for (const set of [...(input.networkSets ?? []), ...(input.globalNetworkSets ?? [])]) {
    const key = `${set.kind}:${set.metadata.namespace ?? ''}/${set.metadata.name}`;
    index.setItem(key, networkSetIndexItem(set));
  }
  index.syncIpsets(catalog.ipsets().values());
  index.takeDeltas();
  return { catalog, index, endpoints };
}

/** The endpoint holding this address, if any. */
export function endpointByIp(snapshot: PolicySnapshot, ip: string): SnapshotEndpoint | undefined {
  const wanted = parseCidrOrIp(ip);
  return snapshot.endpoints.find((e) =>
    e.ips.some((a) => {
      const have = parseCidrOrIp(a);
      return (
        have !== undefined &&
        wanted !== undefined &&
        have.family === wanted.family &&
        have.address === wanted.address
      );
    }),
  );
}

/** Source egress and destination ingress for a packet between two addresses, as Felix would enforce it. */
export function explainFlow(
  snapshot: PolicySnapshot,
  packet: FlowPacket,
): FlowVerdict & { source: SnapshotEndpoint | undefined; destination: SnapshotEndpoint | undefined } {
  const source = endpointByIp(snapshot, packet.srcIp);
  const destination = endpointByIp(snapshot, packet.dstIp);
  const peer = (e: SnapshotEndpoint | undefined): FlowPeer =>
    e ? { kind: 'endpoint', name: e.name, resolved: snapshot.catalog.resolve(e) } : { kind: 'address' };
  const verdict = evaluateFlow({
    source: peer(source),
    destination: peer(destination),
    packet,
    ipsets: snapshot.index,
  });
  return { ...verdict, source, destination };
}

/**
 * The same flow as the staged policies would decide it (each endpoint's staged view in place of
 * its enforced tiers, where a staged policy changes them): what Felix records as staged drops.
 * Undefined when no staged policy changes either endpoint's tiers.
 */
export function explainStagedFlow(snapshot: PolicySnapshot, packet: FlowPacket): FlowVerdict | undefined {
  let changed = false;
  const peer = (e: SnapshotEndpoint | undefined): FlowPeer => {
    if (!e) return { kind: 'address' };
    const resolved = snapshot.catalog.resolve(e);
    const staged = snapshot.catalog.resolveStaged(resolved);
    if (staged) changed = true;
    return { kind: 'endpoint', name: e.name, resolved: staged ? { ...resolved, ...staged } : resolved };
  };
  const source = peer(endpointByIp(snapshot, packet.srcIp));
  const destination = peer(endpointByIp(snapshot, packet.dstIp));
  if (!changed) return undefined;
  return evaluateFlow({ source, destination, packet, ipsets: snapshot.index });
}
