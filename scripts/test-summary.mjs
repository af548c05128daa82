// Adds up the vitest JSON reports of every package and prints one closing line,
// "N passed, N failed, N skipped", so the run's result is readable at a glance.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
for (const pkg of readdirSync(join(root, 'packages'))) {
  const report = join(root, 'packages', pkg, '.reports', 'vitest.json');
  if (!existsSync(report)) {
    missing.push(pkg);
    continue;
  }
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + r.numTodoTests;
  for (const file of r.testResults) {
    for (const t of file.assertionResults) {
      if (t.status === 'failed') console.error(`FAILED ${pkg}: ${t.fullName}`);
    }
  }
}
if (missing.length > 0) console.error(`no test report from: ${missing.join(', ')}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || missing.length > 0 ? 1 : 0);
