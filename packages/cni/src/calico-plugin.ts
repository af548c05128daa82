import {
  type Datastore,
  isDatastoreError,
  type ResourceInput,
  type ResourceOf,
  WORKLOAD_GATEWAY_V4,
  WORKLOAD_GATEWAY_V6,
} from '@calico-ts/datastore';
import type { Logger } from 'pino';
import { CNI_ERROR, CniError } from './errors.ts';
import { ipamHandle, vethNameForWorkload, workloadEndpointName } from './names.ts';
import type { IpamPort, PodNetns, WorkloadDataplane, WorkloadNetwork } from './ports.ts';
import type { CniRequest } from './request.ts';
import { type CniResult, parseResult } from './result.ts';

export interface CalicoPluginOptions {
  nodeName: string;
  datastore: Datastore;
  ipam: IpamPort;
  dataplane: WorkloadDataplane;
  /** Pod MTU when the network config sets none (calico-node derives it from the underlay). */
  defaultMtu: number;
  interfacePrefix?: string;
  /** At debug level, one line per ADD and DEL with the milliseconds each step took. */
  logger?: Logger;
}

interface WorkloadIdentity {
  orchestrator: 'k8s' | 'cni';
  namespace: string;
  workload: string;
  pod: string | undefined;
  wepName: string;
  hostIfname: string;
}

/**
 * The `calico` CNI plugin's logic, run inside calico-node (or in the plugin process when
 * standalone). ADD = addresses from IPAM, veth into the pod, WorkloadEndpoint; every step is undone
 * if a later one fails. DEL, CHECK, GC and STATUS as CNI SPEC 1.1 describes.
 */
export class CalicoPlugin {
  readonly #o: CalicoPluginOptions;
  /**
   * The WorkloadEndpoints this instance wrote, by `<namespace>/<name>`: which container each was
   * written for and its resourceVersion then. DEL deletes by compare-and-swap on that version
   * without reading the endpoint first; a changed or unknown endpoint is read and checked.
   */
  readonly #written = new Map<string, { containerId: string; resourceVersion: string }>();

  constructor(options: CalicoPluginOptions) {
    this.#o = options;
  }

  async handle(req: CniRequest): Promise<CniResult | undefined> {
    switch (req.command) {
      case 'ADD':
        return this.add(req);
      case 'DEL':
        await this.del(req);
        return undefined;
      case 'CHECK':
        await this.check(req);
        return undefined;
      case 'GC':
        await this.gc(req);
        return undefined;
      case 'STATUS':
        await this.status();
        return undefined;
      case 'VERSION':
        throw new CniError(CNI_ERROR.internal, 'VERSION is answered by the plugin binary itself');
    }
  }

