import { defineConfig } from 'vitest/config';

// Shared by every package: unit tests next to the code, integration tests in test/.
// Workspace packages resolve to each other's source through the custom export condition,
// so nothing has to be built before tests run.
export default defineConfig({
  resolve: { conditions: ['@calico-ts/source'] },
  ssr: { resolve: { conditions: ['@calico-ts/source'] } },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts', 'test/**/*.int.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // The accounting reporter writes .reports/accounting.json: passed, failed (tests, suites, files
    // and unhandled errors) and declared skips, added up by scripts/test-summary.mjs.
    reporters: ['default', new URL('./test-support/accounting-reporter.ts', import.meta.url).pathname],
  },
});
