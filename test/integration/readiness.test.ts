/**
 * Boot and readiness against real servers: `manager.ready()` fails fast with the reason and
 * `isReady()` answers a probe, on a healthy, stopped or password-protected Redis, Sentinel, Cluster
 * and Memcached; and a client without an `error` listener has its errors routed to the manager's
 * logger (one line per outage) instead of ioredis printing "Unhandled error event" on every retry.
 */
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { MemcachedStore, createMemcachedClient } from "../../adapters/memcached.js";
import { RedisStore, createRedisClient, type RedisClient } from "../../adapters/redis.js";
import { StoreUnavailableError, createSessionManager, type SessionLogEntry, type SessionStore } from "../../src/index.js";
import { services, startMemcached, startRedis } from "../services/index.js";
import { closeClients, tracked } from "../helpers/redis-clients.js";

const secret = "a-test-secret-that-is-at-least-32-characters-long";
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => closeClients());

function managerOn(store: SessionStore, logs: SessionLogEntry[] = []) {
  return createSessionManager({ store, secret, logger: (entry) => void logs.push(entry) });
}

/** The store first: it routes client errors only when the client has no listener yet (tracked() adds one). */
function redisManager(client: RedisClient, logs?: SessionLogEntry[], track = true) {
  const store = new RedisStore({ client });
  if (track) tracked(client);
  else cleanups.push(() => client.disconnect());
  return managerOn(store, logs);
}

describe("Redis: ready() right after createRedisClient", () => {
  it("runs on the ioredis this run names (SHARED_SESSION_IOREDIS_MODULE, else the repository's)", async () => {
    const named = process.env.SHARED_SESSION_IOREDIS_MODULE;
    const expected = named ? ((await import(named)) as { Redis: unknown }).Redis : Redis;
    const client = tracked(createRedisClient(services().redis.url, { lazyConnect: true }));
    expect(client).toBeInstanceOf(expected as typeof Redis);
    expect(named === undefined || expected !== (await import("../../node_modules/ioredis/built/index.js")).Redis).toBe(true);
  });

  it("standalone: resolves where client.ping() fails (no offline queue while connecting)", async () => {
    const client = tracked(createRedisClient(services().redis.url));
    await expect(client.ping()).rejects.toThrow(/enableOfflineQueue|Stream isn't writeable/);
    const manager = redisManager(client);
    await expect(manager.ready({ timeout: 5 })).resolves.toBeUndefined();
    await expect(manager.isReady()).resolves.toBe(true);
  });

  it("a lazyConnect client is connected by ready()", async () => {
    const client = createRedisClient(services().redis.url, { lazyConnect: true });
    const manager = redisManager(client);
    expect(client.status).toBe("wait");
    await manager.ready({ timeout: 5 });
    expect(client.status).toBe("ready");
  });

  it("Sentinel: resolves once the sentinels name the master and it answers", async () => {
    const { sentinels, name } = services().redisSentinel;
    const manager = redisManager(createRedisClient({ sentinels, name }));
    await expect(manager.ready({ timeout: 10 })).resolves.toBeUndefined();
  });

  it("Sentinel with a master name the sentinels do not know: rejects with the sentinels' answer", async () => {
    const { sentinels } = services().redisSentinel;
    const manager = redisManager(createRedisClient({ sentinels, name: "no-such-master" }));
    const error = await manager.ready({ timeout: 2 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(reasons(error)).toMatch(/RedisStore: Redis not ready within 2s: not connected .*last client error: .*sentinel/i);
  });

  it("Cluster: resolves once every master answers PING", async () => {
    const manager = redisManager(createRedisClient({ clusterNodes: services().redisCluster.nodes }));
    await expect(manager.ready({ timeout: 10 })).resolves.toBeUndefined();
    await expect(manager.isReady({ timeout: 2 })).resolves.toBe(true);
  });
});

describe("Redis: ready() fails fast with the reason", () => {
  it("a stopped server: rejects naming the refused connection, then resolves once the server is back", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.close());
    await redis.stop();
    const logs: SessionLogEntry[] = [];
    const manager = redisManager(createRedisClient(redis.url), logs);
    const error = await manager.ready({ timeout: 1 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(reasons(error)).toMatch(/not ready within 1s: not connected .*last client error: connect ECONNREFUSED/);
    expect(logs.filter((e) => e.event === "store.notReady")).toHaveLength(1);
    await expect(manager.isReady({ timeout: 0.5 })).resolves.toBe(false);
    await redis.start();
    await expect(manager.ready({ timeout: 10 })).resolves.toBeUndefined();
    await expect(manager.isReady()).resolves.toBe(true);
  });

  it("a wrong password: rejects with the server's refusal", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.close());
    // Set at runtime: the test services check a server is up with an unauthenticated PING.
    const admin = tracked(createRedisClient(redis.url));
    await managerOn(new RedisStore({ client: admin })).ready({ timeout: 5 });
    await admin.config("SET", "requirepass", "the-right-password");
    const url = redis.url.replace("redis://", "redis://:a-wrong-password@");
    const manager = redisManager(createRedisClient(url));
    const error = await manager.ready({ timeout: 2 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(reasons(error)).toMatch(/WRONGPASS|NOAUTH|invalid password/);
    const right = redisManager(createRedisClient(redis.url.replace("redis://", "redis://:the-right-password@")));
    await expect(right.ready({ timeout: 5 })).resolves.toBeUndefined();
  });

  it("a Cluster whose nodes are all down: rejects", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.close());
    await redis.stop();
    const manager = redisManager(createRedisClient({ clusterNodes: [{ host: redis.host, port: redis.port }] }));
    const error = await manager.ready({ timeout: 1 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(reasons(error)).toMatch(/RedisStore: Redis not ready within 1s/);
  });
});

describe("Redis client errors go to the manager's logger", () => {
  it("one error line per outage and one when connected again; ioredis prints nothing", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.close());
    const printed = vi.spyOn(console, "error");
    cleanups.push(() => printed.mockRestore());
    const client = createRedisClient(redis.url); // no client.on("error"), as in a first quick start
    const logs: SessionLogEntry[] = [];
    const manager = redisManager(client, logs, false);
    await manager.ready({ timeout: 5 });
    let errors = 0;
    client.on("error", () => void (errors += 1)); // counts the retries; added after the store, as an app's late listener
    await redis.stop();
    await vi.waitFor(() => expect(errors).toBeGreaterThanOrEqual(3), { timeout: 20_000, interval: 50 });
    expect(logs.filter((e) => e.event === "store.client.error")).toHaveLength(1);
    expect(logs.find((e) => e.event === "store.client.error")?.message).toMatch(/^RedisStore: Redis client error: .*ECONNREFUSED/);
    await redis.start();
    await manager.ready({ timeout: 10 });
    expect(logs.filter((e) => e.event === "store.client.ready")).toHaveLength(1);
    expect(printed.mock.calls.filter((args) => String(args[0]).includes("Unhandled error event"))).toHaveLength(0);
  });

  it("without a logger: one process warning per outage, not one line per retry", async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.close());
    const warnings: string[] = [];
    const onWarning = (warning: Error) => void (warning.name === "SharedSessionWarning" && warnings.push(warning.message));
    process.on("warning", onWarning);
    cleanups.push(() => process.off("warning", onWarning));
    const client = createRedisClient(redis.url);
    const store = new RedisStore({ client });
    cleanups.push(() => client.disconnect());
    const manager = createSessionManager({ store, secret }); // no logger
    await manager.ready({ timeout: 5 });
    let errors = 0;
    client.on("error", () => void (errors += 1));
    await redis.stop();
    await vi.waitFor(() => expect(errors).toBeGreaterThanOrEqual(3), { timeout: 20_000, interval: 50 });
    await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^\[shared-session\] RedisStore: Redis client error: .*ECONNREFUSED.*Pass a logger/);
  });

  it("leaves a client that has the app's own error listener alone (the store only remembers the last error)", async () => {
    const client = tracked(createRedisClient(services().redis.url)); // tracked() adds the app's listener
    const warnings: string[] = [];
    const onWarning = (warning: Error) => void (warning.name === "SharedSessionWarning" && warnings.push(warning.message));
    process.on("warning", onWarning);
    const logs: SessionLogEntry[] = [];
    managerOn(new RedisStore({ client }), logs);
    expect(client.listenerCount("error")).toBe(2);
    client.emit("error", new Error("connect ECONNREFUSED 127.0.0.1:1"));
    expect(logs.filter((e) => e.event === "store.client.error")).toHaveLength(0);
    await new Promise((resolve) => setImmediate(resolve)); // process warnings are emitted on a later tick
    process.off("warning", onWarning);
    expect(warnings).toHaveLength(0);
    const bare = createRedisClient(services().redis.url);
    cleanups.push(() => bare.disconnect());
    const store = new RedisStore({ client: bare });
    expect(bare.listenerCount("error")).toBe(1);
    void store.close();
    expect(bare.listenerCount("error")).toBe(0);
  });
});

