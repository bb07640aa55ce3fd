/**
 * The store conformance suite against real Redis: a standalone server, a 3-master Cluster and a
 * Sentinel deployment. TTLs are read from the server with `TTL key` on a separate raw client.
 */
import type { Cluster, Redis } from "ioredis";
import { afterAll } from "vitest";
import { RedisStore, createRedisClient } from "../../adapters/redis.js";
import { runStoreConformance } from "../../src/testing/conformance.js";
import { services, uniquePrefix } from "../services/index.js";
import { closeClients, rawCluster, rawRedis, serverTtl, tracked } from "./redis-helpers.js";

afterAll(() => closeClients());

function suite(name: string, label: string, clients: () => { store: Redis | Cluster; raw: Redis | Cluster }): void {
  const prefix = uniquePrefix(label);
  let raw: Redis | Cluster;
  runStoreConformance({
    name,
    createStore: () => {
      const made = clients();
      raw = made.raw;
      return new RedisStore({ client: tracked(made.store), prefix });
    },
    ttlOf: (_store, id) => serverTtl(raw, prefix + id),
    dispose: async (store) => {
      await store.close();
      store.client.disconnect();
    },
  });
}

suite("RedisStore on a standalone server", "redis-conformance", () => ({
  store: createRedisClient(services().redis.url),
  raw: rawRedis(services().redis.url),
}));

suite("RedisStore on a 3-master Cluster", "redis-conformance-cluster", () => ({
  store: createRedisClient({ clusterNodes: services().redisCluster.nodes }),
  raw: rawCluster(services().redisCluster.nodes),
}));

suite("RedisStore through Sentinel", "redis-conformance-sentinel", () => {
  const { sentinels, name } = services().redisSentinel;
  return { store: createRedisClient({ sentinels, name }), raw: rawRedis({ sentinels, name }) };
});

// A user's own client with ioredis defaults (offline queue, no command timeout) must pass too.
suite("RedisStore on a plain ioredis client", "redis-conformance-plain", () => ({
  store: rawRedis(services().redis.url),
  raw: rawRedis(services().redis.url),
}));
