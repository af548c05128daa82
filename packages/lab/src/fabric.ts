/**
 * The local lab fabric: a small data centre built from network namespaces. An underlay namespace
 * holds a bridge (the switch) with the gateway address 198.51.100.1 (RFC 5737 TEST-NET-2, a range
 * the host does not use: these machines' own eth0 sits in TEST-NET-1, 192.0.2.0/24; IPv6
 * 2001:db8::1, RFC 3849); node namespaces hang off it by veth with 198.51.100.<10+i>/24 and a
 * default route through the gateway, as real hosts have (proxy ARP on cali interfaces answers
 * for 169.254.1.1 only when the node has a route to it). `underlay` picks another subnet (a
 * cluster chooses one the host does not use, see underlay.ts). Pod namespaces are created inside a
 * node's routing domain later by the CNI plugin. Nothing is added to our own namespace.
 */
import {
  createNamespace,
  deleteNamespace,
  listNamespaces,
  type NamespaceProcess,
  Netlink,
  type NetNamespace,
  type SpawnInNamespaceOptions,
  setIpForwarding,
  spawnInNamespace,
} from '@calico-ts/kernel';
import { LabError } from './errors.ts';
import { logger } from './logger.ts';
import { type UnderlayAddressing, underlayAddressing } from './underlay.ts';

export interface LabOptions {
  /** Run-unique prefix for every namespace and interface name (≤ 10 characters). */
  prefix: string;
  nodes: number;
  ipv6?: boolean;
  /** Let the underlay forward between networks (a router, e.g. for a BIRD top-of-rack). */
  router?: boolean;
  /** MTU of the node uplinks (default 1500). */
  mtu?: number;
  /** The underlay's IPv4 subnet (default LAB_SUBNET_V4): gateway .1, node i .<10+i>. */
  underlay?: string;
}

export interface LabNode {
  /** 1-based. */
  index: number;
  /** Namespace name `<prefix>-n<i>`. */
  name: string;
  namespace: NetNamespace;
  netlink: Netlink;
  /** Uplink interface inside the node. */
  uplink: 'eth0';
  ipv4: string;
  ipv6: string | undefined;
}

export interface LabPod {
  name: string;
  node: LabNode;
  namespace: NetNamespace;
}

/** The underlay's IPv4 subnet; node i (1-based) is .<10+i>, the gateway (the switch) is .1. */
export const LAB_SUBNET_V4 = '198.51.100.0/24';
export const LAB_GATEWAY_V4 = '198.51.100.1';
/** The underlay's IPv6 subnet (with `ipv6: true`); node i is 2001:db8::<hex(10+i)>. */
export const LAB_SUBNET_V6 = '2001:db8::/64';
export const LAB_GATEWAY_V6 = '2001:db8::1';
const MAX_NODES = 200;
/**
 * The link-local gateway a Calico pod routes through (datastore's WORKLOAD_GATEWAY_V4; the lab
 * cannot import the datastore, whose tests import the lab).
 */
const POD_GATEWAY_V4 = '169.254.1.1';

/** How `Lab.wirePod` wires a pod: the node-side veth name and the pod's addresses. */
export interface PodWiring {
  /** The veth on the node's side (`cali…`, at most 15 characters). */
  iface: string;
  ipv4: string;
  /** The pod's IPv6 address and the gateway address put on the node's side of the veth. */
  ipv6?: { address: string; gateway: string };
}

export const labNodeIpv4 = (i: number): string => `198.51.100.${10 + i}`;
export const labNodeIpv6 = (i: number): string => `2001:db8::${(10 + i).toString(16)}`;

