/**
 * Felix's fixed chain structure (rules/static.go, calico-internals §3.2), rendered from the
 * effective configuration. Shapes follow felix/fv/cali-iptables-dump.txt: top-level `cali-*`
 * chains hooked from the kernel's chains, endpoint dispatch that fails closed, and the failsafe
 * chains. The host endpoint dispatch chains these jump to come from the host endpoint manager.
 */
import { IPIP_DEVICE, VXLAN_DEVICE } from '@calico-ts/datastore';
import type { FelixConfig, PortSpec } from '../config.ts';
import type { Chain, Hook, Rule, TableName } from './chains.ts';
import { hex, type MarkBits } from './mark-bits.ts';

export interface TableContent {
  chains: Chain[];
  hooks: Hook[];
}

export const IPSET_PREFIX = 'cali40';

/** Kernel name of an IP set id (calico-internals §3.5: `cali40<id>`, at most 31 characters). */
export function ipsetName(id: string): string {
  return `${IPSET_PREFIX}${id}`.slice(0, 31);
}

const markMatch = (bit: number) => `-m mark --mark ${hex(bit)}/${hex(bit)}`;
const markClear = (bits: number) => `-j MARK --set-xmark 0x0/${hex(bits)}`;
const markSet = (bit: number) => `-j MARK --set-xmark ${hex(bit)}/${hex(bit)}`;

const isV6Net = (net: string) => net.includes(':');

/**
 * `cali-failsafe-in` / `cali-failsafe-out` (static.go `failsafeInChain`/`failsafeOutChain`):
 * accept the configured ports so that no host endpoint policy cuts the node off its datastore,
 * BGP peers or SSH. A port restricted to a net of the other IP family is left out. In the raw
 * table, before conntrack, the replies of the other direction's failsafe connections are
 * accepted too (by source port), so that they are never left to doNotTrack policy.
 */
export function failsafeChains(
  config: FelixConfig,
  table: 'filter' | 'mangle' | 'raw',
  family: 4 | 6 = 4,
): Chain[] {
  const rules = (ports: readonly PortSpec[], portFlag: '--dport' | '--sport', netFlag: '-s' | '-d'): Rule[] =>
    ports
      .filter((p) => p.net === undefined || isV6Net(p.net) === (family === 6))
      .map((p) => ({
        match: `-p ${p.protocol} -m ${p.protocol} ${portFlag} ${p.port}${p.net ? ` ${netFlag} ${p.net}` : ''}`,
        action: '-j ACCEPT',
      }));
  const inbound = rules(config.failsafeInboundHostPorts, '--dport', '-s');
  const outbound = rules(config.failsafeOutboundHostPorts, '--dport', '-d');
  if (table === 'raw') {
    inbound.push(...rules(config.failsafeOutboundHostPorts, '--sport', '-s'));
    outbound.push(...rules(config.failsafeInboundHostPorts, '--sport', '-d'));
  }
  return [
    { name: 'cali-failsafe-in', rules: inbound },
    { name: 'cali-failsafe-out', rules: outbound },
  ];
}

function wlPrefixes(config: FelixConfig): string[] {
  return config.interfacePrefix
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}

/**
 * The ICMPv6 a workload needs from its router (static.go `ICMPv6Filter`): multicast listener
 * query/report/done, router solicitation, neighbour solicitation/advertisement; accepted before
 * the workload's egress policy so that policy cannot cut a pod off its own gateway.
 */
const ICMPV6_ROUTER_TYPES = [130, 131, 132, 133, 135, 136];

