import type { Datastore } from '@calico-ts/datastore';
import { CliError } from './cli-error.ts';
import type { CliIo } from './cli-io.ts';
import type { ConnectionFlags } from './command-context.ts';

/** calicoctl's default config file. */
export const DEFAULT_CONFIG_PATH = '/etc/calico/calicoctl.cfg';

type LoadConfig = (input: {
  flags: ConnectionFlags;
  env: CliIo['env'];
  file?: string | undefined;
}) => Promise<unknown> | unknown;
type FromConfig = (config: unknown) => Promise<Datastore> | Datastore;

/**
 * Opens the datastore the flags, environment (DATASTORE_TYPE, ETCD_ENDPOINTS, ETCD_* TLS, and
 * their CALICO_ forms) and config file describe, through the datastore package's own loader so
 * that every calico-ts program reads configuration the same way.
 */
export async function connectDatastore(flags: ConnectionFlags, io: CliIo): Promise<Datastore> {
  // Resolved at run time: the loader lives in @calico-ts/datastore's config module.
  const datastore = (await import('@calico-ts/datastore')) as unknown as Record<string, unknown>;
  const load = datastore['loadDatastoreConfig'] as LoadConfig | undefined;
  const open = datastore['datastoreFromConfig'] as FromConfig | undefined;
  if (typeof load !== 'function' || typeof open !== 'function') {
    throw new CliError('this build of @calico-ts/datastore has no datastore configuration loader');
  }
  const config = await load({ flags, env: io.env, file: flags.config });
  return open(config);
}
