/**
 * Records are keyed by a keyed hash of the session id, never the id: checked on what Redis and
 * Memcached hold (SCAN, the owner index, MONITOR, memcached's key dump) after real logins over HTTP.
 * express-session's compat modes keep connect-redis's layout (the raw id).
 */
import memjs from "memjs";
import type { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { MemcachedStore } from "../../adapters/memcached.js";
import { createRedisClient, RedisStore } from "../../adapters/redis.js";
import { createSessionManager, SessionConfigError, type SessionOptions } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";
import { expressApp } from "../helpers/framework-apps.js";
import { cookieHeader, idOf, request, sessionCookie } from "../helpers/http.js";
import { services, uniquePrefix } from "../services/index.js";
import { keysOn } from "../helpers/memcached-servers.js";
import { closeClients, rawRedis, tracked } from "../helpers/redis-clients.js";

const SECRET = "a-test-secret-that-is-at-least-32-characters-long";
const OLD = "an-older-secret-that-is-at-least-32-characters";
const NEWER = "a-newer-secret-that-is-at-least-32-characters!";
const STORE_KEY = /^[A-Za-z0-9_-]{32}$/;

afterAll(() => closeClients());

async function scan(raw: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await raw.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  return keys;
}

describe("hashed store keys on Redis", () => {
  it("no key, index member or command Redis sees holds a session id", async () => {
    const raw = rawRedis(services().redis.url);
    const monitor = await rawRedis(services().redis.url).monitor();
    const seen: string[] = [];
    monitor.on("monitor", (_time: string, args: string[]) => seen.push(args.join(" ")));
    const prefix = uniquePrefix("hashed");
    const options: SessionOptions = {
      store: new RedisStore({ client: tracked(createRedisClient(services().redis.url)), prefix }),
      secret: SECRET,
      owner: (data) => data.userId as number | undefined,
    };
    const app = await expressApp.start(options);
    const manager = createSessionManager(options);
    try {
      const ids: string[] = [];
      for (const user of [1, 2, 2]) {
        const login = sessionCookie(await request(app.url, `/login?user=${user}`, { method: "POST" }));
        ids.push(idOf(login));
        await request(app.url, "/visit", { method: "POST", cookie: cookieHeader(login) });
        expect((await request(app.url, "/me", { cookie: cookieHeader(login) })).json()).toMatchObject({ userId: user, visits: 1 });
      }
      const keys = await scan(raw, prefix);
      const sessionKeys = keys.filter((k) => !k.startsWith(`${prefix}owner:`));
      expect(sessionKeys.sort()).toEqual(ids.map((id) => prefix + manager.storeKeyOf(id)).sort());
      for (const key of sessionKeys) expect(key.slice(prefix.length)).toMatch(STORE_KEY);
      const members = await raw.zrange(`${prefix}owner:2`, "0", "-1");
      expect(members.sort()).toEqual(ids.slice(1).map((id) => manager.storeKeyOf(id)).sort());
      // listIds lists store keys, never ids.
      const listed: string[] = [];
      for await (const key of manager.listIds()) listed.push(key);
      expect(listed.sort()).toEqual(ids.map((id) => manager.storeKeyOf(id)).sort());
      // Everything Redis was sent while the users logged in, changed and read their sessions.
      await raw.ping();
      expect(seen.filter((line) => line.includes(prefix)).length).toBeGreaterThanOrEqual(9);
      const everything = [...keys, ...members, ...seen, ...(await Promise.all(sessionKeys.map((k) => raw.get(k))))].join("\n");
      for (const id of ids) expect(everything).not.toContain(id);
    } finally {
      monitor.disconnect();
      await app.close();
    }
  });

  it("compat modes keep connect-redis's layout: the raw id", async () => {
    const prefix = uniquePrefix("compat-keys");
    const client = tracked(createRedisClient(services().redis.url));
    const manager = createSessionManager<{ n?: number }>({ store: new RedisStore({ client, prefix }), secret: SECRET, compat: "express-session" });
    const session = await manager.load(undefined, { secure: false });
    session.n = 1;
    await manager.commit(session);
    expect(manager.storeKeyOf(session.id)).toBe(session.id);
    expect(await scan(rawRedis(services().redis.url), prefix)).toEqual([prefix + session.id]);
  });

  it("the HMAC key comes from the last secret, so the usual rotation keeps every session; storeKeySecret pins it", async () => {
    const store = new RedisStore({ client: tracked(createRedisClient(services().redis.url)), prefix: uniquePrefix("rotation-keys") });
    const before = createSessionManager<{ n?: number }>({ store, secret: OLD });
    const session = await before.load(undefined, { secure: false });
    session.n = 1;
    const cookie = (await before.commit(session)).setCookie!.split(";")[0]!;
    // A new secret first: cookies re-signed, store keys unchanged.
    const rotated = createSessionManager<{ n?: number }>({ store, secret: [NEWER, OLD] });
    const during = await rotated.load(cookie, { secure: false });
    expect(during.n).toBe(1);
    const resigned = (await rotated.commit(during)).setCookie!.split(";")[0]!;
    // The old secret dropped: its value passed as storeKeySecret keeps the keys.
    const pinned = createSessionManager<{ n?: number }>({ store, secret: NEWER, storeKeySecret: OLD });
    expect((await pinned.load(resigned, { secure: false })).n).toBe(1);
    // Without it, every session is orphaned (documented): the keys changed.
    const dropped = createSessionManager<{ n?: number }>({ store, secret: NEWER });
    expect((await dropped.load(resigned, { secure: false })).isNew).toBe(true);
    expect(dropped.storeKeyOf(session.id)).not.toBe(rotated.storeKeyOf(session.id));
  });
});

describe("hashed store keys on Memcached", () => {
  it("no key the server holds is a session id, and keys stay far inside the 250-byte limit", async () => {
    const address = services().memcached.servers[0]!.address;
    const client = memjs.Client.create(address, { logger: { log: () => undefined } });
    const prefix = uniquePrefix("hashed");
    const options: SessionOptions = { store: new MemcachedStore({ client, prefix }), secret: SECRET };
    const app = await expressApp.start(options);
    const manager = createSessionManager(options);
    try {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const login = sessionCookie(await request(app.url, `/login?user=${i}`, { method: "POST" }));
        ids.push(idOf(login));
        expect((await request(app.url, "/me", { cookie: cookieHeader(login) })).json()).toMatchObject({ userId: i });
      }
      const ours = (await keysOn(address)).filter((key) => key.startsWith(prefix));
      expect(ours.sort()).toEqual(ids.map((id) => prefix + manager.storeKeyOf(id)).sort());
      for (const key of ours) expect(Buffer.byteLength(key)).toBe(Buffer.byteLength(prefix) + 32);
      for (const id of ids) expect(ours.join("\n")).not.toContain(id);
    } finally {
      await app.close();
      client.close();
    }
  });
});

describe("storeKeySecret", () => {
  it("is checked at construction", () => {
    const store = new MemoryStore({ quiet: true });
    expect(() => createSessionManager({ store, secret: SECRET, storeKeySecret: "" })).toThrow(SessionConfigError);
    expect(() => createSessionManager({ store, secret: SECRET, storeKeySecret: 5 as unknown as string })).toThrow(/storeKeySecret/);
    const a = createSessionManager({ store, secret: SECRET });
    const b = createSessionManager({ store, secret: [NEWER, SECRET] });
    const c = createSessionManager({ store, secret: NEWER, storeKeySecret: SECRET });
    expect(a.storeKeyOf("x")).toBe(b.storeKeyOf("x"));
    expect(a.storeKeyOf("x")).toBe(c.storeKeyOf("x"));
    expect(a.storeKeyOf("x")).toMatch(STORE_KEY);
    expect(a.storeKeyOf("x")).not.toBe(a.storeKeyOf("y"));
  });
});
