/**
 * The release pipeline's own tools, run for real: `nx release` as a dry run (version, changelog
 * from the commits, tag; nothing written) and the tarball linters of scripts/release-check.ts on a
 * package that is broken on purpose.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { lintTarball, publishablePackages } from '../../scripts/release-check.ts';
import { command, describeWith } from '../../test-support/requirements.ts';
import { runPrefix } from '../../test-support/run-id.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const execFileP = promisify(execFile);

describe('tarball linting (publint, Are the Types Wrong)', () => {
  it('names what is wrong with a broken package', async () => {
    const dir = mkdtempSync(join(tmpdir(), `calico-ts-${runPrefix('hh')}-lint-`));
    try {
      mkdirSync(join(dir, 'package/dist'), { recursive: true });
      writeFileSync(
        join(dir, 'package/package.json'),
        JSON.stringify({
          name: 'broken',
          version: '1.0.0',
          type: 'module',
          exports: { '.': { import: './dist/index.js', types: './dist/index.d.ts' } },
        }),
      );
      writeFileSync(join(dir, 'package/dist/index.js'), 'module.exports = 1;\n');
      execFileSync('tar', ['-czf', join(dir, 'broken.tgz'), '-C', dir, 'package']);
      const problems = await lintTarball(join(dir, 'broken.tgz'));
      expect(problems).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^publint error: pkg\.exports\["\."\]\.types should be the first/),
          expect.stringMatching(
            /^publint error: .*types is \.\/dist\/index\.d\.ts but the file does not exist/,
          ),
          expect.stringMatching(/^publint error: .*written in CJS, but is interpreted as ESM/),
          'attw: the package ships no types',
        ]),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describeWith([command('git')], 'nx release, dry run', () => {
  it('bumps every package to one version, previews the changelog from the commits and the tag, writes nothing', async () => {
    const packages = publishablePackages();
    const manifests = () => packages.map(({ dir }) => readFileSync(join(dir, 'package.json'), 'utf8'));
    const before = manifests();
    const staged = () =>
      execFileSync('git', ['diff', '--cached', '--name-only'], { cwd: ROOT, encoding: 'utf8' });
    const stagedBefore = staged();
    const result = await execFileP(
      'pnpm',
      ['exec', 'nx', 'release', '--dry-run', '--first-release', '--skip-publish', '--specifier', 'patch'],
      {
        cwd: ROOT,
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, NX_DAEMON: 'false', NX_TUI: 'false', NX_NO_CLOUD: 'true', FORCE_COLOR: '0' },
      },
    );
    // nx writes some of its report to stderr.
    const stdout = `${result.stdout}\n${result.stderr}`;
    const current = packages[0]?.pkg.version ?? '';
    const [major, minor, patch] = current.split('.').map(Number);
    const next = `${major}.${minor}.${(patch ?? 0) + 1}`;
    // One fixed version for every published package.
    for (const { dir } of packages) {
      const manifest = join(dir, 'package.json').slice(ROOT.length);
      expect(stdout, manifest).toContain(`UPDATE ${manifest} [dry-run]`);
    }
    expect(stdout.match(new RegExp(`\\+\\s+"version": "${next.replaceAll('.', '\\.')}"`, 'g'))).toHaveLength(
      packages.length,
    );
    // The changelog is made from the commits, grouped by the package their subject names.
    expect(stdout).toContain(`## ${next} (`);
    expect(stdout).toMatch(/### BGP speaker \(@calico-ts\/bgp\)\n\+\s*\n(\+ - .+\n)+/);
    expect(stdout).toContain('Committing changes with git');
    expect(stdout).toContain('Tagging commit with git');
    expect(stdout).toContain('"dryRun" flag means no changes were made');
    expect(manifests()).toEqual(before);
    expect(staged()).toBe(stagedBefore);
  }, 180_000);
});
