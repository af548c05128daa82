export * from './datastore.ts';
export * from './errors.ts';
export { EtcdDatastore, type EtcdDatastoreOptions, type EtcdTlsOptions } from './etcd-datastore.ts';
export * from './kinds.ts';
export { MemoryDatastore } from './memory.ts';
export * from './model/index.ts';
export * from './resource.ts';
export * from './selector/index.ts';
export { InvalidResourceError } from './write-path.ts';