export class Lab {
  readonly prefix: string;
  readonly ipv6: boolean;
  /** The underlay's IPv4 subnet, gateway and node addresses. */
  readonly addressing: UnderlayAddressing;
  readonly underlay: { name: string; namespace: NetNamespace; netlink: Netlink; bridge: string };
  readonly nodes: LabNode[] = [];
  /** Underlay hosts that are not nodes (addHost). */
  readonly hosts: LabNode[] = [];
  readonly pods: LabPod[] = [];
  readonly #processes: NamespaceProcess[] = [];
  /** Namespace names we created, in creation order. */
  readonly #created: string[] = [];
  #torndown = false;

  private constructor(
    prefix: string,
    ipv6: boolean,
    addressing: UnderlayAddressing,
    underlay: Lab['underlay'],
  ) {
    this.prefix = prefix;
    this.ipv6 = ipv6;
    this.addressing = addressing;
    this.underlay = underlay;
  }

  /** @internal used by createLab */
  static async start(options: LabOptions): Promise<Lab> {
    const { prefix } = options;
    if (!/^[a-z0-9][a-z0-9-]{0,9}$/.test(prefix)) {
      throw new LabError('Invalid', `creating lab "${prefix}": prefix must be 1–10 of [a-z0-9-]`);
    }
    if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > MAX_NODES) {
      throw new LabError('Invalid', `creating lab ${prefix} with ${options.nodes} nodes (1–${MAX_NODES})`);
    }
    const addressing = underlayAddressing(options.underlay ?? LAB_SUBNET_V4, options.nodes);
    const ulName = `${prefix}-ul`;
    const created: string[] = [];
    let ulNs: NetNamespace | undefined;
    let lab: Lab | undefined;
    try {
      ulNs = await createNamespace(ulName);
      created.push(ulName);
      const ulNl = Netlink.open(ulNs);
      lab = new Lab(prefix, options.ipv6 ?? false, addressing, {
        name: ulName,
        namespace: ulNs,
        netlink: ulNl,
        bridge: `${prefix}-br`,
      });
      lab.#created.push(...created);
      await ulNl.setLink('lo', { up: true });
      const br = await ulNl.createBridge({ name: lab.underlay.bridge });
      await ulNl.addAddress(br.index, `${addressing.gateway}/${addressing.prefixLength}`);
      if (lab.ipv6) await ulNl.addAddress(br.index, `${LAB_GATEWAY_V6}/64`, { nodad: true });
      await ulNl.setLink(br.index, { up: true });
      setIpForwarding({ ipv4: options.router ?? false, ipv6: lab.ipv6 && (options.router ?? false) }, ulNs);
      for (let i = 1; i <= options.nodes; i++) await lab.#addNode(i, options.mtu);
      logger.info({ prefix, nodes: options.nodes, ipv6: lab.ipv6 }, 'lab created');
      return lab;
    } catch (err) {
      if (lab)
        await lab
          .teardown()
          .catch((e: unknown) => logger.error({ err: e }, 'lab cleanup after failed create'));
      else {
        ulNs?.close();
        for (const n of created) await deleteNamespace(n, { ifExists: true }).catch(() => {});
      }
      throw err;
    }
  }

  async #addNode(i: number, mtu = 1500): Promise<void> {
    const node = await this.#attach(`n${i}`, i, this.addressing.nodeIpv4(i), `v${i}`, mtu);
    this.nodes.push(node);
  }

  /**
   * Another host on the underlay that is not a node: namespace `<prefix>-rr<k>` with address
   * `addressing.hostIpv4(k)` (k from 1 to 9, between the gateway and the first node), e.g. for a
   * dedicated route reflector. Removed on teardown like the nodes.
   */
  async addHost(k: number, mtu = 1500): Promise<LabNode> {
    const existing = this.hosts.find((h) => h.index === k);
    if (existing) return existing;
    const host = await this.#attach(`rr${k}`, k, this.addressing.hostIpv4(k), `h${k}`, mtu);
    this.hosts.push(host);
    return host;
  }

  async #attach(suffix: string, i: number, ipv4: string, port: string, mtu: number): Promise<LabNode> {
    const name = `${this.prefix}-${suffix}`;
    const ns = await createNamespace(name);
    this.#created.push(name);
    const nl = Netlink.open(ns);
    const node: LabNode = {
      index: i,
      name,
      namespace: ns,
      netlink: nl,
      uplink: 'eth0',
      ipv4,
      ipv6: this.ipv6 ? labNodeIpv6(i) : undefined,
    };
    // The switch-side end stays in the underlay; the node end is created straight in the node.
    const veth = await this.underlay.netlink.createVeth({
      name: `${this.prefix}-${port}`,
      mtu,
      peer: { name: 'eth0', namespace: ns, mtu },
    });
    await this.underlay.netlink.setLink(veth.index, { master: this.underlay.bridge, up: true });
    await nl.setLink('lo', { up: true });
    await nl.addAddress('eth0', `${node.ipv4}/${this.addressing.prefixLength}`);
    if (node.ipv6) await nl.addAddress('eth0', `${node.ipv6}/64`, { nodad: true });
    await nl.setLink('eth0', { up: true });
    await nl.addRoute({ dst: 'default', gateway: this.addressing.gateway, dev: 'eth0' });
    if (node.ipv6) await nl.addRoute({ dst: 'default', gateway: LAB_GATEWAY_V6, dev: 'eth0' });
    setIpForwarding({ ipv4: true, ipv6: this.ipv6 }, ns);
    return node;
  }

  /** A node by 1-based index or namespace name. */
  node(ref: number | string): LabNode {
    const n = this.nodes.find((x) => x.index === ref || x.name === ref);
    if (!n) throw new LabError('Invalid', `finding lab node ${ref} in ${this.prefix}: no such node`);
    return n;
  }

  /**
   * An empty pod namespace `<node>-<pod>` belonging to a node (loopback up); the CNI plugin
   * wires its eth0 later.
   */
  async addPod(node: number | string, pod: string): Promise<LabPod> {
    const n = this.node(node);
    const name = `${n.name}-${pod}`;
    const ns = await createNamespace(name);
    this.#created.push(name);
    const nl = Netlink.open(ns);
    try {
      await nl.setLink('lo', { up: true });
    } finally {
      nl.close();
    }
    const p: LabPod = { name, node: n, namespace: ns };
    this.pods.push(p);
    return p;
  }

  /**
   * Wires a pod by hand the way Calico's CNI plugin does, for tests that run Felix without the
   * plugin: a veth `iface` on the pod's node with `eth0` in the pod, the pod's address as a
   * /32 (and /128), and its default route via the link-local gateway 169.254.1.1 that proxy
   * ARP on the node's side answers. With `ipv6`, the node's side of the veth gets the gateway
   * address and the pod a static neighbour entry for it, so the pod needs no neighbour
   * discovery. Returns the pod's eth0 MAC (the WorkloadEndpoint's `mac`).
   */
  async wirePod(pod: LabPod, wiring: PodWiring): Promise<{ iface: string; mac: string }> {
    const node = pod.node;
    const { iface } = wiring;
    await node.netlink.createVeth({ name: iface, peer: { name: 'eth0', namespace: pod.namespace } });
    await node.netlink.setLink(iface, { up: true });
    let hostMac: string | undefined;
    if (wiring.ipv6) {
      await node.netlink.addAddress(iface, `${wiring.ipv6.gateway}/64`, { nodad: true });
      hostMac = (await node.netlink.getLink(iface)).mac;
    }
    const nl = Netlink.open(pod.namespace);
    try {
      await nl.setLink('eth0', { up: true });
      await nl.addAddress('eth0', `${wiring.ipv4}/32`);
      if (wiring.ipv6) await nl.addAddress('eth0', `${wiring.ipv6.address}/128`, { nodad: true });
      await nl.replaceRoute({ dst: `${POD_GATEWAY_V4}/32`, dev: 'eth0', scope: 'link' });
      await nl.replaceRoute({ dst: '0.0.0.0/0', gateway: POD_GATEWAY_V4, dev: 'eth0' });
      if (wiring.ipv6 && hostMac) {
        await nl.replaceNeighbour('eth0', wiring.ipv6.gateway, hostMac);
        await nl.replaceRoute({ dst: '::/0', gateway: wiring.ipv6.gateway, dev: 'eth0' });
      }
      const mac = (await nl.getLink('eth0')).mac;
      if (!mac) throw new LabError('NotReady', `wiring pod ${pod.name}: eth0 has no MAC address`);
      return { iface, mac };
    } finally {
      nl.close();
    }
  }

  /** Removes a pod namespace this lab made (its interfaces go with it). */
  async removePod(name: string): Promise<void> {
    const i = this.pods.findIndex((p) => p.name === name);
    if (i < 0) return;
    const [pod] = this.pods.splice(i, 1);
    pod?.namespace.close();
    await deleteNamespace(name, { ifExists: true });
    const c = this.#created.indexOf(name);
    if (c >= 0) this.#created.splice(c, 1);
  }

  /** Start a process inside a lab namespace (node, pod or underlay); stopped on teardown. */
  async spawn(
    where: LabNode | LabPod | NetNamespace,
    command: string,
    args: readonly string[] = [],
    options: SpawnInNamespaceOptions = {},
  ): Promise<NamespaceProcess> {
    const ns = 'namespace' in where ? where.namespace : where;
    const proc = await spawnInNamespace(ns, command, args, options);
    this.#processes.push(proc);
    return proc;
  }

  /** Namespace names this lab created and still holds. */
  get namespaces(): readonly string[] {
    return [...this.#created];
  }

  /**
   * Stop our processes (by pid), then delete every namespace we created, pods first. Runs every
   * step even when one fails and reports all failures together; safe to call twice.
   */
  async teardown(): Promise<void> {
    if (this.#torndown) return;
    this.#torndown = true;
    const errors: unknown[] = [];
    await Promise.all(this.#processes.map((p) => p.stop().catch((e: unknown) => errors.push(e))));
    for (const n of [...this.nodes, ...this.hosts]) n.netlink.close();
    this.underlay.netlink.close();
    for (const p of this.pods) p.namespace.close();
    for (const n of [...this.nodes, ...this.hosts]) n.namespace.close();
    this.underlay.namespace.close();
    // Deleting a namespace destroys its veths; the peers in other namespaces go with them.
    for (const name of [...this.#created].reverse()) {
      try {
        await deleteNamespace(name, { ifExists: true });
      } catch (e) {
        errors.push(e);
      }
    }
    this.#created.length = 0;
    if (errors.length > 0)
      throw new AggregateError(errors, `tearing down lab ${this.prefix}: ${errors.length} step(s) failed`);
    logger.info({ prefix: this.prefix }, 'lab removed');
  }
}

/** Build the lab fabric; on any failure everything already created is removed again. */
export function createLab(options: LabOptions): Promise<Lab> {
  return Lab.start(options);
}

/**
 * Remove what a lab with this prefix left behind, from another process (`calico cluster down`):
 * its namespaces, which takes their interfaces along. Processes are the starter's to stop.
 */
export async function removeLab(prefix: string): Promise<string[]> {
  // Only this lab's: `<prefix>-ul`, `<prefix>-n<i>` and its pods, `<prefix>-rr<k>`, never another lab whose prefix
  // merely starts with ours (`ab` vs `ab-2`).
  const own = new RegExp(`^${prefix.replaceAll('-', '\\-')}-(ul|rr\\d+|n\\d+(-.+)?)$`);
  const names = listNamespaces(`${prefix}-`).filter((n) => own.test(n));
  // Pods before nodes before the underlay.
  names.sort((a, b) => b.length - a.length);
  for (const n of names) await deleteNamespace(n, { ifExists: true });
  return names;
}
