import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Datastore, isDatastoreError, parseSelector } from '@calico-ts/datastore';
import type { Logger } from 'pino';
import { autodetectAddress, type HostAddress } from './autodetect.ts';
import type { NodeConfig, PoolSettings } from './config.ts';

/** Addresses for tunnel devices come from IPAM, like pod addresses, from pools allowing `Tunnel`. */
export interface TunnelAddressAllocator {
  /** Assigns one address of `family` under `handleId` from pools usable for tunnels on `node`. */
  assignTunnelAddress(req: {
    node: string;
    handleId: string;
    family: 4 | 6;
    pools: string[];
    attrs: Record<string, string>;
  }): Promise<string | undefined>;
  /** Addresses currently held by the handle. */
  addressesOf(handleId: string): Promise<string[]>;
  release(handleId: string): Promise<void>;
}

export interface StartupResult {
  nodeName: string;
  ipv4: HostAddress | undefined;
  ipv6: HostAddress | undefined;
  vxlanTunnelAddress: string | undefined;
  ipipTunnelAddress: string | undefined;
}

type Spec = Record<string, unknown>;
interface Res {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; resourceVersion?: string; labels?: Record<string, string> };
  spec?: Spec;
}

/** calico/node's start-up (node/pkg/lifecycle/startup), against our Datastore. */
export async function startup(
  cfg: NodeConfig,
  datastore: Datastore,
  tunnels: TunnelAddressAllocator,
  log: Logger,
): Promise<StartupResult> {
  const ipv4 = await resolveAddress(cfg.ip, cfg.ipAutodetectionMethod, 4);
  const ipv6 = await resolveAddress(cfg.ip6, cfg.ip6AutodetectionMethod, 6);
  if (cfg.nodenameFile) {
    mkdirSync(dirname(cfg.nodenameFile), { recursive: true });
    writeFileSync(cfg.nodenameFile, cfg.nodeName);
  }

  await ensureClusterInformation(datastore, cfg);
  await createIfAbsent(datastore, 'FelixConfiguration', {
    apiVersion: 'projectcalico.org/v3',
    kind: 'FelixConfiguration',
    metadata: { name: 'default' },
    spec: { reportingInterval: '0s', logSeverityScreen: 'Info' },
  });
  // etcd mode: workloads may talk to their own host (Calico writes this per node).
  await createIfAbsent(datastore, 'FelixConfiguration', {
    apiVersion: 'projectcalico.org/v3',
    kind: 'FelixConfiguration',
    metadata: { name: `node.${cfg.nodeName}` },
    spec: { defaultEndpointToHostAction: 'Return' },
  });

  const node = await upsertNode(datastore, cfg, ipv4, ipv6, log);
  if (!cfg.noDefaultPools) await ensureDefaultPools(datastore, cfg, log);

  const pools = ((await datastore.list('IPPool')).items as unknown as Res[]).filter(
    (p) => !p.spec?.['disabled'],
  );
  const labels = node.metadata.labels ?? {};
  const forNode = pools.filter((p) => selects(String(p.spec?.['nodeSelector'] ?? 'all()'), labels));
  const vxlanPools = forNode.filter((p) => (p.spec?.['vxlanMode'] ?? 'Never') !== 'Never' && isV4(p));
  const ipipPools = forNode.filter((p) => (p.spec?.['ipipMode'] ?? 'Never') !== 'Never' && isV4(p));

  const vxlanTunnelAddress = await ensureTunnelAddress(datastore, tunnels, cfg.nodeName, {
    handleId: `vxlan-tunnel-addr-${cfg.nodeName}`,
    type: 'vxlanTunnelAddress',
    field: 'ipv4VXLANTunnelAddr',
    pools: vxlanPools.map((p) => String(p.spec?.['cidr'])),
    log,
  });
  const ipipTunnelAddress = await ensureTunnelAddress(datastore, tunnels, cfg.nodeName, {
    handleId: `ipip-tunnel-addr-${cfg.nodeName}`,
    type: 'ipipTunnelAddress',
    field: 'bgp.ipv4IPIPTunnelAddr',
    pools: ipipPools.map((p) => String(p.spec?.['cidr'])),
    log,
  });
  return { nodeName: cfg.nodeName, ipv4, ipv6, vxlanTunnelAddress, ipipTunnelAddress };
}

function isV4(p: Res): boolean {
  return !String(p.spec?.['cidr'] ?? '').includes(':');
}

function selects(selector: string, labels: Record<string, string>): boolean {
  return parseSelector(selector).evaluate(labels);
}

async function resolveAddress(
  value: string,
  method: string,
  family: 4 | 6,
): Promise<HostAddress | undefined> {
  if (value === 'none') return undefined;
  if (value === 'autodetect' || value === '') return autodetectAddress(method, family);
  const [address, len] = value.split('/');
  return {
    iface: '',
    address: address!,
    cidr: len ? value : `${address}/${family === 4 ? 32 : 128}`,
    family,
  };
}

async function createIfAbsent(
  ds: Datastore,
  kind: 'FelixConfiguration' | 'ClusterInformation',
  res: Res,
): Promise<void> {
  try {
    await ds.create(kind, res as never);
  } catch (err) {
    if (!isDatastoreError(err, 'AlreadyExists')) throw err;
  }
}

async function ensureClusterInformation(ds: Datastore, cfg: NodeConfig): Promise<void> {
  await createIfAbsent(ds, 'ClusterInformation', {
    apiVersion: 'projectcalico.org/v3',
    kind: 'ClusterInformation',
    metadata: { name: 'default' },
    spec: {
      clusterGUID: randomBytes(16).toString('hex'),
      clusterType: cfg.clusterType,
      calicoVersion: 'calico-ts-0.1.0',
      datastoreReady: true,
    },
  });
}

