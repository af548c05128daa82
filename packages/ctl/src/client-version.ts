import { readFileSync } from 'node:fs';

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
