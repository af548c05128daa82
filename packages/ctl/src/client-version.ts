import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * This package's version, read from its package.json. This file must stay directly in src/: it
 * and the bundles in dist/ both sit one level below package.json.
 */
export function clientVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

// Stamped by the build (tsup.config.ts `define`); absent when running from source.
declare const __CALICO_GIT_COMMIT__: string | undefined;
declare const __CALICO_BUILD_DATE__: string | undefined;

export interface BuildInfo {
  /** The commit the client was built from. */
  gitCommit: string;
  /** When it was built (RFC 3339), or a note that it runs from source. */
  buildDate: string;
}

/** The commit and date a build was stamped with; from source, the checkout's HEAD. */
export function buildInfo(): BuildInfo {
  const stampedCommit = typeof __CALICO_GIT_COMMIT__ === 'string' ? __CALICO_GIT_COMMIT__ : undefined;
  const stampedDate = typeof __CALICO_BUILD_DATE__ === 'string' ? __CALICO_BUILD_DATE__ : undefined;
  if (stampedCommit !== undefined && stampedDate !== undefined) {
    return { gitCommit: stampedCommit, buildDate: stampedDate };
  }
  return { gitCommit: checkoutCommit() ?? 'unknown', buildDate: 'not built (running from source)' };
}

function checkoutCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short=9', 'HEAD'], {
      cwd: fileURLToPath(new URL('.', import.meta.url)),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}
