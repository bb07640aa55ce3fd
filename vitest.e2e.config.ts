import { defineConfig } from "vitest/config";

// Browser journeys (Debian's Chromium through playwright-core) against the examples, which import
// the built package. Not part of `npm test`: run `npm run test:e2e` (builds first).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/e2e/global-setup.ts"],
          // One browser and a few app processes at a time: the journeys are timed by the machine, not by each other.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
