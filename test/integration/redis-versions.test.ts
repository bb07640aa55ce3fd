/**
 * RedisStore's version tags, on a dedicated server: what a changed session sends (MONITOR and the
 * server's input byte counter), records stored before tags existed, express-session's layout kept
 * as it is, and no lost update between two requests of one session.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMPARE_VERSION_AND_SET } from "../../adapters/redis/lua.js";
import { RedisStore, createRedisClient } from "../../adapters/redis.js";
import { createSessionManager, type SessionManager } from "../../src/index.js";
import { startRedis, type RedisHandle } from "../services/index.js";
import { closeClients, commandsDuring, rawRedis, storedRecord, tracked } from "./redis-helpers.js";

const SECRET = "a-test-secret-that-is-at-least-32-characters-long";
const WHOLE_TAG = /^~[A-Za-z0-9_-]{11}$/;

function record(label: string, size = 0): string {
  return `{"v":1,"createdAt":1,"expiresAt":2,"writtenAt":1}\n${JSON.stringify({ label, pad: "x".repeat(size) })}`;
}

/** Bytes the server read from its clients while `action` ran (`total_net_input_bytes`). */
async function inputBytesDuring(admin: Redis, action: () => Promise<unknown>): Promise<number> {
  const read = async () => Number(/total_net_input_bytes:(\d+)/.exec(await admin.info("stats"))![1]);
  const before = await read();
  await action();
  return (await read()) - before;
}