/** filter table; `family` 6 for ip6tables (no IPv4 tunnels, ICMPv6 for workloads, v6 failsafes). */
export function staticFilter(config: FelixConfig, marks: MarkBits, family: 4 | 6 = 4): TableContent {
  const prefixes = wlPrefixes(config);
  const input: Rule[] = [];
  if (config.ipipEnabled && family === 4) {
    input.push(
      {
        match: '-p ipencap -m set --match-set cali40all-hosts-net src -m addrtype --dst-type LOCAL',
        action: '-j ACCEPT',
        comment: 'Allow IPv4 IPIP packets from other Calico hosts',
      },
      { match: '-p ipencap', action: '-j DROP', comment: 'Drop IPv4 IPIP packets from non-Calico hosts' },
    );
  }
  if (config.vxlanEnabled && family === 4) {
    const vx = `-p udp -m multiport --dports ${config.vxlanPort}`;
    input.push(
      {
        match: `${vx} -m set --match-set cali40all-vxlan-net src -m addrtype --dst-type LOCAL`,
        action: '-j ACCEPT',
        comment: 'Allow IPv4 VXLAN packets from allowed hosts',
      },
      {
        match: `${vx} -m addrtype --dst-type LOCAL`,
        action: '-j DROP',
        comment: 'Drop IPv4 VXLAN packets from non-allowed hosts',
      },
    );
  }
  for (const p of prefixes) input.push({ match: `-i ${p}+`, action: '-g cali-wl-to-host' });
  input.push(
    { match: markMatch(marks.accept), action: '-j ACCEPT' },
    { action: markClear(marks.allCalico) },
    { action: '-j cali-from-host-endpoint' },
    { match: markMatch(marks.accept), action: '-j ACCEPT', comment: 'Host endpoint policy accepted packet.' },
  );

  const endpointToHost = { Drop: '-j DROP', Return: '-j RETURN', Accept: '-j ACCEPT' }[
    config.defaultEndpointToHostAction
  ];
  const forward: Rule[] = [
    // Keep the accept bit: the appended FORWARD rule below acts on it.
    { action: markClear(marks.allCalico - marks.accept) },
    { match: `-m mark --mark 0x0/${hex(marks.accept)}`, action: '-j cali-from-hep-forward' },
    ...prefixes.map((p) => ({ match: `-i ${p}+`, action: '-j cali-from-wl-dispatch' })),
    ...prefixes.map((p) => ({ match: `-o ${p}+`, action: '-j cali-to-wl-dispatch' })),
    { action: '-j cali-to-hep-forward' },
    { action: '-j cali-cidr-block' },
  ];
  const output: Rule[] = [
    { match: markMatch(marks.accept), action: '-j ACCEPT' },
    ...prefixes.map((p) => ({ match: `-o ${p}+`, action: '-j RETURN' })),
    { action: markClear(marks.allCalico) },
    { match: '-m conntrack ! --ctstate DNAT', action: '-j cali-to-host-endpoint' },
    { match: markMatch(marks.accept), action: '-j ACCEPT', comment: 'Host endpoint policy accepted packet.' },
  ];
  const allow = config.iptablesFilterAllowAction === 'Return' ? '-j RETURN' : '-j ACCEPT';
  return {
    chains: [
      { name: 'cali-INPUT', rules: input },
      { name: 'cali-FORWARD', rules: forward },
      { name: 'cali-OUTPUT', rules: output },
      {
        name: 'cali-wl-to-host',
        rules: [
          ...(family === 6
            ? ICMPV6_ROUTER_TYPES.map((t) => ({
                match: `-p icmpv6 -m icmp6 --icmpv6-type ${t}`,
                action: allow,
              }))
            : []),
          { action: '-j cali-from-wl-dispatch' },
          { action: endpointToHost, comment: 'Configured DefaultEndpointToHostAction' },
        ],
      },
      ...failsafeChains(config, 'filter', family),
      { name: 'cali-cidr-block', rules: [] },
    ],
    hooks: [
      { chain: 'INPUT', position: position(config), rules: [{ action: '-j cali-INPUT' }] },
      { chain: 'FORWARD', position: position(config), rules: [{ action: '-j cali-FORWARD' }] },
      { chain: 'OUTPUT', position: position(config), rules: [{ action: '-j cali-OUTPUT' }] },
      {
        // Appended so that other FORWARD rules (kube-proxy, docker) still see the packet first;
        // a packet our policy accepted is accepted here, anything else is marked and passes on.
        chain: 'FORWARD',
        position: 'append',
        rules: [
          { match: markMatch(marks.accept), action: allow, comment: 'Policy explicitly accepted packet.' },
          { action: markSet(marks.accept) },
        ],
      },
    ],
  };
}

function position(config: FelixConfig): 'insert' | 'append' {
  return config.chainInsertMode === 'Append' ? 'append' : 'insert';
}

