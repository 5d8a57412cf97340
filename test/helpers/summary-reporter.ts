/**
 * Ends a test run with one plain line, `N passed, N failed, N skipped`, that tools reading the
 * output (CI among them) understand whatever the test runner. A file that failed to run (its
 * `beforeAll` threw, so its tests show as skipped) counts as a failure, and so does an error
 * raised outside any test: the line never reads "0 failed" for a run that failed.
 */
import type { Reporter, TestModule } from 'vitest/node';

export function tally(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown> = []): { passed: number; failed: number; skipped: number } {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const module of testModules) {
    let failedHere = 0;
    for (const test of module.children.allTests()) {
      const state = test.result().state;
      if (state === 'passed') passed++;
      else if (state === 'failed') failedHere++;
      else skipped++;
    }
    failed += failedHere;
    if (failedHere === 0 && (module.state() === 'failed' || module.errors().length > 0)) failed++;
  }
  failed += unhandledErrors.length;
  return { passed, failed, skipped };
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    const { passed, failed, skipped } = tally(testModules, unhandledErrors);
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
