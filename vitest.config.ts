import { defineConfig } from 'vitest/config';

// Integration tests run real daemons, mounts and containers as root; two files at a time keeps a
// 2-core CI machine responsive, and generous timeouts absorb its noise without timing assertions.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    globalSetup: ['test/setup/global.ts'],
  },
});
