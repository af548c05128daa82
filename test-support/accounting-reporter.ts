/**
 * A vitest reporter that writes `.reports/accounting.json` in the package: what really ran.
 *
 * vitest's own JSON counts only test cases, so a file that fails to load counts as nothing and a
 * suite whose `beforeAll` throws reads as "N skipped, 0 failed". Here a test counts as skipped
 * only when it was declared skipped or todo (`it.skip`, `describe.skip`, `describeWith` without
 * its requirements); a test that was meant to run but did not — its file failed to load, a hook
 * of its suite threw, the run was interrupted — counts as failed, and so does every file- or
 * suite-level error and every unhandled error. scripts/test-summary.mjs adds the files up.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Reporter, TestModule, TestSuite } from 'vitest/node';

interface Failure {
  where: string;
  why: string;
}

export interface Accounting {
  passed: number;
  failed: number;
  skipped: number;
  files: number;
  failures: Failure[];
}

type SerializedError = { message?: string; name?: string };

const describeErrors = (errors: readonly SerializedError[]): string =>
  errors.map((e) => e.message ?? e.name ?? 'unknown error').join('; ');

export default class AccountingReporter implements Reporter {
  #root = process.cwd();

  onInit(vitest: { config: { root: string } }): void {
    this.#root = vitest.config.root;
  }

  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
  ): void {
    const out: Accounting = { passed: 0, failed: 0, skipped: 0, files: testModules.length, failures: [] };
    const fail = (where: string, why: string) => {
      out.failed += 1;
      out.failures.push({ where, why });
    };

    for (const mod of testModules) {
      const file = relative(this.#root, mod.moduleId);
      const moduleErrors = mod.errors();
      if (moduleErrors.length > 0) fail(file, `file failed: ${describeErrors(moduleErrors)}`);
      for (const suite of mod.children.allSuites()) {
        const errs = (suite as TestSuite).errors();
        if (errs.length > 0) fail(`${file} > ${suite.fullName}`, `suite failed: ${describeErrors(errs)}`);
      }
      let tests = 0;
      for (const test of mod.children.allTests()) {
        tests += 1;
        const result = test.result();
        const where = `${file} > ${test.fullName}`;
        if (result.state === 'passed') out.passed += 1;
        else if (result.state === 'failed') fail(where, describeErrors(result.errors ?? []));
        else if (test.options.mode === 'skip' || test.options.mode === 'todo') out.skipped += 1;
        else fail(where, `did not run (${result.state})`);
      }
      if (tests === 0 && moduleErrors.length === 0) fail(file, 'file declares no test');
    }
    if (unhandledErrors.length > 0) fail('(run)', `unhandled errors: ${describeErrors(unhandledErrors)}`);

    const dir = join(this.#root, '.reports');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'accounting.json'), `${JSON.stringify(out, null, 2)}\n`);
  }
}
