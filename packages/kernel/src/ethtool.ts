/**
 * A device's offload features (`ethtool -k` / `ethtool -K`), read and set through the ethtool
 * binary inside a namespace. Features are named as ethtool prints them (`tx-checksum-ip-generic`,
 * `generic-receive-offload`, ...). The binary is optional on a host: when it is missing the
 * error says so with errno ENOENT, so a caller can go on without it.
 */
import { KernelError } from './errors.ts';
import type { NetNamespace } from './namespace.ts';
import { type CommandResult, execInNamespace } from './process.ts';

export interface DeviceFeature {
  on: boolean;
  /** The driver does not let it change (`[fixed]`). */
  fixed: boolean;
}

/**
 * Parses `ethtool -k <dev>` output: one `name: on|off [fixed]` per line after the header;
 * the indented lines are the sub-features of the line above them and are listed on their own.
 */
export function parseDeviceFeatures(output: string): Map<string, DeviceFeature> {
  const out = new Map<string, DeviceFeature>();
  for (const line of output.split('\n')) {
    const m = /^\s*([a-z0-9-]+): (on|off)( \[fixed\])?/.exec(line);
    if (m) out.set(m[1] as string, { on: m[2] === 'on', fixed: m[3] !== undefined });
  }
  return out;
}

async function ethtool(
  ns: NetNamespace | undefined,
  args: string[],
  operation: string,
): Promise<CommandResult> {
  let r: CommandResult;
  try {
    r = await execInNamespace(ns, 'ethtool', args);
  } catch (e) {
    // Spawned directly (no namespace): a missing binary is a spawn error.
    if (e instanceof KernelError && e.errno === 'ENOENT')
      throw new KernelError('Process', {
        errno: 'ENOENT',
        operation: `${operation}: ethtool is not installed`,
        namespace: ns?.name,
        cause: e,
      });
    throw e;
  }
  // Through `ip netns exec` the missing binary is an exec failure of the child.
  if (r.exitCode !== 0 && /exec of "ethtool" failed: No such file/.test(r.stderr))
    throw new KernelError('Process', {
      errno: 'ENOENT',
      operation: `${operation}: ethtool is not installed`,
      namespace: ns?.name,
    });
  if (r.exitCode !== 0)
    throw new KernelError('Process', {
      operation: `${operation}: ethtool ${args.join(' ')} exited ${r.exitCode}: ${r.stderr.trim()}`,
      namespace: ns?.name,
    });
  return r;
}

/** The offload features of `dev` as ethtool reports them. */
export async function readDeviceFeatures(
  dev: string,
  ns?: NetNamespace,
): Promise<Map<string, DeviceFeature>> {
  const r = await ethtool(ns, ['-k', dev], `reading the features of ${dev}`);
  return parseDeviceFeatures(r.stdout);
}

/**
 * Sets features of `dev` (`ethtool -K dev name on|off ...`). The kernel may change dependent
 * features with them (turning tx checksumming off also turns TSO off, and back on with it).
 */
export async function setDeviceFeatures(
  dev: string,
  features: Readonly<Record<string, boolean>>,
  ns?: NetNamespace,
): Promise<void> {
  const names = Object.keys(features);
  if (names.length === 0) return;
  for (const n of names)
    if (!/^[a-z0-9-]+$/.test(n))
      throw new KernelError('Invalid', {
        operation: `setting features of ${dev}: feature name ${JSON.stringify(n)} is not an ethtool feature name (lower-case letters, digits, dashes)`,
      });
  const args = ['-K', dev, ...names.flatMap((n) => [n, features[n] ? 'on' : 'off'])];
  await ethtool(ns, args, `setting features of ${dev}`);
}
