import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // dist/ is the compiled output of `npm run build`: never a test source.
    exclude: [...configDefaults.exclude, "dist/**"],
    testTimeout: 60_000,
  },
});
