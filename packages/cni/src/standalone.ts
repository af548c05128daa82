/**
 * The plugin doing the whole job in its own process, for hosts without calico-node (network config
 * `"standalone": true`). Slower than the agent path — it connects to the datastore and loads IPAM
 * for every call — but the same code answers.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { type Datastore, datastoreFromConfig, loadDatastoreConfig } from '@calico-ts/datastore';
import { Ipam } from '@calico-ts/ipam';
import { CalicoPlugin } from './calico-plugin.ts';
import { CNI_ERROR, CniError } from './errors.ts';
import { IpamAdapter } from './ipam-adapter.ts';
import { CalicoIpamPlugin } from './ipam-plugin.ts';
import { LinuxWorkloadDataplane } from './linux-dataplane.ts';
import { errorResponse, execute, type PluginType, type WireResponse } from './protocol.ts';
import type { CalicoNetConf } from './request.ts';

/** calico/node writes its name here for the plugin (Calico's default path). */
export const NODENAME_FILE = '/var/lib/calico/nodename';

export function nodeNameFor(conf: CalicoNetConf): string {
  if (conf.nodename) return conf.nodename;
  const file = conf.nodename_file ?? NODENAME_FILE;
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return hostname();
  }
}

export async function runStandalone(
  plugin: PluginType,
  env: Readonly<Record<string, string | undefined>>,
  stdin: string,
): Promise<WireResponse> {
  let conf: CalicoNetConf;
  try {
    conf = JSON.parse(stdin) as CalicoNetConf;
  } catch (err) {
    return errorResponse(
      new CniError(CNI_ERROR.decodingFailure, 'cannot decode network config', (err as Error).message),
      stdin,
    );
  }
  let datastore: Datastore;
  try {
    datastore = datastoreFromConfig(
      loadDatastoreConfig({
        flags: {
          ...(conf.datastore_type ? { datastoreType: conf.datastore_type } : {}),
          ...(conf.etcd_endpoints ? { etcdEndpoints: conf.etcd_endpoints } : {}),
          ...(conf.etcd_ca_cert_file ? { etcdCACertFile: conf.etcd_ca_cert_file } : {}),
          ...(conf.etcd_cert_file ? { etcdCertFile: conf.etcd_cert_file } : {}),
          ...(conf.etcd_key_file ? { etcdKeyFile: conf.etcd_key_file } : {}),
        },
        env,
      }),
    );
  } catch (err) {
    return errorResponse(
      new CniError(CNI_ERROR.invalidConfig, 'invalid datastore settings', (err as Error).message),
      stdin,
    );
  }
  const nodeName = nodeNameFor(conf);
  const ipam = new IpamAdapter(new Ipam(datastore, { unavailableTimeoutMs: 5_000 }), datastore);
  const dataplane = new LinuxWorkloadDataplane();
  try {
    const handler =
      plugin === 'calico'
        ? new CalicoPlugin({ nodeName, datastore, ipam, dataplane, defaultMtu: 1500 })
        : new CalicoIpamPlugin({ ipam, nodeName });
    return await execute(plugin, env, stdin, (req) => handler.handle(req));
  } finally {
    dataplane.close();
    await datastore.close();
  }
}
