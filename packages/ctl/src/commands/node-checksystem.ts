/**
 * `calico node checksystem`: whether this host can run calico-node — kernel version, the kernel
 * modules Felix's iptables rules and the VXLAN/IPIP devices need, the iptables backend and the
 * tools calico-ts runs — and for each thing missing, what provides it. The verdict is a pure
 * function of facts read from the host (`readSystemFacts`), so it is tested on given facts too.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { release } from 'node:os';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import type { CommandContext } from '../command-context.ts';

const run = promisify(execFile);

/** A kernel module calico-node uses, and the kernel config option that builds it. */
interface ModuleRequirement {
  name: string;
  config: string;
  required: boolean;
}

// calicoctl's list (checksystem.go), plus the tunnel devices calico-ts programs.
export const KERNEL_MODULES: readonly ModuleRequirement[] = [
  { name: 'ip_set', config: 'CONFIG_IP_SET', required: true },
  { name: 'ip_tables', config: 'CONFIG_IP_NF_IPTABLES', required: true },
  { name: 'ip6_tables', config: 'CONFIG_IP6_NF_IPTABLES', required: false },
  { name: 'xt_set', config: 'CONFIG_NETFILTER_XT_SET', required: true },
  { name: 'xt_mark', config: 'CONFIG_NETFILTER_XT_MARK', required: true },
  { name: 'xt_multiport', config: 'CONFIG_NETFILTER_XT_MATCH_MULTIPORT', required: true },
  { name: 'xt_conntrack', config: 'CONFIG_NETFILTER_XT_MATCH_CONNTRACK', required: true },
  { name: 'xt_addrtype', config: 'CONFIG_NETFILTER_XT_MATCH_ADDRTYPE', required: true },
  { name: 'xt_rpfilter', config: 'CONFIG_IP_NF_MATCH_RPFILTER', required: true },
  { name: 'ipt_REJECT', config: 'CONFIG_IP_NF_TARGET_REJECT', required: true },
  { name: 'xt_ipvs', config: 'CONFIG_NETFILTER_XT_MATCH_IPVS', required: false },
  { name: 'nf_conntrack_netlink', config: 'CONFIG_NF_CT_NETLINK', required: true },
  { name: 'vxlan', config: 'CONFIG_VXLAN', required: true },
  { name: 'ipip', config: 'CONFIG_NET_IPIP', required: false },
  { name: 'xt_bpf', config: 'CONFIG_NETFILTER_XT_MATCH_BPF', required: false },
  { name: 'xt_u32', config: 'CONFIG_NETFILTER_XT_MATCH_U32', required: false },
];

/** Commands calico-ts runs, and the Debian package that has each. */
export const TOOLS: readonly { name: string; pkg: string; required: boolean }[] = [
  { name: 'ip', pkg: 'iproute2', required: true },
  { name: 'iptables-restore', pkg: 'iptables', required: true },
  { name: 'iptables-save', pkg: 'iptables', required: true },
  { name: 'ipset', pkg: 'ipset', required: true },
  { name: 'conntrack', pkg: 'conntrack', required: false },
];

/** What was read from the host. Absent sources are undefined, not empty. */
export interface SystemFacts {
  kernelRelease: string;
  /** Names in /proc/modules. */
  loadedModules: ReadonlySet<string> | undefined;
  /** Module file paths from modules.builtin and modules.dep. */
  builtinModules: string | undefined;
  availableModules: string | undefined;
  /** `CONFIG_X` → `y` | `m` from the kernel config. */
  kernelConfig: ReadonlyMap<string, string> | undefined;
  /** `iptables --version`, undefined when iptables is not installed. */
  iptablesVersion: string | undefined;
  toolsPresent: ReadonlySet<string>;
}

export type CheckStatus = 'OK' | 'WARNING' | 'FAIL';

export interface CheckLine {
  section: string;
  item: string;
  status: CheckStatus;
  detail: string;
}

function kernelAtLeast(releaseText: string, min: readonly number[]): boolean {
  const parts = (releaseText.match(/^(\d+)\.(\d+)(?:\.(\d+))?/) ?? []).slice(1).map((p) => Number(p ?? 0));
  for (let i = 0; i < min.length; i++) {
    const v = parts[i] ?? 0;
    if (v !== min[i]) return v > min[i]!;
  }
  return true;
}

function moduleFileListed(list: string | undefined, name: string): boolean {
  if (!list) return false;
  const alt = name.replaceAll('_', '-');
  return new RegExp(`/(${name}|${alt})\\.ko(\\.[a-z]+)?(:|\\s|$)`, 'm').test(list);
}