/** Creates or updates this node's Node resource (BGP addresses and AS), compare-and-swap. */
async function upsertNode(
  ds: Datastore,
  cfg: NodeConfig,
  ipv4: HostAddress | undefined,
  ipv6: HostAddress | undefined,
  log: Logger,
): Promise<Res> {
  for (let attempt = 0; attempt < 10; attempt++) {
    let existing: Res | undefined;
    try {
      existing = (await ds.get('Node', cfg.nodeName)) as unknown as Res;
    } catch (err) {
      if (!isDatastoreError(err, 'NotFound')) throw err;
    }
    const spec: Spec = structuredClone(existing?.spec ?? {});
    const bgp: Spec = { ...((spec['bgp'] as Spec | undefined) ?? {}) };
    if (ipv4) bgp['ipv4Address'] = ipv4.cidr;
    else delete bgp['ipv4Address'];
    if (ipv6) bgp['ipv6Address'] = ipv6.cidr;
    else delete bgp['ipv6Address'];
    if (cfg.asNumber) bgp['asNumber'] = /^\d+$/.test(cfg.asNumber) ? Number(cfg.asNumber) : cfg.asNumber;
    spec['bgp'] = bgp;
    spec['orchRefs'] = spec['orchRefs'] ?? [];
    const res: Res = {
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: {
        name: cfg.nodeName,
        labels: existing?.metadata.labels ?? { 'kubernetes.io/hostname': cfg.nodeName },
        ...(existing?.metadata.resourceVersion ? { resourceVersion: existing.metadata.resourceVersion } : {}),
      },
      spec,
    };
    try {
      const saved = existing ? await ds.update('Node', res as never) : await ds.create('Node', res as never);
      log.info(
        { node: cfg.nodeName, ipv4: ipv4?.cidr, ipv6: ipv6?.cidr },
        existing ? 'updated Node' : 'created Node',
      );
      return saved as unknown as Res;
    } catch (err) {
      if (isDatastoreError(err, 'Conflict') || isDatastoreError(err, 'AlreadyExists')) continue;
      throw err;
    }
  }
  throw new Error(`could not write Node ${cfg.nodeName}: kept conflicting with other writers`);
}

/** Calico creates the default pools only when there is no pool at all, and never overwrites. */
async function ensureDefaultPools(ds: Datastore, cfg: NodeConfig, log: Logger): Promise<void> {
  const { items } = await ds.list('IPPool');
  if (items.length > 0) return;
  const make = async (name: string, p: PoolSettings | undefined): Promise<void> => {
    if (!p) return;
    try {
      await ds.create('IPPool', {
        apiVersion: 'projectcalico.org/v3',
        kind: 'IPPool',
        metadata: { name },
        spec: {
          cidr: p.cidr,
          blockSize: p.blockSize,
          ipipMode: p.ipipMode,
          vxlanMode: p.vxlanMode,
          natOutgoing: p.natOutgoing,
          nodeSelector: p.nodeSelector,
          disableBGPExport: p.disableBGPExport,
        },
      } as never);
      log.info({ pool: name, cidr: p.cidr }, 'created default IP pool');
    } catch (err) {
      if (!isDatastoreError(err, 'AlreadyExists')) throw err;
    }
  };
  await make('default-ipv4-ippool', cfg.ipv4Pool);
  await make('default-ipv6-ippool', cfg.ipv6Pool);
}

/**
 * Keeps one tunnel address per tunnel type while some pool on this node needs it (node/pkg/allocateip),
 * recorded on the Node; releases it when none does.
 */
async function ensureTunnelAddress(
  ds: Datastore,
  tunnels: TunnelAddressAllocator,
  nodeName: string,
  t: { handleId: string; type: string; field: string; pools: string[]; log: Logger },
): Promise<string | undefined> {
  let address: string | undefined;
  if (t.pools.length > 0) {
    const held = await tunnels.addressesOf(t.handleId);
    address =
      held[0] ??
      (await tunnels.assignTunnelAddress({
        node: nodeName,
        handleId: t.handleId,
        family: 4,
        pools: t.pools,
        attrs: { node: nodeName, type: t.type },
      }));
    if (!address)
      throw new Error(`no address available for ${t.type} on ${nodeName} in pools ${t.pools.join(', ')}`);
  } else {
    await tunnels.release(t.handleId);
  }
  for (let attempt = 0; attempt < 10; attempt++) {
    const node = (await ds.get('Node', nodeName)) as unknown as Res;
    const spec: Spec = structuredClone(node.spec ?? {});
    const [outer, inner] = t.field.includes('.')
      ? (t.field.split('.') as [string, string])
      : [undefined, t.field];
    const holder: Spec = outer ? { ...((spec[outer] as Spec | undefined) ?? {}) } : spec;
    if ((holder[inner] as string | undefined) === address) return address;
    if (address) holder[inner] = address;
    else delete holder[inner];
    if (outer) spec[outer] = holder;
    try {
      await ds.update('Node', { ...node, spec } as never);
      t.log.info({ [t.field]: address ?? null }, 'updated tunnel address');
      return address;
    } catch (err) {
      if (!isDatastoreError(err, 'Conflict')) throw err;
    }
  }
  throw new Error(`could not record ${t.field} on Node ${nodeName}: kept conflicting`);
}
