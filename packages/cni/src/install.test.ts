import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CONFLIST_FILE, InstallError, installCni, pluginExecutable } from './install.ts';

// What tsup.config.ts makes of src/bin/*.ts, cut down to the parts the installer relies on.
const fakeBundle = (plugin: string) =>
  `#!/usr/bin/env node\n"use strict";\n// ${plugin}\nasync function s() { return await import("./standalone.js"); }\n`;

describe('installCni', () => {
  let dir: string;
  let opts: { binDir: string; confDir: string; bundleDir: string; nodePath: string };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'calico-ts-install-'));
    const bundleDir = join(dir, 'dist');
    mkdirSync(bundleDir);
    for (const p of ['calico', 'calico-ipam']) writeFileSync(join(bundleDir, `${p}.cjs`), fakeBundle(p));
    opts = {
      binDir: join(dir, 'opt/cni/bin'),
      confDir: join(dir, 'etc/cni/net.d'),
      bundleDir,
      nodePath: '/usr/local/bin/node',
    };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes both executables with a direct #! line and the conflist, then leaves them alone', () => {
    const first = installCni(opts);
    const files = [
      join(opts.binDir, 'calico'),
      join(opts.binDir, 'calico-ipam'),
      join(opts.confDir, CONFLIST_FILE),
    ];
    expect(first).toEqual({ changed: files, unchanged: [] });

    const calico = readFileSync(files[0]!, 'utf8');
    // From source (as here) the standalone code is the .ts file, run with the source condition.
    expect(calico.split('\n')[0]).toBe('#!/usr/local/bin/node --conditions=@calico-ts/source');
    expect(calico).toContain('// calico\n');
    expect(calico).not.toContain('import("./standalone.js")');
    expect(calico).toMatch(/import\("file:\/\/\/.*\/src\/standalone\.ts"\)/);
    expect(statSync(files[0]!).mode & 0o777).toBe(0o755);
    expect(readFileSync(files[1]!, 'utf8')).toContain('// calico-ipam\n');
    expect(statSync(files[2]!).mode & 0o777).toBe(0o644);

    expect(JSON.parse(readFileSync(files[2]!, 'utf8'))).toEqual({
      name: 'k8s-pod-network',
      cniVersion: '1.0.0',
      cniVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'],
      plugins: [
        { type: 'calico', ipam: { type: 'calico-ipam' } },
        { type: 'portmap', snat: true, capabilities: { portMappings: true } },
      ],
    });

    expect(installCni(opts)).toEqual({ changed: [], unchanged: files });
    // No temp files left behind for a runtime to trip over.
    expect(readdirSync(opts.binDir).sort()).toEqual(['calico', 'calico-ipam']);
    expect(readdirSync(opts.confDir)).toEqual([CONFLIST_FILE]);
  });

  it('rewrites only what differs: content, mode, or options', () => {
    installCni(opts);
    const calico = join(opts.binDir, 'calico');
    writeFileSync(calico, 'stale');
    chmodSync(join(opts.binDir, 'calico-ipam'), 0o644);
    const again = installCni(opts);
    expect(again.changed).toEqual([calico, join(opts.binDir, 'calico-ipam')]);
    expect(statSync(join(opts.binDir, 'calico-ipam')).mode & 0o777).toBe(0o755);

    const conf = join(opts.confDir, CONFLIST_FILE);
    expect(installCni({ ...opts, mtu: 1440 }).changed).toEqual([conf]);
    expect(installCni({ ...opts, nodePath: '/opt/node/bin/node' }).changed).toEqual([
      calico,
      join(opts.binDir, 'calico-ipam'),
      // The conflist is back to no mtu.
      conf,
    ]);
  });

  it('puts the options into the conflist', () => {
    installCni({
      ...opts,
      name: 'pods',
      cniVersion: '1.1.0',
      cniVersions: ['1.0.0', '1.1.0'],
      mtu: 1410,
      agentSocket: '/run/calico/cni.sock',
      standalone: true,
      calicoConfig: { etcd_endpoints: 'http://127.0.0.1:2379', nodename: 'n1' },
      chained: [{ type: 'bandwidth', capabilities: { bandwidth: true } }],
    });
    expect(JSON.parse(readFileSync(join(opts.confDir, CONFLIST_FILE), 'utf8'))).toEqual({
      name: 'pods',
      cniVersion: '1.1.0',
      cniVersions: ['1.0.0', '1.1.0'],
      plugins: [
        {
          type: 'calico',
          mtu: 1410,
          agent_socket: '/run/calico/cni.sock',
          standalone: true,
          ipam: { type: 'calico-ipam' },
          etcd_endpoints: 'http://127.0.0.1:2379',
          nodename: 'n1',
        },
        { type: 'bandwidth', capabilities: { bandwidth: true } },
      ],
    });
  });

  it('writes an operator-given conflist as is', () => {
    const given = { name: 'op-net', cniVersion: '1.0.0', plugins: [{ type: 'calico', mtu: 1400 }] };
    installCni({ ...opts, conflist: given, mtu: 9000 });
    expect(JSON.parse(readFileSync(join(opts.confDir, CONFLIST_FILE), 'utf8'))).toEqual(given);
  });

  it('refuses what cannot work, naming the file or value', () => {
    expect(() => installCni({ ...opts, nodePath: 'node' })).toThrow(/absolute path/);
    expect(() => installCni({ ...opts, nodePath: '/my tools/node' })).toThrow(/without whitespace/);
    expect(() => installCni({ ...opts, nodePath: `/${'n'.repeat(300)}` })).toThrow(/at most 255/);
    expect(() => installCni({ ...opts, bundleDir: join(dir, 'nowhere') })).toThrow(
      expect.objectContaining({ code: 'BUNDLE_MISSING', message: expect.stringMatching(/calico\.cjs/) }),
    );
    writeFileSync(join(opts.bundleDir, 'calico.cjs'), '#!/usr/bin/env node\n"use strict";\n');
    expect(() => installCni(opts)).toThrow(InstallError);
  });

  it("pluginExecutable replaces the bundle's #! line and points the standalone import at the package", () => {
    expect(pluginExecutable(fakeBundle('x'), '#!/n', 'file:///p/dist/standalone.js')).toBe(
      '#!/n\n"use strict";\n// x\nasync function s() { return await import("file:///p/dist/standalone.js"); }\n',
    );
  });
});
