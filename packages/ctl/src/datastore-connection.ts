import {
  type Datastore,
  DEFAULT_CONFIG_FILE,
  datastoreFromConfig,
  loadDatastoreConfig,
} from '@calico-ts/datastore';
import { CliError } from './cli-error.ts';
import type { CliIo } from './cli-io.ts';
import { currentClusterEndpoint } from './cluster-context.ts';
import type { ConnectionFlags } from './command-context.ts';

/** calicoctl's default config file. */
export const DEFAULT_CONFIG_PATH = DEFAULT_CONFIG_FILE;

/**
 * Opens the datastore the flags, environment (DATASTORE_TYPE, ETCD_ENDPOINTS, ETCD_* TLS, and
 * their CALICO_ forms) and config file describe — or, when none of the flags and variables is
 * given, the etcd of the current local cluster (`calico cluster up`), as kubectl follows its
 * current context — through the datastore package's own loader so
 * that every calico-ts program reads configuration the same way. The connection is lazy: an
 * unreachable etcd shows up as an Unavailable error on the first request.
 *
 * The memory datastore is refused here: it lives inside one `calico` process, so every write
 * would vanish when the command exits. Tests and embedders pass a MemoryDatastore in directly.
 */
export async function connectDatastore(flags: ConnectionFlags, io: CliIo): Promise<Datastore> {
  const settings: { config?: string; datastoreType?: string; etcdEndpoints?: string } = {};
  if (flags.config !== undefined) settings.config = flags.config;
  if (flags.datastoreType !== undefined) settings.datastoreType = flags.datastoreType;
  if (flags.etcdEndpoints !== undefined) settings.etcdEndpoints = flags.etcdEndpoints;
  const cluster = currentClusterEndpoint(flags, io.env);
  if (cluster !== undefined) settings.etcdEndpoints = cluster;
  const config = loadDatastoreConfig({ flags: settings, env: io.env });
  if (config.datastoreType === 'memory') {
    throw new CliError(
      `datastoreType "memory" (from ${config.sources.datastoreType}) keeps resources only inside this one calico process, ` +
        'so nothing it writes would last; use etcdv3 (DATASTORE_TYPE=etcdv3 ETCD_ENDPOINTS=http://host:2379)',
    );
  }
  return datastoreFromConfig(config);
}
