/**
 * maxSessionsPerOwner (#19 item 3) on real Redis, standalone and a 3-master Cluster: parallel logins of
 * one owner in several app processes never leave more live sessions than the limit, whatever policy;
 * "evict-least-active" evicts the session used least recently, not the oldest login. Counted on the
 * server (the owner's sorted set, INFO commandstats) and through the cookies (which sessions still load).
 */
import type { Cluster, Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { MemcachedStore } from "../../adapters/memcached.js";
import { RedisStore, createRedisClient } from "../../adapters/redis.js";
import { createSessionManager, SessionConfigError, SessionLimitError, type SessionManager, type SessionOptions, type SessionStore } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";
import { services, startRedis, uniquePrefix, type RedisHandle } from "../services/index.js";
import { closeClients, commandsDuring, rawCluster, rawRedis, tracked } from "./redis-helpers.js";
import memjs from "memjs";

const SECRET = "a-test-secret-that-is-at-least-32-characters-long";
type Data = { userId?: string; device?: number };

afterAll(() => closeClients());
afterEach(() => {
  vi.useRealTimers();
});

async function request(manager: SessionManager<Data>, cookie: string | undefined, change?: (s: Data) => unknown) {
  const session = await manager.load(cookie, { secure: false });
  await change?.(session as Data);
  const { setCookie } = await manager.commit(session);
  const next = setCookie === undefined ? cookie : /Max-Age=0/.test(setCookie) ? undefined : setCookie.split(";")[0]!;
  return { session: session as typeof session & Data, cookie: next };
}

async function alive(manager: SessionManager<Data>, cookie: string | undefined, userId: string) {
  if (cookie === undefined) return false;
  const { session } = await request(manager, cookie);
  return !session.isNew && session.userId === userId;
}

const topologies = [
  ["a standalone server", () => createRedisClient(services().redis.url), () => rawRedis(services().redis.url)],
  ["a 3-master Cluster", () => createRedisClient({ clusterNodes: services().redisCluster.nodes }), () => rawCluster(services().redisCluster.nodes)],
] as const;

describe.each(topologies)("maxSessionsPerOwner on %s", (_label, makeClient, makeRaw) => {
  function processes(count: number, limit: SessionOptions<Data>["maxSessionsPerOwner"]) {
    const prefix = uniquePrefix("limit");
    const managers = Array.from({ length: count }, () =>
      createSessionManager<Data>({
        store: new RedisStore({ client: tracked(makeClient()), prefix }),
        secret: SECRET,
        owner: (d) => d.userId,
        maxSessionsPerOwner: limit,
      }),
    );
    return { managers, prefix };
  }

  it("evict-least-active: 12 parallel logins in 3 processes leave exactly 2 live sessions, the last ones indexed, the rest dead", async () => {
    const { managers, prefix } = processes(3, { limit: 2, onLimit: "evict-least-active" });
    const evicted: string[] = [];
    for (const m of managers) m.on("evicted", (e) => evicted.push(e.session));
    const user = "eve";
    const logins = await Promise.all(
      Array.from({ length: 12 }, (_, i) => request(managers[i % 3]!, undefined, (s) => Object.assign(s, { userId: user, device: i }))),
    );
    const raw: Redis | Cluster = makeRaw();
    expect(await raw.zcard(`${prefix}owner:${user}`)).toBe(2);
    let live = 0;
    for (const { cookie } of logins) if (await alive(managers[0]!, cookie, user)) live++;
    expect(live).toBe(2);
    expect(evicted.length).toBe(10);
    expect((await managers[1]!.listSessions(user)).length).toBe(2);
  });

  it("evict-least-active: the oldest login, still in use, stays; the idle one logged in after it is evicted", async () => {
    // The app's clock moves (the index's deadlines and touchAfter are the app's); Redis keeps its own.
    vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
    const { managers, prefix } = processes(2, { limit: 2, onLimit: "evict-least-active" });
    const [m1, m2] = managers as [SessionManager<Data>, SessionManager<Data>];
    const evicted: string[] = [];
    for (const m of managers) m.on("evicted", (e) => evicted.push(e.session));
    const user = "olga";
    const oldest = await request(m1, undefined, (s) => Object.assign(s, { userId: user, device: 1 }));
    vi.setSystemTime(Date.now() + 10_000);
    const middle = await request(m2, undefined, (s) => Object.assign(s, { userId: user, device: 2 }));
    // The oldest login is used past touchAfter (60 s): that request refreshes it and re-scores its entry.
    vi.setSystemTime(Date.now() + 70_000);
    expect((await request(m2, oldest.cookie)).session.device).toBe(1);
    const raw: Redis | Cluster = makeRaw();
    const key = `${prefix}owner:${user}`;
    const scoreOf = async (s: { id: string }) => Number(await raw.zscore(key, m1.storeKeyOf(s.id)));
    expect(await scoreOf(oldest.session)).toBeGreaterThan(await scoreOf(middle.session));
    vi.setSystemTime(Date.now() + 10_000);
    const newest = await request(m1, undefined, (s) => Object.assign(s, { userId: user, device: 3 }));
    expect(evicted.length).toBe(1);
    expect(await alive(m2, oldest.cookie, user)).toBe(true);
    expect(await alive(m1, middle.cookie, user)).toBe(false);
    expect(await alive(m2, newest.cookie, user)).toBe(true);
    expect(await raw.zcard(key)).toBe(2);
    expect((await m1.listSessions(user)).map((s) => s.session).sort()).toEqual([m1.hashOf(oldest.session.id), m1.hashOf(newest.session.id)].sort());
  });

  it("owners.touch: the owner's index lives as long as its latest deadline, raised by touch (never lowered, never added)", async () => {
    const prefix = uniquePrefix("touch");
    const store = new RedisStore({ client: tracked(makeClient()), prefix });
    const raw: Redis | Cluster = makeRaw();
    const key = `${prefix}owner:tom`;
    await store.owners.add("tom", "a", Date.now() + 5_000);
    await store.owners.add("tom", "b", Date.now() + 10_000);
    await store.owners.touch!("tom", "a", Date.now() + 3_600_000);
    expect(await raw.pttl(key)).toBeGreaterThan(3_000_000);
    await store.owners.touch!("tom", "b", Date.now() + 60_000); // not the latest: the key's expiry stays
    expect(await raw.pttl(key)).toBeGreaterThan(3_000_000);
    await store.owners.touch!("tom", "c", Date.now() + 7_200_000); // absent: not added, expiry unchanged
    expect(await raw.zcard(key)).toBe(2);
    expect(await raw.pttl(key)).toBeLessThanOrEqual(3_600_000);
  });

  it("refuse: of 12 parallel logins exactly 2 succeed, the others fail with SessionLimitError and write nothing; a logout makes room", async () => {
    const { managers, prefix } = processes(3, { limit: 2, onLimit: "refuse" });
    const user = "rita";
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => request(managers[i % 3]!, undefined, (s) => Object.assign(s, { userId: user, device: i }))),
    );
    const ok = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r) => r.status === "rejected");
    expect(ok.length).toBe(2);
    expect(refused.every((r) => r.status === "rejected" && r.reason instanceof SessionLimitError)).toBe(true);
    const raw: Redis | Cluster = makeRaw();
    expect(await raw.zcard(`${prefix}owner:${user}`)).toBe(2);
    // A logout of one of them makes room for one more.
    const first = ok[0]!.status === "fulfilled" ? ok[0]!.value.cookie : undefined;
    await request(managers[0]!, first, (s) => (s as unknown as { destroy(): Promise<void> }).destroy());
    const again = await request(managers[2]!, undefined, (s) => Object.assign(s, { userId: user }));
    expect(await alive(managers[1]!, again.cookie, user)).toBe(true);
    await expect(request(managers[1]!, undefined, (s) => Object.assign(s, { userId: user }))).rejects.toBeInstanceOf(SessionLimitError);
  });

  it("refuse: a session that ended by idle expiry does not hold a place (the index is pruned before refusing)", async () => {
    const { managers, prefix } = processes(1, { limit: 1, onLimit: "refuse" });
    const [m] = managers;
    const user = "ida";
    const { session } = await request(m!, undefined, (s) => Object.assign(s, { userId: user }));
    const raw: Redis | Cluster = makeRaw();
    await raw.del(`${prefix}${m!.storeKeyOf(session.id)}`); // what an idle TTL running out does
    const next = await request(m!, undefined, (s) => Object.assign(s, { userId: user }));
    expect(await alive(m!, next.cookie, user)).toBe(true);
  });
});