function moduleLine(m: ModuleRequirement, f: SystemFacts): CheckLine {
  const ok = (detail: string): CheckLine => ({
    section: 'kernel modules',
    item: m.name,
    status: 'OK',
    detail,
  });
  if (f.loadedModules?.has(m.name)) return ok('loaded');
  if (moduleFileListed(f.builtinModules, m.name)) return ok('built in');
  const config = f.kernelConfig?.get(m.config);
  if (config === 'y') return ok(`built in (${m.config}=y)`);
  if (config === 'm' || moduleFileListed(f.availableModules, m.name)) return ok('available as a module');
  const known =
    f.loadedModules !== undefined || f.kernelConfig !== undefined || f.availableModules !== undefined;
  const status: CheckStatus = m.required && known ? 'FAIL' : 'WARNING';
  const why = known
    ? `not found: build the kernel with ${m.config} (y or m)${m.required ? '' : '; optional'}`
    : 'cannot tell: no /proc/modules, module lists or kernel config to read';
  return { section: 'kernel modules', item: m.name, status, detail: why };
}

/** The verdict on each requirement. */
export function checkSystem(f: SystemFacts): CheckLine[] {
  const lines: CheckLine[] = [];
  lines.push({
    section: 'kernel version',
    item: f.kernelRelease,
    status: kernelAtLeast(f.kernelRelease, [3, 10]) ? 'OK' : 'FAIL',
    detail: 'at least 3.10 for VXLAN and ipset',
  });
  for (const m of KERNEL_MODULES) lines.push(moduleLine(m, f));
  const backend = f.iptablesVersion?.match(/\((nf_tables|legacy)\)/)?.[1] ?? 'legacy';
  lines.push(
    f.iptablesVersion
      ? { section: 'iptables', item: f.iptablesVersion.trim(), status: 'OK', detail: `backend ${backend}` }
      : {
          section: 'iptables',
          item: 'iptables',
          status: 'FAIL',
          detail: 'not installed: apt-get install iptables',
        },
  );
  for (const t of TOOLS) {
    const present = f.toolsPresent.has(t.name);
    lines.push({
      section: 'tools',
      item: t.name,
      status: present ? 'OK' : t.required ? 'FAIL' : 'WARNING',
      detail: present
        ? `from ${t.pkg}`
        : `not installed: apt-get install ${t.pkg}${t.required ? '' : ' (optional)'}`,
    });
  }
  return lines;
}

export function renderCheckSystem(lines: readonly CheckLine[]): string {
  let out = '';
  let section = '';
  const width = Math.max(...lines.map((l) => l.item.length)) + 4;
  for (const l of lines) {
    if (l.section !== section) {
      section = l.section;
      out += `Checking ${section}...\n`;
    }
    out += `\t\t${l.item.padEnd(width)}${l.status}${l.detail ? ` (${l.detail})` : ''}\n`;
  }
  const failed = lines.some((l) => l.status === 'FAIL');
  out += failed
    ? "System doesn't meet one or more minimum systems requirements to run Calico\n"
    : 'System meets minimum system requirements to run Calico!\n';
  return out;
}

async function text(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

function parseConfig(body: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of body.matchAll(/^(CONFIG_[A-Z0-9_]+)=(.*)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

async function toolPresent(name: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${name}`]).then(
    () => true,
    () => false,
  );
}

/** Reads the facts from this host; `kernelConfigFile` overrides where the kernel config is read. */
export async function readSystemFacts(kernelConfigFile?: string): Promise<SystemFacts> {
  const rel = release();
  const modules = await text('/proc/modules');
  let config: string | undefined;
  if (kernelConfigFile) {
    config = await text(kernelConfigFile);
    if (config === undefined) throw new CliError(`cannot read kernel config ${kernelConfigFile}`);
  } else {
    const gz = await readFile('/proc/config.gz').catch(() => undefined);
    config = gz ? gunzipSync(gz).toString('utf8') : await text(`/boot/config-${rel}`);
  }
  const iptables = await run('iptables', ['--version']).then(
    (r) => r.stdout,
    () => undefined,
  );
  const present = new Set<string>();
  await Promise.all(TOOLS.map(async (t) => (await toolPresent(t.name)) && present.add(t.name)));
  return {
    kernelRelease: rel,
    loadedModules:
      modules === undefined ? undefined : new Set(modules.split('\n').map((l) => l.split(' ')[0]!)),
    builtinModules: await text(`/lib/modules/${rel}/modules.builtin`),
    availableModules: await text(`/lib/modules/${rel}/modules.dep`),
    kernelConfig: config === undefined ? undefined : parseConfig(config),
    iptablesVersion: iptables,
    toolsPresent: present,
  };
}

export function nodeCheckSystemCommand(ctx: CommandContext): Command {
  return new Command('checksystem')
    .summary('Check that this host can run calico-node: kernel, modules, iptables and tools')
    .option(
      '--kernel-config <FILE>',
      'read the kernel config from FILE (default /proc/config.gz or /boot/config-<release>)',
    )
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.io.stdout(s), writeErr: (s) => ctx.io.stderr(s) })
    .action(async (opts: { kernelConfig?: string }) => {
      const lines = checkSystem(await readSystemFacts(opts.kernelConfig));
      ctx.io.stdout(renderCheckSystem(lines));
      const failed = lines.filter((l) => l.status === 'FAIL');
      if (failed.length > 0) {
        throw new CliError(`missing: ${failed.map((l) => l.item).join(', ')}`);
      }
    });
}