export function staticRaw(config: FelixConfig, marks: MarkBits, family: 4 | 6 = 4): TableContent {
  const prefixes = wlPrefixes(config);
  const vxlanNotrack: Rule[] =
    config.vxlanEnabled && family === 4
      ? [{ match: `-p udp -m udp --dport ${config.vxlanPort}`, action: '-j NOTRACK' }]
      : [];
  return {
    chains: [
      {
        name: 'cali-PREROUTING',
        rules: [
          { action: markClear(marks.allCalico) },
          ...vxlanNotrack,
          ...prefixes.map((p) => ({ match: `-i ${p}+`, action: markSet(marks.scratch0) })),
          { match: markMatch(marks.scratch0), action: '-j cali-rpf-skip' },
          // Anti-spoofing: a workload may only send from addresses routed back to its interface.
          { match: `${markMatch(marks.scratch0)} -m rpfilter --validmark --invert`, action: '-j DROP' },
          { match: `-m mark --mark 0x0/${hex(marks.scratch0)}`, action: '-j cali-from-host-endpoint' },
          { match: markMatch(marks.accept), action: '-j ACCEPT' },
        ],
      },
      {
        name: 'cali-OUTPUT',
        rules: [
          { action: markClear(marks.allCalico) },
          { action: '-j cali-to-host-endpoint' },
          ...vxlanNotrack,
          { match: markMatch(marks.accept), action: '-j ACCEPT' },
        ],
      },
      { name: 'cali-rpf-skip', rules: [] },
      ...failsafeChains(config, 'raw', family),
    ],
    hooks: [
      { chain: 'PREROUTING', position: position(config), rules: [{ action: '-j cali-PREROUTING' }] },
      { chain: 'OUTPUT', position: position(config), rules: [{ action: '-j cali-OUTPUT' }] },
    ],
  };
}

export function staticMangle(config: FelixConfig, marks: MarkBits, family: 4 | 6 = 4): TableContent {
  return {
    chains: [
      {
        name: 'cali-PREROUTING',
        rules: [
          { match: '-m conntrack --ctstate RELATED,ESTABLISHED', action: '-j ACCEPT' },
          { match: markMatch(marks.accept), action: '-j ACCEPT' },
          { action: '-j cali-from-host-endpoint' },
          {
            match: markMatch(marks.accept),
            action: '-j ACCEPT',
            comment: 'Host endpoint policy accepted packet.',
          },
        ],
      },
      {
        name: 'cali-POSTROUTING',
        rules: [
          { match: markMatch(marks.accept), action: '-j RETURN' },
          { action: markClear(marks.allCalico) },
          { match: '-m conntrack --ctstate DNAT', action: '-j cali-to-host-endpoint' },
          {
            match: markMatch(marks.accept),
            action: '-j RETURN',
            comment: 'Host endpoint policy accepted packet.',
          },
        ],
      },
      ...failsafeChains(config, 'mangle', family),
    ],
    hooks: [
      { chain: 'PREROUTING', position: position(config), rules: [{ action: '-j cali-PREROUTING' }] },
      { chain: 'POSTROUTING', position: position(config), rules: [{ action: '-j cali-POSTROUTING' }] },
    ],
  };
}

/**
 * nat table. `natOutgoing` is the cali-nat-outgoing chain from the masq manager; tunnel devices
 * get a MASQUERADE for host-originated traffic leaving through them with a non-tunnel source,
 * so replies come back to the tunnel address.
 */
export function staticNat(config: FelixConfig, natOutgoing: Chain): TableContent {
  const tunnelMasq = (dev: string): Rule => ({
    match: `-o ${dev} -m addrtype ! --src-type LOCAL --limit-iface-out -m addrtype --src-type LOCAL`,
    action: '-j MASQUERADE --random-fully',
  });
  const postrouting: Rule[] = [{ action: '-j cali-fip-snat' }, { action: '-j cali-nat-outgoing' }];
  if (config.ipipEnabled) postrouting.push(tunnelMasq(IPIP_DEVICE));
  if (config.vxlanEnabled) postrouting.push(tunnelMasq(VXLAN_DEVICE));
  return {
    chains: [
      { name: 'cali-PREROUTING', rules: [{ action: '-j cali-fip-dnat' }] },
      { name: 'cali-OUTPUT', rules: [{ action: '-j cali-fip-dnat' }] },
      { name: 'cali-POSTROUTING', rules: postrouting },
      { name: 'cali-fip-dnat', rules: [] },
      { name: 'cali-fip-snat', rules: [] },
      natOutgoing,
    ],
    hooks: [
      { chain: 'PREROUTING', position: position(config), rules: [{ action: '-j cali-PREROUTING' }] },
      { chain: 'OUTPUT', position: position(config), rules: [{ action: '-j cali-OUTPUT' }] },
      // Appended so kube-proxy's MASQUERADE runs first (Felix int_dataplane.go).
      { chain: 'POSTROUTING', position: 'append', rules: [{ action: '-j cali-POSTROUTING' }] },
    ],
  };
}

export type StaticTables = Record<TableName, TableContent>;
