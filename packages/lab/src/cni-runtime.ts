/**
 * A container runtime's side of CNI (a small libcni): builds each plugin's stdin from a conflist
 * the way libcni does (name, cniVersion, runtimeConfig, prevResult), sets the CNI_* variables,
 * execs the plugin binaries found on CNI_PATH, runs ADD forward and DEL backward with the final
 * result. LabCluster (`calico cluster up`), the tests and the benchmarks drive pods through it.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export interface Invocation {
  command: 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  path: string[];
  /** Extra or overriding environment (set a key to undefined to drop it). */
  env?: Record<string, string | undefined>;
  /** Run the plugin inside this named network namespace (the node the runtime runs on). */
  hostNetns?: string;
}

export interface PluginAnswer {
  code: number;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
  ms: number;
}

export function invokePlugin(type: string, inv: Invocation, stdin: string): Promise<PluginAnswer> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('CNI_')) env[k] = v;
  const set = (k: string, v: string | undefined) => {
    if (v !== undefined) env[k] = v;
  };
  set('CNI_COMMAND', inv.command);
  set('CNI_CONTAINERID', inv.containerId);
  set('CNI_NETNS', inv.netns);
  set('CNI_IFNAME', inv.ifname);
  set('CNI_ARGS', inv.args);
  set('CNI_PATH', inv.path.join(':'));
  for (const [k, v] of Object.entries(inv.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const bin = join(inv.path[0]!, type);
    const [cmd, argv] = inv.hostNetns ? ['ip', ['netns', 'exec', inv.hostNetns, bin]] : [bin, []];
    const child = spawn(cmd, argv, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code: code ?? -1, stdout, stderr, json, ms: performance.now() - started });
    });
    child.stdin.end(stdin);
  });
}

export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: Record<string, unknown>[];
}

/**
 * libcni's per-plugin config: the plugin object plus the list's name/version, prevResult, and
 * runtimeConfig holding the capability arguments the plugin declares (CNI CONVENTIONS.md).
 */
export function pluginConfig(
  list: Conflist,
  plugin: Record<string, unknown>,
  prevResult?: unknown,
  capabilityArgs: Record<string, unknown> = {},
): string {
  const { capabilities, ...rest } = plugin;
  const caps = (capabilities ?? {}) as Record<string, boolean>;
  const runtimeConfig = Object.fromEntries(Object.entries(capabilityArgs).filter(([k]) => caps[k]));
  return JSON.stringify({
    ...rest,
    cniVersion: list.cniVersion,
    name: list.name,
    ...(Object.keys(runtimeConfig).length > 0 ? { runtimeConfig } : {}),
    ...(prevResult ? { prevResult } : {}),
  });
}

export class PluginFailedError extends Error {
  readonly answer: PluginAnswer;
  readonly plugin: string;
  constructor(plugin: string, answer: PluginAnswer) {
    super(`${plugin} failed (exit ${answer.code}): ${answer.stdout || answer.stderr}`);
    this.answer = answer;
    this.plugin = plugin;
  }
}

type Target = Omit<Invocation, 'command' | 'path'> & { capabilityArgs?: Record<string, unknown> };

/** ADD through every plugin in order; returns the final result (what a runtime caches). */
export async function addNetworkList(
  list: Conflist,
  target: Target,
  path: string[],
): Promise<Record<string, unknown>> {
  let prev: Record<string, unknown> | undefined;
  for (const p of list.plugins) {
    const a = await invokePlugin(
      String(p['type']),
      { ...target, command: 'ADD', path },
      pluginConfig(list, p, prev, target.capabilityArgs),
    );
    if (a.code !== 0) throw new PluginFailedError(String(p['type']), a);
    if (!a.json) throw new PluginFailedError(String(p['type']), a);
    prev = a.json;
  }
  return prev!;
}

/** DEL through the plugins in reverse order, each given the final ADD result (CNI SPEC §DEL). */
export async function delNetworkList(
  list: Conflist,
  target: Target,
  path: string[],
  result?: unknown,
): Promise<void> {
  for (const p of [...list.plugins].reverse()) {
    const a = await invokePlugin(
      String(p['type']),
      { ...target, command: 'DEL', path },
      pluginConfig(list, p, result, target.capabilityArgs),
    );
    if (a.code !== 0) throw new PluginFailedError(String(p['type']), a);
  }
}

export async function checkNetworkList(
  list: Conflist,
  target: Target,
  path: string[],
  result: unknown,
): Promise<void> {
  for (const p of list.plugins) {
    const a = await invokePlugin(
      String(p['type']),
      { ...target, command: 'CHECK', path },
      pluginConfig(list, p, result, target.capabilityArgs),
    );
    if (a.code !== 0) throw new PluginFailedError(String(p['type']), a);
  }
}
