/**
 * The peers' idioms (express-session, @fastify/session, koa-session) on shared-session: every option
 * a peer has either keeps its meaning or is refused at construction with what to write instead, in
 * each binding; `req.session = null` / `delete req.session` / `ctx.session = null` follow `unset`;
 * over real HTTP on a real Redis.
 */
import { createServer } from "node:http";
import express from "express";
import Fastify from "fastify";
import Koa from "koa";
import { afterAll, describe, expect, it } from "vitest";
import { createRedisClient, RedisStore } from "../../adapters/redis.js";
import { expressSession } from "../../src/frameworks/express.js";
import { fastifySession } from "../../src/frameworks/fastify.js";
import { koaSession } from "../../src/frameworks/koa.js";
import { SessionConfigError, type SessionOptions } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";
import { listen, type RunningApp } from "../helpers/framework-apps.js";
import { storeKeysFor } from "../helpers/store-keys.js";
import { services, uniquePrefix } from "../services/index.js";
import { Browser } from "./app-process.js";
import { closeClients, rawRedis, tracked } from "./redis-helpers.js";

const SECRET = "a-peer-idioms-test-secret-of-at-least-32-characters";
const keyOf = storeKeysFor(SECRET);

afterAll(() => closeClients());

/** Build a binding with these options; resolves to the construction error, or undefined. */
type Construct = (options: Record<string, unknown>) => Promise<unknown>;
const BINDINGS: readonly { name: string; construct: Construct }[] = [
  {
    name: "express",
    construct: (options) => {
      try {
        expressSession(options as unknown as SessionOptions);
        return Promise.resolve(undefined);
      } catch (err) {
        return Promise.resolve(err);
      }
    },
  },
  {
    name: "koa",
    construct: (options) => {
      try {
        koaSession(options as unknown as SessionOptions);
        return Promise.resolve(undefined);
      } catch (err) {
        return Promise.resolve(err);
      }
    },
  },
  {
    name: "fastify",
    construct: async (options) => {
      const app = Fastify();
      try {
        await app.register(fastifySession, options as unknown as SessionOptions);
        await app.ready();
        return undefined;
      } catch (err) {
        return err;
      } finally {
        await app.close().catch(() => undefined);
      }
    },
  },
];

/** Options and the words the refusal must carry (what to write instead). */
const REFUSED: readonly [label: string, extra: Record<string, unknown>, message: RegExp][] = [
  ["express-session resave: true", { resave: true }, /"resave".*change detection/],
  ["express-session saveUninitialized: true", { saveUninitialized: true }, /"saveUninitialized".*save\(\)/],
  ["rolling", { rolling: true }, /"rolling".*touchAfter/],
  ["proxy", { proxy: true }, /"proxy".*trust proxy/],
  ["unset: \"forget\"", { unset: "forget" }, /unset must be "destroy" or "keep"/],
  ["a cookie function (express-session 1.19)", { cookie: () => ({ maxAge: 1000 }) }, /cookie must be an object here, not a function/],
  ["cookie.expires", { cookie: { expires: new Date(Date.now() + 86_400_000) } }, /"expires".*cookie\.maxAge/],
  ["@fastify/session cookieName", { cookieName: "sessionId" }, /"cookieName".*`name`/],
  ["@fastify/session cookiePrefix", { cookiePrefix: "s:" }, /"cookiePrefix".*`name`/],
  ["@fastify/session idGenerator", { idGenerator: () => "x" }, /"idGenerator".*genid.*validateId/],
  ["koa-session key", { key: "koa.sess" }, /"key".*`name`/],
  ["koa-session maxAge", { maxAge: 86_400_000 }, /"maxAge".*cookie\.maxAge.*seconds/],
  ["koa-session autoCommit: false", { autoCommit: false }, /"autoCommit".*save\(\)/],
  ["koa-session overwrite: false", { overwrite: false }, /"overwrite"/],
  ["koa-session httpOnly", { httpOnly: false }, /"httpOnly".*cookie\.httpOnly/],
  ["koa-session signed: false", { signed: false }, /"signed".*always signed/],
  ["koa-session renew", { renew: true }, /"renew".*idle/],
  ["koa-session secure", { secure: true }, /"secure".*cookie\.secure/],
  ["koa-session sameSite", { sameSite: "strict" }, /"sameSite".*cookie\.sameSite/],
  ["koa-session prefix", { prefix: "koa:sess:" }, /"prefix".*RedisStore\(\{ client, prefix \}\)/],
  ["koa-session valid", { valid: () => true }, /"valid".*regenerate\(\)/],
  ["koa-session beforeSave", { beforeSave: () => undefined }, /"beforeSave".*middleware/],
  ["koa-session externalKey", { externalKey: { get: () => "", set: () => undefined } }, /"externalKey".*`header` option/],
  ["koa-session encode", { encode: (x: unknown) => x }, /"encode".*serializer/],
  ["koa-session decode", { decode: (x: unknown) => x }, /"decode".*serializer/],
  ["koa-session ContextStore", { ContextStore: class {} }, /"ContextStore".*`store`/],
  ["a typo: idleTimout", { idleTimout: 60 }, /unknown option "idleTimout"; did you mean "idleTimeout"\?/],
  ["a typo in cookie: sameSIte… maxage", { cookie: { maxage: 60 } }, /unknown cookie option "maxage"; did you mean "maxAge"\?/],
  ["idleTimeout in milliseconds", { idleTimeout: 30 * 60 * 1000 * 1000 }, /idleTimeout is 1800000000 seconds; it looks like milliseconds/],
  ["absoluteTimeout in milliseconds", { absoluteTimeout: 7 * 86_400_000 }, /absoluteTimeout is 604800000 seconds; it looks like milliseconds/],
  ["touchAfter in milliseconds", { touchAfter: 60_000_000 }, /touchAfter .*looks like milliseconds/],
  ["cookie.maxAge in milliseconds", { cookie: { maxAge: 30 * 86_400_000 } }, /cookie\.maxAge is 2592000000 seconds; it looks like milliseconds/],
];

