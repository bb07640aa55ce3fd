import { defineConfig } from "vitest/config";

// CI runs the Redis tests again on another ioredis major: SHARED_SESSION_IOREDIS_MODULE names its
// entry file (such as ioredis 5 installed in a temporary folder), and every import of "ioredis" gets it.
const ioredisModule = process.env.SHARED_SESSION_IOREDIS_MODULE;
const ioredisAlias = ioredisModule ? [{ find: /^ioredis$/, replacement: ioredisModule }] : [];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        test: {
          name: "types",
          include: [],
          typecheck: { enabled: true, only: true, include: ["test/types/**/*.test-d.ts"], tsconfig: "./tsconfig.json" },
        },
      },
      {
        resolve: { alias: ioredisAlias },
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/services/global-setup.ts"],
          // createRedisClient loads ioredis with require(), which the alias does not reach.
          setupFiles: ioredisModule ? ["test/services/ioredis-module.ts"] : [],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
