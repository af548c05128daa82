/**
 * calico-node's install step (the job of Calico's install-cni container): at start, put the CNI
 * plugins and the network config list into the host's CNI directories, which the DaemonSet mounts
 * at /host/opt/cni/bin and /host/etc/cni/net.d. Every file is written whole and renamed into place
 * (the plugins and conflist by @calico-ts/cni's installCni, the Node runtime here), and a file that
 * already has the wanted content is left alone, so a restart changes nothing on the host.
 *
 * The plugins are Node programs; a host need not have Node, so the container's own runtime is
 * copied next to them (CNI_NODE_PATH names an existing one instead) and their `#!` line points at
 * it by its path on the host (CNI_HOST_BIN_DIR).
 */
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type InstallCniResult, installCni } from '@calico-ts/cni';
import { ConfigError } from './config.ts';

/** The Node runtime's file name in the CNI bin directory. */
export const CNI_NODE_RUNTIME = 'calico-node-runtime';

export interface CniInstallSettings {
  /** Where the bin directory is mounted in this container. */
  binDir: string;
  /** Where the network config directory is mounted in this container. */
  confDir: string;
  /** The bin directory's path on the host: what the plugins' `#!` line names. */
  hostBinDir: string;
  /** A Node binary that exists on the host; when set, the runtime is not copied. */
  nodePath: string | undefined;
  /** The operator's conflist (CNI_NETWORK_CONFIG with its placeholders filled), if given. */
  conflist: Record<string, unknown> | undefined;
  mtu: number | undefined;
  etcdEndpoints: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The install step's settings from the environment, or undefined when CALICO_INSTALL_CNI is not
 * true. CNI_NETWORK_CONFIG's placeholders are Calico's: __ETCD_ENDPOINTS__, __CNI_MTU__ and
 * __KUBERNETES_NODE_NAME__.
 */
export function cniInstallSettings(env: Env, nodeName: string): CniInstallSettings | undefined {
  const enabled = (env['CALICO_INSTALL_CNI'] ?? '').trim();
  if (enabled === '' || /^(false|0|no|off)$/i.test(enabled)) return undefined;
  if (!/^(true|1|yes|on)$/i.test(enabled)) {
    throw new ConfigError(`CALICO_INSTALL_CNI: ${JSON.stringify(enabled)} — expected true or false`);
  }
  let mtu: number | undefined;
  const mtuText = env['CNI_MTU'];
  if (mtuText !== undefined && mtuText !== '') {
    mtu = Number(mtuText);
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
      throw new ConfigError(`CNI_MTU: ${JSON.stringify(mtuText)} — expected an integer from 68 to 65535`);
    }
  }
  const etcdEndpoints = env['ETCD_ENDPOINTS'] || undefined;
  const hostBinDir = env['CNI_HOST_BIN_DIR'] || '/opt/cni/bin';
  const nodePath = env['CNI_NODE_PATH'] || undefined;
  for (const [name, value] of [
    ['CNI_HOST_BIN_DIR', hostBinDir],
    ['CNI_NODE_PATH', nodePath],
  ] as const) {
    if (value !== undefined && !value.startsWith('/')) {
      throw new ConfigError(`${name}: ${JSON.stringify(value)} — expected an absolute path`);
    }
  }
  return {
    binDir: env['CNI_INSTALL_BIN_DIR'] || '/host/opt/cni/bin',
    confDir: env['CNI_INSTALL_NET_DIR'] || '/host/etc/cni/net.d',
    hostBinDir,
    nodePath,
    conflist: networkConfig(env['CNI_NETWORK_CONFIG'], { etcdEndpoints, mtu, nodeName }),
    mtu,
    etcdEndpoints,
  };
}

function networkConfig(
  template: string | undefined,
  values: { etcdEndpoints: string | undefined; mtu: number | undefined; nodeName: string },
): Record<string, unknown> | undefined {
  if (template === undefined || template.trim() === '') return undefined;
  const text = template
    .replaceAll('__ETCD_ENDPOINTS__', values.etcdEndpoints ?? '')
    .replaceAll('__CNI_MTU__', String(values.mtu ?? 1500))
    .replaceAll('__KUBERNETES_NODE_NAME__', values.nodeName);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`CNI_NETWORK_CONFIG: not JSON once filled in (${(err as Error).message})`);
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    !Array.isArray((parsed as { plugins?: unknown }).plugins)
  ) {
    throw new ConfigError(
      'CNI_NETWORK_CONFIG: expected a network config list, an object with a "plugins" array',
    );
  }
  return parsed as Record<string, unknown>;
}

export interface CniInstallOutcome extends InstallCniResult {
  /** The plugins' interpreter on the host. */
  nodePath: string;
}

/**
 * @calico-ts/cni's dist/ (the plugin bundles, the relay, standalone.js), found through module
 * resolution at run time: in calico-node's one-file bundle the cni code is not beside its dist/,
 * so its own default (the directory of its module) would point at calico-node's.
 */
export function cniDistDir(): string {
  const entry = fileURLToPath(import.meta.resolve('@calico-ts/cni'));
  // From source (the @calico-ts/source condition) the entry is src/index.ts.
  return entry.endsWith('.ts') ? join(dirname(entry), '..', 'dist') : dirname(entry);
}

/**
 * Runs the install step. `runtime` is the Node binary copied to the host (this process's own);
 * `bundleDir` where the built plugins are (@calico-ts/cni's dist/ by default).
 */
export function runCniInstall(
  settings: CniInstallSettings,
  { runtime = process.execPath, bundleDir }: { runtime?: string; bundleDir?: string } = {},
): CniInstallOutcome {
  const changed: string[] = [];
  const unchanged: string[] = [];
  let nodePath = settings.nodePath;
  if (nodePath === undefined) {
    mkdirSync(settings.binDir, { recursive: true });
    const target = join(settings.binDir, CNI_NODE_RUNTIME);
    (copyIfChanged(runtime, target) ? changed : unchanged).push(target);
    nodePath = join(settings.hostBinDir, CNI_NODE_RUNTIME);
  }
  const result = installCni({
    binDir: settings.binDir,
    confDir: settings.confDir,
    nodePath,
    bundleDir: bundleDir ?? cniDistDir(),
    ...(settings.conflist ? { conflist: settings.conflist } : {}),
    ...(settings.mtu !== undefined ? { mtu: settings.mtu } : {}),
    ...(settings.etcdEndpoints ? { calicoConfig: { etcd_endpoints: settings.etcdEndpoints } } : {}),
  });
  return {
    changed: [...changed, ...result.changed],
    unchanged: [...unchanged, ...result.unchanged],
    nodePath,
  };
}

function digest(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Same-directory temp file, then rename(2): a runtime never execs half a binary. */
function copyIfChanged(source: string, target: string): boolean {
  try {
    const same =
      statSync(target).size === statSync(source).size &&
      (statSync(target).mode & 0o777) === 0o755 &&
      digest(target) === digest(source);
    if (same) return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  try {
    copyFileSync(source, tmp);
    chmodSync(tmp, 0o755);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return true;
}
