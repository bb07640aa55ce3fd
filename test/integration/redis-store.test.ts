/**
 * RedisStore against real servers, asserting on what the server holds: TTLs, keys, where keys live
 * in a Cluster, what SCAN lists, the commands each request sends, and behaviour in outages.
 */
import { randomUUID } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { RedisStore, RedisStoreError, createRedisClient } from "../../adapters/redis.js";
import { StoreUnavailableError, createSessionManager, type SessionManager } from "../../src/index.js";
import { services, startRedis, startRedisSentinel, uniquePrefix, type RedisHandle, type RedisSentinelHandle } from "../services/index.js";
import { closeClients, commandsDuring, failedCalls, rawCluster, rawRedis, serverTtl, storedRecord, tracked } from "./redis-helpers.js";
import { startRedisWithTls, startRedisWithoutGetex } from "./redis-custom-servers.js";

const SECRET = "a-test-secret-that-is-at-least-32-characters-long";

afterAll(() => closeClients());

/** A version tag as RedisStore returns it: the one stored in front of the record. */
const WHOLE_TAG = /^~[A-Za-z0-9_-]{11}$/;

function record(label: string): string {
  return `{"v":1,"createdAt":1,"expiresAt":2,"writtenAt":1}\n${JSON.stringify({ label, nonce: randomUUID() })}`;
}

async function listAll(store: RedisStore): Promise<string[]> {
  const ids: string[] = [];
  for await (const id of store.list()) ids.push(id);
  return ids;
}

/** The `name=value` pair of a Set-Cookie header, as a browser sends it back. */
function cookieHeader(setCookie: string | undefined): string {
  expect(setCookie).toBeDefined();
  return setCookie!.split(";")[0]!;
}

