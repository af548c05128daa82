/**
 * Builds calico-node and the CNI plugins with nx (cached when unchanged), for the benchmarks that
 * run calico-node built, as the lab and the images do.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function buildNodeAndCni(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const build = spawnSync(
    'pnpm',
    [
      'exec',
      'nx',
      'run-many',
      '-t',
      'build',
      '-p',
      '@calico-ts/node',
      '@calico-ts/cni',
      '--outputStyle=static',
    ],
    { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  if (build.status !== 0) throw new Error(`build failed (exit ${build.status})`);
}
