import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests (mirroring provider/src) and integration suites that start
// real tools (registries, notary, opa...) from the cache that test/tools/install.sh fills.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['provider/test/**/*.test.ts'], testTimeout: 10_000 } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          globalSetup: ['test/harness/global-setup.ts'],
          pool: 'forks',
        },
      },
    ],
  },
});
