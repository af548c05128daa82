export {
  CALICO_NODE_FLAGS,
  type CalicoPrograms,
  CNI_PLUGIN_NAMES,
  type CniPluginName,
  calicoPrograms,
  freshBuild,
  type InstallCni,
  installPlugins,
  nodeProgram,
  writeLaunchers,
} from './calico-programs.ts';
export {
  addNetworkList,
  type Conflist,
  checkNetworkList,
  delNetworkList,
  type Invocation,
  invokePlugin,
  type PluginAnswer,
  PluginFailedError,
  pluginConfig,
} from './cni-runtime.ts';
export { isLabError, LabError, type LabErrorCode } from './errors.ts';
export { type EtcdProcess, freePort, type StartEtcdOptions, startEtcd } from './etcd.ts';
export {
  createLab,
  LAB_GATEWAY_V4,
  LAB_GATEWAY_V6,
  LAB_SUBNET_V4,
  LAB_SUBNET_V6,
  Lab,
  type LabNode,
  type LabOptions,
  type LabPod,
  labNodeIpv4,
  labNodeIpv6,
  type PodWiring,
  removeLab,
} from './fabric.ts';
export {
  type AddPodOptions,
  type ClusterEvent,
  type ClusterNode,
  type ClusterPod,
  type ClusterReflector,
  LAB_POD_NAMESPACE,
  LabCluster,
  type LabClusterOptions,
  type LabEncapsulation,
  type NodeLister,
  type PodReachability,
  removeLabCluster,
} from './lab-cluster.ts';
export { addOutsideHost, type OutsideHost, type OutsideHostOptions } from './outside-host.ts';
export {
  PacketTrace,
  type PacketTraceOptions,
  parseTraceLine,
  type TraceEvent,
  type TraceMatch,
  traceMatchExpression,
  traceTableScript,
} from './packet-trace.ts';
export {
  type PodPort,
  type PodServers,
  type PortProtocol,
  parsePodPorts,
  probe,
  probeFrom,
  servedPortName,
  servePorts,
} from './pod-sockets.ts';
export {
  identify,
  type ProcessIdentity,
  processStartTime,
  signalIfSame,
  stillRunning,
} from './process-identity.ts';
export { relayTcp, type TcpRelay, type TcpRelayOptions } from './tcp-relay.ts';
export {
  parseBirdProtocols,
  type TorConfigOptions,
  type TorNeighbor,
  type TorProtocolState,
  torBirdConfig,
  torProtocolName,
} from './tor.ts';
export {
  chooseUnderlay,
  type HostNetwork,
  hostIpv4Networks,
  UNDERLAY_CANDIDATES,
  type UnderlayAddressing,
  underlayAddressing,
  underlayConflict,
} from './underlay.ts';
