// An ioredis 5 client, made by the app or by createRedisClient, is accepted by RedisStore.
import { Redis, Cluster } from "ioredis";
import { createSessionManager } from "shared-session";
import { RedisStore, createRedisClient } from "shared-session/redis";

const own = new Redis({ lazyConnect: true });
const made = createRedisClient("redis://127.0.0.1:6379", { lazyConnect: true });
const cluster = new Cluster([{ host: "127.0.0.1", port: 7000 }], { lazyConnect: true });
for (const client of [own, made, cluster]) {
  const manager = createSessionManager({ store: new RedisStore({ client }), secret: "a-secret-of-at-least-32-characters!" });
  if (typeof manager.ready !== "function") throw new Error("manager.ready is missing");
  client.disconnect();
}
console.log("ok ioredis 5 clients accepted by RedisStore");
