import { describe, expect, it } from 'vitest';
import { run } from '../cli.ts';
import { captureIo } from '../cli-io.ts';
import {
  checkSystem,
  KERNEL_MODULES,
  renderCheckSystem,
  type SystemFacts,
  TOOLS,
} from './node-checksystem.ts';

const allTools = new Set(TOOLS.map((t) => t.name));

function facts(over: Partial<SystemFacts>): SystemFacts {
  return {
    kernelRelease: '6.1.0-18-amd64',
    loadedModules: new Set(),
    builtinModules: '',
    availableModules: '',
    kernelConfig: new Map(),
    iptablesVersion: 'iptables v1.8.9 (nf_tables)\n',
    toolsPresent: allTools,
    ...over,
  };
}

const byItem = (lines: ReturnType<typeof checkSystem>) => new Map(lines.map((l) => [l.item, l]));

describe('node checksystem', () => {
  it('finds modules loaded, built in, or available, from each source', () => {
    const lines = byItem(
      checkSystem(
        facts({
          loadedModules: new Set(['ip_set', 'xt_set']),
          builtinModules: 'kernel/net/netfilter/xt_mark.ko\n',
          availableModules:
            'kernel/net/ipv4/netfilter/ip_tables.ko.xz: kernel/net/netfilter/x_tables.ko.xz\nkernel/drivers/net/vxlan/vxlan.ko.xz:\n',
          kernelConfig: new Map(
            KERNEL_MODULES.filter(
              (m) => !['ip_set', 'xt_set', 'xt_mark', 'ip_tables', 'vxlan'].includes(m.name),
            ).map((m) => [m.config, 'm']),
          ),
        }),
      ),
    );
    expect(lines.get('ip_set')).toMatchObject({ status: 'OK', detail: 'loaded' });
    expect(lines.get('xt_mark')).toMatchObject({ status: 'OK', detail: 'built in' });
    expect(lines.get('ip_tables')).toMatchObject({ status: 'OK', detail: 'available as a module' });
    expect(lines.get('vxlan')).toMatchObject({ status: 'OK', detail: 'available as a module' });
    expect(lines.get('nf_conntrack_netlink')).toMatchObject({
      status: 'OK',
      detail: 'available as a module',
    });
    expect([...lines.values()].every((l) => l.status === 'OK')).toBe(true);
  });

  it('fails on a missing required module or tool and says what provides it', () => {
    const lines = checkSystem(
      facts({
        kernelConfig: new Map(KERNEL_MODULES.filter((m) => m.name !== 'xt_set').map((m) => [m.config, 'y'])),
        toolsPresent: new Set(['ip', 'iptables-restore', 'iptables-save']),
      }),
    );
    const items = byItem(lines);
    expect(items.get('xt_set')).toMatchObject({
      status: 'FAIL',
      detail: 'not found: build the kernel with CONFIG_NETFILTER_XT_SET (y or m)',
    });
    expect(items.get('ipset')).toMatchObject({
      status: 'FAIL',
      detail: 'not installed: apt-get install ipset',
    });
    expect(items.get('conntrack')).toMatchObject({
      status: 'WARNING',
      detail: 'not installed: apt-get install conntrack (optional)',
    });
    const out = renderCheckSystem(lines);
    expect(out).toContain('Checking kernel modules...\n');
    expect(out).toMatch(
      /\t\txt_set +FAIL \(not found: build the kernel with CONFIG_NETFILTER_XT_SET \(y or m\)\)\n/,
    );
    expect(out.endsWith("System doesn't meet one or more minimum systems requirements to run Calico\n")).toBe(
      true,
    );
  });

  it('warns, not fails, when the kernel gives nothing to read about modules', () => {
    const lines = checkSystem(
      facts({
        loadedModules: undefined,
        builtinModules: undefined,
        availableModules: undefined,
        kernelConfig: undefined,
      }),
    );
    const modules = lines.filter((l) => l.section === 'kernel modules');
    expect(new Set(modules.map((l) => l.status))).toEqual(new Set(['WARNING']));
    expect(modules[0]!.detail).toBe('cannot tell: no /proc/modules, module lists or kernel config to read');
    expect(checkSystem(facts({ kernelRelease: '3.2.0' }))[0]).toMatchObject({ status: 'FAIL' });
  });

  it('checks this host and exits 1 exactly when something required is missing', async () => {
    const io = captureIo();
    const code = await run(['node', 'checksystem'], io);
    expect(io.out).toMatch(/^Checking kernel version\.\.\.\n/);
    for (const m of KERNEL_MODULES) expect(io.out).toMatch(new RegExp(`\\t\\t${m.name} +(OK|WARNING|FAIL)`));
    expect(code).toBe(/\bFAIL\b/.test(io.out) ? 1 : 0);
    const bad = captureIo();
    expect(await run(['node', 'checksystem', '--kernel-config', '/nonexistent/config'], bad)).toBe(1);
    expect(bad.err).toBe('cannot read kernel config /nonexistent/config\n');
  });
});