  /**
   * Creates the profile Calico's plugin gives a network's containers when they are not Kubernetes
   * pods, unless it exists (an operator's edits win): it labels every member with the network's
   * name, allows traffic from members and allows all egress.
   */
  async #ensureNetworkProfile(network: string): Promise<void> {
    try {
      await this.#o.datastore.create('Profile', {
        apiVersion: 'projectcalico.org/v3',
        kind: 'Profile',
        metadata: { name: network },
        spec: {
          ingress: [{ action: 'Allow', source: { selector: `has(${network})` } }],
          egress: [{ action: 'Allow' }],
          labelsToApply: { [network]: '' },
        },
      });
    } catch (err) {
      if (!isDatastoreError(err, 'AlreadyExists')) throw err;
    }
  }

  identity(req: CniRequest): WorkloadIdentity {
    const pod = req.args['K8S_POD_NAME'];
    const ns = req.args['K8S_POD_NAMESPACE'];
    const prefix = this.#o.interfacePrefix ?? 'cali';
    if (pod && ns) {
      return {
        orchestrator: 'k8s',
        namespace: ns,
        workload: pod,
        pod,
        wepName: workloadEndpointName({
          node: this.#o.nodeName,
          orchestrator: 'k8s',
          workload: pod,
          endpoint: req.ifname,
        }),
        hostIfname: vethNameForWorkload(ns, pod, prefix),
      };
    }
    return {
      orchestrator: 'cni',
      namespace: 'default',
      workload: req.containerId,
      pod: undefined,
      wepName: workloadEndpointName({
        node: this.#o.nodeName,
        orchestrator: 'cni',
        workload: req.containerId,
        endpoint: req.ifname,
      }),
      // Calico's plugin names a plain CNI container's host veth after the start of its ID.
      hostIfname: `${prefix}${req.containerId.slice(0, 15 - prefix.length)}`,
    };
  }

  async add(req: CniRequest): Promise<CniResult> {
    const steps = this.#steps('ADD', req);
    const id = this.identity(req);
    const where = podNetns(req);
    const found = await this.#o.dataplane.netnsState(where);
    steps?.mark('netns');
    const seenBy =
      where.rootOfPid === undefined ? '' : ` (looked up as the plugin process ${where.rootOfPid} sees it)`;
    if (found.state === 'missing') {
      throw new CniError(
        CNI_ERROR.netnsNotFound,
        'network namespace not found',
        `CNI_NETNS ${req.netns} does not exist${seenBy}`,
      );
    }
    if (found.state === 'other') {
      // CNI SPEC §"Error": 4 is for parameters the runtime got wrong.
      throw new CniError(
        CNI_ERROR.invalidEnvironment,
        'CNI_NETNS is not a network namespace',
        `CNI_NETNS ${req.netns} is ${found.what}, not a network namespace${seenBy}`,
      );
    }
    const handleId = ipamHandle(req.config.name, req.containerId);
    const attrs: Record<string, string> = {
      node: this.#o.nodeName,
      timestamp: new Date().toISOString(),
      ...(id.pod ? { pod: id.pod, namespace: id.namespace } : { containerID: req.containerId }),
    };
    const mtu = req.config.mtu ?? this.#o.defaultMtu;

    // 1. Addresses.
    const addresses = await this.#assignAddresses(req, handleId, attrs);
    steps?.mark('ipam');
    const undo: (() => Promise<void>)[] = [() => this.#o.ipam.releaseByHandle(handleId)];
    try {
      // 2. Interfaces and routes.
      const net: WorkloadNetwork = {
        ...where,
        containerIfname: req.ifname,
        hostIfname: id.hostIfname,
        mtu,
        addresses: addresses.map((a) => (a.includes(':') ? `${a}/128` : `${a}/32`)),
      };
      const ifaces = await this.#o.dataplane.setUp(net);
      steps?.mark('interfaces');
      undo.push(() =>
        this.#o.dataplane.tearDown({
          ...where,
          containerIfname: req.ifname,
          hostIfname: id.hostIfname,
        }),
      );

      // 3. The WorkloadEndpoint Felix programs policy and routes from, and for a container that is
      // not a Kubernetes pod, the profile named after its network (Kubernetes pods name their
      // namespace's kns.<namespace> profile, which the orchestrator's controllers keep).
      if (id.orchestrator !== 'k8s') await this.#ensureNetworkProfile(req.config.name);
      const endpoint: ResourceInput<'WorkloadEndpoint'> = {
        apiVersion: 'projectcalico.org/v3',
        kind: 'WorkloadEndpoint',
        metadata: {
          name: id.wepName,
          namespace: id.namespace,
          labels: {
            'projectcalico.org/namespace': id.namespace,
            'projectcalico.org/orchestrator': id.orchestrator,
          },
        },
        spec: {
          orchestrator: id.orchestrator,
          workload: id.orchestrator === 'cni' ? id.workload : '',
          node: this.#o.nodeName,
          containerID: req.containerId,
          ...(id.pod ? { pod: id.pod } : {}),
          endpoint: req.ifname,
          ipNetworks: net.addresses,
          ...(addresses.some((a) => !a.includes(':')) ? { ipv4Gateway: WORKLOAD_GATEWAY_V4 } : {}),
          profiles: [id.orchestrator === 'k8s' ? `kns.${id.namespace}` : req.config.name],
          interfaceName: id.hostIfname,
          mac: ifaces.containerMac,
        },
      };
      const written = await this.#writeEndpoint(endpoint);
      steps?.mark('endpoint');
      steps?.log();
      this.#written.set(`${id.namespace}/${id.wepName}`, {
        containerId: req.containerId,
        resourceVersion: written.metadata.resourceVersion!,
      });

      return {
        cniVersion: req.version,
        interfaces: [
          { name: id.hostIfname, mac: ifaces.hostMac },
          { name: req.ifname, mac: ifaces.containerMac, mtu, sandbox: req.netns },
        ],
        ips: net.addresses.map((address) => ({
          address,
          gateway: address.includes(':') ? WORKLOAD_GATEWAY_V6 : WORKLOAD_GATEWAY_V4,
          interface: 1,
        })),
        routes: [
          ...(addresses.some((a) => !a.includes(':')) ? [{ dst: '0.0.0.0/0', gw: WORKLOAD_GATEWAY_V4 }] : []),
          ...(addresses.some((a) => a.includes(':')) ? [{ dst: '::/0', gw: WORKLOAD_GATEWAY_V6 }] : []),
        ],
      };
    } catch (err) {
      // Undo in reverse order; report the original failure, with any cleanup failure appended.
      const cleanup: string[] = [];
      for (const step of undo.reverse()) {
        try {
          await step();
        } catch (e) {
          cleanup.push((e as Error).message);
        }
      }
      throw asCniError(err, cleanup);
    }
  }

  async #assignAddresses(
    req: CniRequest,
    handleId: string,
    attrs: Record<string, string>,
  ): Promise<string[]> {
    const requested = requestedAddresses(req);
    if (requested.length > 0) {
      const done: string[] = [];
      try {
        for (const ip of requested) {
          await this.#o.ipam.assignIP({ ip, handleId, attrs, node: this.#o.nodeName });
          done.push(ip);
        }
      } catch (err) {
        if (done.length > 0) await this.#o.ipam.releaseByHandle(handleId);
        throw asCniError(err, []);
      }
      return requested;
    }
    const ipamConf = req.config.ipam;
    const num4 = (ipamConf.assign_ipv4 ?? 'true') === 'true' ? 1 : 0;
    const num6 = (ipamConf.assign_ipv6 ?? 'false') === 'true' ? 1 : 0;
    const pools4 = listArg(req.args['cni.projectcalico.org/ipv4pools']) ?? ipamConf.ipv4_pools;
    const pools6 = listArg(req.args['cni.projectcalico.org/ipv6pools']) ?? ipamConf.ipv6_pools;
    try {
      const got = await this.#o.ipam.autoAssign({
        num4,
        num6,
        handleId,
        attrs,
        node: this.#o.nodeName,
        ...(pools4 ? { pools4 } : {}),
        ...(pools6 ? { pools6 } : {}),
      });
      if (got.ipv4.length < num4 || got.ipv6.length < num6) {
        await this.#o.ipam.releaseByHandle(handleId);
        throw new CniError(
          CNI_ERROR.ipamExhausted,
          'no free addresses',
          `asked IPAM for ${num4} IPv4 and ${num6} IPv6 address(es) for ${handleId}, got ${got.ipv4.length} and ${got.ipv6.length}`,
        );
      }
      return [...got.ipv4, ...got.ipv6];
    } catch (err) {
      throw asCniError(err, []);
    }
  }

  /** A step clock for one request when debug logging is on. */
  #steps(command: string, req: CniRequest): StepClock | undefined {
    const log = this.#o.logger;
    if (!log?.isLevelEnabled('debug')) return undefined;
    return new StepClock(log, { command, containerId: req.containerId });
  }

  /**
   * A new pod's endpoint does not exist yet: create it in one conditional write. One left by an
   * earlier sandbox of the same pod is replaced.
   */
  async #writeEndpoint(endpoint: ResourceInput<'WorkloadEndpoint'>): Promise<ResourceOf<'WorkloadEndpoint'>> {
    try {
      return await this.#o.datastore.create('WorkloadEndpoint', endpoint);
    } catch (err) {
      if (!isDatastoreError(err, 'AlreadyExists')) throw err;
      return this.#o.datastore.apply('WorkloadEndpoint', endpoint);
    }
  }

  /**
   * Deletes the container's WorkloadEndpoint unless it is gone or belongs to another container (a
   * newer sandbox of the same pod may own it already; Calico's CmdDelK8s checks the same). Throws
   * when it cannot tell, so that the caller keeps the addresses the endpoint names.
   */
  async #removeEndpoint(id: WorkloadIdentity, containerId: string): Promise<void> {
    const key = `${id.namespace}/${id.wepName}`;
    const known = this.#written.get(key);
    try {
      if (known?.containerId === containerId) {
        try {
          await this.#o.datastore.delete('WorkloadEndpoint', id.wepName, id.namespace, {
            resourceVersion: known.resourceVersion,
          });
          return;
        } catch (err) {
          // Changed since this instance wrote it: read it and check whose it is.
          if (!isDatastoreError(err, 'Conflict')) throw err;
        }
      }
      const wep = await this.#o.datastore.get('WorkloadEndpoint', id.wepName, id.namespace);
      const spec = (wep.spec ?? {}) as { containerID?: string };
      if (!spec.containerID || spec.containerID === containerId) {
        await this.#o.datastore.delete('WorkloadEndpoint', id.wepName, id.namespace, {
          resourceVersion: wep.metadata.resourceVersion!,
        });
      }
    } catch (err) {
      if (!isDatastoreError(err, 'NotFound')) throw err;
    }
    if (this.#written.get(key)?.containerId === containerId) this.#written.delete(key);
  }

  /**
   * CNI SPEC §DEL: removes the interfaces, the WorkloadEndpoint and the addresses; what is already
   * gone is not an error, so a repeated DEL, or one for a container never added, succeeds.
   * The interfaces go at the same time as the endpoint. The addresses go only once the endpoint
   * is gone: if the endpoint cannot be deleted the addresses stay with it (never an endpoint whose
   * addresses could be handed to another pod); if the release fails after the endpoint is gone,
   * the allocation is left without endpoint until the runtime repeats the DEL or IPAM's garbage
   * collection frees it. Either way the DEL fails, and a repeated DEL completes it.
   */
  async del(req: CniRequest): Promise<void> {
    const steps = this.#steps('DEL', req);
    const id = this.identity(req);
    const errors: string[] = [];
    const removeInterfaces = async (): Promise<void> => {
      try {
        // CNI SPEC §DEL: a namespace that is gone, never was one or cannot be looked up (its
        // runtime process gone) is not an error; what is ours on the host side still goes.
        const where = podNetns(req);
        const inPod =
          req.netns !== '' &&
          (await this.#o.dataplane.netnsState(where).catch(() => undefined))?.state === 'netns';
        await this.#o.dataplane.tearDown({
          ...(inPod ? where : {}),
          containerIfname: req.ifname,
          hostIfname: id.hostIfname,
        });
        steps?.mark('interfaces');
      } catch (err) {
        errors.push((err as Error).message);
      }
    };
    const removeEndpointThenAddresses = async (): Promise<void> => {
      try {
        await this.#removeEndpoint(id, req.containerId);
        steps?.mark('endpoint');
      } catch (err) {
        errors.push(`${(err as Error).message} (addresses kept with the endpoint)`);
        return;
      }
      try {
        await this.#o.ipam.releaseByHandle(ipamHandle(req.config.name, req.containerId));
        steps?.mark('addresses');
      } catch (err) {
        errors.push((err as Error).message);
      }
    };
    await Promise.all([removeInterfaces(), removeEndpointThenAddresses()]);
    steps?.log();
    if (errors.length > 0) {
      throw new CniError(CNI_ERROR.tryAgainLater, 'DEL did not complete', errors.join('; '));
    }
  }

  async check(req: CniRequest): Promise<void> {
    const prev = parseResult(req.config.prevResult);
    if (!prev) {
      throw new CniError(
        CNI_ERROR.invalidConfig,
        'CHECK needs prevResult',
        'network config field prevResult is missing',
      );
    }
    const id = this.identity(req);
    const addresses = (prev.ips ?? []).map((ip) => ip.address);
    const problems = await this.#o.dataplane.check({
      ...podNetns(req),
      containerIfname: req.ifname,
      hostIfname: id.hostIfname,
      mtu: req.config.mtu ?? this.#o.defaultMtu,
      addresses,
    });
    try {
      const wep = await this.#o.datastore.get('WorkloadEndpoint', id.wepName, id.namespace);
      const nets = ((wep.spec ?? {}) as { ipNetworks?: string[] }).ipNetworks ?? [];
      for (const a of addresses)
        if (!nets.includes(a)) problems.push(`WorkloadEndpoint ${id.wepName} lacks ${a}`);
    } catch (err) {
      problems.push(
        isDatastoreError(err, 'NotFound')
          ? `WorkloadEndpoint ${id.namespace}/${id.wepName} is missing`
          : (err as Error).message,
      );
    }
    if (problems.length > 0) {
      throw new CniError(CNI_ERROR.dataplaneFailure, 'CHECK found differences', problems.join('; '));
    }
  }

  /** CNI SPEC 1.1 §GC: release what belongs to attachments the runtime no longer knows. */
  async gc(req: CniRequest): Promise<void> {
    const valid = req.config['cni.dev/valid-attachments'] ?? req.config['cni.dev/attachments'] ?? [];
    const keep = new Set(valid.map((a) => ipamHandle(req.config.name, a.containerID)));
    const prefix = `${req.config.name}.`;
    for (const handle of await this.#o.ipam.listHandles(prefix)) {
      if (!keep.has(handle)) await this.#o.ipam.releaseByHandle(handle);
    }
    const validIds = new Set(valid.map((a) => a.containerID));
    const { items } = await this.#o.datastore.list('WorkloadEndpoint');
    for (const wep of items) {
      const spec = (wep.spec ?? {}) as { node?: string; containerID?: string; profiles?: string[] };
      if (spec.node !== this.#o.nodeName || !spec.containerID || validIds.has(spec.containerID)) continue;
      if (!(spec.profiles ?? []).some((p) => p === req.config.name || p.startsWith('kns.'))) continue;
      try {
        await this.#o.datastore.delete('WorkloadEndpoint', wep.metadata.name, wep.metadata.namespace, {
          resourceVersion: wep.metadata.resourceVersion!,
        });
      } catch (err) {
        if (!isDatastoreError(err, 'NotFound') && !isDatastoreError(err, 'Conflict')) throw err;
      }
    }
  }

  async status(): Promise<void> {
    try {
      await this.#o.datastore.list('ClusterInformation');
    } catch (err) {
      throw new CniError(CNI_ERROR.notAvailable, 'datastore unreachable', (err as Error).message);
    }
  }
}

