import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // dist/ is the compiled output of `npm run build`: never a test source.
    // test/e2e is its own tier (npm run e2e): real Loki processes, minutes per test.
    exclude: [...configDefaults.exclude, "dist/**", "test/e2e/**"],
    testTimeout: 60_000,
  },
});
