import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    pool: 'forks',
    // Three test files at a time on the 2-core CI machine: most files wait (on timers, lock
    // expiries, child processes, the emulator), so two used about half of the two cores. Whole
    // suite: 620 s with two, 514 s with three; four made timing-sensitive tests fail under load
    // (render/limits, redis-full-answers, rate-wait). Forks, not threads: tests kill, signal and
    // spawn processes. Isolation kept (--no-isolate saved ~3%).
    maxWorkers: 3,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests share one real Redis; each file uses its own key prefix (test/helpers/redis.ts).
    sequence: { concurrent: false },
  },
});
