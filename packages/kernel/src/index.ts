export { type WaitOptions, waitFor } from './deadline.ts';
export {
  CommandError,
  errnoName,
  isKernelError,
  KernelError,
  type KernelErrorCode,
  type KernelErrorDetails,
  NetlinkError,
  SyscallError,
} from './errors.ts';
export {
  type DeviceFeature,
  parseDeviceFeatures,
  readDeviceFeatures,
  setDeviceFeatures,
} from './ethtool.ts';
export {
  type IpsetFamily,
  type IpsetPlan,
  type IpsetSpec,
  type IpsetState,
  Ipsets,
  type IpsetsOptions,
  type IpsetType,
  normaliseMember,
  parseIpsetSave,
  planIpsets,
} from './ipset.ts';
export {
  type ApplyResult,
  type BackendDetection,
  type DesiredTable,
  detectIptablesBackend,
  detectIptablesBackendWithSave,
  Iptables,
  type IptablesBackend,
  type IptablesHook,
  type IptablesOptions,
  type IptablesTableName,
  parseIptablesSave,
  planTable,
  renderRestore,
  renderRule,
  ruleHash,
  type SavedRule,
  type SavedTable,
  type TablePlan,
} from './iptables.ts';
export { logger } from './logger.ts';
export {
  createNamespace,
  deleteNamespace,
  hostNamespace,
  listNamespaces,
  NETNS_RUN_DIR,
  NetNamespace,
  runInNamespace,
} from './namespace.ts';
export { type LookupOptions, lookUpNetNamespace, type NamespaceLookup } from './namespace-lookup.ts';
export {
  type AddressFilter,
  type BatchItem,
  type BatchResult,
  type EventGroup,
  type IpipOptions,
  type LinkRef,
  type LinkSettings,
  Netlink,
  type NetlinkEvent,
  type RouteFilter,
  type RouteInput,
  type Subscription,
  type VethOptions,
  type VxlanOptions,
} from './netlink.ts';
export {
  type Address,
  type Link,
  type Neighbour,
  type NextHop,
  type Route,
  type RouteNextHop,
  type RouteScope,
  RouteScopes,
  type RouteType,
  RouteTypes,
} from './netlink-codec.ts';
export {
  decodePacketHeaders,
  type NflogPacket,
  NflogReader,
  type NflogReaderOptions,
  type PacketHeaders,
  parseNflogPacket,
} from './nflog.ts';
export { type PeerCredentials, peerCredentials } from './peer-credentials.ts';
export {
  type CommandResult,
  execInNamespace,
  NamespaceProcess,
  type ProcessExit,
  type SpawnInNamespaceOptions,
  spawnInNamespace,
} from './process.ts';
export {
  type InterfaceSysctls,
  interfaceSysctlsDrifted,
  ipForwardingOn,
  readSysctl,
  setInterfaceSysctls,
  setIpForwarding,
  writeSysctl,
} from './sysctl.ts';
export {
  type ConnectOptions,
  connectTcp,
  type ListenOptions,
  listenTcp,
  type SocketTarget,
  setIpMinTtl,
  setIpTtl,
  setTcpMd5Key,
  socketFd,
  type TcpMd5Counters,
  type TcpSocketOptions,
  tcpMd5Counters,
} from './tcp-socket-options.ts';
