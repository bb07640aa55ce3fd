/**
 * Encryption at rest (`encryption` option), checked on what Redis and Memcached actually hold: no
 * plaintext in raw values, readable metadata, key rotation, records bound to their key, wrong or
 * missing keys read as corrupt (a fresh session and a log line, never a 500), change detection and
 * compare-and-set merging unchanged.
 */
import { randomBytes } from "node:crypto";
import memjs from "memjs";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemcachedStore } from "../../adapters/memcached.js";
import { createRedisClient, RedisStore } from "../../adapters/redis.js";
import { createSessionManager, decodeRecord, SessionConfigError, type SessionLogEntry, type SessionOptions } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";
import { expressApp } from "../helpers/framework-apps.js";
import { cookieHeader, request, sessionCookie, idOf } from "../helpers/http.js";
import { services, uniquePrefix } from "../services/index.js";
import { closeClients, rawRedis, storedRecord, tracked } from "../helpers/redis-clients.js";

const SECRET = "a-test-secret-that-is-at-least-32-characters-long";
const KEY1 = randomBytes(32).toString("base64");
const KEY2 = randomBytes(32).toString("hex");
const KEY3 = randomBytes(32);
/** A user id no ciphertext will contain by chance, so its absence from raw values means something. */
const USER = 73_195_284_610;

afterAll(() => closeClients());

describe("encryption at rest on Redis", () => {
  let raw: Redis;
  const prefix = uniquePrefix("encrypted");
  let logs: SessionLogEntry[];
  const options = (keys: SessionOptions["encryption"] | undefined): SessionOptions => ({
    store: new RedisStore({ client: tracked(createRedisClient(services().redis.url)), prefix }),
    secret: SECRET,
    logger: (entry) => logs.push(entry),
    ...(keys === undefined ? {} : { encryption: keys }),
  });

  beforeAll(() => {
    raw = rawRedis(services().redis.url);
    logs = [];
  });

  /** Log in through HTTP on an app with `keys`; the cookie and the raw value Redis holds. */
  /** `value` is what Redis holds (RedisStore's version tag, then the record); `record` the record alone. */
  async function logIn(app: { url: string }): Promise<{ cookie: string; id: string; value: string; record: string; key: string }> {
    const login = await request(app.url, `/login?user=${USER}`, { method: "POST" });
    const cookie = sessionCookie(login);
    const id = idOf(cookie);
    const key = prefix + createSessionManager(options({ keys: [KEY1] })).storeKeyOf(id);
    const value = (await raw.get(key))!;
    expect(value).not.toBeNull();
    return { cookie: cookieHeader(cookie), id, value, record: (await storedRecord(raw, key))!, key };
  }

  it("holds no plaintext in Redis, keeps the metadata readable, and reads back", async () => {
    const app = await expressApp.start(options({ keys: [KEY1] }));
    try {
      const { cookie, id, value, record, key } = await logIn(app);
      expect(value).not.toContain(String(USER));
      expect(value).not.toContain("userId");
      expect(value).not.toContain(id);
      const [head, data] = record.split("\n") as [string, string];
      expect(data.startsWith("enc1:")).toBe(true);
      const meta = decodeRecord(record)!.meta;
      expect(meta.expiresAt - meta.createdAt).toBe(604_800_000);
      expect(JSON.parse(head)).toMatchObject({ v: 1, createdAt: meta.createdAt });
      expect(await raw.ttl(key)).toBeGreaterThan(86_000);
      expect((await request(app.url, "/me", { cookie })).json()).toEqual({ userId: USER, visits: null, isNew: false });
      // Change detection compares plaintext: a read rewrites nothing (a rewrite would draw a new nonce).
      expect(await raw.get(key)).toBe(value);
      await request(app.url, "/visit", { method: "POST", cookie });
      const after = (await raw.get(key))!;
      expect(after).not.toBe(value);
      expect(after).not.toContain("visits");
      expect((await request(app.url, "/me", { cookie })).json()).toEqual({ userId: USER, visits: 1, isNew: false });
    } finally {
      await app.close();
    }
  });

  it("rotates: an old key still decrypts and the record is rewritten under the first key on its next request", async () => {
    const old = await expressApp.start(options({ keys: [KEY1] }));
    const rotated = await expressApp.start(options({ keys: [KEY2, KEY1] }));
    const only2 = await expressApp.start(options({ keys: [KEY2] }));
    try {
      const { cookie, value, key } = await logIn(old);
      // Before the rotated app reads it, only the old key opens it.
      expect((await request(only2.url, "/me", { cookie })).json()).toEqual({ userId: null, visits: null, isNew: true });
      expect(await raw.get(key)).toBe(value);
      // Read (nothing changed) by an app with both keys: rewritten under the new one.
      expect((await request(rotated.url, "/me", { cookie })).json()).toEqual({ userId: USER, visits: null, isNew: false });
      const resealed = (await raw.get(key))!;
      expect(resealed).not.toBe(value);
      expect(resealed).toContain("\nenc1:");
      expect((await request(only2.url, "/me", { cookie })).json()).toEqual({ userId: USER, visits: null, isNew: false });
      // Under the first key already: the next read rewrites nothing.
      await request(rotated.url, "/me", { cookie });
      expect(await raw.get(key)).toBe(resealed);
    } finally {
      await Promise.all([old.close(), rotated.close(), only2.close()]);
    }
  });

  it("reads a record under a wrong key, without a key, or copied under another session as corrupt: a fresh session, a log line, never a 500", async () => {
    const app = await expressApp.start(options({ keys: [KEY1] }));
    const wrong = await expressApp.start(options({ keys: [KEY3] }));
    const plain = await expressApp.start(options(undefined));
    try {
      const a = await logIn(app);
      const b = await logIn(app);
      for (const other of [wrong, plain]) {
        logs = [];
        const reply = await request(other.url, "/me", { cookie: a.cookie });
        expect(reply.status).toBe(200);
        expect(reply.json()).toEqual({ userId: null, visits: null, isNew: true });
        expect(logs.filter((l) => l.event === "record.corrupt")).toHaveLength(1);
      }
      // A's record copied under B's key does not decrypt there.
      await raw.set(b.key, a.value, "KEEPTTL");
      logs = [];
      const copied = await request(app.url, "/me", { cookie: b.cookie });
      expect(copied.status).toBe(200);
      expect(copied.json()).toMatchObject({ userId: null, isNew: true });
      expect(logs.filter((l) => l.event === "record.corrupt")).toHaveLength(1);
      // A deadline pushed out by hand does not decrypt either: the metadata is authenticated.
      const meta = decodeRecord(a.record)!.meta;
      await raw.set(a.key, a.value.replace(`"expiresAt":${meta.expiresAt}`, `"expiresAt":${meta.expiresAt + 1000}`), "KEEPTTL");
      expect((await request(app.url, "/me", { cookie: a.cookie })).json()).toMatchObject({ userId: null, isNew: true });
    } finally {
      await Promise.all([app.close(), wrong.close(), plain.close()]);
    }
  });

  it("merges concurrent writes by compare-and-set as without encryption", async () => {
    const manager = createSessionManager(options({ keys: [KEY1] }) as SessionOptions<{ a?: number; b?: number }>);
    const first = await manager.load(undefined, { secure: false });
    first.a = 1;
    const cookie = (await manager.commit(first)).setCookie!.split(";")[0]!;
    const one = await manager.load(cookie, { secure: false });
    const two = await manager.load(cookie, { secure: false });
    one.a = 2;
    two.b = 3;
    await manager.commit(one);
    await manager.commit(two);
    const merged = await manager.load(cookie, { secure: false });
    expect({ a: merged.a, b: merged.b }).toEqual({ a: 2, b: 3 });
    const value = (await raw.get(prefix + manager.storeKeyOf(first.id)))!;
    expect(value).toContain("\nenc1:");
  });
});

