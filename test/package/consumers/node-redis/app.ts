import { createClient, createCluster } from "redis";
import { createSessionManager } from "shared-session";
import { RedisStore, createRedisClient } from "shared-session/redis";

// Not connected: nothing is sent here, the store would connect on first use.
const client = createClient({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true });
const store = new RedisStore({ client });
const same: typeof client = store.client;
const cluster = createCluster({ rootNodes: [{ url: "redis://127.0.0.1:7000" }], defaults: { disableOfflineQueue: true } });
const onCluster = new RedisStore({ client: cluster, prefix: "app:" });
createSessionManager({ store, secret: "a-secret-of-at-least-32-characters!!" });
if (same !== client || onCluster.prefix !== "app:") throw new Error("RedisStore did not keep the client");

let refused = "";
try {
  createRedisClient("redis://127.0.0.1:6379");
} catch (err) {
  refused = (err as Error).message;
}
if (!/install ioredis/.test(refused)) throw new Error(`createRedisClient without ioredis: ${refused}`);
await store.close();
await onCluster.close();
console.log("node-redis consumer ok");