/** Every key under `pattern` on every master, by master. */
async function keysPerMaster(cluster: Cluster, pattern: string): Promise<string[][]> {
  return Promise.all(
    cluster.nodes("master").map(async (node) => {
      const keys: string[] = [];
      let cursor = "0";
      do {
        const [next, batch] = await node.scan(cursor, "MATCH", pattern, "COUNT", 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== "0");
      return keys;
    }),
  );
}

describe("RedisStore: what the server holds", () => {
  let raw: Redis;
  let store: RedisStore;
  const prefix = uniquePrefix("redis-store-ttl");

  beforeAll(() => {
    raw = rawRedis(services().redis.url);
    store = new RedisStore({ client: tracked(createRedisClient(services().redis.url)), prefix });
  });

  it("holds the TTL given at create, GETEX read, touch, and removes the key on destroy", async () => {
    const id = randomUUID();
    const key = `${prefix}${id}`;
    const value = record("ttl");
    expect(await store.create(id, value, 100)).toBe(true);
    expect(await storedRecord(raw, key)).toBe(value); // behind its version tag
    expect(await serverTtl(raw, key)).toBeGreaterThan(97);

    expect(await store.get(id, 500)).toBe(value);
    const afterRead = await serverTtl(raw, key);
    expect(afterRead).toBeGreaterThan(497);
    expect(afterRead).toBeLessThanOrEqual(500);

    expect(await store.get(id)).toBe(value); // without a TTL: a plain read leaves it alone
    expect(await serverTtl(raw, key)).toBeGreaterThan(497);

    expect(await store.touch(id, 42)).toBe(true);
    const afterTouch = await serverTtl(raw, key);
    expect(afterTouch).toBeGreaterThan(39);
    expect(afterTouch).toBeLessThanOrEqual(42);

    await store.destroy(id);
    expect(await raw.exists(key)).toBe(0);
  });

  it("through the core, a read keeps the TTL within the absolute deadline", async () => {
    // idleTimeout beyond absoluteTimeout: each read's GETEX sets 200 s, then EXPIRE caps it to what is left.
    const manager = createSessionManager({ store, secret: SECRET, idleTimeout: 200, absoluteTimeout: 100 });
    const created = await manager.load(undefined, { secure: false });
    (created as unknown as Record<string, unknown>).user = 7;
    const cookie = cookieHeader((await manager.commit(created)).setCookie);
    const key = `${prefix}${manager.storeKeyOf(created.id)}`;
    expect(await serverTtl(raw, key)).toBeLessThanOrEqual(100);
    const loaded = await manager.load(cookie, { secure: false });
    expect((loaded as unknown as Record<string, unknown>).user).toBe(7);
    const ttl = await serverTtl(raw, key);
    expect(ttl).toBeGreaterThan(95);
    expect(ttl).toBeLessThanOrEqual(100);
  });

  it("waits for a client's first connection, and connects a lazyConnect client, within its timeout", async () => {
    const id = randomUUID();
    await store.create(id, record("start"), 60);
    const starting = tracked(createRedisClient(services().redis.url)); // no offline queue
    expect(starting.status).not.toBe("ready");
    expect(await new RedisStore({ client: starting, prefix }).get(id)).not.toBeNull();
    const lazy = tracked(createRedisClient(services().redis.url, { lazyConnect: true }));
    expect(lazy.status).toBe("wait");
    expect(await new RedisStore({ client: lazy, prefix }).get(id, 60)).not.toBeNull();
    const lazyCluster = tracked(createRedisClient({ clusterNodes: services().redisCluster.nodes, lazyConnect: true }));
    expect(await new RedisStore({ client: lazyCluster, prefix }).get(id)).toBeNull();
  });

  it("refuses a TTL that is not whole seconds >= 1 before sending anything", async () => {
    await expect(store.create(randomUUID(), "x", 0)).rejects.toMatchObject({ code: "ERR_REDIS_ARGUMENT" });
    await expect(store.touch(randomUUID(), 1.5)).rejects.toBeInstanceOf(RedisStoreError);
  });

  it("checks its options at construction", () => {
    expect(() => new RedisStore({ client: {} as Redis })).toThrow(/RedisStore: client must be an ioredis/);
    expect(() => new RedisStore({ client: raw, timeout: 0 })).toThrow(/RedisStore: timeout/);
    expect(() => new RedisStore({ client: raw, scanCount: 0 })).toThrow(/RedisStore: scanCount/);
  });
});

describe("RedisStore on a Cluster", () => {
  let raw: Cluster;
  let store: RedisStore;
  const prefix = uniquePrefix("redis-store-cluster");

  beforeAll(() => {
    raw = rawCluster(services().redisCluster.nodes);
    store = new RedisStore({ client: tracked(createRedisClient({ clusterNodes: services().redisCluster.nodes })), prefix });
  });

  it("spreads sessions over every master and lists them all", async () => {
    const ids = Array.from({ length: 60 }, () => randomUUID());
    await Promise.all(ids.map((id) => store.create(id, record(id), 120)));
    await raw.nodes("all")[0]!.ping(); // connect the raw client so that nodes() is populated
    const perMaster = await keysPerMaster(raw, `${prefix}*`);
    expect(perMaster).toHaveLength(3);
    for (const keys of perMaster) expect(keys.length).toBeGreaterThan(0);
    expect(perMaster.flat().sort()).toEqual(ids.map((id) => `${prefix}${id}`).sort());
    expect((await listAll(store)).sort()).toEqual([...ids].sort());
  });
});

describe.each([
  ["a standalone server", () => createRedisClient(services().redis.url)],
  ["a Cluster", () => createRedisClient({ clusterNodes: services().redisCluster.nodes })],
] as const)("RedisStore listing with glob characters in the prefix, on %s", (_label, makeClient) => {
  let client: Redis | Cluster;
  beforeAll(() => {
    client = tracked(makeClient());
  });

  it("lists only its own keys when its prefix holds * ? [ ]", async () => {
    const base = uniquePrefix("redis-glob");
    const own = new RedisStore({ client, prefix: `${base}*?[ab]:` });
    // Unescaped, `<base>*?[ab]:*` would match this sibling's keys: `*` = "X", `?` = "Y", `[ab]` = "a".
    const sibling = new RedisStore({ client, prefix: `${base}XYa:` });
    const ownIds = [randomUUID(), randomUUID()];
    const siblingIds = [randomUUID(), randomUUID()];
    await Promise.all([...ownIds.map((id) => own.create(id, record("own"), 60)), ...siblingIds.map((id) => sibling.create(id, record("sibling"), 60))]);
    expect((await listAll(own)).sort()).toEqual([...ownIds].sort());
    expect((await listAll(sibling)).sort()).toEqual([...siblingIds].sort());
  });

  it("lists its own keys when its prefix holds a backslash, and not a sibling's", async () => {
    const base = uniquePrefix("redis-glob");
    const own = new RedisStore({ client, prefix: `${base}back\\slash:` });
    // Unescaped, `back\slash:*` matches "backslash:" and misses "back\slash:".
    const sibling = new RedisStore({ client, prefix: `${base}backslash:` });
    const ownId = randomUUID();
    const siblingId = randomUUID();
    await own.create(ownId, record("own"), 60);
    await sibling.create(siblingId, record("sibling"), 60);
    expect(await listAll(own)).toEqual([ownId]);
    expect(await listAll(sibling)).toEqual([siblingId]);
  });
});

describe.each([
  ["a standalone server", (keyPrefix: string) => createRedisClient(services().redis.url, { keyPrefix }), () => rawRedis(services().redis.url)],
  [
    "a Cluster",
    (keyPrefix: string) => createRedisClient({ clusterNodes: services().redisCluster.nodes, keyPrefix }),
    () => rawCluster(services().redisCluster.nodes),
  ],
] as const)("RedisStore with the client's keyPrefix, on %s", (_label, makeClient, makeRaw) => {
  it("applies keyPrefix to every operation and strips it when listing", async () => {
    const keyPrefix = uniquePrefix("redis-keyprefix");
    const store = new RedisStore({ client: tracked(makeClient(keyPrefix)) });
    const neighbour = new RedisStore({ client: tracked(makeClient(uniquePrefix("redis-keyprefix"))) });
    const raw = makeRaw();
    const id = randomUUID();
    const key = `${keyPrefix}sess:${id}`;
    const v1 = record("v1");
    expect(await store.create(id, v1, 60)).toBe(true);
    expect(await storedRecord(raw, key)).toBe(v1);
    expect(await store.get(id, 300)).toBe(v1);
    expect(await serverTtl(raw, key)).toBeGreaterThan(297);
    const v2 = record("v2");
    expect(await store.update(id, v2, 120)).toBe(true);
    expect(await storedRecord(raw, key)).toBe(v2);
    const v3 = record("v3");
    expect(await store.compareAndSet(id, v2, v3, 200)).toEqual({ status: "written", version: expect.stringMatching(WHOLE_TAG) });
    expect(await storedRecord(raw, key)).toBe(v3);
    expect(await store.compareAndSet(id, v2, record("stale"), 200)).toEqual({ status: "conflict", current: v3, version: expect.stringMatching(WHOLE_TAG) });
    expect(await store.touch(id, 77)).toBe(true);
    expect(await serverTtl(raw, key)).toBeLessThanOrEqual(77);

    const neighbourId = randomUUID();
    await neighbour.create(neighbourId, record("neighbour"), 60);
    expect(await listAll(store)).toEqual([id]);
    expect(await listAll(neighbour)).toEqual([neighbourId]);

    await store.destroy(id);
    expect(await raw.exists(key)).toBe(0);
    expect(await listAll(store)).toEqual([]);
  });
});

describe("RedisStore: commands per request through the core (dedicated server)", () => {
  let server: RedisHandle;
  let admin: Redis;
  let store: RedisStore;
  let manager: SessionManager;

  beforeAll(async () => {
    server = await startRedis();
    admin = rawRedis(server.url);
    store = new RedisStore({ client: tracked(createRedisClient(server.url)), prefix: "sess:" });
    manager = createSessionManager({ store, secret: SECRET });
    await store.get("warm-up"); // the connection handshake (HELLO, INFO, CLIENT SETINFO) is not counted
  });
  afterAll(async () => {
    await server?.close();
  });

  async function newSession(): Promise<string> {
    const session = await manager.load(undefined, { secure: false });
    (session as unknown as Record<string, unknown>).user = 1;
    return cookieHeader((await manager.commit(session)).setCookie);
  }

  it("a new session is one SET", async () => {
    let setCookie: string | undefined;
    const sent = await commandsDuring(admin, async () => {
      const session = await manager.load(undefined, { secure: false });
      (session as unknown as Record<string, unknown>).user = 1;
      setCookie = (await manager.commit(session)).setCookie;
    });
    expect(setCookie).toBeDefined();
    expect(sent).toEqual({ set: 1 });
  });

  it("a request that does not touch its session sends nothing", async () => {
    const sent = await commandsDuring(admin, async () => {
      const session = await manager.load(undefined, { secure: false });
      await manager.commit(session);
    });
    expect(sent).toEqual({});
  });

  it("reading an unchanged session is one GETEX and no write", async () => {
    const cookie = await newSession();
    let user: unknown;
    const sent = await commandsDuring(admin, async () => {
      const session = await manager.load(cookie, { secure: false });
      user = (session as unknown as Record<string, unknown>).user;
      expect((await manager.commit(session)).setCookie).toBeUndefined();
    });
    expect(user).toBe(1);
    expect(sent).toEqual({ getex: 1 });
  });

  it("changing a session is one GETEX and one EVALSHA", async () => {
    const cookie = await newSession();
    await change(cookie, 1); // the first script call on a connection may load the script
    const sent = await commandsDuring(admin, () => change(cookie, 2));
    // getrange (the version tag) and set ran inside the script (commandstats counts script calls too): no other round trip.
    expect(sent).toEqual({ getex: 1, evalsha: 1, getrange: 1, set: 1 });
    const session = await manager.load(cookie, { secure: false });
    expect((session as unknown as Record<string, unknown>).n).toBe(2);
  });

  it("falls back to EVAL once when the server lost its script cache", async () => {
    const cookie = await newSession();
    await change(cookie, 1);
    await admin.script("FLUSH");
    const failedBefore = (await failedCalls(admin)).get("evalsha") ?? 0;
    const sent = await commandsDuring(admin, () => change(cookie, 2));
    expect(sent).toEqual({ getex: 1, evalsha: 1, eval: 1, getrange: 1, set: 1 });
    expect((await failedCalls(admin)).get("evalsha")).toBe(failedBefore + 1); // the NOSCRIPT answer
    expect(await commandsDuring(admin, () => change(cookie, 3))).toEqual({ getex: 1, evalsha: 1, getrange: 1, set: 1 });
  });

  it("a read in the last idleTimeout of a session's life adds one EXPIRE to cap the TTL", async () => {
    const capped = createSessionManager({ store, secret: SECRET, idleTimeout: 200, absoluteTimeout: 100 });
    const session = await capped.load(undefined, { secure: false });
    (session as unknown as Record<string, unknown>).user = 1;
    const cookie = cookieHeader((await capped.commit(session)).setCookie);
    const sent = await commandsDuring(admin, async () => {
      await capped.commit(await capped.load(cookie, { secure: false }));
    });
    expect(sent).toEqual({ getex: 1, expire: 1 });
  });

  async function change(cookie: string, n: number): Promise<void> {
    const session = await manager.load(cookie, { secure: false });
    (session as unknown as Record<string, unknown>).n = n;
    await manager.commit(session);
  }
});

describe("RedisStore in outages (dedicated server)", () => {
  let server: RedisHandle;
  let raw: Redis;
  /** A user's client with ioredis defaults: offline queue on, no command timeout. */
  let plain: RedisStore;
  /** A client from createRedisClient: no offline queue, command timeout. */
  let tuned: RedisStore;

  beforeAll(async () => {
    server = await startRedis();
    raw = rawRedis(server.url);
    plain = new RedisStore({ client: rawRedis(server.url), timeout: 0.5 });
    tuned = new RedisStore({ client: tracked(createRedisClient(server.url)), timeout: 0.5 });
    await Promise.all([plain.get("warm-up"), tuned.get("warm-up")]);
  });
  afterAll(async () => {
    await server?.resume().catch(() => undefined);
    await server?.close();
  });

  /** Every store operation, each settled on its own. */
  function everyOperation(store: RedisStore, id: string): Promise<unknown>[] {
    return [
      store.get(id),
      store.get(id, 60),
      store.create(randomUUID(), record("new"), 60),
      store.update(id, record("update"), 60),
      store.touch(id, 60),
      store.destroy(randomUUID()),
      store.compareAndSet(id, "x", record("cas"), 60),
      listAll(store),
    ];
  }

  it("a paused server: every operation rejects within the store's timeout, and works after resume", async () => {
    const id = randomUUID();
    const value = record("paused");
    await plain.create(id, value, 300);
    const manager = createSessionManager({ store: plain, secret: SECRET });
    const session = await manager.load(undefined, { secure: false });
    (session as unknown as Record<string, unknown>).user = 1;
    const cookie = cookieHeader((await manager.commit(session)).setCookie);
    await server.pause();
    try {
      for (const store of [plain, tuned]) {
        const results = await Promise.allSettled(everyOperation(store, id));
        for (const result of results) {
          expect(result.status).toBe("rejected");
          const error = (result as PromiseRejectedResult).reason as RedisStoreError;
          expect(error).toBeInstanceOf(RedisStoreError);
          expect(error.message).toMatch(/RedisStore/);
          // The plain client has no command timeout: only the store's own timeout can have ended these.
          if (store === plain) expect(error.code).toBe("ERR_REDIS_TIMEOUT");
        }
      }
      // Through the core: a 503 error, not a hang.
      await expect(manager.load(cookie, { secure: false })).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await server.resume();
    }
    for (const store of [plain, tuned]) {
      await vi.waitFor(async () => expect(await store.get(id)).not.toBeNull(), { timeout: 10_000, interval: 100 });
      expect(await store.touch(id, 300)).toBe(true);
    }
  });

  it("a stopped server: operations fail at once without queueing, and the same store works after start", async () => {
    await server.stop();
    try {
      await vi.waitFor(() => {
        expect(plain.client.status).not.toBe("ready");
        expect(tuned.client.status).not.toBe("ready");
      });
      const queued = randomUUID();
      for (const store of [plain, tuned]) {
        const results = await Promise.allSettled([...everyOperation(store, randomUUID()), store.create(queued, record("queued"), 300)]);
        for (const result of results) {
          expect(result.status).toBe("rejected");
          // Not a timeout: nothing was sent, and nothing waits in the client's offline queue.
          expect((result as PromiseRejectedResult).reason).toMatchObject({ code: "ERR_REDIS_NOT_CONNECTED" });
        }
      }
      await server.start();
      const id = randomUUID();
      for (const store of [plain, tuned]) {
        await vi.waitFor(async () => expect(await store.get(id)).toBeNull(), { timeout: 15_000, interval: 100 });
      }
      expect(await tuned.create(id, record("after"), 60)).toBe(true);
      expect(await plain.get(id)).not.toBeNull();
      // A create refused during the outage was not replayed after the reconnection.
      expect(await raw.exists(`sess:${queued}`)).toBe(0);
    } finally {
      await server.start();
    }
  });
});

describe("RedisStore through a Sentinel failover (dedicated deployment)", () => {
  let deployment: RedisSentinelHandle;
  let store: RedisStore;

  beforeAll(async () => {
    deployment = await startRedisSentinel();
    store = new RedisStore({ client: tracked(createRedisClient({ sentinels: deployment.sentinels, name: deployment.name })) });
  });
  afterAll(async () => {
    await deployment?.close();
  });

  it("serves reads and writes through the new master, with the sessions written before", async () => {
    const sessions = Array.from({ length: 10 }, () => ({ id: randomUUID(), value: record("before") }));
    for (const { id, value } of sessions) expect(await store.create(id, value, 600)).toBe(true);
    const master = rawRedis(deployment.master.url);
    expect(await master.call("WAIT", "1", "1000")).toBe(1); // replicated before the master goes away
    await deployment.master.stop();

    // No restart, no new store: the client follows Sentinel to the promoted replica.
    await vi.waitFor(async () => expect(await store.touch(sessions[0]!.id, 600)).toBe(true), { timeout: 30_000, interval: 250 });
    const sentinel = rawRedis({ host: deployment.sentinels[0]!.host, port: deployment.sentinels[0]!.port });
    const [, port] = (await sentinel.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", deployment.name)) as [string, string];
    expect(Number(port)).toBe(deployment.replica.port);

    for (const { id, value } of sessions) expect(await store.get(id, 600)).toBe(value);
    const id = randomUUID();
    expect(await store.create(id, record("after"), 600)).toBe(true);
    const next = record("next");
    expect(await store.compareAndSet(sessions[1]!.id, sessions[1]!.value, next, 600)).toEqual({ status: "written", version: expect.stringMatching(WHOLE_TAG) });
    expect(await store.get(sessions[1]!.id)).toBe(next);
    const promoted = rawRedis(deployment.replica.url);
    expect(await promoted.exists(`sess:${id}`)).toBe(1);
  });
});

describe("RedisStore on a master that has lost its replica, with min-replicas-to-write (dedicated server)", () => {
  let server: RedisHandle;
  let admin: Redis;
  let manager: SessionManager;

  beforeAll(async () => {
    server = await startRedis();
    admin = rawRedis(server.url);
    manager = createSessionManager({ store: new RedisStore({ client: tracked(createRedisClient(server.url)) }), secret: SECRET });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("a logout the server refuses fails with a 503 and keeps the session, rather than passing and coming back later", async () => {
    const created = await manager.load(undefined, { secure: false });
    (created as unknown as Record<string, unknown>).user = 9;
    const cookie = cookieHeader((await manager.commit(created)).setCookie);
    const key = `sess:${manager.storeKeyOf(created.id)}`;
    const stored = await admin.get(key);
    expect(stored).not.toBeNull();

    const loaded = await manager.load(cookie, { secure: false });
    await admin.config("SET", "min-replicas-to-write", "1"); // this server has no replica at all
    try {
      const refused = await loaded.destroy().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(StoreUnavailableError);
      expect((refused as StoreUnavailableError).status).toBe(503);
      // The public message is generic; the store's error (the cause) names the server's answer.
      expect(((refused as Error).cause as Error).message).toContain("NOREPLICAS");
      // A read refreshes the TTL (GETEX), which is a write too: it is refused the same way.
      await expect(manager.load(cookie, { secure: false })).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(await admin.get(key)).toBe(stored);
    } finally {
      await admin.config("SET", "min-replicas-to-write", "0");
    }
    // The replica is back (here: the setting is off): the same logout goes through and is final.
    const again = await manager.load(cookie, { secure: false });
    expect((again as unknown as Record<string, unknown>).user).toBe(9);
    await again.destroy();
    expect(await admin.exists(key)).toBe(0);
  });
});

/** create, read, CAS, touch, list, destroy: each checked against what `raw` reads at `key(id)`. */
async function exerciseStore(store: RedisStore, raw: Redis, key: (id: string) => string): Promise<void> {
  const id = randomUUID();
  const v1 = record("v1");
  expect(await store.create(id, v1, 60)).toBe(true);
  expect(await storedRecord(raw, key(id))).toBe(v1);
  expect(await store.get(id, 300)).toBe(v1);
  expect(await serverTtl(raw, key(id))).toBeGreaterThan(297);
  const v2 = record("v2");
  expect(await store.compareAndSet(id, v1, v2, 120)).toEqual({ status: "written", version: expect.stringMatching(WHOLE_TAG) });
  // The versioned compare-and-set, the one every changed session sends (it reads the tag with GETRANGE).
  const read = await store.getVersioned(id);
  expect(read).toEqual({ record: v2, version: expect.stringMatching(WHOLE_TAG) });
  expect(await store.compareAndSet(id, v2, record("v3"), 120, read!.version)).toEqual({ status: "written", version: expect.stringMatching(WHOLE_TAG) });
  expect(await store.update(id, v1, 120)).toBe(true);
  expect(await store.touch(id, 50)).toBe(true);
  expect(await store.ttl(id)).toBeLessThanOrEqual(50);
  expect(await listAll(store)).toContain(id);
  await store.destroy(id);
  expect(await raw.exists(key(id))).toBe(0);
}

describe("RedisStore through the client's connection settings", () => {
  it("works over TLS (rediss:// and the tls option)", async () => {
    const server = await startRedisWithTls();
    try {
      const raw = rawRedis({ host: server.host, port: server.port });
      const prefix = uniquePrefix("redis-tls");
      const byUrl = new RedisStore({ client: tracked(createRedisClient(`rediss://127.0.0.1:${server.tlsPort}`, { tls: { ca: server.ca } })), prefix });
      await exerciseStore(byUrl, raw, (id) => `${prefix}${id}`);
      const byOptions = new RedisStore({ client: tracked(createRedisClient({ host: "127.0.0.1", port: server.tlsPort, tls: { ca: server.ca } })), prefix });
      await exerciseStore(byOptions, raw, (id) => `${prefix}${id}`);
      // Without the CA the certificate is refused: the connection really is TLS.
      const untrusted = new RedisStore({ client: tracked(createRedisClient(`rediss://127.0.0.1:${server.tlsPort}`)), timeout: 0.5 });
      await expect(untrusted.get(randomUUID())).rejects.toBeInstanceOf(RedisStoreError);
    } finally {
      await server.close();
    }
  });

  it("works as an ACL user limited to its key pattern and the commands the store sends", async () => {
    const server = await startRedis();
    try {
      const admin = rawRedis(server.url);
      // The least a RedisStore needs: these commands, on keys under its prefix.
      await admin.call(
        "ACL",
        "SETUSER",
        "sessions",
        "on",
        ">s3cret-password",
        "resetkeys",
        "~app:sess:*",
        "resetchannels",
        "-@all",
        "+getex",
        "+get",
        "+getrange",
        "+set",
        "+expire",
        "+del",
        "+ttl",
        "+evalsha",
        "+eval",
        "+scan",
        "+info",
      );
      const url = new URL(server.url);
      const client = tracked(createRedisClient(`redis://sessions:s3cret-password@${url.host}`));
      const store = new RedisStore({ client, prefix: "app:sess:" });
      await exerciseStore(store, admin, (id) => `app:sess:${id}`);
      const byOptions = new RedisStore({ client: tracked(createRedisClient({ host: url.hostname, port: Number(url.port), username: "sessions", password: "s3cret-password" })), prefix: "app:sess:" });
      await exerciseStore(byOptions, admin, (id) => `app:sess:${id}`);
      // Outside its key pattern the server refuses, and the error says so.
      const outside = new RedisStore({ client, prefix: "other:" });
      await expect(outside.create(randomUUID(), record("x"), 60)).rejects.toThrow(/RedisStore: create failed: NOPERM/);
      // The owner index needs its sorted-set commands too (scripts are checked command by command).
      const owner = `user-${randomUUID()}`;
      // The store's message names the operation; the server's words are in the cause (each layer says its part once).
      const refused = (await store.owners.add(owner, randomUUID(), Date.now() + 60_000).catch((e: unknown) => e)) as Error;
      expect(refused.message).toMatch(/RedisStore: owners\.add failed/);
      expect((refused.cause as Error).message).toMatch(/NOPERM|can.t run this command/);
      await admin.call("ACL", "SETUSER", "sessions", "+zadd", "+zrem", "+zremrangebyscore", "+zrange", "+zcard", "+pexpireat");
      const id = randomUUID();
      await store.owners.add(owner, id, Date.now() + 60_000);
      expect(await admin.zrange(`app:sess:owner:${owner}`, 0, "-1")).toEqual([id]);
      expect((await store.owners.entries(owner)).map((e) => e.id)).toEqual([id]);
      await store.owners.remove(owner, id);
      expect(await admin.exists(`app:sess:owner:${owner}`)).toBe(0);
    } finally {
      await server.close();
    }
  });

  it("works in another database index (db option and /db in the URL), and lists only that database", async () => {
    const url = services().redis.url;
    const prefix = uniquePrefix("redis-db");
    const db0 = rawRedis(url);
    const db5 = rawRedis(url, { db: 5 });
    const byOption = new RedisStore({ client: tracked(createRedisClient(url, { db: 5 })), prefix });
    await exerciseStore(byOption, db5, (id) => `${prefix}${id}`);
    const byUrl = new RedisStore({ client: tracked(createRedisClient(`${url}/5`)), prefix });
    await exerciseStore(byUrl, db5, (id) => `${prefix}${id}`);
    const id = randomUUID();
    await byOption.create(id, record("db5"), 60);
    expect(await db5.exists(`${prefix}${id}`)).toBe(1);
    expect(await db0.exists(`${prefix}${id}`)).toBe(0);
    const inDb0 = new RedisStore({ client: tracked(createRedisClient(url)), prefix });
    expect(await listAll(inDb0)).toEqual([]);
    expect(await listAll(byUrl)).toEqual([id]);
  });
});

describe("RedisStore on a server older than 6.2", () => {
  let server: { url: string; close: () => Promise<void> };
  beforeAll(async () => {
    server = await startRedisWithoutGetex();
  });
  afterAll(async () => {
    await server?.close();
  });

  it("says it needs Redis >= 6.2 when GETEX is unknown", async () => {
    const store = new RedisStore({ client: tracked(createRedisClient(server.url)) });
    const id = randomUUID();
    expect(await store.create(id, record("old"), 60)).toBe(true);
    const error = await store.get(id, 60).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(RedisStoreError);
    expect(error).toMatchObject({ code: "ERR_REDIS_VERSION" });
    expect((error as Error).message).toContain("RedisStore needs Redis >= 6.2 (GETEX)");
    expect((error as Error).message).not.toContain(id); // Redis quotes the key; the store's message does not
  });
});