/** The commands the server ran while `action` ran, with their arguments (`MONITOR`). */
async function monitored(server: RedisHandle, action: () => Promise<unknown>): Promise<string[][]> {
  const monitor = await rawRedis(server.url).monitor();
  const seen: string[][] = [];
  monitor.on("monitor", (_time: string, args: string[]) => seen.push(args));
  await action();
  // MONITOR lines arrive after the replies: wait for a marker command to come through.
  const marker = `marker-${randomUUID()}`;
  await rawRedis(server.url).get(marker);
  for (let i = 0; i < 100 && !seen.some((args) => args[1] === marker); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  monitor.disconnect();
  return seen.filter((args) => args[1] !== marker);
}

describe("RedisStore version tags (dedicated server)", () => {
  let server: RedisHandle;
  let admin: Redis;
  let store: RedisStore;
  let manager: SessionManager;

  beforeAll(async () => {
    server = await startRedis();
    admin = rawRedis(server.url);
    store = new RedisStore({ client: tracked(createRedisClient(server.url)) });
    manager = createSessionManager({ store, secret: SECRET });
    await store.get("warm-up");
  });
  afterAll(async () => {
    closeClients();
    await server?.close();
  });

  /** A stored session: its cookie, and `id`, the store key its record lives under (a keyed hash of the session id). */
  async function newSession(data: Record<string, unknown>): Promise<{ cookie: string; id: string }> {
    const session = await manager.load(undefined, { secure: false });
    Object.assign(session, data);
    const setCookie = (await manager.commit(session)).setCookie!;
    return { cookie: setCookie.split(";")[0]!, id: manager.storeKeyOf(session.id) };
  }

  async function change(cookie: string, data: Record<string, unknown>): Promise<void> {
    const session = await manager.load(cookie, { secure: false });
    Object.assign(session, data);
    await manager.commit(session);
  }

  it("a changed session's compare-and-set sends the stored tag and the new value, never the record it expects", async () => {
    const { cookie, id } = await newSession({ user: 1, blob: "b".repeat(4000) });
    const key = `sess:${id}`;
    const tagBefore = (await admin.get(key))!.slice(0, 12);
    expect(tagBefore).toMatch(WHOLE_TAG);
    await change(cookie, { n: 1 }); // loads the script on this server
    const tagLoaded = (await admin.get(key))!.slice(0, 12);

    const commands = await monitored(server, () => change(cookie, { n: 2 }));
    const scripts = commands.filter((args) => args[0]!.toLowerCase() === "evalsha");
    expect(scripts).toHaveLength(1);
    const [, sha, numKeys, scriptKey, expectedTag, value, ttl] = scripts[0]!;
    expect([sha, numKeys, scriptKey]).toEqual([COMPARE_VERSION_AND_SET.sha, "1", key]);
    expect(expectedTag).toBe(tagLoaded); // the version the read returned, 12 bytes
    expect(value!.slice(0, 12)).toMatch(WHOLE_TAG);
    expect(value!.slice(0, 12)).not.toBe(tagLoaded); // a new tag on every write
    expect(value!.slice(0, 12)).toBe((await admin.get(key))!.slice(0, 12));
    expect(Number(ttl)).toBeGreaterThan(0);
    expect(scripts[0]).toHaveLength(7);
  });

  it("a changed session reads no more bytes on the server than GET + SET of the same value (the peers' write)", async () => {
    const { cookie, id } = await newSession({ user: 1, blob: "c".repeat(4000) });
    const key = `sess:${id}`;
    await change(cookie, { n: 1 });
    const ours = await inputBytesDuring(admin, () => change(cookie, { n: 2 }));
    const value = (await admin.get(key))!;
    // The peers' write of the same value: a GET, then a SET with a TTL (on another key, same length).
    const peerKey = `sess:${randomUUID()}`;
    const peer = await inputBytesDuring(admin, async () => {
      await admin.get(key);
      await admin.set(peerKey, value, "EX", 86_400);
    });
    // A constant, whatever the record's size: the script's SHA-1 (40 bytes), the expected tag (12),
    // the key count and GETEX's "EX <ttl>", with their RESP framing.
    expect(ours).toBeLessThanOrEqual(peer + 100);
    // Whole-record compare (no version, as before version tags): the expected record travels too.
    const session = await store.getVersioned(id);
    const wholeRecord = await inputBytesDuring(admin, () => store.compareAndSet(id, session!.record, record("x"), 60));
    expect(wholeRecord).toBeGreaterThan(4000);
  });

  it("a changed session is still one GETEX and one script (commandstats)", async () => {
    const { cookie } = await newSession({ user: 1 });
    await change(cookie, { n: 1 });
    expect(await commandsDuring(admin, () => change(cookie, { n: 2 }))).toEqual({ getex: 1, evalsha: 1, getrange: 1, set: 1 });
  });

  it("reads records stored without a tag (before version tags), and tags them on their next write", async () => {
    const { cookie, id } = await newSession({ user: 7 });
    const key = `sess:${id}`;
    const plain = (await storedRecord(admin, key))!;
    await admin.set(key, plain, "EX", 600); // as an earlier version of the store wrote it
    expect(await store.get(id)).toBe(plain);
    expect(await store.getVersioned(id)).toEqual({ record: plain });
    const session = await manager.load(cookie, { secure: false });
    expect((session as unknown as Record<string, unknown>).user).toBe(7);
    (session as unknown as Record<string, unknown>).n = 1;
    await manager.commit(session);
    const after = (await admin.get(key))!;
    expect(after.slice(0, 12)).toMatch(WHOLE_TAG);
    const reloaded = await manager.load(cookie, { secure: false });
    expect({ ...reloaded }).toEqual({ user: 7, n: 1 });
  });

  it("stores a record in any other layout (express-session's JSON) exactly as given, compared whole", async () => {
    const id = randomUUID();
    const legacy = JSON.stringify({ cookie: { originalMaxAge: null, path: "/" }, user: "dave" });
    expect(await store.create(id, legacy, 60)).toBe(true);
    expect(await admin.get(`sess:${id}`)).toBe(legacy);
    expect(await store.getVersioned(id)).toEqual({ record: legacy });
    const next = JSON.stringify({ cookie: { originalMaxAge: null, path: "/" }, user: "dave", n: 1 });
    expect(await store.compareAndSet(id, legacy, next, 60)).toEqual({ status: "written" });
    expect(await admin.get(`sess:${id}`)).toBe(next);
    expect(await store.compareAndSet(id, legacy, legacy, 60)).toEqual({ status: "conflict", current: next });
  });

  it("a stale tag never writes: the record that is there comes back with its version", async () => {
    const id = randomUUID();
    await store.create(id, record("v1"), 60);
    const v1 = await store.getVersioned(id);
    expect(v1!.version).toMatch(WHOLE_TAG);
    const written = await store.compareAndSet(id, v1!.record, record("v2"), 60, v1!.version);
    expect(written).toMatchObject({ status: "written", version: expect.stringMatching(WHOLE_TAG) });
    const stored = (await admin.get(`sess:${id}`))!;
    expect(written.status === "written" && written.version).toBe(stored.slice(0, 12));
    expect(await store.compareAndSet(id, v1!.record, record("v3"), 60, v1!.version)).toEqual({
      status: "conflict",
      current: record("v2"),
      version: stored.slice(0, 12),
    });
  });

  it("two requests of one session that change different keys both keep their change", async () => {
    const { cookie, id } = await newSession({ user: 1 });
    const first = await manager.load(cookie, { secure: false });
    const second = await manager.load(cookie, { secure: false });
    (first as unknown as Record<string, unknown>).a = 1;
    (second as unknown as Record<string, unknown>).b = 2;
    await manager.commit(first);
    await manager.commit(second);
    const stored = (await storedRecord(admin, `sess:${id}`))!;
    expect(JSON.parse(stored.slice(stored.indexOf("\n") + 1))).toEqual({ user: 1, a: 1, b: 2 });
  });
});
