/**
 * The migration from express-session + connect-redis, proven against the real thing: express-session
 * 1.19 + connect-redis 9 on a node-redis 5 client run in their own process
 * (`fixtures/express-session-redis.mjs`), our Express binding runs in this one, both on ONE Redis with
 * the prefix `sess:` and the same secret, and a cookie jar carries the browser's cookie between them
 * over real HTTP. Each step of the README's migration guide is replayed:
 *
 *   1. `compat: "express-session"` next to the old app (the rolling deploy): sessions move both ways;
 *   2. `compat: "express-session-read"` once the old app is gone: sessions keep working and are
 *      converted to our cookie and record as they are used;
 *   3. no `compat`: converted sessions keep working (same cookie name, express-session ids still
 *      accepted by `validateId`); an unconverted one starts fresh.
 */
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import express from "express";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { storeKeysFor } from "../helpers/store-keys.js";
import { RedisStore, createRedisClient } from "../../adapters/redis.js";
import { expressSession, type ExpressSessionOptions } from "../../src/frameworks/express/index.js";
import type { Session } from "../../src/index.js";
import { startRedis, type RedisHandle } from "../services/index.js";
import { AppProcess, Browser, type Reply } from "../helpers/app-process.js";
import { closeClients, rawRedis, serverTtl, storedRecord, tracked } from "../helpers/redis-clients.js";

const SECRET = "the-secret-both-apps-share-at-least-32-characters";
/** Where our apps keep a session once it is ours (step 2 on): the hashed key of its id. */
const keyOf = storeKeysFor(SECRET);
const OLD_APP = "test/integration/fixtures/express-session-redis.mjs";
/** express-session's ids: uid-safe, 24 random bytes in base64url. */
const EXPRESS_SESSION_ID = /^[A-Za-z0-9_-]{32}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

type Data = { user?: string; views?: number };

/** What every route of both apps answers. */
interface Answer {
  app: string;
  id?: string;
  data?: Record<string, unknown>;
  cookie?: { maxAge: number | null; expires: string | null };
  error?: string;
  loggedOut?: boolean;
}

/** Our Express app, with the same routes as the old one. */
async function startOurApp(options: Partial<ExpressSessionOptions<Data>>, redisUrl: string): Promise<{ url: string; close: () => Promise<void> }> {
  const store = new RedisStore({ client: tracked(createRedisClient(redisUrl)), prefix: "sess:" });
  const app = express();
  app.use(expressSession<Data>({ store, secret: SECRET, ...options }));
  app.use(express.urlencoded({ extended: false }));
  const session = (req: express.Request) => req.session as unknown as Session<Data> & Data;
  const answer = (req: express.Request) => ({ app: "shared-session", id: session(req).id, data: { ...session(req) } });
  app.get("/me", (req, res) => {
    res.json(answer(req));
  });
  app.post("/login", async (req, res) => {
    await session(req).regenerate();
    session(req).user = String((req.body as { user?: unknown }).user);
    session(req).views = 0;
    res.json(answer(req));
  });
  app.post("/visit", (req, res) => {
    session(req).views = (session(req).views ?? 0) + 1;
    res.json(answer(req));
  });
  app.post("/logout", async (req, res) => {
    await session(req).destroy();
    res.json({ app: "shared-session", loggedOut: true });
  });
  app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).json({ app: "shared-session", error: err.message });
  });
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, "127.0.0.1", () => resolve(listening));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** One request; the answer parsed, with the raw reply for its cookies. */
async function call(browser: Browser, base: string, method: "GET" | "POST", path: string, form?: Record<string, string>): Promise<Answer & { reply: Reply }> {
  const reply = await browser.request(base, method, path, form);
  let body: Answer;
  try {
    body = JSON.parse(reply.text) as Answer;
  } catch {
    throw new Error(`${method} ${base}${path} answered ${reply.status} with ${reply.text}`);
  }
  return { ...body, reply };
}

