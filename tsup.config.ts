import { defineConfig, type Options } from "tsup";

const shared: Options = {
  entry: {
    index: "src/index.ts",
    redis: "adapters/redis.ts",
    memcached: "adapters/memcached.ts",
    express: "src/frameworks/express/index.ts",
    koa: "src/frameworks/koa.ts",
    fastify: "src/frameworks/fastify.ts",
    testing: "src/testing/index.ts",
    // The conformance suite imports vitest; MemoryStore (`testing`) must load without any test runner.
    "testing/conformance": "src/testing/conformance.ts",
  },
  // One shared chunk for the core in each format, so every entry sees the same error classes.
  splitting: true,
  sourcemap: true,
  target: "node20",
  platform: "node",
  treeshake: true,
};

export default defineConfig([
  { ...shared, format: ["esm"], dts: true, clean: true },
  {
    ...shared,
    format: ["cjs"],
    dts: true,
    // vitest refuses require(): the CommonJS conformance entry gets a stand-in that explains instead.
    noExternal: ["vitest"],
    esbuildOptions(options) {
      options.alias = { vitest: "./src/testing/vitest-cjs.ts" };
    },
  },
]);
