// Adds up the `.reports/accounting.json` that test-support/accounting-reporter.ts writes in every
// workspace project that has a test target (packages/*, manifests, e2e) and prints the closing line "N passed, N failed, N skipped" from what really ran: a
// file that failed to load, a suite whose hook threw, a test that was meant to run but did not
// and an unhandled error each count as failed; only tests declared skipped count as skipped.
// A package that wrote no report (its test run crashed, or it was replayed from a cache that
// predates this run) is a failure too.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const since = Number(process.env.TEST_RUN_STARTED_MS ?? 0);
let passed = 0;
let failed = 0;
let skipped = 0;
const problems = [];
// Every project whose package.json has a `test` script; the list is read, not kept by hand, so a new
// project cannot run tests that this line leaves out.
const projects = [
  ...readdirSync(join(root, 'packages'))
    .sort()
    .map((name) => `packages/${name}`),
  'manifests',
  'e2e',
].filter((dir) => {
  const manifest = join(root, dir, 'package.json');
  return existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).scripts?.test !== undefined;
});
for (const pkg of projects) {
  const report = join(root, pkg, '.reports', 'accounting.json');
  if (!existsSync(report)) {
    problems.push(`${pkg}: no test report (the test run did not finish)`);
    failed += 1;
    continue;
  }
  if (statSync(report).mtimeMs < since) {
    problems.push(`${pkg}: its test report is older than this run (replayed, not run)`);
    failed += 1;
    continue;
  }
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed += r.passed;
  failed += r.failed;
  skipped += r.skipped;
  for (const f of r.failures) problems.push(`${pkg}: ${f.where}: ${f.why}`);
}
for (const p of problems) console.error(`FAILED ${p}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
