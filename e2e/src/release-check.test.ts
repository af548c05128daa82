import { describe, expect, it } from 'vitest';
import { checkTarball, exportTargets, publishablePackages } from '../../scripts/release-check.ts';

const pkg = {
  name: '@calico-ts/example',
  version: '1.2.3',
  exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } },
  bin: { example: './dist/cli.js' },
  dependencies: { pino: '^10.4.0', '@calico-ts/datastore': '1.2.3' },
};
const files = [
  'package/package.json',
  'package/README.md',
  'package/dist/index.js',
  'package/dist/index.d.ts',
  'package/dist/cli.js',
];

describe('release check of a packed tarball', () => {
  it('passes a tarball with dist, README and resolvable exports and bin', () => {
    expect(checkTarball(files, pkg)).toEqual([]);
  });

  it('follows every condition of an exports map', () => {
    expect(exportTargets(pkg.exports)).toEqual(['./dist/index.d.ts', './dist/index.js']);
    expect(exportTargets({ '.': ['./a.js', { node: './b.js' }], './x': './x.js' })).toEqual([
      './a.js',
      './b.js',
      './x.js',
    ]);
  });

  it('names what is wrong: stray files, workspace/catalog specifiers, missing targets', () => {
    const problems = checkTarball(
      [...files.filter((f) => f !== 'package/dist/cli.js'), 'package/src/index.ts', 'package/tsup.config.ts'],
      { ...pkg, dependencies: { '@calico-ts/datastore': 'workspace:*', pino: 'catalog:' } },
    );
    expect(problems).toEqual([
      'unexpected file src/index.ts',
      'unexpected file tsup.config.ts',
      'dependencies.@calico-ts/datastore is still "workspace:*"',
      'dependencies.pino is still "catalog:"',
      'bin.example → ./dist/cli.js is not in the tarball',
    ]);
    expect(checkTarball(['package/package.json'], pkg)).toContain('no dist/ (was it built?)');
  });

  it('refuses a published exports map that still names the workspace-only source condition', () => {
    const withSource = {
      ...pkg,
      exports: { '.': { '@calico-ts/source': './src/index.ts', ...pkg.exports['.'] } },
    };
    expect(checkTarball(files, withSource)).toEqual([
      'exports names the workspace-only condition @calico-ts/source (publishConfig.exports should drop it)',
      'exports → ./src/index.ts is not in the tarball',
    ]);
  });

  it('every publishable package publishes an exports map without the source condition', () => {
    for (const { pkg: p } of publishablePackages()) {
      const published = p.publishConfig?.exports;
      expect(published, p.name).toBeDefined();
      expect(JSON.stringify(published), p.name).not.toContain('@calico-ts/source');
      // The same entry points as the workspace's map, minus that one condition.
      expect(JSON.stringify(published)).toBe(
        JSON.stringify(p.exports, (key, value) => (key === '@calico-ts/source' ? undefined : value)),
      );
    }
  });

  it('covers every non-private workspace package', () => {
    const names = publishablePackages().map((p) => p.pkg.name);
    expect(names).toEqual(
      expect.arrayContaining(['@calico-ts/bgp', '@calico-ts/datastore', '@calico-ts/node', '@calico-ts/ctl']),
    );
    expect(names).not.toContain('@calico-ts/e2e');
  });
});
