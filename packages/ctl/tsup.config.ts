import { execFileSync } from 'node:child_process';
import { defineConfig } from 'tsup';

/** The commit being built; `unknown` outside a git checkout. */
function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short=9', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

// SOURCE_DATE_EPOCH (reproducible builds) fixes the stamped date when the pipeline sets it.
const epoch = process.env['SOURCE_DATE_EPOCH'];
const buildDate = new Date(epoch ? Number(epoch) * 1000 : Date.now()).toISOString();

export default defineConfig({
  entry: ['src/index.ts', 'src/cli.ts'],
  format: ['esm'],
  target: 'node24',
  dts: true,
  clean: true,
  sourcemap: true,
  define: {
    __CALICO_GIT_COMMIT__: JSON.stringify(gitCommit()),
    __CALICO_BUILD_DATE__: JSON.stringify(buildDate),
  },
});
