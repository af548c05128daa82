/**
 * The peers this node should have, as confd computes them (confd/pkg/backends/calico
 * bgp_processor.go processPeers, client.go updatePeersV1; calico-internals §5.3):
 *
 * - node-to-node mesh (`nodeToNodeMeshEnabled`, default true) to every other node with an address,
 *   skipped on both sides when either has `routeReflectorClusterID`; named `Mesh_<ip>`; the side
 *   with the smaller address (string comparison, as confd) dials, the other is passive;
 * - BGPPeer resources: global (no `node`/`nodeSelector`, `Global_<ip>`) or for this node (`node`
 *   or `nodeSelector`, `Node_<ip>`), to `peerIP[:port]` or to the nodes `peerSelector` selects;
 *   global peerings come first and a later peering to the same address is dropped;
 * - a route reflector (a node with a cluster ID) treats iBGP peers without its cluster ID as
 *   `rr client` (buildPeerFromData).
 *
 * Every session is `multihop` in the BIRD template (TTL 64), or `ttl security on` when
 * `ttlSecurity` is set.
 */

import { normalizeIp, type PeerConfig, parseIp } from '@calico-ts/bgp';
import type { BGPPeerSpec, ResourceOf } from '@calico-ts/datastore';
import { asNumberValue, parseSelector } from '@calico-ts/datastore';
import {
  type AgentSnapshot,
  addressOf,
  bgpConfigurations,
  DEFAULT_AS_NUMBER,
  DEFAULT_LISTEN_PORT,
  DEFAULT_RESTART_TIME,
  durationSeconds,
} from './snapshot.ts';

export type PeerType = 'node-to-node mesh' | 'global' | 'node specific';
export type AddressFamily = 'ipv4' | 'ipv6';

/** This node as a BGP speaker. */
export interface LocalNode {
  name: string;
  ipv4: string | undefined;
  ipv6: string | undefined;
  /** Node address with its subnet (`192.0.2.11/24`), for CrossSubnet decisions. */
  ipv4Cidr: string | undefined;
  asNumber: number;
  /** BGP identifier: the IPv4 address (confd's default router id). */
  routerId: string | undefined;
  clusterId: string | undefined;
  listenPort: number;
  labels: Record<string, string>;
}

export interface DesiredPeer {
  /** BIRD protocol name as confd writes it: `Mesh_192_0_2_12`, `Global_…`, `Node_…[_port_N]`. */
  name: string;
  type: PeerType;
  family: AddressFamily;
  /** Speaker configuration; policies are filled in by the agent intent. */
  config: PeerConfig;
  /** BGPFilter names, in order. */
  filters: string[];
  /** Seconds (BGPPeer maxRestartTime / nodeMeshMaxRestartTime). */
  restartTime: number | undefined;
  /** The peer is another Calico node (mesh or peerSelector). */
  calicoNode: boolean;
}

export interface PeerCalculation {
  peers: DesiredPeer[];
  problems: string[];
}

/** How to read `password.secretKeyRef` (no Kubernetes here: the agent reads files). */
export type SecretResolver = (name: string, key: string) => string | undefined;

/** BIRD's `multihop` without a number. */
export const MULTIHOP_TTL = 64;

export function localNode(snapshot: AgentSnapshot, nodeName: string): LocalNode | undefined {
  const node = snapshot.nodes.find((n) => n.metadata.name === nodeName);
  if (!node) return undefined;
  const { global, node: perNode } = bgpConfigurations(snapshot, nodeName);
  const ipv4 = addressOf(node.spec.bgp?.ipv4Address);
  return {
    name: nodeName,
    ipv4,
    ipv6: addressOf(node.spec.bgp?.ipv6Address),
    ipv4Cidr: node.spec.bgp?.ipv4Address,
    // AS: the Node's own, else the cluster's, else confd's default.
    asNumber: asOf(node.spec.bgp?.asNumber ?? global?.asNumber),
    routerId: ipv4,
    clusterId: node.spec.bgp?.routeReflectorClusterID,
    listenPort: perNode?.listenPort ?? global?.listenPort ?? DEFAULT_LISTEN_PORT,
    labels: node.metadata.labels ?? {},
  };
}

/** `ip`, `ip:port`, `[v6]:port` or bare v6 (validated by the model's ipPortProblem). */
export function parsePeerIp(value: string): { ip: string; port: number | undefined } | undefined {
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(value);
  if (bracket)
    return parseIp(bracket[1]!) ? { ip: normalizeIp(bracket[1]!), port: Number(bracket[2]) } : undefined;
  if (parseIp(value)) return { ip: normalizeIp(value), port: undefined };
  const v4port = /^([\d.]+):(\d+)$/.exec(value);
  if (v4port && parseIp(v4port[1]!)) return { ip: normalizeIp(v4port[1]!), port: Number(v4port[2]) };
  return undefined;
}

