import type { Datastore } from '@calico-ts/datastore';
import type { CliIo, CliLog } from './cli-io.ts';

/** How the user asked to reach the datastore (global flags); the rest comes from env and file. */
export interface ConnectionFlags {
  /** `-c/--config`: a CalicoAPIConfig file (default /etc/calico/calicoctl.cfg). */
  config?: string | undefined;
  datastoreType?: string | undefined;
  etcdEndpoints?: string | undefined;
}

/** Opens the datastore a command works on. Injected so tests can hand in a MemoryDatastore. */
export type ConnectDatastore = (flags: ConnectionFlags, io: CliIo) => Promise<Datastore>;

/** What every command gets: I/O, a logger, and the datastore, opened on first use. */
export interface CommandContext {
  io: CliIo;
  log: CliLog;
  datastore(): Promise<Datastore>;
}
