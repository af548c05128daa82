/**
 * A container runtime's side of CNI, for tests: builds each plugin's stdin from a conflist the way
 * libcni does (name, cniVersion, runtimeConfig, prevResult), sets the CNI_* variables, execs the
 * plugin binaries found on CNI_PATH, runs ADD forward and DEL backward with the final result, and
 * checks every answer against the spec's result and error shapes.
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

export class CniError extends Error {
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
    if (a.code !== 0) throw new CniError(String(p['type']), a);
    assertSuccessResult(a.json, list.cniVersion);
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
    if (a.code !== 0) throw new CniError(String(p['type']), a);
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
    if (a.code !== 0) throw new CniError(String(p['type']), a);
  }
}

/** CNI SPEC §"Success": the shape every ADD result must have. Throws naming the first deviation. */
export function assertSuccessResult(json: unknown, version: string): void {
  const fail = (why: string): never => {
    throw new Error(`result does not follow the CNI spec: ${why}: ${JSON.stringify(json)}`);
  };
  if (typeof json !== 'object' || json === null) fail('not an object');
  const r = json as Record<string, unknown>;
  if (r['cniVersion'] !== version) fail(`cniVersion ${String(r['cniVersion'])} != ${version}`);
  const ifaces = r['interfaces'];
  if (ifaces !== undefined) {
    if (!Array.isArray(ifaces)) fail('interfaces is not a list');
    for (const i of ifaces as Record<string, unknown>[]) {
      if (typeof i['name'] !== 'string' || i['name'] === '') fail('interface without name');
      if (i['mac'] !== undefined && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(String(i['mac'])))
        fail(`bad mac ${String(i['mac'])}`);
    }
  }
  const ips = r['ips'];
  if (ips !== undefined) {
    if (!Array.isArray(ips)) fail('ips is not a list');
    for (const ip of ips as Record<string, unknown>[]) {
      if (typeof ip['address'] !== 'string' || !/\/\d+$/.test(ip['address'])) fail('ip address is not CIDR');
      const idx = ip['interface'];
      if (
        idx !== undefined &&
        (typeof idx !== 'number' || !Array.isArray(ifaces) || idx >= (ifaces as unknown[]).length)
      ) {
        fail(`ip interface index ${String(idx)} out of range`);
      }
      if (version.startsWith('0.') && ip['version'] !== (String(ip['address']).includes(':') ? '6' : '4')) {
        fail('pre-1.0 result needs ips[].version');
      }
    }
  }
  const routes = r['routes'];
  if (
    routes !== undefined &&
    (!Array.isArray(routes) ||
      (routes as Record<string, unknown>[]).some((x) => typeof x['dst'] !== 'string'))
  ) {
    fail('routes must be a list of {dst}');
  }
}

/** CNI SPEC §"Error": `{cniVersion, code, msg, details?}` on stdout. */
export function assertErrorResult(answer: PluginAnswer, code: number): void {
  if (answer.code === 0) throw new Error(`expected failure with code ${code}, got success: ${answer.stdout}`);
  const j = answer.json;
  if (!j) throw new Error(`error output is not JSON: stdout=${answer.stdout} stderr=${answer.stderr}`);
  if (typeof j['cniVersion'] !== 'string' || typeof j['msg'] !== 'string') {
    throw new Error(`error output lacks cniVersion/msg: ${answer.stdout}`);
  }
  if (j['code'] !== code)
    throw new Error(`expected code ${code}, got ${String(j['code'])}: ${answer.stdout}`);
}