/**
 * When each step of one request finished, in milliseconds since the request reached the plugin
 * (DEL's steps overlap: each is the time it was done).
 */
class StepClock {
  readonly #log: Logger;
  readonly #fields: Record<string, string>;
  readonly #start = performance.now();
  readonly #done: Record<string, number> = {};

  constructor(log: Logger, fields: Record<string, string>) {
    this.#log = log;
    this.#fields = fields;
  }

  mark(step: string): void {
    this.#done[step] = Math.round((performance.now() - this.#start) * 10) / 10;
  }

  log(): void {
    this.#log.debug({ ...this.#fields, doneAtMs: this.#done }, 'cni steps');
  }
}

/** The pod's namespace as the request names it, in the mount namespace of the plugin that sent it. */
function podNetns(req: CniRequest): PodNetns {
  return { netns: req.netns, ...(req.peerPid === undefined ? {} : { rootOfPid: req.peerPid }) };
}

/** Addresses the runtime asked for: `cni.projectcalico.org/ipAddrs` in CNI_ARGS, or runtimeConfig.ips. */
function requestedAddresses(req: CniRequest): string[] {
  const fromArgs = listArg(req.args['cni.projectcalico.org/ipAddrs'] ?? req.args['IP']);
  if (fromArgs) return fromArgs.map(stripPrefix);
  const rc = req.config.runtimeConfig?.['ips'];
  if (Array.isArray(rc)) return rc.filter((x): x is string => typeof x === 'string').map(stripPrefix);
  return [];
}