describe("maxSessionsPerOwner where it cannot be honest", () => {
  it("is refused at construction on Memcached (no index to count with) and without the owner option", () => {
    const client = memjs.Client.create(services().memcached.servers.map((s) => s.address).join(","));
    try {
      const store = new MemcachedStore({ client });
      expect(() => createSessionManager<Data>({ store, secret: SECRET, owner: (d) => d.userId, maxSessionsPerOwner: { limit: 1, onLimit: "refuse" } })).toThrow(
        /MemcachedStore cannot count an owner's sessions atomically/,
      );
      const redis = new RedisStore({ client: tracked(createRedisClient(services().redis.url)) });
      expect(() => createSessionManager<Data>({ store: redis, secret: SECRET, maxSessionsPerOwner: { limit: 1, onLimit: "refuse" } })).toThrow(SessionConfigError);
      expect(() =>
        createSessionManager<Data>({ store: redis, secret: SECRET, owner: (d) => d.userId, maxSessionsPerOwner: { limit: 0, onLimit: "refuse" } }),
      ).toThrow(SessionConfigError);
      // Renamed before the first release: the old policy name is refused with the new one.
      const old = { limit: 1, onLimit: "evict-oldest" } as unknown as SessionOptions<Data>["maxSessionsPerOwner"];
      expect(() => createSessionManager<Data>({ store: redis, secret: SECRET, owner: (d) => d.userId, maxSessionsPerOwner: old })).toThrow(
        /"evict-oldest" is now "evict-least-active"/,
      );
      // An owner index that cannot re-score (no owners.touch) cannot know activity: only "refuse" is honest there.
      const memory = new MemoryStore({ quiet: true });
      const { touch: _touch, ...untouchable } = memory.owners;
      const untouched: SessionStore = {
        name: "UntouchableStore",
        capabilities: memory.capabilities,
        get: (id, ttl) => memory.get(id, ttl),
        create: (id, record, ttl) => memory.create(id, record, ttl),
        update: (id, record, ttl) => memory.update(id, record, ttl),
        touch: (id, ttl) => memory.touch(id, ttl),
        destroy: (id) => memory.destroy(id),
        compareAndSet: (id, expected, record, ttl) => memory.compareAndSet(id, expected, record, ttl),
        list: () => memory.list(),
        owners: untouchable,
      };
      expect(() =>
        createSessionManager<Data>({ store: untouched, secret: SECRET, owner: (d) => d.userId, maxSessionsPerOwner: { limit: 1, onLimit: "evict-least-active" } }),
      ).toThrow(/cannot re-score an owner's index entries/);
      expect(() =>
        createSessionManager<Data>({ store: untouched, secret: SECRET, owner: (d) => d.userId, maxSessionsPerOwner: { limit: 1, onLimit: "refuse" } }),
      ).not.toThrow();
    } finally {
      client.close();
    }
  });
});

describe("maxSessionsPerOwner: what a login costs, counted by the server (dedicated server)", () => {
  let server: RedisHandle;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedis();
    admin = rawRedis(server.url);
  });
  afterAll(async () => {
    await server?.close();
  });

  it("a login under the limit: one capped script, the SET, the mark's GET; evicting one more: the placeholder SET", async () => {
    const manager = createSessionManager<Data>({
      store: new RedisStore({ client: tracked(createRedisClient(server.url)) }),
      secret: SECRET,
      owner: (d) => d.userId,
      maxSessionsPerOwner: { limit: 1, onLimit: "evict-least-active" },
    });
    await request(manager, undefined, (s) => Object.assign(s, { userId: "warm-up" })); // loads the script
    const first = await commandsDuring(admin, () => request(manager, undefined, (s) => Object.assign(s, { userId: "u" })));
    expect(first).toEqual({ evalsha: 1, zremrangebyscore: 1, zscore: 1, zcard: 1, zadd: 1, zrange: 1, pexpireat: 1, set: 1, get: 1 });
    const second = await commandsDuring(admin, () => request(manager, undefined, (s) => Object.assign(s, { userId: "u" })));
    // The oldest session's record becomes an "evicted" placeholder (SET XX): one more command.
    expect(second).toEqual({ evalsha: 1, zremrangebyscore: 1, zscore: 1, zcard: 1, zadd: 1, zrange: 2, zrem: 1, pexpireat: 1, set: 2, get: 1 });
  });

  it("a request of an owned session: 1 GETEX with or without the cap; once per touchAfter, with evict-least-active only, the rewrite and the index's re-score", async () => {
    vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
    const measured: Record<string, Record<string, number>[]> = {};
    // Twice: the first round loads the scripts (EVALSHA's NOSCRIPT, then EVAL), the second is measured.
    for (const [label, limit] of ([
      ["no cap", undefined],
      ["refuse", { limit: 3, onLimit: "refuse" }],
      ["evict-least-active", { limit: 3, onLimit: "evict-least-active" }],
    ] as const).flatMap((x) => [x, x])) {
      const manager = createSessionManager<Data>({
        store: new RedisStore({ client: tracked(createRedisClient(server.url)) }),
        secret: SECRET,
        owner: (d) => d.userId,
        ...(limit === undefined ? {} : { maxSessionsPerOwner: limit }),
      });
      const login = await request(manager, undefined, (s) => Object.assign(s, { userId: `count-${label}` }));
      const counts: Record<string, number>[] = [];
      vi.setSystemTime(Date.now() + 40_000); // past the revocation mark's 30 s after login
      counts.push(await commandsDuring(admin, () => request(manager, login.cookie)));
      vi.setSystemTime(Date.now() + 30_000); // 70 s after the last write: past touchAfter (60 s)
      counts.push(await commandsDuring(admin, () => request(manager, login.cookie)));
      counts.push(await commandsDuring(admin, () => request(manager, login.cookie)));
      measured[label] = counts;
    }
    const read = { getex: 1 };
    expect(measured["no cap"]).toEqual([read, read, read]);
    expect(measured["refuse"]).toEqual([read, read, read]);
    // The refresh: the compare-and-set script (GETRANGE of the version tag, SET) and the re-score script (ZADD XX GT, ZRANGE, and
    // PEXPIREAT as this entry became the owner's latest), sent together: one round trip on one server.
    expect(measured["evict-least-active"]).toEqual([read, { getex: 1, evalsha: 2, getrange: 1, set: 1, zadd: 1, zrange: 1, pexpireat: 1 }, read]);
  });
});
