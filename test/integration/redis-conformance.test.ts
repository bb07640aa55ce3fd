/**
 * The store conformance suite against real Redis: a standalone server, a 3-master Cluster and a
 * Sentinel deployment, through ioredis and through node-redis (`redis`). TTLs are read from the
 * server with `TTL key` on a separate raw ioredis client.
 */
import type { Cluster, Redis } from "ioredis";
import { createClient, createCluster } from "redis";
import { afterAll } from "vitest";
import { RedisStore, createRedisClient } from "../../adapters/redis.js";
import { runStoreConformance } from "../../src/testing/conformance.js";
import { services, uniquePrefix } from "../services/index.js";
import { closeClients, rawCluster, rawRedis, serverTtl, tracked } from "../helpers/redis-clients.js";

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

// node-redis (the `redis` package), with the settings the README asks for, standalone and Cluster.
function nodeRedisSuite(name: string, label: string, clients: () => { store: ReturnType<typeof createClient> | ReturnType<typeof createCluster>; raw: Redis | Cluster }): void {
  const prefix = uniquePrefix(label);
  let raw: Redis | Cluster;
  runStoreConformance({
    name,
    createStore: () => {
      const made = clients();
      raw = made.raw;
      made.store.on("error", () => undefined);
      return new RedisStore({ client: made.store, prefix });
    },
    ttlOf: (_store, id) => serverTtl(raw, prefix + id),
    dispose: async (store) => {
      await store.close();
      store.client.destroy();
    },
  });
}

nodeRedisSuite("RedisStore on node-redis, standalone", "redis-conformance-node", () => ({
  store: createClient({ url: services().redis.url, disableOfflineQueue: true }),
  raw: rawRedis(services().redis.url),
}));

nodeRedisSuite("RedisStore on node-redis, 3-master Cluster", "redis-conformance-node-cluster", () => ({
  store: createCluster({
    rootNodes: services().redisCluster.nodes.map((node) => ({ url: `redis://${node.host}:${node.port}` })),
    defaults: { disableOfflineQueue: true },
  }),
  raw: rawCluster(services().redisCluster.nodes),
}));

// A node-redis client as connect-redis's README makes it (offline queue on) must pass too.
nodeRedisSuite("RedisStore on a plain node-redis client", "redis-conformance-node-plain", () => ({
  store: createClient({ url: services().redis.url }),
  raw: rawRedis(services().redis.url),
}));
