import {
  HOST_VETH_MAC,
  RouteProtocol,
  WORKLOAD_GATEWAY_V4,
  WORKLOAD_GATEWAY_V6,
  workloadInterfaceSysctls,
} from '@calico-ts/datastore';
import {
  isKernelError,
  KernelError,
  lookUpNetNamespace,
  type NamespaceLookup,
  Netlink,
  NetlinkError,
  type NetNamespace,
  setInterfaceSysctls,
  writeSysctl,
} from '@calico-ts/kernel';
import type {
  NetnsState,
  PodNetns,
  WorkloadDataplane,
  WorkloadInterfaces,
  WorkloadNetwork,
} from './ports.ts';

/** The pod's namespace path looked up as the runtime sees it (through its root when we know it). */
function lookUpPod(where: PodNetns): NamespaceLookup {
  return lookUpNetNamespace(where.netns, where.rootOfPid === undefined ? {} : { rootOfPid: where.rootOfPid });
}

/** Opens the pod's namespace as the runtime sees it; throws unless it is a network namespace. */
function openPodNamespace(where: PodNetns): NetNamespace {
  const found = lookUpPod(where);
  if (found.found === 'netns') return found.namespace;
  throw new KernelError('Namespace', {
    errno: found.found === 'nothing' ? 'ENOENT' : 'EINVAL',
    operation:
      found.found === 'nothing'
        ? `opening namespace ${where.netns}: it does not exist`
        : `opening namespace ${where.netns}: it is ${found.what}, not a network namespace`,
  });
}

/**
 * The kernel work for one workload, done over netlink with no process spawned: the veth pair is
 * created with its container end directly in the pod's namespace (never moved: moves serialise
 * on rtnl and cost milliseconds), then addressed and routed from a netlink socket opened inside
 * that namespace.
 */
export class LinuxWorkloadDataplane implements WorkloadDataplane {
  readonly #host: Netlink;
  readonly #hostNs: NetNamespace | undefined;

  /**
   * `hostNs` is the node's namespace; calico-node runs inside it, so by default it is the
   * process's own. Tests and the local lab pass a node namespace explicitly.
   */
  constructor(options: { hostNs?: NetNamespace } = {}) {
    this.#hostNs = options.hostNs;
    this.#host = Netlink.open(options.hostNs);
  }

  close(): void {
    this.#host.close();
  }

  async netnsState(where: PodNetns): Promise<NetnsState> {
    if (!where.netns.startsWith('/')) return { state: 'other', what: 'not an absolute path' };
    const found = lookUpPod(where);
    if (found.found === 'netns') {
      found.namespace.close();
      return { state: 'netns' };
    }
    return found.found === 'nothing' ? { state: 'missing' } : { state: 'other', what: found.what };
  }

