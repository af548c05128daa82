/**
 * Compiles the CNI byte relay (relay/cni-relay.c) with the system C compiler into dist/cni-relay
 * (or the directory given): part of this package's `build`, after tsup. Static, so the binary runs
 * on any Linux host whatever its libc; installCni copies it into the CNI bin directory.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RELAY_SOURCE = fileURLToPath(new URL('relay/cni-relay.c', import.meta.url));
export const RELAY_FILE = 'cni-relay';

export function buildRelay(outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, RELAY_FILE);
  const cc = process.env['CC'] || 'cc';
  try {
    execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', '-static', '-s', '-o', out, RELAY_SOURCE], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    const why =
      e.code === 'ENOENT' ? `${cc} not found (install gcc and libc6-dev)` : String(e.stderr ?? e.message);
    throw new Error(`building the CNI relay ${out} from ${RELAY_SOURCE} failed: ${why}`);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  buildRelay(process.argv[2] ?? fileURLToPath(new URL('dist/', import.meta.url)));
}
