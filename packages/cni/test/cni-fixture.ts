/**
 * One "node" for CNI tests: a one-node lab fabric (the node's eth0 on the underlay with a default
 * route, so proxy ARP has a route to answer for 169.254.1.1), a real etcd, IPAM on it,
 * calico-node's CNI server hosted in the test process, and a CNI_PATH directory holding our two
 * plugins plus Debian's reference plugins for chaining.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Datastore, EtcdDatastore } from '@calico-ts/datastore';
import { Ipam } from '@calico-ts/ipam';
import {
  CNI_PLUGIN_NAMES,
  createLab,
  type EtcdProcess,
  nodeProgram,
  startEtcd,
  writeLaunchers,
} from '@calico-ts/lab';
import { build } from 'tsup';
import { runPrefix } from '../../../test-support/run-id.ts';
import { buildRelay } from '../build-relay.ts';
import { CalicoPlugin } from '../src/calico-plugin.ts';
import { installCni } from '../src/install.ts';
import { IpamAdapter } from '../src/ipam-adapter.ts';
import { CalicoIpamPlugin } from '../src/ipam-plugin.ts';
import { LinuxWorkloadDataplane } from '../src/linux-dataplane.ts';
import { CniServer } from '../src/server.ts';
import { pluginBinaries } from '../tsup.config.ts';

const PACKAGE_ROOT = resolve(import.meta.dirname, '..');

export interface CniNode {
  prefix: string;
  nodeName: string;
  nodeNs: string;
  nodeAddress: string;
  etcd: EtcdProcess;
  datastore: EtcdDatastore;
  ipam: Ipam;
  binDir: string;
  /** Where installCni put 10-calico.conflist (with `plugins: 'installed'`). */
  confDir: string;
  socketPath: string;
  /** Makes a pod namespace (removed on teardown); returns its path. */
  pod(name: string): Promise<string>;
  teardown(): Promise<void>;
}

/**
 * How the plugins get onto CNI_PATH. `installed` (the default): the shim bundles are built from
 * the current source into a temp dir and put in place by installCni, as on a real node, and
 * start in about a quarter of the time of `source`: `#!/bin/sh` launchers that run src/bin/*.ts.
 */
export type PluginBinaries = 'installed' | 'source';

/**
 * Builds what the package build makes for the binaries, from the current source: the two shim
 * bundles (tsup.config.ts `pluginBinaries`) and the byte relay (build-relay.ts).
 */
export async function buildPluginBundles(outDir: string): Promise<void> {
  await build({ ...pluginBinaries, outDir, config: false, silent: true });
  buildRelay(outDir);
}

async function writePlugins(
  dir: string,
  binDir: string,
  kind: PluginBinaries,
  agentSocket: string,
): Promise<void> {
  if (kind === 'installed') {
    const bundleDir = join(dir, 'bundle');
    await buildPluginBundles(bundleDir);
    // The node's socket, as calico-node's install step gives it: the relays go there directly.
    installCni({ binDir, confDir: join(dir, 'net.d'), bundleDir, agentSocket });
  } else {
    writeLaunchers(
      binDir,
      Object.fromEntries(
        CNI_PLUGIN_NAMES.map((name) => [name, nodeProgram(join(PACKAGE_ROOT, 'src', 'bin', `${name}.ts`))]),
      ),
    );
  }
  for (const name of ['portmap', 'tuning', 'bandwidth', 'ptp', 'host-local', 'loopback']) {
    symlinkSync(`/usr/lib/cni/${name}`, join(binDir, name));
  }
}

export async function startCniNode(options: {
  poolCidr: string;
  blockSize?: number;
  plugins?: PluginBinaries;
  /** Start of the run prefix every namespace, interface and temp dir of the node carries. */
  prefixTag?: string;
  /** What CalicoPlugin sees of the datastore (a test may interpose on its calls); IPAM sees it as is. */
  pluginDatastore?: (datastore: Datastore) => Datastore;
}): Promise<CniNode> {
  const prefix = runPrefix(options.prefixTag ?? 'cn');
  const dir = mkdtempSync(join(tmpdir(), `calico-ts-${prefix}-`));
  const binDir = join(dir, 'bin');
  mkdirSync(binDir);
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  const teardown = async (): Promise<void> => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // keep going: everything else must still be removed
      }
    }
  };
  try {
    await writePlugins(dir, binDir, options.plugins ?? 'installed', join(dir, 'cni.sock'));
    const etcd = await startEtcd();
    cleanups.push(() => etcd.stop());
    const lab = await createLab({ prefix, nodes: 1 });
    cleanups.push(() => lab.teardown());
    const labNode = lab.nodes[0]!;
    const nodeNs = labNode.name;
    const nodeAddress = labNode.ipv4;

    const datastore = new EtcdDatastore({ endpoints: [etcd.endpoint] });
    cleanups.push(() => datastore.close());
    await datastore.create('IPPool', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPPool',
      metadata: { name: `${prefix}-pool` },
      spec: { cidr: options.poolCidr, blockSize: options.blockSize ?? 26, nodeSelector: 'all()' },
    } as never);
    const nodeName = `${prefix}-node`;
    await datastore.create('Node', {
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: { name: nodeName },
      spec: { bgp: { ipv4Address: `${nodeAddress}/24` } },
    } as never);
    const ipam = new Ipam(datastore, { unavailableTimeoutMs: 3_000 });
    const port = new IpamAdapter(ipam, datastore);
    const dataplane = new LinuxWorkloadDataplane({ hostNs: labNode.namespace });
    cleanups.push(() => dataplane.close());
    const socketPath = join(dir, 'cni.sock');
    const calico = new CalicoPlugin({
      nodeName,
      datastore: options.pluginDatastore?.(datastore) ?? datastore,
      ipam: port,
      dataplane,
      defaultMtu: 1450,
    });
    const calicoIpam = new CalicoIpamPlugin({ ipam: port, nodeName });
    const server = new CniServer({
      socketPath,
      handlers: { calico: (r) => calico.handle(r), 'calico-ipam': (r) => calicoIpam.handle(r) },
    });
    await server.listen();
    cleanups.push(() => server.close());
    return {
      prefix,
      nodeName,
      nodeNs,
      nodeAddress,
      etcd,
      datastore,
      ipam,
      binDir,
      confDir: join(dir, 'net.d'),
      socketPath,
      pod: async (name: string) => `/run/netns/${(await lab.addPod(labNode.index, name)).name}`,
      teardown,
    };
  } catch (err) {
    await teardown();
    throw err;
  }
}
