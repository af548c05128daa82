import { describe, expect, it } from 'vitest';
import { checkTarball, exportTargets, publishablePackages } from '../../scripts/release-check.ts';

const pkg = {
  name: '@calico-ts/example',
  version: '1.2.3',
  exports: {
    '.': { '@calico-ts/source': './src/index.ts', types: './dist/index.d.ts', import: './dist/index.js' },
  },
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

  it('ignores the workspace-only source condition but follows every other one', () => {
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

  it('covers every non-private workspace package', () => {
    const names = publishablePackages().map((p) => p.pkg.name);
    expect(names).toEqual(
      expect.arrayContaining(['@calico-ts/bgp', '@calico-ts/datastore', '@calico-ts/node', '@calico-ts/ctl']),
    );
    expect(names).not.toContain('@calico-ts/e2e');
  });
});
