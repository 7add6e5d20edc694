import { defineConfig } from 'vitest/config';

// Real-client suites start processes and sockets: give them room, and keep files in
// parallel only up to the machine's two cores.
export default defineConfig({
  test: {
    include: ['platform/**/*.test.ts', 'services/**/*.test.ts', 'installer/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
  },
});
