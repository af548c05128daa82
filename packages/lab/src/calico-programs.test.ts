import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CALICO_NODE_FLAGS,
  calicoPrograms,
  freshBuild,
  installPlugins,
  nodeProgram,
  writeLaunchers,
} from './calico-programs.ts';

describe('calicoPrograms', () => {
  it('runs the source entry points with the source condition', () => {
    const p = calicoPrograms({
      node: 'file:///repo/packages/node/src/index.ts',
      cni: '/repo/packages/cni/src/index.ts',
    });
    expect(p.calicoNode).toEqual([
      process.execPath,
      ...CALICO_NODE_FLAGS,
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
    expect(p.calicoNode).toEqual([process.execPath, ...CALICO_NODE_FLAGS, '/n/dist/main.js']);
    expect(p.cniPlugins.calico).toEqual([process.execPath, '/c/dist/calico.cjs']);
    expect(nodeProgram('/x/y.cjs')).toEqual([process.execPath, '/x/y.cjs']);
  });

  it("puts calico-node's Node options before its script, none when asked for none", () => {
    const entries = { node: '/n/dist/index.js', cni: '/c/dist/index.js' };
    expect(calicoPrograms({ ...entries, nodeFlags: ['--max-semi-space-size=1'] }).calicoNode).toEqual([
      process.execPath,
      '--max-semi-space-size=1',
      '/n/dist/main.js',
    ]);
    expect(calicoPrograms({ ...entries, nodeFlags: [] }).calicoNode).toEqual([
      process.execPath,
      '/n/dist/main.js',
    ]);
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

describe('freshBuild', () => {
  let root: string | undefined;
  afterEach(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });
  /** Two workspace packages, node depending on felix, each with src/ and dist/. */
  const workspace = () => {
    root = mkdtempSync(join(tmpdir(), 'nf-lab-fresh-'));
    const pkg = (name: string, deps: Record<string, string>) => {
      const dir = join(root as string, name);
      mkdirSync(join(dir, 'src'), { recursive: true });
      mkdirSync(join(dir, 'dist'), { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `@x/${name}`, dependencies: deps }));
      writeFileSync(join(dir, 'src', 'index.ts'), 'export {};\n');
      writeFileSync(join(dir, 'src', 'index.test.ts'), 'export {};\n');
      writeFileSync(join(dir, 'dist', 'index.js'), 'export {};\n');
      return dir;
    };
    const felix = pkg('felix', {});
    const node = pkg('node', { '@x/felix': 'workspace:*', pino: '^9' });
    mkdirSync(join(node, 'node_modules', '@x'), { recursive: true });
    symlinkSync(felix, join(node, 'node_modules', '@x', 'felix'));
    const age = (file: string, secondsAgo: number) => {
      const t = new Date(Date.now() - secondsAgo * 1000);
      utimesSync(file, t, t);
    };
    for (const dir of [felix, node]) {
      age(join(dir, 'src', 'index.ts'), 60);
      age(join(dir, 'src', 'index.test.ts'), 60);
      age(join(dir, 'dist', 'index.js'), 30);
    }
    return { felix, node, age };
  };

  it('gives the built entry when every dist/ is newer than its source', () => {
    const { node } = workspace();
    expect(freshBuild(join(node, 'src', 'index.ts'))).toBe(join(node, 'dist', 'index.js'));
  });

  it('gives nothing when a dependency was edited after its build, or has no build', () => {
    const { felix, node, age } = workspace();
    age(join(felix, 'src', 'index.ts'), 0);
    expect(freshBuild(join(node, 'src', 'index.ts'))).toBeUndefined();
    age(join(felix, 'src', 'index.ts'), 60);
    rmSync(join(felix, 'dist'), { recursive: true });
    expect(freshBuild(join(node, 'src', 'index.ts'))).toBeUndefined();
  });

  it('ignores edited tests', () => {
    const { node, age } = workspace();
    age(join(node, 'src', 'index.test.ts'), 0);
    expect(freshBuild(join(node, 'src', 'index.ts'))).toBe(join(node, 'dist', 'index.js'));
  });

  it('lets calicoPrograms run the fresh build of a source entry when asked', () => {
    const { node } = workspace();
    writeFileSync(join(node, 'dist', 'bin.js'), '');
    const entries = { node: join(node, 'src', 'index.ts'), cni: '/c/dist/index.js', nodeFlags: [] };
    expect(calicoPrograms({ ...entries, preferBuilt: true }).calicoNode).toEqual([
      process.execPath,
      join(node, 'dist', 'bin.js'),
    ]);
    expect(calicoPrograms(entries).calicoNode.at(-1)).toBe(join(node, 'src', 'main.ts'));
  });
});
