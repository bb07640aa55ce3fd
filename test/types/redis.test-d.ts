import { Redis, type Cluster } from "ioredis";
import { createClient, createCluster } from "redis";
import { expectTypeOf, test } from "vitest";
import { RedisStore, createRedisClient, type RedisStoreOptions } from "../../adapters/redis.js";
import type { SessionStore } from "../../src/index.js";

test("RedisStore takes any ioredis client and is a SessionStore", () => {
  expectTypeOf(new RedisStore({ client: new Redis() })).toExtend<SessionStore>();
  expectTypeOf<{ client: Cluster }>().toExtend<RedisStoreOptions>();
  expectTypeOf<{ client: Redis<"resp3"> }>().toExtend<RedisStoreOptions>();
  expectTypeOf<{ client: Redis; prefix: number }>().not.toExtend<RedisStoreOptions>();
});

test("RedisStore takes a node-redis client or Cluster and keeps its type", () => {
  const client = createClient();
  const cluster = createCluster({ rootNodes: [{ url: "redis://localhost:7000" }] });
  expectTypeOf(new RedisStore({ client })).toExtend<SessionStore>();
  expectTypeOf(new RedisStore({ client }).client).toEqualTypeOf(client);
  expectTypeOf(new RedisStore({ client: cluster }).client).toEqualTypeOf(cluster);
  expectTypeOf(new RedisStore({ client: new Redis() }).client).toEqualTypeOf<Redis>();
  expectTypeOf<{ client: { sendCommand(): Promise<unknown> } }>().not.toExtend<RedisStoreOptions>();
});

test("createRedisClient returns the client kind asked for", () => {
  expectTypeOf(createRedisClient("redis://localhost:6379")).toEqualTypeOf<Redis>();
  expectTypeOf(createRedisClient({ host: "localhost", tls: {}, username: "app", password: "secret", db: 2, keyPrefix: "app:" })).toEqualTypeOf<Redis>();
  expectTypeOf(createRedisClient({ sentinels: [{ host: "localhost", port: 26379 }], name: "mymaster" })).toEqualTypeOf<Redis>();
  expectTypeOf(createRedisClient({ clusterNodes: [{ host: "localhost", port: 7000 }], redisOptions: { password: "secret" } })).toEqualTypeOf<Cluster>();
});
