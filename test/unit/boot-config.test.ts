// What a team meets in its first boot: an unset environment variable or a unit mistake must fail
// at construction with a message that says what is missing, in the unit the option uses.
import { describe, expect, it } from "vitest";
import { createMemcachedClient } from "../../adapters/memcached.js";
import { createRedisClient } from "../../adapters/redis.js";
import { createSessionManager, SessionConfigError, StoreUnavailableError, type SessionLogEntry, type SessionLogger } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";

const secret = "s".repeat(32);

describe("durations and sizes name their unit when refused", () => {
  it.each([
    ["idleTimeout", "1d", /idleTimeout must be a whole number of seconds >= 1, got "1d"$/],
    ["absoluteTimeout", 1.5, /absoluteTimeout must be a whole number of seconds >= 1, got 1\.5$/],
    ["touchAfter", -1, /touchAfter must be a whole number of seconds >= 0, got -1$/],
    ["retryAfter", 0, /retryAfter must be a whole number of seconds >= 1, got 0$/],
    ["maxSize", "64kb", /maxSize must be a whole number of bytes >= 256, got "64kb"$/],
  ])("%s = %j", (name, value, message) => {
    const make = () => createSessionManager({ store: new MemoryStore({ quiet: true }), secret, [name]: value });
    expect(make).toThrow(SessionConfigError);
    expect(make).toThrow(message);
  });
});

describe("client factories refuse a missing address instead of guessing one", () => {
  it.each([undefined, null, ""])("createRedisClient(%j) says the URL is missing", (value) => {
    // Before: undefined silently connected to localhost:6379.
    const make = () => createRedisClient(value as string | undefined);
    expect(make).toThrow(SessionConfigError);
    expect(make).toThrow(/createRedisClient: .*REDIS_URL/);
  });

  it.each([undefined, ""])("createRedisClient({ url: %j }) says the URL is missing instead of using localhost", (url) => {
    expect(() => createRedisClient({ url, keyPrefix: "app:" })).toThrow(/createRedisClient: url is .*REDIS_URL/);
  });

  it("createRedisClient({ clusterNodes: [] }) says the nodes are missing", () => {
    expect(() => createRedisClient({ clusterNodes: [] })).toThrow(/createRedisClient: clusterNodes must be a non-empty array/);
  });

  it.each([undefined, null, 11211])("createMemcachedClient(%j) says the servers are missing", (value) => {
    // Before: undefined failed with "servers is not iterable".
    const make = () => createMemcachedClient(value as string | undefined);
    expect(make).toThrow(SessionConfigError);
    expect(make).toThrow(/createMemcachedClient: no servers given .*MEMCACHED_SERVERS/);
  });
});

describe("manager.ready() and isReady() on stores without a ready() of their own", () => {
  it("MemoryStore: ready resolves, isReady is true (a read of an id no session has)", async () => {
    const manager = createSessionManager({ store: new MemoryStore({ quiet: true }), secret });
    await expect(manager.ready()).resolves.toBeUndefined();
    await expect(manager.isReady()).resolves.toBe(true);
  });

  it("a failing store: ready rejects with StoreUnavailableError and the cause, logged once; isReady is false", async () => {
    const store = new MemoryStore({ quiet: true });
    const broken = new Error("connection refused");
    store.get = () => Promise.reject(broken);
    const logs: SessionLogEntry[] = [];
    const manager = createSessionManager({ store, secret, logger: (entry) => void logs.push(entry) });
    const error = await manager.ready({ timeout: 1 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreUnavailableError).message).toBe("[shared-session] session store unavailable");
    expect((error as StoreUnavailableError).operation).toBe("ready");
    expect(((error as StoreUnavailableError).cause as Error).message).toBe(broken.message);
    expect(logs.filter((e) => e.event === "store.notReady")).toHaveLength(1);
    await expect(manager.isReady()).resolves.toBe(false);
  });

  it("a store that never answers: ready rejects once its timeout has passed", async () => {
    const store = new MemoryStore({ quiet: true });
    store.get = () => new Promise<never>(() => {});
    const manager = createSessionManager({ store, secret });
    const error = await manager.ready({ timeout: 0.05 }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(((error as StoreUnavailableError).cause as Error).message).toBe("MemoryStore: no answer within 0.05s");
    await expect(manager.isReady({ timeout: 0.05 })).resolves.toBe(false);
  });

  it("refuses a timeout that is not a number of seconds > 0", async () => {
    const manager = createSessionManager({ store: new MemoryStore({ quiet: true }), secret });
    await expect(manager.ready({ timeout: 0 })).rejects.toThrow(SessionConfigError);
    await expect(manager.isReady({ timeout: "5s" as unknown as number })).rejects.toThrow(/timeout must be a number of seconds > 0, got 5s/);
  });

  it("hands the logger to a store that takes one, and only when there is a logger", () => {
    const handed: unknown[] = [];
    const store = Object.assign(new MemoryStore({ quiet: true }), { attachLogger: (logger: unknown) => void handed.push(logger) });
    createSessionManager({ store, secret });
    expect(handed).toHaveLength(0);
    const logs: SessionLogEntry[] = [];
    createSessionManager({ store, secret, logger: (entry) => void logs.push(entry) });
    expect(handed).toHaveLength(1);
    (handed[0] as SessionLogger)({ level: "error", event: "store.client.error", message: "MemoryStore: client error" });
    expect(logs).toEqual([{ level: "error", event: "store.client.error", message: "MemoryStore: client error" }]);
  });
});
