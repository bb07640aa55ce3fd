import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    index: "src/index.ts",
    redis: "adapters/redis.ts",
    memcached: "adapters/memcached.ts",
    express: "src/frameworks/express.ts",
    koa: "src/frameworks/koa.ts",
    fastify: "src/frameworks/fastify.ts",
    testing: "src/testing/index.ts",
  },
  format: ["esm", "cjs"],
  // One shared chunk for the core in each format, so every entry sees the same error classes.
  splitting: true,
  dts: true,
  clean: true,
  sourcemap: true,
  target: "node20",
  platform: "node",
  treeshake: true,
});
