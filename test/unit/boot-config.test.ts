// What a team meets in its first boot: an unset environment variable or a unit mistake must fail
// at construction with a message that says what is missing, in the unit the option uses.
import { describe, expect, it } from "vitest";
import { createMemcachedClient } from "../../adapters/memcached.js";
import { createRedisClient } from "../../adapters/redis.js";
import { createSessionManager, SessionConfigError } from "../../src/index.js";
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