  async setUp(net: WorkloadNetwork): Promise<WorkloadInterfaces> {
    const pod = openPodNamespace(net);
    const podNl = Netlink.open(pod);
    const v4 = net.addresses.filter((a) => !a.includes(':'));
    const v6 = net.addresses.filter((a) => a.includes(':'));
    try {
      if (await podNl.findLink(net.containerIfname)) {
        throw new Error(`interface ${net.containerIfname} already exists in ${net.netns}`);
      }
      // A host veth left from an earlier sandbox of the same pod would block the name.
      await this.#host.deleteLink(net.hostIfname, { ifExists: true });
      await this.#host.createVeth({
        name: net.hostIfname,
        mtu: net.mtu,
        mac: HOST_VETH_MAC,
        peer: { name: net.containerIfname, mtu: net.mtu, namespace: pod },
      });
      try {
        // Host side first, so that proxy ARP answers as soon as the pod sends. Felix writes the
        // same set when it sees the interface.
        setInterfaceSysctls(net.hostIfname, workloadInterfaceSysctls({ ipv6: v6.length > 0 }), this.#hostNs);
        await this.#host.setLink(net.hostIfname, { up: true });

        if (v6.length > 0) {
          // No DAD: the address is ours by IPAM, and waiting for DAD would delay the pod by ~1 s.
          writeSysctl(`net/ipv6/conf/${net.containerIfname}/accept_dad`, 0, pod);
        }
        await podNl.setLink(net.containerIfname, { up: true });
        for (const cidr of net.addresses) await podNl.addAddress(net.containerIfname, cidr);
        if (v4.length > 0) {
          await podNl.addRoute({ dst: `${WORKLOAD_GATEWAY_V4}/32`, dev: net.containerIfname, scope: 'link' });
          await podNl.addRoute({ dst: '0.0.0.0/0', gateway: WORKLOAD_GATEWAY_V4, dev: net.containerIfname });
        }
        if (v6.length > 0) {
          await podNl.addRoute({ dst: '::/0', gateway: WORKLOAD_GATEWAY_V6, dev: net.containerIfname });
        }
        for (const cidr of net.addresses) {
          await this.#host.replaceRoute({
            dst: cidr,
            dev: net.hostIfname,
            scope: 'link',
            protocol: RouteProtocol.device,
          });
        }
        const container = await podNl.getLink(net.containerIfname);
        return { containerMac: container.mac ?? '', hostMac: HOST_VETH_MAC };
      } catch (err) {
        // Deleting one end removes the pair and the routes through it.
        await this.#host.deleteLink(net.hostIfname, { ifExists: true });
        throw err;
      }
    } finally {
      podNl.close();
      pod.close();
    }
  }

  async tearDown(net: {
    netns?: string;
    rootOfPid?: number;
    containerIfname: string;
    hostIfname: string;
  }): Promise<void> {
    // The host end is ours by name; deleting it removes the pair (and the /32 route) in one
    // request, without opening the pod's namespace.
    try {
      await this.#host.deleteLink(net.hostIfname);
      return;
    } catch (err) {
      if (!(err instanceof NetlinkError && err.errno === 'ENODEV')) throw err;
    }
    const found = net.netns?.startsWith('/') ? lookUpPod({ ...net, netns: net.netns }) : undefined;
    if (found?.found === 'netns') {
      const pod = found.namespace;
      const podNl = Netlink.open(pod);
      try {
        const link = await podNl.findLink(net.containerIfname);
        // Only a veth is ours to delete: the runtime may have put something else there.
        if (link && link.kind === 'veth') await podNl.deleteLink(net.containerIfname, { ifExists: true });
      } finally {
        podNl.close();
        pod.close();
      }
    }
  }

  async check(net: WorkloadNetwork): Promise<string[]> {
    const problems: string[] = [];
    const state = await this.netnsState(net);
    if (state.state === 'missing') return [`network namespace ${net.netns} does not exist`];
    if (state.state === 'other') return [`${net.netns} is ${state.what}, not a network namespace`];
    const pod = openPodNamespace(net);
    const podNl = Netlink.open(pod);
    try {
      const link = await podNl.findLink(net.containerIfname);
      if (!link) {
        problems.push(`${net.containerIfname} is missing in ${net.netns}`);
      } else {
        if (!link.up) problems.push(`${net.containerIfname} in ${net.netns} is down`);
        const have = new Set((await podNl.listAddresses({ dev: link.index })).map((a) => a.cidr));
        for (const cidr of net.addresses)
          if (!have.has(cidr)) problems.push(`${net.containerIfname} lacks ${cidr}`);
        const routes = await podNl.listRoutes({ dev: link.index });
        if (
          net.addresses.some((a) => !a.includes(':')) &&
          !routes.some((r) => r.dst === '0.0.0.0/0' && r.gateway === WORKLOAD_GATEWAY_V4)
        ) {
          problems.push(`no default route via ${WORKLOAD_GATEWAY_V4} in ${net.netns}`);
        }
      }
    } catch (err) {
      problems.push(isKernelError(err) ? err.message : String(err));
    } finally {
      podNl.close();
      pod.close();
    }
    const host = await this.#host.findLink(net.hostIfname);
    if (!host) {
      problems.push(`host interface ${net.hostIfname} is missing`);
    } else {
      const routes = await this.#host.listRoutes({ dev: host.index });
      for (const cidr of net.addresses) {
        if (!routes.some((r) => r.dst === cidr)) problems.push(`no host route ${cidr} dev ${net.hostIfname}`);
      }
    }
    return problems;
  }
}