/** AS numbers may be written dotted ("1.10"); absent means confd's default. */
const asOf = (v: number | string | undefined): number =>
  v === undefined ? DEFAULT_AS_NUMBER : asNumberValue(v);
const familyOf = (ip: string): AddressFamily => (ip.includes(':') ? 'ipv6' : 'ipv4');
const protocolName = (prefix: string, ip: string, port?: number) =>
  `${prefix}_${ip.replace(/[.:]/g, '_')}${port !== undefined ? `_port_${port}` : ''}`;

function selectorMatches(
  selector: string,
  labels: Record<string, string>,
  problems: string[],
  where: string,
): boolean {
  try {
    return parseSelector(selector).evaluate(labels);
  } catch (err) {
    problems.push(`${where}: ${(err as Error).message}`);
    return false;
  }
}

export function computePeers(
  snapshot: AgentSnapshot,
  me: LocalNode,
  resolveSecret: SecretResolver,
): PeerCalculation {
  const problems: string[] = [];
  const peers: DesiredPeer[] = [];
  const taken = new Set<string>();
  const { global } = bgpConfigurations(snapshot, me.name);
  const ownIp = (f: AddressFamily) => (f === 'ipv4' ? me.ipv4 : me.ipv6);
  const secret = (
    ref: { name: string; key: string; optional?: boolean | undefined } | undefined,
    where: string,
  ) => {
    if (!ref) return undefined;
    const value = resolveSecret(ref.name, ref.key);
    if (value === undefined && !ref.optional)
      problems.push(`${where}: secret ${ref.name}/${ref.key} not found`);
    return value;
  };
  const add = (p: DesiredPeer): void => {
    const key = `${p.config.address}|${p.config.port ?? DEFAULT_LISTEN_PORT}`;
    if (taken.has(key)) {
      problems.push(`${p.name}: a peering with ${p.config.address} already exists; duplicate ignored`);
      return;
    }
    taken.add(key);
    peers.push(p);
  };
  const otherNodes = snapshot.nodes.filter((n) => n.metadata.name !== me.name);
  const nodeByIp = new Map<string, ResourceOf<'Node'>>();
  for (const n of snapshot.nodes) {
    for (const a of [n.spec.bgp?.ipv4Address, n.spec.bgp?.ipv6Address]) {
      const ip = addressOf(a);
      if (ip) nodeByIp.set(ip, n);
    }
  }
  const portOfNode = (name: string): number | undefined => {
    const cfg = snapshot.bgpConfigurations.find((c) => c.metadata.name === `node.${name}`)?.spec;
    const port = cfg?.listenPort ?? global?.listenPort;
    return port !== undefined && port !== DEFAULT_LISTEN_PORT ? port : undefined;
  };

  // 1. The mesh (processMeshPeers): not on route reflectors, not to route reflectors.
  const meshEnabled = global?.nodeToNodeMeshEnabled ?? true;
  if (meshEnabled && !me.clusterId) {
    const meshPassword = secret(
      global?.nodeMeshPassword?.secretKeyRef,
      'BGPConfiguration default.nodeMeshPassword',
    );
    const meshRestart = durationSeconds(global?.nodeMeshMaxRestartTime);
    for (const n of [...otherNodes].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
      if (n.spec.bgp?.routeReflectorClusterID) continue;
      for (const family of ['ipv4', 'ipv6'] as const) {
        const peerIp = addressOf(family === 'ipv4' ? n.spec.bgp?.ipv4Address : n.spec.bgp?.ipv6Address);
        const own = ownIp(family);
        if (!peerIp || !own || peerIp === own) continue;
        const config: PeerConfig = {
          address: peerIp,
          asNumber: asOf(n.spec.bgp?.asNumber ?? global?.asNumber),
          localAddress: own,
          families: [family],
          ttl: MULTIHOP_TTL,
          // "Make mesh unidirectional to avoid race conditions" (confd): the larger address listens.
          passive: peerIp > own,
        };
        const port = portOfNode(n.metadata.name);
        if (port !== undefined) config.port = port;
        if (meshPassword !== undefined) config.password = meshPassword;
        add({
          name: protocolName('Mesh', peerIp),
          type: 'node-to-node mesh',
          family,
          config,
          filters: [],
          restartTime: meshRestart,
          calicoNode: true,
        });
      }
    }
  }

  // 2. BGPPeer resources: global ones first, then those for this node (updatePeersV1 order).
  const appliesHere = (spec: BGPPeerSpec, where: string): boolean => {
    if (spec.node !== undefined) return spec.node === me.name;
    if (spec.nodeSelector !== undefined)
      return selectorMatches(spec.nodeSelector, me.labels, problems, `${where}.nodeSelector`);
    return true;
  };
  const sorted = [...snapshot.bgpPeers].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const isGlobal = (spec: BGPPeerSpec) => spec.node === undefined && spec.nodeSelector === undefined;
  for (const pass of ['global', 'node specific'] as const) {
    for (const res of sorted) {
      const spec = res.spec;
      const where = `BGPPeer ${res.metadata.name}`;
      if ((pass === 'global') !== isGlobal(spec) || !appliesHere(spec, `${where}.spec`)) continue;
      if (spec.localWorkloadSelector !== undefined) {
        problems.push(`${where}: localWorkloadSelector peerings are not supported; ignored`);
        continue;
      }
      const targets: {
        ip: string;
        port: number | undefined;
        asNumber: number;
        clusterId: string | undefined;
        calicoNode: boolean;
      }[] = [];
      if (spec.peerIP !== undefined) {
        const parsed = parsePeerIp(spec.peerIP);
        if (!parsed) {
          problems.push(`${where}.spec.peerIP: "${spec.peerIP}" is not an address`);
          continue;
        }
        const known = nodeByIp.get(parsed.ip);
        targets.push({
          ...parsed,
          asNumber: asOf(spec.asNumber),
          clusterId: known?.spec.bgp?.routeReflectorClusterID,
          calicoNode: false,
        });
      } else if (spec.peerSelector !== undefined) {
        for (const n of otherNodes) {
          if (
            !selectorMatches(
              spec.peerSelector,
              n.metadata.labels ?? {},
              problems,
              `${where}.spec.peerSelector`,
            )
          )
            continue;
          for (const a of [n.spec.bgp?.ipv4Address, n.spec.bgp?.ipv6Address]) {
            const ip = addressOf(a);
            if (!ip) continue;
            targets.push({
              ip,
              port: portOfNode(n.metadata.name),
              asNumber: asOf(n.spec.bgp?.asNumber ?? global?.asNumber),
              clusterId: n.spec.bgp?.routeReflectorClusterID,
              calicoNode: true,
            });
          }
        }
      }
      const password = secret(spec.password?.secretKeyRef, `${where}.spec.password`);
      const keepalive = durationSeconds(spec.keepaliveTime);
      const restart = durationSeconds(spec.maxRestartTime);
      if (spec.localASNumber !== undefined && asOf(spec.localASNumber) !== me.asNumber) {
        problems.push(
          `${where}.spec.localASNumber: the speaker has one AS (${me.asNumber}); ${spec.localASNumber} is not used`,
        );
      }
      for (const t of targets) {
        const family = familyOf(t.ip);
        const own = ownIp(family);
        if (!own || t.ip === own) continue;
        const config: PeerConfig = { address: t.ip, asNumber: t.asNumber, families: [family] };
        if (t.port !== undefined && t.port !== DEFAULT_LISTEN_PORT) config.port = t.port;
        if (spec.sourceAddress !== 'None') config.localAddress = own;
        if (spec.ttlSecurity) {
          // RFC 5082 GTSM; BIRD `ttl security on; multihop N`. The speaker checks one hop (TTL ≥ 254).
          config.gtsm = true;
          if (spec.ttlSecurity > 1)
            problems.push(`${where}.spec.ttlSecurity: only 1 hop is enforced (asked ${spec.ttlSecurity})`);
        } else config.ttl = MULTIHOP_TTL;
        if (password !== undefined) config.password = password;
        if (keepalive !== undefined) config.keepaliveTime = keepalive;
        if (spec.nextHopMode === 'Self') config.nextHopSelf = true;
        const ibgp = t.asNumber === me.asNumber;
        // buildPeerFromData: an RR treats iBGP peers outside its cluster as clients.
        if (ibgp && me.clusterId && t.clusterId !== me.clusterId) config.routeReflectorClient = true;
        // Only one side of a global peering between Calico nodes dials (buildPeerFromData).
        if (pass === 'global' && t.calicoNode && t.ip > own) config.passive = true;
        add({
          name: protocolName(pass === 'global' ? 'Global' : 'Node', t.ip, config.port),
          type: pass,
          family,
          config,
          filters: [...(spec.filters ?? [])],
          restartTime: restart,
          calicoNode: t.calicoNode,
        });
      }
    }
  }
  peers.sort((a, b) => a.name.localeCompare(b.name));
  return { peers, problems };
}

/** Graceful restart time we advertise: the mesh's, else BIRD's default. */
export function restartTimeOf(snapshot: AgentSnapshot, nodeName: string): number {
  const { global } = bgpConfigurations(snapshot, nodeName);
  return durationSeconds(global?.nodeMeshMaxRestartTime) ?? DEFAULT_RESTART_TIME;
}
