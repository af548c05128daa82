/**
 * A BIRD 2 top-of-rack router for a lab cluster: it runs in the underlay namespace (the switch)
 * at the gateway address, with its own AS, and has one eBGP session with every node. The nodes
 * peer with it through a BGPPeer resource (`peerIP` the gateway, `asNumber` the ToR's AS), as a
 * Calico cluster peers with its fabric. What it learns goes into the underlay's kernel, so the
 * switch routes pod addresses too.
 */

export interface TorNeighbor {
  /** The node's name (the BGP protocol is named after it). */
  name: string;
  address: string;
  asNumber: number;
}

export interface TorConfigOptions {
  routerId: string;
  asNumber: number;
  /** IPv6 neighbours get an ipv6 channel, IPv4 ones an ipv4 channel. */
  neighbors: readonly TorNeighbor[];
}

/** BIRD's protocol name for a node: letters, digits and underscores. */
export const torProtocolName = (node: string): string => `node_${node.replaceAll(/[^A-Za-z0-9_]/g, '_')}`;

/** The BIRD 2 configuration of the ToR. */
export function torBirdConfig(o: TorConfigOptions): string {
  if (!Number.isInteger(o.asNumber) || o.asNumber < 1 || o.asNumber > 4294967295)
    throw new Error(`ToR AS number ${o.asNumber}: expected 1 to 4294967295`);
  const lines = [
    `router id ${o.routerId};`,
    'protocol device {}',
    'protocol kernel kernel4 { ipv4 { export all; }; }',
    'protocol kernel kernel6 { ipv6 { export all; }; }',
  ];
  for (const n of o.neighbors) {
    const family = n.address.includes(':') ? 'ipv6' : 'ipv4';
    lines.push(
      `protocol bgp ${torProtocolName(n.name)} {`,
      `  local as ${o.asNumber};`,
      `  neighbor ${n.address} as ${n.asNumber};`,
      `  ${family} { import all; export none; };`,
      '}',
    );
  }
  return `${lines.join('\n')}\n`;
}

export interface TorProtocolState {
  name: string;
  /** BIRD's protocol state: up, start, … */
  state: string;
  /** BIRD's info column: Established, Active, Connect, … */
  info: string;
}

/** The BGP protocols of `birdc show protocols` output. */
export function parseBirdProtocols(output: string): TorProtocolState[] {
  const out: TorProtocolState[] = [];
  for (const line of output.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || f[1] !== 'BGP') continue;
    // name, proto, table, state, since (one field in BIRD 2's default time format), info…
    out.push({ name: f[0] ?? '', state: f[3] ?? '', info: f.slice(5).join(' ') });
  }
  return out;
}
