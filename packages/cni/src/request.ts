import { CNI_ERROR, CniError } from './errors.ts';
import { type CniVersion, negotiateVersion } from './versions.ts';

export const CNI_COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof CNI_COMMANDS)[number];

/** The `ipam` section of our network config (Calico's field names). */
export interface IpamConf {
  type: string;
  assign_ipv4?: string;
  assign_ipv6?: string;
  ipv4_pools?: string[];
  ipv6_pools?: string[];
  [key: string]: unknown;
}

/** The `calico` plugin's network config: Calico's NetConf keys plus ours. Unknown keys are kept. */
export interface CalicoNetConf {
  cniVersion?: string;
  cniVersions?: string[];
  name: string;
  type: string;
  mtu?: number;
  nodename?: string;
  nodename_file?: string;
  nodename_file_optional?: boolean;
  datastore_type?: string;
  etcd_endpoints?: string;
  etcd_key_file?: string;
  etcd_cert_file?: string;
  etcd_ca_cert_file?: string;
  log_level?: string;
  log_file_path?: string;
  ipam: IpamConf;
  /** Unix socket of calico-node's CNI server (ours). */
  agent_socket?: string;
  /** Run the request in this process when no agent answers (ours; hosts without calico-node). */
  standalone?: boolean;
  include_default_routes?: boolean;
  prevResult?: unknown;
  runtimeConfig?: Record<string, unknown>;
  args?: Record<string, unknown>;
  'cni.dev/valid-attachments'?: { containerID: string; ifname: string }[];
  'cni.dev/attachments'?: { containerID: string; ifname: string }[];
  [key: string]: unknown;
}

export interface CniRequest {
  command: CniCommand;
  containerId: string;
  /** Empty for DEL without a namespace (CNI SPEC: CNI_NETNS is optional on DEL). */
  netns: string;
  /**
   * The plugin process that relayed the request to calico-node (from the socket's credentials):
   * `netns` is a path in that process's mount namespace, which may not be ours. Undefined when
   * the request runs in the plugin's own process (standalone).
   */
  peerPid?: number;
  ifname: string;
  args: Record<string, string>;
  path: string[];
  config: CalicoNetConf;
  version: CniVersion;
}

export type CniEnv = Readonly<Record<string, string | undefined>>;

// CNI SPEC §"Parameters": container ID is alphanumeric, then alphanumerics, underscore, dot, hyphen.
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
// CNI SPEC §"Network configuration": name starts alphanumeric, then [a-zA-Z0-9_.-].
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
// Linux IFNAMSIZ is 16 including the NUL; '/' and whitespace are not allowed in names.
const IFNAME = /^[^/\s:]{1,15}$/;

/** Keys a runtime sets in CNI_ARGS that we understand (kubelet/containerd, podman, Calico's overrides). */
const KNOWN_ARGS = new Set([
  'IgnoreUnknown',
  'K8S_POD_NAMESPACE',
  'K8S_POD_NAME',
  'K8S_POD_INFRA_CONTAINER_ID',
  'K8S_POD_UID',
  'IP',
  'cni.projectcalico.org/ipAddrs',
  'cni.projectcalico.org/ipv4pools',
  'cni.projectcalico.org/ipv6pools',
]);

export function parseCniArgs(raw: string | undefined): Record<string, string> {
  const args: Record<string, string> = {};
  if (!raw) return args;
  for (const pair of raw.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw new CniError(
        CNI_ERROR.invalidEnvironment,
        'invalid CNI_ARGS',
        `CNI_ARGS entry ${JSON.stringify(pair)} is not KEY=VALUE (expected "K1=V1;K2=V2")`,
      );
    }
    args[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const ignoreUnknown = /^(1|true)$/i.test(args['IgnoreUnknown'] ?? '');
  if (!ignoreUnknown) {
    const unknown = Object.keys(args).filter((k) => !KNOWN_ARGS.has(k));
    if (unknown.length > 0) {
      throw new CniError(
        CNI_ERROR.unsupportedField,
        'unsupported CNI_ARGS',
        `CNI_ARGS has unknown key(s) ${unknown.join(', ')}; known: ${[...KNOWN_ARGS].join(', ')} (or set IgnoreUnknown=1)`,
      );
    }
  }
  return args;
}

function requireEnv(env: CniEnv, name: string, command: string): string {
  const v = env[name];
  if (v === undefined || v === '') {
    throw new CniError(
      CNI_ERROR.invalidEnvironment,
      `missing ${name}`,
      `environment variable ${name} is required for ${command}`,
    );
  }
  return v;
}

/** Which variables each verb needs (CNI SPEC §"Parameters" and the reference skel). */
const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  VERSION: [],
  STATUS: [],
  GC: [],
};

