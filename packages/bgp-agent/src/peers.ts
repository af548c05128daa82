/**
 * The peers this node should have, as confd computes them (confd/pkg/backends/calico
 * bgp_processor.go processPeers, client.go updatePeersV1; calico-internals §5.3):
 *
 * - node-to-node mesh (`nodeToNodeMeshEnabled`, default true) to every other node with an address,
 *   skipped on both sides when either has `routeReflectorClusterID`; named `Mesh_<ip>`; the side
 *   with the larger address (string comparison, as confd) dials, the other is passive;
 * - BGPPeer resources: global (no `node`/`nodeSelector`, `Global_<ip>`) or for this node (`node`
 *   or `nodeSelector`, `Node_<ip>`), to `peerIP[:port]` or to the nodes `peerSelector` selects;
 *   global peerings come first and a later peering to the same address is dropped;
 * - a route reflector (a node with a cluster ID) treats iBGP peers without its cluster ID as
 *   `rr client` (buildPeerFromData).
 *
 * Every session is `multihop` in the BIRD template (TTL 64), or `ttl security on` when
 * `ttlSecurity` is set.
 */

import { createHash } from 'node:crypto';
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
  /** The peer is another Calico node (confd: mesh, or a peerIP that is a node's address). */
  calicoNode: boolean;
  /** BGPPeer localASNumber: the AS we present on this session (BIRD `local as`). */
  localAsNumber?: number;
  /** BGPPeer ttlSecurity hops (BIRD `ttl security on; multihop N`). */
  ttlSecurityHops?: number;
  /** BIRD `next hop self` / `next hop keep`. */
  nextHop?: 'self' | 'keep';
  /** BGPPeer numAllowedLocalASNumbers (BIRD `allow local as N`). */
  allowLocalAs?: number;
  /** BGPPeer reachableBy: a host route to the peer via this gateway. */
  reachableBy?: string;
}

export interface PeerCalculation {
  peers: DesiredPeer[];
  problems: string[];
}

/** How to read `password.secretKeyRef` (no Kubernetes here: the agent reads files). */
export type SecretResolver = (name: string, key: string) => string | undefined;

/** BIRD's `multihop` without a number. */
export const MULTIHOP_TTL = 64;

/** confd's CALICO_ROUTER_ID=hash: the first four bytes of SHA-256(node name), kept out of 224/3. */
export function hashRouterId(nodeName: string): string {
  const b = createHash('sha256').update(nodeName).digest();
  return [b[0]! > 223 ? b[0]! - 32 : b[0]!, b[1], b[2], b[3]].join('.');
}