/** The session id the browser's `connect.sid` carries, in either form (`s:<id>.<sig>` percent-encoded, or `<id>.<sig>`). */
function cookieId(browser: Browser): string | undefined {
  const value = browser.cookies.get("connect.sid");
  if (value === undefined) return undefined;
  const decoded = decodeURIComponent(value);
  const signed = decoded.startsWith("s:") ? decoded.slice(2) : decoded;
  return signed.slice(0, signed.lastIndexOf("."));
}

/** A second browser holding a copy of `browser`'s cookies (a tab kept open, or a replayed cookie). */
function copyOf(browser: Browser): Browser {
  const copy = new Browser("connect.sid");
  for (const [name, value] of browser.cookies) copy.cookies.set(name, value);
  return copy;
}

/** The record connect-redis would parse: JSON with the `cookie` object express-session rebuilds its Cookie from. */
async function legacyRecord(raw: Redis, id: string): Promise<Record<string, unknown> & { cookie: Record<string, unknown> }> {
  const text = await raw.get(`sess:${id}`);
  expect(text, `sess:${id}`).not.toBeNull();
  const parsed = JSON.parse(text!) as Record<string, unknown> & { cookie: Record<string, unknown> };
  expect(typeof parsed.cookie).toBe("object");
  return parsed;
}

