import { defineConfig } from "vitest/config";

// The end-to-end tier: real Loki processes as ECS tasks (npm run e2e). Slow,
// and it needs root, iproute2, bubblewrap, BusyBox and a Loki binary; the
// tests say what is missing and skip when something is.
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.e2e.test.ts"],
    testTimeout: 30 * 60_000,
    hookTimeout: 5 * 60_000,
    fileParallelism: false,
  },
});
