/**
 * Puts the two plugin binaries and the network config where a container runtime looks for them
 * (calico-node's install step, container images, the lab). Each file is written whole under a
 * temporary name and renamed into place, so a runtime never execs or reads half a file; a file
 * that already has the wanted bytes (and mode) is left alone, so re-running changes nothing.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULT_AGENT_SOCKET, type PluginType } from './protocol.ts';

export const DEFAULT_CNI_BIN_DIR = '/opt/cni/bin';
export const DEFAULT_CNI_CONF_DIR = '/etc/cni/net.d';
export const CONFLIST_FILE = '10-calico.conflist';

/** The chained plugin every Calico install adds by default: host ports (CNI CONVENTIONS.md). */
export const DEFAULT_CHAINED_PLUGINS: readonly Record<string, unknown>[] = [
  { type: 'portmap', snat: true, capabilities: { portMappings: true } },
];

export interface InstallCniOptions {
  binDir?: string;
  confDir?: string;
  /** The node binary the plugins run on; an absolute path, written into their `#!` line. */
  nodePath?: string;
  /** Where the built `calico.cjs` / `calico-ipam.cjs` / `cni-relay` are; by default this package's dist/. */
  bundleDir?: string;
  /**
   * true (the default): each plugin is the compiled byte relay (`calico`, `calico-ipam`), with the
   * Node shim beside it (`calico.cjs`, `calico-ipam.cjs`) for when calico-node is not there or the
   * config names another socket. false: each plugin is the Node shim itself.
   */
  relay?: boolean;
  /** Network name; also the prefix of every IPAM handle, so changing it orphans addresses. */
  name?: string;
  cniVersion?: string;
  cniVersions?: string[];
  /** Pod MTU; without it calico-node picks one from the underlay. */
  mtu?: number;
  /** calico-node's CNI socket; without it the plugin uses its default (/var/run/calico/cni.sock). */
  agentSocket?: string;
  /** Let the plugin do the work itself when calico-node does not answer. */
  standalone?: boolean;
  /** More keys for the calico plugin's entry: etcd_endpoints, nodename, ipam pools, … */
  calicoConfig?: Record<string, unknown>;
  /** Plugins chained after calico, in order. Default: portmap with SNAT. */
  chained?: readonly Record<string, unknown>[];
  /**
   * A whole network config list (an operator's template, as calico-node's CNI_NETWORK_CONFIG),
   * written as given instead of the one the options above describe.
   */
  conflist?: Readonly<Record<string, unknown>>;
}

export interface InstallCniResult {
  /** Files written (new or different), absolute paths. */
  changed: string[];
  /** Files that already had the wanted content and mode. */
  unchanged: string[];
}

