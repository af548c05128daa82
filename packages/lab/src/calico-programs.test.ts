import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { calicoPrograms, installPlugins, nodeProgram, writeLaunchers } from './calico-programs.ts';

describe('calicoPrograms', () => {
  it('runs the source entry points with the source condition', () => {
    const p = calicoPrograms({
      node: 'file:///repo/packages/node/src/index.ts',
      cni: '/repo/packages/cni/src/index.ts',
    });
    expect(p.calicoNode).toEqual([
      process.execPath,
      '--conditions=@calico-ts/source',
      '/repo/packages/node/src/main.ts',
    ]);
    expect(p.cniPlugins['calico-ipam']).toEqual([
      process.execPath,
      '--conditions=@calico-ts/source',
      '/repo/packages/cni/src/bin/calico-ipam.ts',
    ]);
    expect(p.installCni).toBeUndefined();
  });

  it('runs the built entry points as they are', () => {
    const p = calicoPrograms({ node: '/n/dist/index.js', cni: 'file:///c/dist/index.js' });
    expect(p.calicoNode).toEqual([process.execPath, '/n/dist/main.js']);
    expect(p.cniPlugins.calico).toEqual([process.execPath, '/c/dist/calico.cjs']);
    expect(nodeProgram('/x/y.cjs')).toEqual([process.execPath, '/x/y.cjs']);
  });
});

describe('installPlugins', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const dirs = () => {
    dir = mkdtempSync(join(tmpdir(), 'calico-ts-lab-programs-'));
    return { binDir: join(dir, 'bin'), confDir: join(dir, 'net.d') };
  };
  const programs = {
    calicoNode: ['true'],
    cniPlugins: { calico: ['/bin/echo', "it's calico"], 'calico-ipam': ['/bin/echo', 'ipam'] },
  };

  it('writes executable launchers that exec the plugin argv when nothing is built', () => {
    const d = dirs();
    expect(installPlugins(programs, d)).toBe('launchers');
    expect(readdirSync(d.binDir).sort()).toEqual(['calico', 'calico-ipam']);
    expect(statSync(join(d.binDir, 'calico')).mode & 0o777).toBe(0o755);
    expect(execFileSync(join(d.binDir, 'calico')).toString()).toBe("it's calico\n");
  });

  it('quotes arguments for the shell', () => {
    const d = dirs();
    writeLaunchers(d.binDir, { p: ['/bin/echo', 'a b', '$HOME', "'q'"] });
    expect(execFileSync(join(d.binDir, 'p')).toString()).toBe("a b $HOME 'q'\n");
  });
});