export function parseCommand(env: CniEnv): CniCommand {
  const command = requireEnv(env, 'CNI_COMMAND', 'any operation');
  if (!(CNI_COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(
      CNI_ERROR.invalidEnvironment,
      'unknown CNI_COMMAND',
      `CNI_COMMAND is ${JSON.stringify(command)}; expected one of ${CNI_COMMANDS.join(', ')}`,
    );
  }
  return command as CniCommand;
}

/** Decodes stdin into a network config, with the problem named when it is not one. */
export function parseNetConf(stdin: string, expectedType: string): CalicoNetConf {
  let conf: unknown;
  try {
    conf = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(
      CNI_ERROR.decodingFailure,
      'cannot decode network config',
      `stdin is not valid JSON: ${(err as Error).message}`,
    );
  }
  if (typeof conf !== 'object' || conf === null || Array.isArray(conf)) {
    throw new CniError(
      CNI_ERROR.decodingFailure,
      'cannot decode network config',
      'stdin must be a JSON object',
    );
  }
  const c = conf as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof c['name'] !== 'string' || !NETWORK_NAME.test(c['name'])) {
    problems.push(
      `name: ${JSON.stringify(c['name'])} — expected a network name matching ${NETWORK_NAME.source}`,
    );
  }
  // A delegated IPAM plugin is handed its parent's config: the parent's `type`, ours under `ipam`.
  if (expectedType === 'calico-ipam') {
    const t = (c['ipam'] as Record<string, unknown> | undefined)?.['type'];
    if (t !== 'calico-ipam') problems.push(`ipam.type: ${JSON.stringify(t)} — expected "calico-ipam"`);
  } else if (c['type'] !== expectedType) {
    problems.push(`type: ${JSON.stringify(c['type'])} — expected "${expectedType}"`);
  }
  if (typeof c['type'] !== 'string' || c['type'] === '') {
    problems.push(`type: ${JSON.stringify(c['type'])} — expected the plugin's name`);
  }
  if (
    c['mtu'] !== undefined &&
    !(Number.isInteger(c['mtu']) && (c['mtu'] as number) >= 68 && (c['mtu'] as number) <= 65535)
  ) {
    problems.push(`mtu: ${JSON.stringify(c['mtu'])} — expected an integer from 68 to 65535`);
  }
  const ipam = c['ipam'];
  if (expectedType === 'calico') {
    if (typeof ipam !== 'object' || ipam === null) {
      problems.push('ipam: (missing) — expected {"type": "calico-ipam"}');
    } else if ((ipam as Record<string, unknown>)['type'] !== 'calico-ipam') {
      problems.push(
        `ipam.type: ${JSON.stringify((ipam as Record<string, unknown>)['type'])} — expected "calico-ipam" (the only IPAM this plugin delegates to)`,
      );
    }
  }
  for (const key of ['ipv4_pools', 'ipv6_pools'] as const) {
    const v = (ipam as Record<string, unknown> | undefined)?.[key];
    if (v !== undefined && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) {
      problems.push(`ipam.${key}: ${JSON.stringify(v)} — expected a list of pool names or CIDRs`);
    }
  }
  if (problems.length > 0) {
    throw new CniError(CNI_ERROR.invalidConfig, 'invalid network config', problems.join('; '));
  }
  return c as CalicoNetConf;
}

/** Environment + stdin → a validated request, or a CniError with the spec's code. */
export function parseRequest(env: CniEnv, stdin: string, expectedType: string): CniRequest {
  const command = parseCommand(env);
  for (const name of REQUIRED[command]) requireEnv(env, name, command);
  const containerId = env['CNI_CONTAINERID'] ?? '';
  if (containerId !== '' && !CONTAINER_ID.test(containerId)) {
    throw new CniError(
      CNI_ERROR.invalidEnvironment,
      'invalid CNI_CONTAINERID',
      `CNI_CONTAINERID ${JSON.stringify(containerId)} must match ${CONTAINER_ID.source}`,
    );
  }
  const ifname = env['CNI_IFNAME'] ?? '';
  if (ifname !== '' && !IFNAME.test(ifname)) {
    throw new CniError(
      CNI_ERROR.invalidEnvironment,
      'invalid CNI_IFNAME',
      `CNI_IFNAME ${JSON.stringify(ifname)} is not a valid interface name (1–15 characters, no '/', ':' or spaces)`,
    );
  }
  const config = parseNetConf(stdin, expectedType);
  const version = negotiateVersion(config);
  return {
    command,
    containerId,
    netns: env['CNI_NETNS'] ?? '',
    ifname,
    args: parseCniArgs(env['CNI_ARGS']),
    path: (env['CNI_PATH'] ?? '').split(':').filter(Boolean),
    config,
    version,
  };
}