function stripPrefix(ip: string): string {
  return ip.split('/')[0]!;
}

/** Accepts a JSON list (`["a","b"]`, as in Calico's annotations) or a comma-separated list. */
function listArg(v: string | undefined): string[] | undefined {
  if (v === undefined || v === '') return undefined;
  const t = v.trim();
  if (t.startsWith('[')) {
    try {
      const parsed = JSON.parse(t) as unknown;
      if (Array.isArray(parsed) && parsed.every((x) => typeof x === 'string')) return parsed;
    } catch {
      // fall through to the error below
    }
    throw new CniError(
      CNI_ERROR.invalidEnvironment,
      'invalid CNI_ARGS list',
      `expected a JSON list of strings, got ${v}`,
    );
  }
  return t
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Maps failures of the parts below to CNI codes, keeping the part's own message. */
export function asCniError(err: unknown, cleanup: string[]): CniError {
  const suffix = cleanup.length > 0 ? ` (cleanup also failed: ${cleanup.join('; ')})` : '';
  if (err instanceof CniError) {
    return cleanup.length > 0 ? new CniError(err.code, err.message, `${err.details ?? ''}${suffix}`) : err;
  }
  const e = err as { code?: unknown; message?: string; name?: string };
  const msg = e.message ?? String(err);
  if (isDatastoreError(err, 'Unavailable')) {
    return new CniError(CNI_ERROR.datastoreUnavailable, 'datastore unavailable', `${msg}${suffix}`);
  }
  if (typeof e.code === 'string' && /exhaust|NoFree|PoolFull/i.test(e.code)) {
    return new CniError(CNI_ERROR.ipamExhausted, 'no free addresses', `${msg}${suffix}`);
  }
  if (e.name === 'IpamError') return new CniError(CNI_ERROR.ipamExhausted, 'IPAM failed', `${msg}${suffix}`);
  if (e.name === 'KernelError')
    return new CniError(CNI_ERROR.dataplaneFailure, 'dataplane setup failed', `${msg}${suffix}`);
  return new CniError(CNI_ERROR.internal, 'internal error', `${msg}${suffix}`);
}