/** The peers' options whose value keeps its meaning here. */
const ACCEPTED: readonly [label: string, extra: Record<string, unknown>][] = [
  ["resave: false, saveUninitialized: false (express-session's recommended pair)", { resave: false, saveUninitialized: false }],
  ["unset: \"destroy\"", { unset: "destroy" }],
  ["unset: \"keep\"", { unset: "keep" }],
  ["koa-session autoCommit: true, overwrite: true, signed: true", { autoCommit: true, overwrite: true, signed: true }],
  ["400 days exactly", { absoluteTimeout: 400 * 86_400, idleTimeout: 400 * 86_400, cookie: { maxAge: 400 * 86_400 } }],
  ["an option set to undefined", { rolling: undefined }],
];

describe.each(BINDINGS)("$name binding: the peers' options", ({ construct }) => {
  const base = (): Record<string, unknown> => ({ store: new MemoryStore(), secret: SECRET });

  it.each(REFUSED)("refuses %s, naming what to write instead", async (_label, extra, message) => {
    const err = await construct({ ...base(), ...extra });
    expect(err).toBeInstanceOf(SessionConfigError);
    expect((err as Error).message).toMatch(message);
  });

  it.each(ACCEPTED)("accepts %s", async (_label, extra) => {
    expect(await construct({ ...base(), ...extra })).toBeUndefined();
  });
});

/** An app whose `POST /login` stores data, `GET /me` reads it and `POST /unset?how=` takes the session off the request. */
type StartApp = (options: SessionOptions) => Promise<RunningApp>;

const startExpress: StartApp = (options) => {
  const app = express();
  app.use(expressSession(options));
  app.post("/login", (req, res) => {
    req.session.userId = 7;
    res.json({ ok: true });
  });
  app.get("/me", (req, res) => {
    res.json({ userId: req.session.userId ?? null });
  });
  app.post("/unset", (req, res) => {
    if (req.query.how === "delete") delete (req as { session?: unknown }).session;
    else (req as { session: unknown }).session = null;
    res.json({ ok: true });
  });
  return listen(createServer(app));
};

const startKoa: StartApp = (options) => {
  const app = new Koa();
  app.use(koaSession(options));
  app.use((ctx) => {
    if (ctx.method === "POST" && ctx.path === "/login") {
      ctx.session!.userId = 7;
      ctx.body = { ok: true };
    } else if (ctx.path === "/me") {
      ctx.body = { userId: ctx.session!.userId ?? null };
    } else if (ctx.method === "POST" && ctx.path === "/unset") {
      ctx.session!.visits = 3; // a change made before the unset: never written
      ctx.session = null;
      ctx.body = { ok: true };
    }
  });
  return listen(createServer(app.callback()));
};

describe.each([
  { name: "express", start: startExpress, hows: ["null", "delete"] },
  { name: "koa", start: startKoa, hows: ["null"] },
])("$name: taking the session off the request, on Redis", ({ name, start, hows }) => {
  const prefix = uniquePrefix(`peer-unset-${name}`);
  const options = (extra: Partial<SessionOptions> = {}): SessionOptions => ({
    store: new RedisStore({ client: tracked(createRedisClient(services().redis.url)), prefix }),
    secret: SECRET,
    ...extra,
  });
  const held = (id: string | undefined): Promise<number> => rawRedis(services().redis.url).exists(prefix + keyOf(id!));

  it.each(hows)("unset by default (\"destroy\"): %s destroys the record and expires the cookie", async (how) => {
    const app = await start(options());
    try {
      const browser = new Browser();
      expect((await browser.post(app.url, "/login")).status).toBe(200);
      const id = browser.sessionId;
      expect(await held(id)).toBe(1);
      const reply = await browser.post(app.url, `/unset?how=${how}`);
      expect(reply.status).toBe(200);
      expect(reply.setCookies.length).toBe(1);
      expect(reply.setCookies[0]).toMatch(/^sid=;.*Max-Age=0/i);
      expect(await held(id)).toBe(0);
      expect(browser.sessionId).toBeUndefined();
      expect(JSON.parse((await browser.get(app.url, "/me")).text)).toEqual({ userId: null });
    } finally {
      await app.close();
    }
  });

  it.each(hows)("unset: \"keep\": %s leaves the stored session as it was and sends no cookie", async (how) => {
    const app = await start(options({ unset: "keep" }));
    try {
      const browser = new Browser();
      await browser.post(app.url, "/login");
      const id = browser.sessionId;
      const before = await rawRedis(services().redis.url).get(prefix + keyOf(id!));
      const reply = await browser.post(app.url, `/unset?how=${how}`);
      expect(reply.status).toBe(200);
      expect(reply.setCookies).toEqual([]);
      expect(await rawRedis(services().redis.url).get(prefix + keyOf(id!))).toBe(before);
      expect(JSON.parse((await browser.get(app.url, "/me")).text)).toEqual({ userId: 7 });
    } finally {
      await app.close();
    }
  });
});
