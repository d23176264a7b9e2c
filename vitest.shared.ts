import { defineConfig } from 'vitest/config';

/**
 * Settings shared by every project's vitest.config.ts.
 *
 * - Sources of workspace packages are resolved through the `@ambient-mesh/source`
 *   export condition, so tests never need a prior build of their dependencies.
 * - Each project writes a JSON report to `reports/vitest.json`; `tools/run-tests.mjs`
 *   adds them up into the suite's closing summary line.
 */
export const sharedConfig = defineConfig({
  resolve: { conditions: ['@ambient-mesh/source'] },
  ssr: { resolve: { conditions: ['@ambient-mesh/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    restoreMocks: true,
    reporters: ['default', 'json'],
    outputFile: { json: 'reports/vitest.json' },
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
