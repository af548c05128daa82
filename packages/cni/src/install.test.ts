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
import { CONFLIST_FILE, InstallError, installCni, pluginExecutable, relayExecutable } from './install.ts';

// What tsup.config.ts makes of src/bin/*.ts, cut down to the parts the installer relies on.
const fakeBundle = (plugin: string) =>
  `#!/usr/bin/env node\n"use strict";\n// ${plugin}\nasync function s() { return await import("./standalone.js"); }\n`;

// What build-relay.ts makes, cut down to what the installer relies on: the settings marker
// followed by its zero-filled area, somewhere inside the binary.
const MARK = 'CALICO-CNI-RELAY-CONF\n';
const fakeRelay = () =>
  Buffer.concat([
    Buffer.from('\x7fELF....'),
    Buffer.from(MARK),
    Buffer.alloc(512 - MARK.length),
    Buffer.from('tail'),
  ]);

describe('installCni', () => {
  let dir: string;
  // These cases install the Node shim as the plugin (relay: false); the relay has its own below.
  let opts: { binDir: string; confDir: string; bundleDir: string; nodePath: string; relay: boolean };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'calico-ts-install-'));
    const bundleDir = join(dir, 'dist');
    mkdirSync(bundleDir);
    for (const p of ['calico', 'calico-ipam']) writeFileSync(join(bundleDir, `${p}.cjs`), fakeBundle(p));
    writeFileSync(join(bundleDir, 'cni-relay'), fakeRelay());
    opts = {
      binDir: join(dir, 'opt/cni/bin'),
      confDir: join(dir, 'etc/cni/net.d'),
      bundleDir,
      nodePath: '/usr/local/bin/node',
      relay: false,
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

  it('by default installs the relay as each plugin, filled in with its name and socket, and the shim beside it', () => {
    const { relay: _, ...defaults } = opts;
    const first = installCni({ ...defaults, agentSocket: '/run/calico/cni.sock' });
    const bin = (f: string) => join(opts.binDir, f);
    expect(first.changed).toEqual([
      bin('calico.cjs'),
      bin('calico'),
      bin('calico-ipam.cjs'),
      bin('calico-ipam'),
      join(opts.confDir, CONFLIST_FILE),
    ]);
    const relay = readFileSync(bin('calico-ipam'));
    const at = relay.indexOf(MARK) + MARK.length;
    expect(relay.subarray(at, at + 40).toString('latin1')).toBe(
      'calico-ipam\0/run/calico/cni.sock\0'.padEnd(40, '\0'),
    );
    expect(relay.length).toBe(fakeRelay().length);
    expect(statSync(bin('calico')).mode & 0o777).toBe(0o755);
    expect(readFileSync(bin('calico.cjs'), 'utf8')).toContain('// calico\n');
    // Without agentSocket the relay goes to calico-node's default socket.
    installCni(defaults);
    expect(readFileSync(bin('calico')).toString('latin1')).toContain(
      `${MARK}calico\0/var/run/calico/cni.sock\0`,
    );
    expect(installCni(defaults).changed).toEqual([]);

    expect(() => relayExecutable(fakeRelay(), 'calico', `/${'s'.repeat(120)}`)).toThrow(
      expect.objectContaining({
        code: 'BAD_AGENT_SOCKET',
        message: expect.stringMatching(/121 bytes.*at most 107/),
      }),
    );
    expect(() => relayExecutable(Buffer.from('no marker'), 'calico', '/s')).toThrow(
      expect.objectContaining({ code: 'BUNDLE_UNEXPECTED' }),
    );
    rmSync(join(opts.bundleDir, 'cni-relay'));
    expect(() => installCni(defaults)).toThrow(
      expect.objectContaining({
        code: 'BUNDLE_MISSING',
        message: expect.stringMatching(/cni-relay.*C compiler/),
      }),
    );
  });

  it("pluginExecutable replaces the bundle's #! line and points the standalone import at the package", () => {
    expect(pluginExecutable(fakeBundle('x'), '#!/n', 'file:///p/dist/standalone.js')).toBe(
      '#!/n\n"use strict";\n// x\nasync function s() { return await import("file:///p/dist/standalone.js"); }\n',
    );
  });
});
