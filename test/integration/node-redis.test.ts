/**
 * RedisStore on a node-redis client (the `redis` package), as connect-redis users hold one: sessions
 * over real HTTP through each binding, what the server holds, settings refused at construction,
 * errors that carry no session id, and a closed client. The conformance suite
 * (redis-conformance.test.ts) and the outage matrix (outages.test.ts) run on node-redis too.
 */
import { inspect } from "node:util";
import { createClient, createCluster } from "redis";
import { afterAll, describe, expect, it } from "vitest";
import { RedisStore, RedisStoreError } from "../../adapters/redis.js";
import { SessionConfigError, createSessionManager, type SessionLogEntry } from "../../src/index.js";
import { services, startRedis, uniquePrefix } from "../services/index.js";
import { storeKeysFor } from "../helpers/store-keys.js";
import { FRAMEWORKS, idOfValue, raw, sid, startApp } from "../helpers/failure-apps.js";
import { closeClients, rawRedis, serverTtl } from "../helpers/redis-clients.js";

const SECRET = "a-test-secret-that-is-at-least-32-characters-long";
const keyOf = storeKeysFor(SECRET);
const IDLE = 600;

const opened: { isOpen: boolean; destroy(): void }[] = [];
afterAll(() => {
  for (const client of opened) if (client.isOpen) client.destroy();
  closeClients();
});

function nodeRedis(options: Parameters<typeof createClient>[0] = {}) {
  const client = createClient({ url: services().redis.url, disableOfflineQueue: true, ...options });
  client.on("error", () => undefined);
  opened.push(client);
  return client;
}

describe.each(FRAMEWORKS)("%s on a node-redis client", (framework) => {
  it("logs in, reads, writes and logs out over HTTP; the server holds the record with the idle TTL", async () => {
    // Not connected yet, as `createClient()` returns it: the store connects it on first use.
    const client = nodeRedis();
    expect(client.isOpen).toBe(false);
    const prefix = uniquePrefix("node-redis-http");
    const store = new RedisStore({ client, prefix });
    const admin = rawRedis(services().redis.url);
    const app = await startApp(framework, { store, secret: SECRET, idleTimeout: IDLE });
    try {
      const login = await raw(app.port, "POST", "/login", undefined);
      expect(login.status).toBe(200);
      const value = sid(login)!;
      const cookie = `sid=${value}`;
      const key = prefix + keyOf(idOfValue(value));
      expect(await serverTtl(admin, key)).toBe(IDLE);

      const visit = await raw(app.port, "POST", "/visit", cookie);
      expect(JSON.parse(visit.body)).toEqual({ visits: 2 });
      const me = await raw(app.port, "GET", "/me", cookie);
      expect(JSON.parse(me.body)).toMatchObject({ isNew: false, userId: 1, visits: 2 });

      const logout = await raw(app.port, "POST", "/logout", cookie);
      expect(logout.status).toBe(200);
      expect(await admin.exists(key)).toBe(0);
      expect(JSON.parse((await raw(app.port, "GET", "/me", cookie)).body)).toMatchObject({ isNew: true, userId: null });
      expect(app.errors).toEqual([]);
    } finally {
      await app.close();
      await store.close();
    }
  });
});