describe("encryption at rest on Memcached", () => {
  it("holds no plaintext in memcached and reads back", async () => {
    const address = services().memcached.servers[0]!.address;
    const client = memjs.Client.create(address, { logger: { log: () => undefined } });
    const prefix = uniquePrefix("encrypted");
    const app = await expressApp.start({ store: new MemcachedStore({ client, prefix }), secret: SECRET, encryption: { keys: [KEY1] } });
    const rawClient = memjs.Client.create(address, { logger: { log: () => undefined } });
    try {
      const login = await request(app.url, `/login?user=${USER}`, { method: "POST" });
      const cookie = sessionCookie(login);
      const id = idOf(cookie);
      const key = prefix + createSessionManager({ store: new MemoryStore({ quiet: true }), secret: SECRET }).storeKeyOf(id);
      const value = (await rawClient.get(key)).value!.toString();
      expect(value).toContain("\nenc1:");
      expect(value).not.toContain(String(USER));
      expect(value).not.toContain(id);
      expect(decodeRecord(value)!.meta.expiresAt).toBeGreaterThan(Date.now());
      await request(app.url, "/visit", { method: "POST", cookie: cookieHeader(cookie) });
      expect((await rawClient.get(key)).value!.toString()).not.toContain("visits");
      expect((await request(app.url, "/me", { cookie: cookieHeader(cookie) })).json()).toEqual({ userId: USER, visits: 1, isNew: false });
    } finally {
      await app.close();
      client.close();
      rawClient.close();
    }
  });
});

describe("encryption options", () => {
  const store = new MemoryStore({ quiet: true });
  it("are checked at construction, without repeating a key", () => {
    expect(() => createSessionManager({ store, secret: SECRET, encryption: { keys: [] } })).toThrow(SessionConfigError);
    expect(() => createSessionManager({ store, secret: SECRET, encryption: { keys: ["too-short-secret-value"] } })).toThrow(/32 bytes/);
    expect(() => createSessionManager({ store, secret: SECRET, encryption: { keys: ["too-short-secret-value"] } })).not.toThrow(/too-short/);
    expect(() => createSessionManager({ store, secret: SECRET, encryption: { keys: [Buffer.alloc(16)] } })).toThrow(/32 bytes, got 16/);
    expect(() => createSessionManager({ store, secret: SECRET, encryption: { keys: [KEY1, KEY1] } })).toThrow(/same key twice/);
    expect(() => createSessionManager({ store, secret: SECRET, compat: "express-session", encryption: { keys: [KEY1] } })).toThrow(/compat/);
    expect(() => createSessionManager({ store, secret: SECRET, compat: "express-session-read", encryption: { keys: [KEY1] } })).toThrow(/compat/);
    expect(() => createSessionManager({ store, secret: SECRET, encryption: { keys: [KEY1, KEY2, KEY3] } })).not.toThrow();
  });
});