export class InstallError extends Error {
  override readonly name = 'InstallError';
  readonly code: 'BUNDLE_MISSING' | 'BUNDLE_UNEXPECTED' | 'BAD_NODE_PATH' | 'BAD_AGENT_SOCKET';
  constructor(code: InstallError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

const PLUGINS: readonly PluginType[] = ['calico', 'calico-ipam'];
/** What the bundler leaves for the lazily loaded standalone code (tsup.config.ts keeps it so). */
const STANDALONE_IMPORT = 'import("./standalone.js")';
/** The relay's settings area follows this line in its binary (relay/cni-relay.c `CONF`). */
const RELAY_MARK = 'CALICO-CNI-RELAY-CONF\n';
const RELAY_CONF_BYTES = 512 - RELAY_MARK.length;
/** sun_path holds 108 bytes with the terminating NUL (include/uapi/linux/un.h). */
const MAX_SOCKET_PATH_BYTES = 107;
/** Linux reads at most this much of a `#!` line (BINPRM_BUF_SIZE, include/uapi/linux/binfmts.h). */
const MAX_SHEBANG_BYTES = 255;

/** This module sits in dist/ when built and in src/ when run from source. */
const HERE = dirname(fileURLToPath(import.meta.url));
const FROM_SOURCE = import.meta.url.endsWith('.ts');

export function installCni(options: InstallCniOptions = {}): InstallCniResult {
  const binDir = options.binDir ?? DEFAULT_CNI_BIN_DIR;
  const confDir = options.confDir ?? DEFAULT_CNI_CONF_DIR;
  const result: InstallCniResult = { changed: [], unchanged: [] };
  const record = (file: string, changed: boolean) => (changed ? result.changed : result.unchanged).push(file);

  const shebang = shebangFor(options.nodePath ?? process.execPath);
  const bundleDir = options.bundleDir ?? (FROM_SOURCE ? join(HERE, '..', 'dist') : HERE);
  // Built, the standalone code is dist/standalone.js next to this module; from source it is
  // src/standalone.ts, which needs the source condition to find the other workspace packages.
  // A caller that names the bundle directory (calico-node's bundle, where this module is not in
  // dist/) gets the standalone.js in it.
  const standaloneUrl = pathToFileURL(
    FROM_SOURCE ? join(HERE, 'standalone.ts') : join(options.bundleDir ?? HERE, 'standalone.js'),
  ).href;

  const relay = options.relay ?? true;
  const relayBinary = relay ? readRelay(bundleDir) : undefined;
  const socket = options.agentSocket ?? DEFAULT_AGENT_SOCKET;

  mkdirSync(binDir, { recursive: true });
  for (const plugin of PLUGINS) {
    const text = pluginExecutable(readBundle(bundleDir, plugin), shebang, standaloneUrl);
    if (relayBinary) {
      const shim = join(binDir, `${plugin}.cjs`);
      record(shim, writeIfChanged(shim, text, 0o755));
      const file = join(binDir, plugin);
      record(file, writeIfChanged(file, relayExecutable(relayBinary, plugin, socket), 0o755));
    } else {
      const file = join(binDir, plugin);
      record(file, writeIfChanged(file, text, 0o755));
    }
  }
  mkdirSync(confDir, { recursive: true });
  const file = join(confDir, CONFLIST_FILE);
  const conflist = options.conflist ?? calicoConflist(options);
  record(file, writeIfChanged(file, `${JSON.stringify(conflist, null, 2)}\n`, 0o644));
  return result;
}

/** The network config list a runtime loads (CNI SPEC §"Configuration format"). */
export function calicoConflist(options: InstallCniOptions = {}): {
  name: string;
  cniVersion: string;
  cniVersions: string[];
  plugins: Record<string, unknown>[];
} {
  const calico: Record<string, unknown> = {
    type: 'calico',
    ...(options.mtu !== undefined ? { mtu: options.mtu } : {}),
    ...(options.agentSocket !== undefined ? { agent_socket: options.agentSocket } : {}),
    ...(options.standalone ? { standalone: true } : {}),
    ipam: { type: 'calico-ipam' },
    ...options.calicoConfig,
  };
  return {
    name: options.name ?? 'k8s-pod-network',
    cniVersion: options.cniVersion ?? '1.0.0',
    cniVersions: options.cniVersions ?? ['0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    plugins: [calico, ...(options.chained ?? DEFAULT_CHAINED_PLUGINS)],
  };
}

/**
 * A direct `#!<node>` line: no /usr/bin/env in between (one exec and a locale load fewer), and
 * no flags, since every flag tried made start-up slower or no faster (README "Start-up").
 */
function shebangFor(nodePath: string): string {
  if (!nodePath.startsWith('/') || /\s/.test(nodePath)) {
    throw new InstallError(
      'BAD_NODE_PATH',
      `nodePath ${JSON.stringify(nodePath)} must be an absolute path without whitespace (it goes into the plugins' #! line)`,
    );
  }
  // From source the standalone code is TypeScript in the workspace: resolve packages to source.
  const line = FROM_SOURCE ? `#!${nodePath} --conditions=@calico-ts/source` : `#!${nodePath}`;
  if (Buffer.byteLength(line) > MAX_SHEBANG_BYTES) {
    throw new InstallError(
      'BAD_NODE_PATH',
      `the #! line for ${nodePath} is ${Buffer.byteLength(line)} bytes; Linux reads at most ${MAX_SHEBANG_BYTES} (use a shorter path, e.g. a symlink)`,
    );
  }
  return line;
}

function readBundle(bundleDir: string, plugin: PluginType): string {
  const file = join(bundleDir, `${plugin}.cjs`);
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new InstallError(
      'BUNDLE_MISSING',
      `cannot read the ${plugin} plugin bundle ${file}: ${(err as Error).message} (build it with \`pnpm --filter @calico-ts/cni build\`)`,
    );
  }
}

function readRelay(bundleDir: string): Buffer {
  const file = join(bundleDir, 'cni-relay');
  try {
    return readFileSync(file);
  } catch (err) {
    throw new InstallError(
      'BUNDLE_MISSING',
      `cannot read the CNI relay ${file}: ${(err as Error).message} (build it with \`pnpm --filter @calico-ts/cni build\`, which needs a C compiler)`,
    );
  }
}

/** The relay binary with its plugin name and calico-node's socket written after its marker. */
export function relayExecutable(binary: Buffer, plugin: PluginType, socketPath: string): Buffer {
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES || socketPath.includes('\0')) {
    throw new InstallError(
      'BAD_AGENT_SOCKET',
      `agentSocket ${JSON.stringify(socketPath)} is ${Buffer.byteLength(socketPath)} bytes; a unix socket path holds at most ${MAX_SOCKET_PATH_BYTES}`,
    );
  }
  const at = binary.indexOf(RELAY_MARK);
  if (at < 0 || binary.indexOf(RELAY_MARK, at + 1) >= 0) {
    throw new InstallError(
      'BUNDLE_UNEXPECTED',
      `expected the CNI relay to contain its settings marker once (was it built from relay/cni-relay.c?)`,
    );
  }
  const out = Buffer.from(binary);
  const start = at + RELAY_MARK.length;
  out.fill(0, start, start + RELAY_CONF_BYTES);
  out.write(`${plugin}\0${socketPath}\0`, start, 'utf8');
  return out;
}

/**
 * The installed binary: the bundle with our `#!` line, and its standalone import pointed at this
 * package (the binary itself lands in a directory that has nothing else of ours).
 */
export function pluginExecutable(bundle: string, shebang: string, standaloneUrl: string): string {
  const body = bundle.startsWith('#!') ? bundle.slice(bundle.indexOf('\n') + 1) : bundle;
  const parts = body.split(STANDALONE_IMPORT);
  if (parts.length !== 2) {
    throw new InstallError(
      'BUNDLE_UNEXPECTED',
      `expected the plugin bundle to contain ${STANDALONE_IMPORT} once, found it ${parts.length - 1} times (was it built with packages/cni/tsup.config.ts?)`,
    );
  }
  return `${shebang}\n${parts.join(`import(${JSON.stringify(standaloneUrl)})`)}`;
}

/** Atomic replace: same-directory temp file, then rename(2). Returns whether anything changed. */
function writeIfChanged(file: string, text: string | Buffer, mode: number): boolean {
  const wanted = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  try {
    const same = readFileSync(file).equals(wanted) && (statSync(file).mode & 0o777) === mode;
    if (same) return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const tmp = join(dirname(file), `.${file.slice(dirname(file).length + 1)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, wanted, { mode, flush: true });
    // writeFileSync's mode is filtered by the umask; the binaries must be executable regardless.
    chmodSync(tmp, mode);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return true;
}