export function localNode(
  snapshot: AgentSnapshot,
  nodeName: string,
  routerIdOption?: string,
): LocalNode | undefined {
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
    // Without an IPv4 address BGP is off, whatever the router id would be.
    routerId: ipv4 && (routerIdOption === 'hash' ? hashRouterId(nodeName) : (routerIdOption ?? ipv4)),
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
  const otherNodes = snapshot.nodes.filter((n) => n.metadata.name !== me.name);
  const globalAs = asOf(global?.asNumber);
  const nodeAs = (n: ResourceOf<'Node'>) => asOf(n.spec.bgp?.asNumber ?? global?.asNumber);
  const nodeIps = (n: ResourceOf<'Node'>) => ({
    ipv4: addressOf(n.spec.bgp?.ipv4Address),
    ipv6: addressOf(n.spec.bgp?.ipv6Address),
  });
  // confd: a node's listen port is its own BGPConfiguration's, else the cluster's when set. The
  // model fills in 179, which confd would only see when written out; 179 counts as unset.
  const portOfNode = (name: string): number | undefined => {
    const cfg = snapshot.bgpConfigurations.find((c) => c.metadata.name === `node.${name}`)?.spec;
    const port = cfg?.listenPort ?? global?.listenPort;
    return port === DEFAULT_LISTEN_PORT ? undefined : port;
  };
  const matching = (selector: string, where: string) =>
    snapshot.nodes.filter((n) => selectorMatches(selector, n.metadata.labels ?? {}, problems, where));

  // 1. The mesh (processMeshPeers): not on route reflectors, not to route reflectors.
  const meshEnabled = global?.nodeToNodeMeshEnabled ?? true;
  if (meshEnabled && !me.clusterId) {
    const meshPassword = secret(
      global?.nodeMeshPassword?.secretKeyRef,
      'BGPConfiguration default.nodeMeshPassword',
    );
    const meshRestart = durationSeconds(global?.nodeMeshMaxRestartTime);
    for (const n of otherNodes) {
      if (n.spec.bgp?.routeReflectorClusterID) continue;
      for (const family of ['ipv4', 'ipv6'] as const) {
        const peerIp = nodeIps(n)[family];
        const own = ownIp(family);
        if (!peerIp || !own || peerIp === own) continue;
        const config: PeerConfig = {
          address: peerIp,
          asNumber: nodeAs(n),
          localAddress: own,
          families: [family],
          ttl: MULTIHOP_TTL,
          // "Make mesh unidirectional to avoid race conditions" (confd): the larger address listens.
          passive: peerIp > own,
        };
        const port = portOfNode(n.metadata.name);
        if (port !== undefined) config.port = port;
        if (meshPassword !== undefined) config.password = meshPassword;
        peers.push({
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

  // 2. BGPPeer resources (updatePeersV1): global ones first, then those for this node, then the
  // automatic reverse peerings; the first peering to an address and port wins.
  interface Candidate {
    res: ResourceOf<'BGPPeer'>;
    ip: string;
    port: number | undefined;
    asNumber: number;
    clusterId: string | undefined;
    calicoNode: boolean;
    /** Came from a peerIP (confd carries local AS, allowed local AS and reachableBy only there). */
    byIp: boolean;
    localWorkload: boolean;
    reachableBy: string | undefined;
  }
  const emitted = new Map<string, { kind: 'global' | 'node specific'; c: Candidate }>();
  /** `quiet`: reverse peerings often repeat a forward one; that is expected, not a problem. */
  const emit = (kind: 'global' | 'node specific', c: Candidate, quiet = false) => {
    const key = `${c.ip}|${c.port ?? 0}`;
    if (emitted.has(key)) {
      if (quiet) return;
      const name = protocolName(kind === 'global' ? 'Global' : 'Node', c.ip, c.port);
      problems.push(`${name}: a peering with ${c.ip} already exists; duplicate ignored`);
      return;
    }
    emitted.set(key, { kind, c });
  };
  const sorted = [...snapshot.bgpPeers].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const isGlobal = (spec: BGPPeerSpec) => spec.node === undefined && spec.nodeSelector === undefined;
  const appliesHere = (spec: BGPPeerSpec, where: string): boolean => {
    if (spec.node !== undefined) return spec.node === me.name;
    if (spec.nodeSelector !== undefined)
      return selectorMatches(spec.nodeSelector, me.labels, problems, `${where}.nodeSelector`);
    return true;
  };
  const asNodeCandidates = (res: ResourceOf<'BGPPeer'>, n: ResourceOf<'Node'>, families: AddressFamily[]) =>
    families.flatMap((family): Candidate[] => {
      const ip = nodeIps(n)[family];
      if (!ip) return [];
      return [
        {
          res,
          ip,
          port: portOfNode(n.metadata.name),
          asNumber: nodeAs(n),
          clusterId: n.spec.bgp?.routeReflectorClusterID,
          calicoNode: false,
          byIp: false,
          localWorkload: false,
          reachableBy: res.spec.reachableBy,
        },
      ];
    });
  for (const pass of ['global', 'node specific'] as const) {
    for (const res of sorted) {
      const spec = res.spec;
      const where = `BGPPeer ${res.metadata.name}`;
      if ((pass === 'global') !== isGlobal(spec) || !appliesHere(spec, `${where}.spec`)) continue;
      if (spec.localWorkloadSelector !== undefined) {
        for (const w of activeLocalWorkloads(snapshot, me, res.metadata.name, problems)) {
          for (const net of w.spec.ipNetworks ?? []) {
            const ip = addressOf(net);
            if (!ip) continue;
            emit(pass, {
              res,
              ip,
              port: undefined,
              asNumber: asOf(spec.asNumber),
              clusterId: undefined,
              calicoNode: false,
              byIp: true,
              localWorkload: true,
              reachableBy: undefined,
            });
          }
        }
      } else if (spec.peerSelector !== undefined) {
        for (const n of matching(spec.peerSelector, `${where}.spec.peerSelector`))
          for (const c of asNodeCandidates(res, n, ['ipv4', 'ipv6'])) emit(pass, c);
      } else if (spec.peerIP !== undefined) {
        const parsed = parsePeerIp(spec.peerIP);
        if (!parsed) {
          problems.push(`${where}.spec.peerIP: "${spec.peerIP}" is not an address`);
          continue;
        }
        // No asNumber: the cluster's AS (confd's nodesWithIPPortAndAS).
        const asNumber = spec.asNumber !== undefined ? asOf(spec.asNumber) : globalAs;
        const nodes = nodesWithIpPortAndAs(parsed.ip, asNumber, parsed.port);
        let port = parsed.port;
        if (port === undefined && nodes[0]) port = portOfNode(nodes[0].metadata.name);
        if (spec.reachableBy !== undefined && familyOf(spec.reachableBy) !== familyOf(parsed.ip)) {
          problems.push(`${where}.spec.reachableBy: ${spec.reachableBy} is not of the peer's address family`);
          continue;
        }
        const known = snapshot.nodes.find((n) => Object.values(nodeIps(n)).includes(parsed.ip));
        emit(pass, {
          res,
          ip: parsed.ip,
          port,
          asNumber,
          clusterId: undefined,
          calicoNode: known !== undefined,
          byIp: true,
          localWorkload: false,
          reachableBy: spec.reachableBy,
        });
      }
    }
  }
  // Reverse peering: a node a BGPPeer selects as a peer peers back with the nodes it applies to.
  for (const res of sorted) {
    const spec = res.spec;
    const where = `BGPPeer ${res.metadata.name}`;
    if (spec.reversePeering === 'Manual' || spec.localWorkloadSelector !== undefined) continue;
    let selectsMe = false;
    let families: AddressFamily[] = [];
    if (spec.peerSelector !== undefined) {
      selectsMe = selectorMatches(spec.peerSelector, me.labels, problems, `${where}.spec.peerSelector`);
      families = ['ipv4', 'ipv6'];
    } else if (spec.peerIP !== undefined) {
      const parsed = parsePeerIp(spec.peerIP);
      if (!parsed) continue;
      const asNumber = spec.asNumber !== undefined ? asOf(spec.asNumber) : globalAs;
      selectsMe = nodesWithIpPortAndAs(parsed.ip, asNumber, parsed.port).some(
        (n) => n.metadata.name === me.name,
      );
      families = [familyOf(parsed.ip)];
    }
    if (!selectsMe) continue;
    const peerNodes =
      spec.nodeSelector !== undefined
        ? matching(spec.nodeSelector, `${where}.spec.nodeSelector`)
        : spec.node !== undefined
          ? snapshot.nodes.filter((n) => n.metadata.name === spec.node)
          : snapshot.nodes;
    for (const n of peerNodes)
      for (const c of asNodeCandidates(res, n, families)) emit('node specific', c, true);
  }

  for (const { kind, c } of emitted.values()) {
    const spec = c.res.spec;
    const where = `BGPPeer ${c.res.metadata.name}`;
    const family = familyOf(c.ip);
    const own = ownIp(family);
    if (!own || c.ip === own) continue;
    const localAs = c.byIp && spec.localASNumber !== undefined ? asOf(spec.localASNumber) : undefined;
    const effectiveAs = localAs ?? me.asNumber;
    const config: PeerConfig = { address: c.ip, asNumber: c.asNumber, families: [family] };
    if (c.port !== undefined) config.port = c.port;
    if (!c.localWorkload && spec.sourceAddress !== 'None') config.localAddress = own;
    const ttlHops = c.localWorkload ? 0 : (spec.ttlSecurity ?? 0);
    if (ttlHops > 0) {
      // RFC 5082 GTSM; BIRD `ttl security on; multihop N`: TTL 255 out, at least 256 − N in.
      config.gtsm = true;
      config.gtsmHops = ttlHops;
    } else config.ttl = MULTIHOP_TTL;
    if (!c.localWorkload) {
      const password = secret(spec.password?.secretKeyRef, `${where}.spec.password`);
      if (password !== undefined) config.password = password;
      const keepalive = durationSeconds(spec.keepaliveTime);
      if (keepalive !== undefined) config.keepaliveTime = keepalive;
    }
    const nextHop =
      spec.nextHopMode === 'Self'
        ? 'self'
        : spec.nextHopMode === 'Keep' ||
            (spec.nextHopMode === undefined && spec.keepOriginalNextHop && c.asNumber !== effectiveAs)
          ? 'keep'
          : undefined;
    if (nextHop === 'self') config.nextHopSelf = true;
    if (nextHop === 'keep') config.nextHopKeep = true;
    // buildPeerFromData: an RR treats iBGP peers outside its cluster as clients.
    if (c.asNumber === effectiveAs && me.clusterId && c.clusterId !== me.clusterId)
      config.routeReflectorClient = true;
    // Only one side of a peering between Calico nodes dials; workloads dial us.
    if (c.localWorkload || (kind === 'global' && c.calicoNode && c.ip > own)) config.passive = true;
    // BIRD `local as N`: the session speaks as N (OPEN, AS path, iBGP or eBGP).
    if (localAs !== undefined && localAs !== me.asNumber) config.localAsNumber = localAs;
    const prefix = c.localWorkload ? 'Local_Workload' : kind === 'global' ? 'Global' : 'Node';
    const peer: DesiredPeer = {
      name: protocolName(prefix, c.ip, c.port),
      type: kind,
      family,
      config,
      filters: [...(spec.filters ?? [])],
      restartTime: c.localWorkload ? undefined : durationSeconds(spec.maxRestartTime),
      calicoNode: c.calicoNode,
    };
    if (localAs !== undefined) peer.localAsNumber = localAs;
    if (ttlHops > 0) peer.ttlSecurityHops = ttlHops;
    if (nextHop !== undefined) peer.nextHop = nextHop;
    if (c.byIp && spec.numAllowedLocalASNumbers) {
      peer.allowLocalAs = spec.numAllowedLocalASNumbers;
      config.allowLocalAs = spec.numAllowedLocalASNumbers;
    }
    if (c.reachableBy !== undefined) peer.reachableBy = c.reachableBy;
    peers.push(peer);
  }
  peers.sort((a, b) => a.name.localeCompare(b.name));
  return { peers, problems };

  function nodesWithIpPortAndAs(ip: string, asNumber: number, port: number | undefined) {
    return snapshot.nodes.filter((n) => {
      if (!Object.values(nodeIps(n)).includes(ip)) return false;
      if ((n.spec.bgp?.asNumber !== undefined ? nodeAs(n) : globalAs) !== asNumber) return false;
      if (port === undefined) return true;
      const p = portOfNode(n.metadata.name);
      return p === undefined || p === port;
    });
  }
}

/**
 * This node's workloads that peer with BGPPeer `peerName`: as Felix decides it, each workload's
 * active peer is the first BGPPeer (by name) that applies to this node and whose
 * localWorkloadSelector matches the workload's labels.
 */
export function activeLocalWorkloads(
  snapshot: AgentSnapshot,
  me: LocalNode,
  peerName: string,
  problems: string[],
): ResourceOf<'WorkloadEndpoint'>[] {
  const candidates = [...snapshot.bgpPeers]
    .filter((p) => p.spec.localWorkloadSelector !== undefined)
    .filter((p) =>
      p.spec.node !== undefined
        ? p.spec.node === me.name
        : p.spec.nodeSelector === undefined ||
          selectorMatches(
            p.spec.nodeSelector,
            me.labels,
            problems,
            `BGPPeer ${p.metadata.name}.spec.nodeSelector`,
          ),
    )
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  return snapshot.workloadEndpoints.filter((w) => {
    if (w.spec.node !== me.name) return false;
    const first = candidates.find((p) =>
      selectorMatches(
        p.spec.localWorkloadSelector!,
        w.metadata.labels ?? {},
        problems,
        `BGPPeer ${p.metadata.name}.spec.localWorkloadSelector`,
      ),
    );
    return first?.metadata.name === peerName;
  });
}

/** Graceful restart time we advertise: the mesh's, else BIRD's default. */
export function restartTimeOf(snapshot: AgentSnapshot, nodeName: string): number {
  const { global } = bgpConfigurations(snapshot, nodeName);
  return durationSeconds(global?.nodeMeshMaxRestartTime) ?? DEFAULT_RESTART_TIME;
}
