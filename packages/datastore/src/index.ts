export * from './calico-constants.ts';
export {
  type DatastoreConfig,
  type DatastoreSettings,
  type DatastoreType,
  DEFAULT_CONFIG_FILE,
  DEFAULT_ETCD_ENDPOINTS,
  datastoreFromConfig,
  ENV_NAMES,
  type LoadDatastoreConfigInput,
  loadDatastoreConfig,
  readConfigFile,
  SUPPORTED_DATASTORE_TYPES,
} from './config.ts';
export * from './datastore.ts';
export * from './documents.ts';
export * from './errors.ts';
export { EtcdDatastore, type EtcdDatastoreOptions, type EtcdTlsOptions } from './etcd-datastore.ts';
export * from './kinds.ts';
export { MemoryDatastore } from './memory.ts';
export * from './model/index.ts';
export {
  cidrContains,
  cidrContainsIp,
  cidrSize,
  cidrsOverlap,
  familyBits,
  formatIp,
  formatMaskedCidr,
  type IpFamily,
  isMasked,
  maskedCidr,
  networkAddress,
  type ParsedCidr,
  type ParsedIp,
  parseCidr,
  parseCidrOrIp,
  parseIp,
} from './model/ip.ts';
export { ensureNamespaceProfile, ensureNamespaceProfileAt } from './namespace-profile.ts';
export * from './resource.ts';
export * from './selector/index.ts';
export { InvalidResourceError } from './write-path.ts';
