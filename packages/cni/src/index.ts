/** Calico's workload gateways and host veth MAC, kept here for API compatibility: the datastore's constants. */
export { HOST_VETH_MAC, WORKLOAD_GATEWAY_V4, WORKLOAD_GATEWAY_V6 } from '@calico-ts/datastore';
export { asCniError, CalicoPlugin, type CalicoPluginOptions } from './calico-plugin.ts';
export { CNI_ERROR, CniError, type CniErrorJson, isCniError } from './errors.ts';
export {
  CONFLIST_FILE,
  calicoConflist,
  DEFAULT_CHAINED_PLUGINS,
  DEFAULT_CNI_BIN_DIR,
  DEFAULT_CNI_CONF_DIR,
  type InstallCniOptions,
  type InstallCniResult,
  InstallError,
  installCni,
} from './install.ts';
export { IpamAdapter } from './ipam-adapter.ts';
export { CalicoIpamPlugin } from './ipam-plugin.ts';
export { LinuxWorkloadDataplane } from './linux-dataplane.ts';
export { ipamHandle, vethNameForWorkload, workloadEndpointName } from './names.ts';
export type {
  AutoAssignRequest,
  IpamPort,
  NetnsState,
  PodNetns,
  WorkloadDataplane,
  WorkloadInterfaces,
  WorkloadNetwork,
} from './ports.ts';
export {
  execute,
  type PluginType,
  type RequestHandler,
  type WireRequest,
  type WireResponse,
} from './protocol.ts';
export { type CalicoNetConf, type CniCommand, type CniRequest, parseRequest } from './request.ts';
export { type CniResult, parseResult, renderResult } from './result.ts';
export { CniServer, DEFAULT_AGENT_SOCKET } from './server.ts';
export { SUPPORTED_VERSIONS } from './versions.ts';
