import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type Datastore,
  isDatastoreError,
  type NodeSpec,
  parseCidr,
  parseSelector,
  poolEncapsulation,
  type ResourceOf,
} from '@calico-ts/datastore';
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

type Pool = ResourceOf<'IPPool'>;
type Node = ResourceOf<'Node'>;

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
  await createIfAbsent(() =>
    datastore.create('FelixConfiguration', {
      metadata: { name: 'default' },
      spec: { reportingInterval: '0s', logSeverityScreen: 'Info' },
    }),
  );
  // etcd mode: workloads may talk to their own host (Calico writes this per node).
  await createIfAbsent(() =>
    datastore.create('FelixConfiguration', {
      metadata: { name: `node.${cfg.nodeName}` },
      spec: { defaultEndpointToHostAction: 'Return' },
    }),
  );

  const node = await upsertNode(datastore, cfg, ipv4, ipv6, log);
  if (!cfg.noDefaultPools) await ensureDefaultPools(datastore, cfg, log);

  const labels = node.metadata.labels ?? {};
  const forNode = (await datastore.list('IPPool')).items.filter(
    (p) => !p.spec.disabled && selects(p.spec.nodeSelector, labels),
  );
  const ipv4Using = (type: 'vxlan' | 'ipip') =>
    forNode.filter((p) => poolEncapsulation(p.spec).type === type && isV4(p)).map((p) => p.spec.cidr);

  const vxlanTunnelAddress = await ensureTunnelAddress(datastore, tunnels, cfg.nodeName, {
    handleId: `vxlan-tunnel-addr-${cfg.nodeName}`,
    type: 'vxlanTunnelAddress',
    field: 'ipv4VXLANTunnelAddr',
    current: (spec) => spec.ipv4VXLANTunnelAddr,
    record: (spec, address) => {
      const { ipv4VXLANTunnelAddr: _old, ...rest } = spec;
      return address ? { ...rest, ipv4VXLANTunnelAddr: address } : rest;
    },
    pools: ipv4Using('vxlan'),
    log,
  });
  const ipipTunnelAddress = await ensureTunnelAddress(datastore, tunnels, cfg.nodeName, {
    handleId: `ipip-tunnel-addr-${cfg.nodeName}`,
    type: 'ipipTunnelAddress',
    field: 'bgp.ipv4IPIPTunnelAddr',
    current: (spec) => spec.bgp?.ipv4IPIPTunnelAddr,
    record: (spec, address) => {
      const { ipv4IPIPTunnelAddr: _old, ...bgp } = spec.bgp ?? {};
      return { ...spec, bgp: address ? { ...bgp, ipv4IPIPTunnelAddr: address } : bgp };
    },
    pools: ipv4Using('ipip'),
    log,
  });
  return { nodeName: cfg.nodeName, ipv4, ipv6, vxlanTunnelAddress, ipipTunnelAddress };
}

function isV4(p: Pool): boolean {
  return parseCidr(p.spec.cidr)?.family === 4;
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

/** Runs a create; an object that already exists is left as it is. */
async function createIfAbsent(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (!isDatastoreError(err, 'AlreadyExists')) throw err;
  }
}

/**
 * The calico-ts release this calico-node runs, as ClusterInformation's `calicoVersion` records it
 * (`v<version>`). Read from the package's package.json, one level above both src/ and dist/.
 */
export function nodeVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return `v${pkg.version}`;
}

/**
 * Creates ClusterInformation `default` on the first start and, like Calico's calico-node, records
 * the running version in `calicoVersion` on every start after that (compare-and-swap; a node that
 * loses the race leaves the winner's identical value).
 */
async function ensureClusterInformation(ds: Datastore, cfg: NodeConfig): Promise<void> {
  const calicoVersion = nodeVersion();
  await createIfAbsent(() =>
    ds.create('ClusterInformation', {
      metadata: { name: 'default' },
      spec: {
        clusterGUID: randomBytes(16).toString('hex'),
        clusterType: cfg.clusterType,
        calicoVersion,
        datastoreReady: true,
      },
    }),
  );
  const current = await ds.get('ClusterInformation', 'default');
  if (current.spec.calicoVersion === calicoVersion) return;
  try {
    await ds.update('ClusterInformation', { ...current, spec: { ...current.spec, calicoVersion } });
  } catch (err) {
    if (!isDatastoreError(err, 'Conflict')) throw err;
  }
}

/** Creates or updates this node's Node resource (BGP addresses and AS), compare-and-swap. */
async function upsertNode(
  ds: Datastore,
  cfg: NodeConfig,
  ipv4: HostAddress | undefined,
  ipv6: HostAddress | undefined,
  log: Logger,
): Promise<Node> {
  for (let attempt = 0; attempt < 10; attempt++) {
    let existing: Node | undefined;
    try {
      existing = await ds.get('Node', cfg.nodeName);
    } catch (err) {
      if (!isDatastoreError(err, 'NotFound')) throw err;
    }
    const spec: NodeSpec = structuredClone(existing?.spec ?? {});
    const { ipv4Address: _v4, ipv6Address: _v6, ...bgp } = spec.bgp ?? {};
    const res = {
      metadata: {
        name: cfg.nodeName,
        labels: existing?.metadata.labels ?? { 'kubernetes.io/hostname': cfg.nodeName },
        ...(existing?.metadata.resourceVersion ? { resourceVersion: existing.metadata.resourceVersion } : {}),
      },
      spec: {
        ...spec,
        bgp: {
          ...bgp,
          ...(ipv4 ? { ipv4Address: ipv4.cidr } : {}),
          ...(ipv6 ? { ipv6Address: ipv6.cidr } : {}),
          ...(cfg.asNumber
            ? { asNumber: /^\d+$/.test(cfg.asNumber) ? Number(cfg.asNumber) : cfg.asNumber }
            : {}),
        },
        orchRefs: spec.orchRefs ?? [],
      },
    };
    try {
      const saved = existing ? await ds.update('Node', res) : await ds.create('Node', res);
      log.info(
        { node: cfg.nodeName, ipv4: ipv4?.cidr, ipv6: ipv6?.cidr },
        existing ? 'updated Node' : 'created Node',
      );
      return saved;
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
      });
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
  t: {
    handleId: string;
    type: string;
    /** Where the Node records the address, for messages. */
    field: string;
    /** The address the Node records now. */
    current: (spec: NodeSpec) => string | undefined;
    /** The Node spec with the address recorded (or removed, when undefined). */
    record: (spec: NodeSpec, address: string | undefined) => NodeSpec;
    pools: string[];
    log: Logger;
  },
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
    const node = await ds.get('Node', nodeName);
    if (t.current(node.spec) === address) return address;
    try {
      await ds.update('Node', { ...node, spec: t.record(node.spec, address) });
      t.log.info({ [t.field]: address ?? null }, 'updated tunnel address');
      return address;
    } catch (err) {
      if (!isDatastoreError(err, 'Conflict')) throw err;
    }
  }
  throw new Error(`could not record ${t.field} on Node ${nodeName}: kept conflicting`);
}