describe("Memcached: ready()", () => {
  it("resolves when every server answers", async () => {
    const client = createMemcachedClient(services().memcachedMulti.servers.map((s) => s.address));
    cleanups.push(() => client.close());
    const manager = managerOn(new MemcachedStore({ client }));
    await expect(manager.ready({ timeout: 5 })).resolves.toBeUndefined();
    await expect(manager.isReady()).resolves.toBe(true);
  });

  it("rejects naming the one server of three that is down, then resolves once it is back", async () => {
    const memcached = await startMemcached(3);
    cleanups.push(() => memcached.close());
    const down = memcached.servers[1]!;
    await down.stop();
    const client = createMemcachedClient(memcached.servers.map((s) => s.address));
    cleanups.push(() => client.close());
    const manager = managerOn(new MemcachedStore({ client }));
    const error = await manager.ready({ timeout: 1 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    const message = reasons(error);
    expect(message).toContain(`1 of 3 memcached server(s) not ready: ${down.address}:`);
    for (const up of [memcached.servers[0]!, memcached.servers[2]!]) expect(message).not.toContain(up.address);
    await expect(manager.isReady({ timeout: 1 })).resolves.toBe(false);
    await down.start();
    await vi.waitFor(() => expect(manager.isReady({ timeout: 1 })).resolves.toBe(true), { timeout: 20_000, interval: 200 });
  });
});

/** The messages of an error and its `cause` chain, one per line: ready()'s reason is in the chain, its own message is generic. */
function reasons(error: unknown): string {
  const lines: string[] = [];
  for (let e = error; e instanceof Error; e = e.cause) lines.push(e.message);
  return lines.join("\n");
}
