/**
 * @calico-ts/reflector: `calico-reflector`, a dedicated BGP route reflector (RFC 4456) on the
 * @calico-ts/bgp core, configured by flags or from the datastore, with no kernel routes.
 */
export {
  DEFAULT_CONTROL_SOCKET,
  parseReflectorArgs,
  type ReflectorConfig,
  ReflectorConfigError,
  type StaticPeer,
  USAGE,
} from './config.ts';
export { type ReflectorControlMethods, reflectorMetrics, serveHttp, serveStatus } from './observability.ts';
export { Reflector, type ReflectorOptions, type ReflectorStatus } from './reflector.ts';
