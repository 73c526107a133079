import { defineConfig } from 'vitest/config';

// Integration tests share the kernel, a registry and cgroups; files run one at a time
// on 2 cores so a slow test does not time out another one.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