describe("RedisStore on node-redis: construction, errors, a closed client", () => {
  it("refuses a client that would never reconnect (reconnectStrategy: false), standalone and Cluster", () => {
    const client = nodeRedis({ socket: { reconnectStrategy: false } });
    expect(() => new RedisStore({ client })).toThrow(SessionConfigError);
    expect(() => new RedisStore({ client })).toThrow(/reconnectStrategy: false.*never come back/);
    const cluster = createCluster({ rootNodes: [{ url: services().redis.url }], defaults: { socket: { reconnectStrategy: false } } });
    expect(() => new RedisStore({ client: cluster })).toThrow(/defaults\.socket\.reconnectStrategy: false/);
    // The defaults pass.
    expect(new RedisStore({ client: nodeRedis() })).toBeInstanceOf(RedisStore);
  });

  it("ready() connects a client not yet open (standalone, Cluster) and names the cause when it cannot", async () => {
    const client = nodeRedis();
    const store = new RedisStore({ client });
    await store.ready(5);
    expect(client.isReady).toBe(true);

    const cluster = createCluster({ rootNodes: services().redisCluster.nodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })), defaults: { disableOfflineQueue: true } });
    cluster.on("error", () => undefined);
    const onCluster = new RedisStore({ client: cluster });
    try {
      await onCluster.ready(5);
      expect(cluster.masters.length).toBe(3);
      expect(cluster.masters.every((master) => master.client?.isReady === true)).toBe(true);
    } finally {
      cluster.destroy();
    }

    // Nothing listens on port 1: refused, said so within the time given.
    const nowhere = nodeRedis({ url: "redis://127.0.0.1:1" });
    const err = await new RedisStore({ client: nowhere }).ready(0.5).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisStoreError);
    expect((err as RedisStoreError).code).toBe("ERR_REDIS_NOT_CONNECTED");
    expect((err as RedisStoreError).message).toMatch(/ECONNREFUSED/);
  });

  it("a client with no error listener of the app's: one logged line per outage and one when back, no crash", async () => {
    const redis = await startRedis();
    // No client.on("error"): node-redis would throw the event; the store's listener takes it.
    const client = createClient({ url: redis.url, disableOfflineQueue: true });
    opened.push(client);
    const logs: SessionLogEntry[] = [];
    const manager = createSessionManager({ store: new RedisStore({ client }), secret: SECRET, logger: (entry) => logs.push(entry) });
    try {
      await manager.ready({ timeout: 5 });
      let errors = 0;
      client.on("error", () => void (errors += 1)); // counts the retries, added after the store
      await redis.stop();
      await expect.poll(() => errors, { timeout: 20_000, interval: 50 }).toBeGreaterThanOrEqual(3);
      expect(logs.filter((e) => e.event === "store.client.error")).toHaveLength(1);
      // node-redis's first error of an outage is the dropped socket; the retries' ECONNREFUSED are not logged.
      expect(logs.find((e) => e.event === "store.client.error")?.message).toMatch(/^RedisStore: Redis client error: Socket closed unexpectedly/);
      await redis.start();
      await manager.ready({ timeout: 10 });
      expect(logs.filter((e) => e.event === "store.client.ready")).toHaveLength(1);
    } finally {
      client.destroy();
      await redis.close();
    }
  });

  it("a server error names its code and the operation; nothing in the error carries the session id or the record", async () => {
    const client = nodeRedis();
    await client.connect();
    const prefix = uniquePrefix("node-redis-errors");
    const store = new RedisStore({ client, prefix });
    const id = "the-session-id-that-must-not-leak";
    await client.hSet(prefix + id, "field", "value"); // the key holds a hash: every string command gets WRONGTYPE
    const failures = await Promise.all([
      store.get(id, 60).catch((err: unknown) => err),
      store.compareAndSet(id, '{"v":1}\nexpected-record-bytes', '{"v":1}\nnew-record-bytes', 60).catch((err: unknown) => err),
    ]);
    for (const err of failures) {
      expect(err).toBeInstanceOf(RedisStoreError);
      expect((err as RedisStoreError).code).toBe("ERR_REDIS_COMMAND");
      expect((err as RedisStoreError).message).toMatch(/RedisStore: (get|compareAndSet) failed: WRONGTYPE$/);
      const everything = inspect(err, { depth: 10, showHidden: true });
      expect(everything).not.toContain(id);
      expect(everything).not.toContain("record-bytes");
    }
    await store.close();
  });

  it("a client the app closed fails at once, saying so, with nothing sent", async () => {
    const client = nodeRedis();
    await client.connect();
    const store = new RedisStore({ client, prefix: uniquePrefix("node-redis-closed") });
    expect(await store.create("a", '{"v":1}\n{}', 60)).toBe(true);
    client.destroy();
    const err = await store.get("a", 60).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisStoreError);
    expect((err as RedisStoreError).code).toBe("ERR_REDIS_NOT_CONNECTED");
    expect((err as RedisStoreError).message).toMatch(/the Redis client was closed, status "end"; nothing was sent/);
    await store.close();
  });
});
