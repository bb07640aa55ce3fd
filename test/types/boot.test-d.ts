// The calls of a first boot in strict TypeScript: environment variables are string | undefined,
// and readiness is part of the manager's and the store's types.
import type { Cluster, Redis } from "ioredis";
import type memjs from "memjs";
import { expectTypeOf, test } from "vitest";
import { createMemcachedClient } from "../../adapters/memcached.js";
import { createRedisClient } from "../../adapters/redis.js";
import { createSessionManager, type SessionStore } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";

test("process.env values go straight into the client factories", () => {
  expectTypeOf(createRedisClient(process.env.REDIS_URL)).toEqualTypeOf<Redis>();
  expectTypeOf(createRedisClient(process.env.REDIS_URL, { keyPrefix: "app:" })).toEqualTypeOf<Redis>();
  expectTypeOf(createRedisClient({ clusterNodes: [{ host: "localhost", port: 7000 }] })).toEqualTypeOf<Cluster>();
  expectTypeOf(createMemcachedClient(process.env.MEMCACHED_SERVERS)).toEqualTypeOf<memjs.Client>();
});

test("readiness: manager.ready() / isReady(), and the optional store methods", () => {
  const manager = createSessionManager({ store: new MemoryStore({ quiet: true }), secret: "x".repeat(32) });
  expectTypeOf(manager.ready()).toEqualTypeOf<Promise<void>>();
  expectTypeOf(manager.ready({ timeout: 5 })).toEqualTypeOf<Promise<void>>();
  expectTypeOf(manager.isReady({ timeout: 1 })).toEqualTypeOf<Promise<boolean>>();
  expectTypeOf<SessionStore["ready"]>().toEqualTypeOf<((timeout: number) => Promise<void>) | undefined>();
  // @ts-expect-error timeouts are seconds as numbers
  void manager.ready({ timeout: "5s" });
});