describe("express-session + connect-redis and shared-session side by side on one Redis", () => {
  let server: RedisHandle;
  let raw: Redis;
  /** express-session + connect-redis, browser-session cookie. */
  let old: AppProcess;
  /** The same, with `cookie.maxAge` one hour (a persistent cookie). */
  let oldPersistent: AppProcess;
  /** Step 1 of the migration: ours with `compat: "express-session"`. */
  let ours: { url: string; close: () => Promise<void> };
  let oursPersistent: { url: string; close: () => Promise<void> };
  /** Step 2: ours with `compat: "express-session-read"`. */
  let oursReading: { url: string; close: () => Promise<void> };
  /** Step 3: no compat, the cookie name kept, express-session ids still accepted. */
  let oursNative: { url: string; close: () => Promise<void> };
  /** Step 3 done carelessly: no compat and only our own id format. */
  let oursUuidOnly: { url: string; close: () => Promise<void> };

  beforeAll(async () => {
    server = await startRedis();
    raw = rawRedis(server.url);
    const env = { REDIS_URL: server.url, SESSION_SECRET: SECRET };
    [old, oldPersistent] = await Promise.all([
      AppProcess.start("express-session", { script: OLD_APP, env }),
      AppProcess.start("express-session-persistent", { script: OLD_APP, env: { ...env, COOKIE_MAX_AGE_MS: "3600000" } }),
    ]);
    ours = await startOurApp({ compat: "express-session" }, server.url);
    oursPersistent = await startOurApp({ compat: "express-session", cookie: { maxAge: 3600 }, idleTimeout: 3600 }, server.url);
    oursReading = await startOurApp({ compat: "express-session-read" }, server.url);
    oursNative = await startOurApp(
      { name: "connect.sid", validateId: (id) => UUID.test(id) || EXPRESS_SESSION_ID.test(id) },
      server.url,
    );
    oursUuidOnly = await startOurApp({ name: "connect.sid" }, server.url);
  });
  afterAll(async () => {
    await Promise.all([ours, oursPersistent, oursReading, oursNative, oursUuidOnly].map((app) => app?.close()));
    await Promise.all([old?.kill(), oldPersistent?.kill()]);
    closeClients();
    await server?.close();
  });

  it("a session started in express-session is read, changed and destroyed by shared-session", async () => {
    const browser = new Browser("connect.sid");
    const login = await call(browser, old.url, "POST", "/login", { user: "alice" });
    const id = login.id!;
    expect(id).toMatch(EXPRESS_SESSION_ID);
    expect(browser.cookies.get("connect.sid")).toMatch(/^s%3A/);
    expect(cookieId(browser)).toBe(id);
    const written = await legacyRecord(raw, id);
    expect(written).toMatchObject({ user: "alice", views: 0, cookie: { originalMaxAge: null, expires: null, httpOnly: true, path: "/" } });
    expect(written.sharedSession).toBeUndefined(); // written by connect-redis alone

    // Ours reads their cookie and record.
    const read = await call(browser, ours.url, "GET", "/me");
    expect(read).toMatchObject({ app: "shared-session", id, data: { user: "alice", views: 0 } });
    // Ours changes it and writes their layout back: the cookie object, our metadata alongside.
    const changed = await call(browser, ours.url, "POST", "/visit");
    expect(changed.data).toEqual({ user: "alice", views: 1 });
    expect(changed.reply.setCookies).toEqual([]); // same id, same cookie: nothing to send
    const ourRecord = await legacyRecord(raw, id);
    expect(ourRecord).toMatchObject({ user: "alice", views: 1, cookie: { originalMaxAge: null, expires: null, httpOnly: true, path: "/" } });
    expect(Object.keys(ourRecord.sharedSession as object)).toEqual(["createdAt", "expiresAt", "writtenAt"]);
    expect(await serverTtl(raw, `sess:${id}`)).toBeGreaterThan(86_000); // idleTimeout, as connect-redis's ttl

    // The old app keeps working with the record we wrote, and its change comes back to us.
    expect(await call(browser, old.url, "GET", "/me")).toMatchObject({ app: "express-session", id, data: { user: "alice", views: 1 } });
    expect((await call(browser, old.url, "POST", "/visit")).data).toMatchObject({ user: "alice", views: 2 });
    expect((await call(browser, ours.url, "GET", "/me")).data).toEqual({ user: "alice", views: 2 });

    // Ours destroys it: the key goes, the cookie is cleared, and the old app no longer knows the id.
    const kept = copyOf(browser);
    const logout = await call(browser, ours.url, "POST", "/logout");
    expect(logout.loggedOut).toBe(true);
    expect(logout.reply.setCookies.join()).toMatch(/^connect\.sid=;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/);
    expect(browser.cookies.has("connect.sid")).toBe(false);
    expect(await raw.exists(`sess:${id}`)).toBe(0);
    const replayed = await call(kept, old.url, "GET", "/me");
    expect(replayed.data).toEqual({});
    expect(replayed.id).not.toBe(id);
  });

  it("a session started in shared-session is read, changed and destroyed by express-session", async () => {
    const browser = new Browser("connect.sid");
    const login = await call(browser, ours.url, "POST", "/login", { user: "bob" });
    const id = login.id!;
    expect(id).toMatch(UUID); // new sessions get our ids, in their cookie form
    expect(browser.cookies.get("connect.sid")).toMatch(/^s%3A/);
    expect(cookieId(browser)).toBe(id);
    expect(await legacyRecord(raw, id)).toMatchObject({ user: "bob", views: 0, cookie: { originalMaxAge: null, path: "/" } });

    // express-session reads it (its unsign, its store, its Cookie rebuilt from our cookie object) and changes it.
    expect(await call(browser, old.url, "GET", "/me")).toMatchObject({ app: "express-session", id, data: { user: "bob", views: 0 } });
    expect((await call(browser, old.url, "POST", "/visit")).data).toMatchObject({ user: "bob", views: 1 });
    const theirRecord = await legacyRecord(raw, id);
    expect(theirRecord).toMatchObject({ user: "bob", views: 1 });
    expect(theirRecord.sharedSession).toBeDefined(); // to express-session our metadata is data: it rides along

    // Back to ours: their change is there, our metadata is not data.
    expect((await call(browser, ours.url, "GET", "/me")).data).toEqual({ user: "bob", views: 1 });
    expect((await call(browser, ours.url, "POST", "/visit")).data).toEqual({ user: "bob", views: 2 });
    expect((await call(browser, old.url, "GET", "/me")).data).toMatchObject({ user: "bob", views: 2 });

    // express-session destroys it: gone for ours too, which starts the browser afresh.
    expect((await call(browser, old.url, "POST", "/logout")).loggedOut).toBe(true);
    expect(await raw.exists(`sess:${id}`)).toBe(0);
    const after = await call(browser, ours.url, "GET", "/me");
    expect(after.data).toEqual({});
    expect(after.id).not.toBe(id);
    expect(browser.cookies.has("connect.sid")).toBe(false); // ours expired the cookie naming an unknown session
  });

  it("with a persistent cookie (cookie.maxAge) on both sides, the expiry travels in the record and the TTL follows it", async () => {
    const browser = new Browser("connect.sid");
    const login = await call(browser, oldPersistent.url, "POST", "/login", { user: "carol" });
    const id = login.id!;
    expect(login.reply.setCookies.join()).toMatch(/Expires=/);
    const theirs = await legacyRecord(raw, id);
    expect(theirs.cookie.originalMaxAge).toBe(3_600_000);
    expect(await serverTtl(raw, `sess:${id}`)).toBeGreaterThan(3_500);

    // Ours reads it, writes it with its own one-hour cookie, and re-sends the persistent cookie.
    const changed = await call(browser, oursPersistent.url, "POST", "/visit");
    expect(changed.data).toEqual({ user: "carol", views: 1 });
    expect(changed.reply.setCookies).toHaveLength(1);
    expect(changed.reply.setCookies[0]).toMatch(/^connect\.sid=s%3A.*Max-Age=3600/);
    expect(cookieId(browser)).toBe(id);
    const ours = await legacyRecord(raw, id);
    expect(ours.cookie.originalMaxAge).toBe(3_600_000);
    const expires = Date.parse(ours.cookie.expires as string);
    expect(expires).toBeGreaterThan(Date.now() + 3_500_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 3_600_000);
    const ttl = await serverTtl(raw, `sess:${id}`);
    expect(ttl).toBeGreaterThan(3_500);
    expect(ttl).toBeLessThanOrEqual(3_600);

    // express-session rebuilds its Cookie from our object: a persistent cookie about an hour long.
    const seen = await call(browser, oldPersistent.url, "GET", "/me");
    expect(seen.data).toMatchObject({ user: "carol", views: 1 });
    expect(seen.cookie!.maxAge).toBeGreaterThan(3_500_000);
    expect(Date.parse(seen.cookie!.expires!)).toBeGreaterThan(Date.now() + 3_500_000);
    // Its own write sets the TTL from cookie.expires, as connect-redis does: still about an hour.
    await call(browser, oldPersistent.url, "POST", "/visit");
    expect(await serverTtl(raw, `sess:${id}`)).toBeGreaterThan(3_500);
    expect((await call(browser, oursPersistent.url, "GET", "/me")).data).toEqual({ user: "carol", views: 2 });
  });

  it('step 2, "express-session-read": sessions keep working and are converted to our cookie and record as they are used', async () => {
    // Sessions from step 1: one express-session made, one ours made in their layout.
    const fromOld = new Browser("connect.sid");
    const legacyId = (await call(fromOld, old.url, "POST", "/login", { user: "dave" })).id!;
    const fromOurs = new Browser("connect.sid");
    const ourId = (await call(fromOurs, ours.url, "POST", "/login", { user: "erin" })).id!;
    const beforeConversion = copyOf(fromOld);

    for (const [browser, id, user] of [
      [fromOld, legacyId, "dave"],
      [fromOurs, ourId, "erin"],
    ] as const) {
      const first = await call(browser, oursReading.url, "GET", "/me");
      expect(first).toMatchObject({ app: "shared-session", id, data: { user, views: 0 } });
      // Converted on first use, even without a change: our record, moved to the hashed key of the
      // same id (connect-redis's key is gone), our cookie form.
      expect((await storedRecord(raw, `sess:${keyOf(id)}`))!.startsWith('{"v":1,')).toBe(true); // behind RedisStore's version tag
      expect(await raw.exists(`sess:${id}`)).toBe(0);
      expect(first.reply.setCookies).toHaveLength(1);
      expect(first.reply.setCookies[0]).toMatch(/^connect\.sid=[^s%][^;]*;/);
      expect(browser.cookies.get("connect.sid")).not.toMatch(/^s%3A/);
      expect(cookieId(browser)).toBe(id); // same id: nobody is logged out by the conversion
      const visit = await call(browser, oursReading.url, "POST", "/visit");
      expect(visit.data).toEqual({ user, views: 1 });
      expect(visit.reply.setCookies).toEqual([]); // converted once, not on every request
    }
    // The old cookie form is still accepted for a session already converted (a second tab).
    expect((await call(copyOf(beforeConversion), oursReading.url, "GET", "/me")).data).toEqual({ user: "dave", views: 1 });
    // New sessions are ours through and through.
    const fresh = new Browser("connect.sid");
    const freshId = (await call(fresh, oursReading.url, "POST", "/login", { user: "frank" })).id!;
    expect(freshId).toMatch(UUID);
    expect(fresh.cookies.get("connect.sid")).not.toMatch(/^s%3A/);
    expect((await storedRecord(raw, `sess:${keyOf(freshId)}`))!.startsWith('{"v":1,')).toBe(true);

    // Why step 2 waits until no express-session process is left: an old process cannot read what
    // step 2 writes. With the converted cookie it sees no signed cookie at all; with the old cookie it
    // finds no record (it moved to its hashed key). Either way a fresh, logged-out session.
    const oldSeesNewCookie = await call(fromOld, old.url, "GET", "/me");
    expect(oldSeesNewCookie.reply.status).toBe(200);
    expect(oldSeesNewCookie.data).toEqual({});
    const oldSeesConvertedRecord = await call(copyOf(beforeConversion), old.url, "GET", "/me");
    expect(oldSeesConvertedRecord.reply.status).toBe(200);
    expect(oldSeesConvertedRecord.data).toEqual({});
  });

  it("step 3, no compat: converted sessions keep working with the same cookie name and express-session ids accepted; an unconverted one starts fresh", async () => {
    const converted = new Browser("connect.sid");
    const legacyId = (await call(converted, old.url, "POST", "/login", { user: "grace" })).id!;
    await call(converted, oursReading.url, "POST", "/visit"); // used during step 2
    const ourConverted = new Browser("connect.sid");
    const ourId = (await call(ourConverted, ours.url, "POST", "/login", { user: "heidi" })).id!;
    await call(ourConverted, oursReading.url, "GET", "/me");
    const unseen = new Browser("connect.sid");
    const unseenId = (await call(unseen, old.url, "POST", "/login", { user: "ivan" })).id!; // never seen in step 2

    expect(await call(converted, oursNative.url, "GET", "/me")).toMatchObject({ id: legacyId, data: { user: "grace", views: 1 } });
    expect(await call(ourConverted, oursNative.url, "GET", "/me")).toMatchObject({ id: ourId, data: { user: "heidi", views: 0 } });
    const lost = await call(unseen, oursNative.url, "GET", "/me");
    expect(lost.data).toEqual({});
    expect(lost.id).not.toBe(unseenId);

    // Without validateId accepting express-session's ids, a converted session that still has one is refused.
    expect((await call(copyOf(ourConverted), oursUuidOnly.url, "GET", "/me")).data).toEqual({ user: "heidi", views: 0 });
    expect((await call(copyOf(converted), oursUuidOnly.url, "GET", "/me")).data).toEqual({});
    // The next login's regenerate() moves such a session to one of our ids.
    const relogin = copyOf(converted);
    const moved = await call(relogin, oursNative.url, "POST", "/login", { user: "grace" });
    expect(moved.id).toMatch(UUID);
    expect(await raw.exists(`sess:${keyOf(legacyId)}`)).toBe(0);
    expect((await call(relogin, oursUuidOnly.url, "GET", "/me")).data).toEqual({ user: "grace", views: 0 });
  });
});
