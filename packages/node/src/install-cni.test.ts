import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CNI_NODE_RUNTIME, cniDistDir, cniInstallSettings, runCniInstall } from './install-cni.ts';

// What @calico-ts/cni's build makes of its plugins, cut down to what the installer relies on.
const fakeBundle = (plugin: string) => `"use strict";\n// ${plugin}\nimport("./standalone.js");\n`;

describe('cniInstallSettings', () => {
  it('is off unless CALICO_INSTALL_CNI is true', () => {
    expect(cniInstallSettings({}, 'n1')).toBeUndefined();
    expect(cniInstallSettings({ CALICO_INSTALL_CNI: 'false' }, 'n1')).toBeUndefined();
    expect(cniInstallSettings({ CALICO_INSTALL_CNI: 'true' }, 'n1')).toEqual({
      binDir: '/host/opt/cni/bin',
      confDir: '/host/etc/cni/net.d',
      hostBinDir: '/opt/cni/bin',
      nodePath: undefined,
      conflist: undefined,
      mtu: undefined,
      etcdEndpoints: undefined,
    });
  });

  it("fills Calico's placeholders in CNI_NETWORK_CONFIG", () => {
    const settings = cniInstallSettings(
      {
        CALICO_INSTALL_CNI: 'true',
        CNI_MTU: '1410',
        ETCD_ENDPOINTS: 'http://10.0.0.1:2379',
        CNI_NETWORK_CONFIG:
          '{"name":"k8s-pod-network","cniVersion":"1.0.0","plugins":[{"type":"calico","mtu":__CNI_MTU__,"etcd_endpoints":"__ETCD_ENDPOINTS__","nodename":"__KUBERNETES_NODE_NAME__"}]}',
      },
      'node-a',
    );
    expect(settings?.conflist).toEqual({
      name: 'k8s-pod-network',
      cniVersion: '1.0.0',
      plugins: [{ type: 'calico', mtu: 1410, etcd_endpoints: 'http://10.0.0.1:2379', nodename: 'node-a' }],
    });
  });

  it('rejects bad values, naming the variable', () => {
    const on = { CALICO_INSTALL_CNI: 'true' };
    expect(() => cniInstallSettings({ CALICO_INSTALL_CNI: 'maybe' }, 'n')).toThrow(
      /CALICO_INSTALL_CNI: "maybe"/,
    );
    expect(() => cniInstallSettings({ ...on, CNI_MTU: '12' }, 'n')).toThrow(
      /CNI_MTU: "12" — expected an integer/,
    );
    expect(() => cniInstallSettings({ ...on, CNI_NODE_PATH: 'node' }, 'n')).toThrow(/CNI_NODE_PATH: "node"/);
    expect(() => cniInstallSettings({ ...on, CNI_NETWORK_CONFIG: '{"plugins":' }, 'n')).toThrow(
      /CNI_NETWORK_CONFIG: not JSON/,
    );
    expect(() => cniInstallSettings({ ...on, CNI_NETWORK_CONFIG: '{"type":"calico"}' }, 'n')).toThrow(
      /CNI_NETWORK_CONFIG: expected a network config list/,
    );
  });
});

describe('runCniInstall', () => {
  let dir: string;
  let bundleDir: string;
  let runtime: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'calico-ts-node-install-'));
    bundleDir = join(dir, 'dist');
    mkdirSync(bundleDir);
    for (const p of ['calico', 'calico-ipam']) writeFileSync(join(bundleDir, `${p}.cjs`), fakeBundle(p));
    // Where @calico-ts/cni builds a compiled relay, the installer also wants it; a stand-in with
    // its settings marker is enough for what the installer checks.
    writeFileSync(join(bundleDir, 'cni-relay'), `relay\nCALICO-CNI-RELAY-CONF\n${'\0'.repeat(490)}`);
    runtime = join(dir, 'node');
    writeFileSync(runtime, 'pretend node binary\n');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const settings = () => {
    const s = cniInstallSettings(
      {
        CALICO_INSTALL_CNI: 'true',
        CNI_INSTALL_BIN_DIR: join(dir, 'host/opt/cni/bin'),
        CNI_INSTALL_NET_DIR: join(dir, 'host/etc/cni/net.d'),
        ETCD_ENDPOINTS: 'http://10.0.0.1:2379',
      },
      'n1',
    );
    if (!s) throw new Error('install step should be on');
    return s;
  };

  it('copies the runtime next to the plugins, points their #! at its host path, and is idempotent', () => {
    const s = settings();
    const first = runCniInstall(s, { runtime, bundleDir });
    expect(first.nodePath).toBe(`/opt/cni/bin/${CNI_NODE_RUNTIME}`);
    const runtimeCopy = join(s.binDir, CNI_NODE_RUNTIME);
    const conflistFile = join(s.confDir, '10-calico.conflist');
    expect(first.changed).toEqual(
      expect.arrayContaining([
        runtimeCopy,
        join(s.binDir, 'calico'),
        join(s.binDir, 'calico-ipam'),
        conflistFile,
      ]),
    );
    const installed = readdirSync(s.binDir);
    expect(installed).toEqual(expect.arrayContaining(['calico', 'calico-ipam', CNI_NODE_RUNTIME]));
    expect(installed.filter((f) => f.startsWith('.'))).toEqual([]);
    expect(readFileSync(runtimeCopy, 'utf8')).toBe('pretend node binary\n');
    expect(statSync(runtimeCopy).mode & 0o777).toBe(0o755);
    // The Node plugin script: the plugin itself, or the shim beside a compiled relay.
    const script = installed.includes('calico.cjs') ? 'calico.cjs' : 'calico';
    expect(readFileSync(join(s.binDir, script), 'utf8').split('\n')[0]).toMatch(
      new RegExp(`^#!/opt/cni/bin/${CNI_NODE_RUNTIME}( |$)`),
    );
    const conflist = JSON.parse(readFileSync(join(s.confDir, '10-calico.conflist'), 'utf8'));
    expect(conflist.plugins[0]).toMatchObject({ type: 'calico', etcd_endpoints: 'http://10.0.0.1:2379' });

    const again = runCniInstall(s, { runtime, bundleDir });
    expect(again.changed).toEqual([]);
    expect(again.unchanged.sort()).toEqual([...first.changed].sort());

    writeFileSync(runtime, 'a newer node binary\n');
    expect(runCniInstall(s, { runtime, bundleDir }).changed).toEqual([runtimeCopy]);
    expect(readdirSync(s.binDir).sort()).toEqual(installed.sort());
  });

  it('uses CNI_NODE_PATH instead of copying the runtime', () => {
    const s = { ...settings(), nodePath: '/usr/bin/node' };
    const out = runCniInstall(s, { runtime, bundleDir });
    expect(out.nodePath).toBe('/usr/bin/node');
    expect(readdirSync(s.binDir)).not.toContain(CNI_NODE_RUNTIME);
    expect(readdirSync(s.binDir)).toEqual(expect.arrayContaining(['calico', 'calico-ipam']));
  });
});

describe('cniDistDir', () => {
  it("is @calico-ts/cni's dist/ found by module resolution, not a path beside this module", () => {
    const here = dirname(fileURLToPath(import.meta.url));
    expect(cniDistDir()).toBe(join(here, '..', '..', 'cni', 'dist'));
  });
});
