import { defineConfig } from 'vitest/config';

// Three projects: fast unit tests (mirroring provider/src), integration suites that start real
// tools (registries, notary, opa...) from the cache that test/tools/install.sh fills, and end-to-end
// suites that also run a Kubernetes API and Gatekeeper (`install.sh e2e` builds them).
export default defineConfig({
  test: {
    // Two test files at a time, even on 2 cores: integration files spend most of their time waiting on
    // the servers they start (the e2e project runs one file at a time regardless: singleFork).
    maxWorkers: 2,
    minWorkers: 1,
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
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 600_000,
          globalSetup: ['test/harness/global-setup-e2e.ts'],
          pool: 'forks',
          // One cluster at a time: each suite runs etcd, kube-apiserver and Gatekeeper.
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
