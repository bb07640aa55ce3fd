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
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisClient, RedisStore } from "../../adapters/redis.js";
import { expressSession } from "../../src/frameworks/express/index.js";
import { fastifySession } from "../../src/frameworks/fastify.js";
import { koaSession } from "../../src/frameworks/koa.js";
import { SessionConfigError, type Session, type SessionOptions } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";
import { listen, type RunningApp } from "../helpers/framework-apps.js";
import { storeKeysFor } from "../helpers/store-keys.js";
import { services, uniquePrefix } from "../services/index.js";
import { Browser } from "../helpers/app-process.js";
import { closeClients, rawRedis, tracked } from "../helpers/redis-clients.js";

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

describe.each(BINDINGS)("$name binding: the peers' options", ({ name, construct }) => {
  const base = (): Record<string, unknown> => ({ store: new MemoryStore(), secret: SECRET });

  it.each(REFUSED)("refuses %s, naming what to write instead", async (_label, extra, message) => {
    const err = await construct({ ...base(), ...extra });
    expect(err).toBeInstanceOf(SessionConfigError);
    expect((err as Error).message).toMatch(message);
  });

  it.each(ACCEPTED)("accepts %s", async (_label, extra) => {
    expect(await construct({ ...base(), ...extra })).toBeUndefined();
  });

  it("koa-session's valid and beforeSave hooks: koaSession takes them; the other bindings refuse them, naming koaSession", async () => {
    for (const [key, message] of [
      ["valid", /"valid": valid is koaSession's option only.*regenerate\(\)/],
      ["beforeSave", /"beforeSave": beforeSave is koaSession's option only/],
    ] as const) {
      const err = await construct({ ...base(), [key]: () => true });
      if (name === "koa") {
        expect(err).toBeUndefined();
      } else {
        expect(err).toBeInstanceOf(SessionConfigError);
        expect((err as Error).message).toMatch(message);
      }
    }
    if (name === "koa") expect(await construct({ ...base(), valid: "yes" })).toBeInstanceOf(SessionConfigError);
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

/** Set by a test: deletes the record of the session id given, as another process would while a request runs. */
let deleteElsewhere: ((id: string) => Promise<unknown>) | undefined;

/** One handler per path, given the request's session (and Express's `req.sessionID` where there is one). */
type Handler = (session: Session, extra: { sessionID?: string }) => unknown;

const HANDLERS: Readonly<Record<string, Handler>> = {
  "/login": (s) => {
    s.userId = 7;
    return { ok: true };
  },
  "/ids": (s, extra) => ({ id: s.id, sessionId: s.sessionId, sessionID: extra.sessionID ?? null }),
  "/plain": (s) => {
    const before = s.isModified();
    s.visits = 2;
    const proto = (() => {
      try {
        Object.assign(s, JSON.parse('{"__proto__": {"polluted": true}}') as object);
        return "assigned";
      } catch (err) {
        return (err as Error).name;
      }
    })();
    return {
      before,
      after: s.isModified(),
      string: String(s),
      template: `${s as unknown as string}`,
      /* eslint-disable no-prototype-builtins -- the peers' apps call it so */
      has: s.hasOwnProperty("visits"),
      hasApi: s.hasOwnProperty("regenerate") || s.hasOwnProperty("id"),
      /* eslint-enable no-prototype-builtins */
      json: JSON.stringify(s),
      keys: Object.keys(s),
      spread: { ...s },
      inData: "visits" in s,
      inApi: "save" in s && "id" in s,
      proto,
      polluted: (s as unknown as Record<string, unknown>).polluted ?? null,
      apiIntact: typeof s.regenerate === "function",
    };
  },
  "/destroy-cb": (s) =>
    new Promise((resolve) => {
      void s.destroy((err) => resolve({ err: err === null ? "null" : String(err), string: String(s) }));
    }),
  "/reload-cb": async (s) => {
    await deleteElsewhere?.(s.id);
    return new Promise((resolve) => {
      void s.reload((err) => resolve({ code: err === null ? "null" : ((err as { code?: string }).code ?? String(err)), userId: s.userId ?? null }));
    });
  },
  "/reload-await": async (s) => {
    await deleteElsewhere?.(s.id);
    try {
      await s.reload();
      return { code: "none" };
    } catch (err) {
      return { code: (err as { code?: string }).code ?? String(err) };
    }
  },
};

const IDIOM_APPS: readonly { name: string; start: StartApp }[] = [
  {
    name: "express",
    start: (options) => {
      const app = express();
      app.use(expressSession(options));
      app.use((req, res, next) => {
        const handler = HANDLERS[req.path];
        if (handler === undefined) return next();
        Promise.resolve(handler(req.session, { sessionID: req.sessionID })).then((body) => res.json(body), next);
      });
      return listen(createServer(app));
    },
  },
  {
    name: "koa",
    start: (options) => {
      const app = new Koa();
      app.use(koaSession(options));
      app.use(async (ctx) => {
        const handler = HANDLERS[ctx.path];
        if (handler !== undefined) ctx.body = await handler(ctx.session!, {});
      });
      return listen(createServer(app.callback()));
    },
  },
  {
    name: "fastify",
    start: async (options) => {
      const app = Fastify();
      await app.register(fastifySession, options);
      for (const [path, handler] of Object.entries(HANDLERS)) app.post(path, async (request) => handler(request.session, {}));
      await app.listen({ host: "127.0.0.1", port: 0 });
      const address = app.server.address() as { port: number };
      return { url: `http://127.0.0.1:${address.port}`, close: () => app.close() };
    },
  },
];

describe.each(IDIOM_APPS)("$name: the peers' everyday session idioms, on Redis", ({ name, start }) => {
  const prefix = uniquePrefix(`peer-idioms-${name}`);
  let app: RunningApp;
  const options = (): SessionOptions => ({ store: new RedisStore({ client: tracked(createRedisClient(services().redis.url)), prefix }), secret: SECRET });
  const json = async (browser: Browser, path: string): Promise<Record<string, unknown>> => {
    const reply = await browser.post(app.url, path);
    expect(reply.status, reply.text).toBe(200);
    return JSON.parse(reply.text) as Record<string, unknown>;
  };

  beforeAll(async () => {
    app = await start(options());
    return () => app.close();
  });

  it("the id under the peers' names: sessionId (and Express's req.sessionID) equal id and the cookie's id", async () => {
    const browser = new Browser();
    await json(browser, "/login");
    const ids = await json(browser, "/ids");
    expect(ids.id).toBe(browser.sessionId);
    expect(ids.sessionId).toBe(browser.sessionId);
    expect(ids.sessionID).toBe(name === "express" ? browser.sessionId : null);
  });

  it("the session behaves as a plain object; data never shadows the API, and __proto__ data is refused", async () => {
    const browser = new Browser();
    await json(browser, "/login");
    const seen = await json(browser, "/plain");
    expect(seen).toEqual({
      before: false,
      after: true,
      string: "[object Object]",
      template: "[object Object]",
      has: true,
      hasApi: false,
      json: JSON.stringify({ userId: 7, visits: 2 }),
      keys: ["userId", "visits"],
      spread: { userId: 7, visits: 2 },
      inData: true,
      inApi: true,
      proto: "TypeError",
      polluted: null,
      apiIntact: true,
    });
  });

  it("String(session) inside a destroy(cb) callback answers; the callback gets null", async () => {
    const browser = new Browser();
    await json(browser, "/login");
    expect(await json(browser, "/destroy-cb")).toEqual({ err: "null", string: "[object Object]" });
  });

  it("reload() of a session whose record is gone reports ERR_SESSION_GONE, by callback and by promise; of a live one, null", async () => {
    const browser = new Browser();
    await json(browser, "/login");
    expect(await json(browser, "/reload-cb")).toEqual({ code: "null", userId: 7 });
    deleteElsewhere = (id) => rawRedis(services().redis.url).del(prefix + keyOf(id));
    try {
      const reply = await browser.post(app.url, "/reload-cb");
      expect(JSON.parse(reply.text)).toEqual({ code: "ERR_SESSION_GONE", userId: null });
      // The request went on without a session: the client's cookie is expired.
      expect(reply.setCookies.some((c) => /^sid=;.*Max-Age=0/i.test(c))).toBe(true);
      const again = new Browser();
      deleteElsewhere = undefined;
      await json(again, "/login");
      deleteElsewhere = (id) => rawRedis(services().redis.url).del(prefix + keyOf(id));
      expect(await json(again, "/reload-await")).toEqual({ code: "ERR_SESSION_GONE" });
    } finally {
      deleteElsewhere = undefined;
    }
  });
});

describe("koa: koa-session's valid(ctx, data) and beforeSave(ctx, session) hooks, on Redis", () => {
  const prefix = uniquePrefix("peer-koa-hooks");
  let app: RunningApp;
  const calls = { valid: 0, beforeSave: 0 };

  beforeAll(async () => {
    const koa = new Koa();
    koa.use(
      koaSession({
        store: new RedisStore({ client: tracked(createRedisClient(services().redis.url)), prefix }),
        secret: SECRET,
        // A session is valid only for the user agent that made it (a common koa-session use).
        valid: (ctx, data) => {
          calls.valid++;
          return (data as { agent?: string }).agent === ctx.get("user-agent");
        },
        beforeSave: (ctx, session) => {
          calls.beforeSave++;
          if (ctx.path === "/login") (session as unknown as { agent: string }).agent = ctx.get("user-agent");
        },
      }),
    );
    koa.use((ctx) => {
      if (ctx.path === "/login") ctx.session!.userId = 7;
      if (ctx.path === "/logout") ctx.session = null;
      ctx.body = { userId: ctx.session?.userId ?? null, agent: (ctx.session as unknown as { agent?: string } | undefined)?.agent ?? null };
    });
    app = await listen(createServer(koa.callback()));
    return () => app.close();
  });

  const ask = async (path: string, cookie: string | undefined, agent: string) => {
    const response = await fetch(new URL(path, app.url), { method: "POST", headers: { "user-agent": agent, ...(cookie === undefined ? {} : { cookie }) } });
    return { body: (await response.json()) as Record<string, unknown>, setCookies: response.headers.getSetCookie() };
  };

  it("beforeSave runs before each commit and its changes are written; valid false regenerates the session before the app runs", async () => {
    const login = await ask("/login", undefined, "agent-A");
    expect(login.body).toEqual({ userId: 7, agent: null });
    expect(calls).toEqual({ valid: 0, beforeSave: 1 });
    const cookie = login.setCookies[0]!.split(";")[0]!;
    const id = decodeURIComponent(cookie.slice("sid=".length)).split(".")[0]!;
    expect(await rawRedis(services().redis.url).get(prefix + keyOf(id))).toContain('"agent":"agent-A"');

    expect((await ask("/me", cookie, "agent-A")).body).toEqual({ userId: 7, agent: "agent-A" });
    expect(calls).toEqual({ valid: 1, beforeSave: 2 });

    // Another user agent with the same cookie: the hook refuses it; the record is deleted, a fresh session.
    const other = await ask("/me", cookie, "agent-B");
    expect(other.body).toEqual({ userId: null, agent: null });
    expect(calls).toEqual({ valid: 2, beforeSave: 3 });
    expect(await rawRedis(services().redis.url).exists(prefix + keyOf(id))).toBe(0);

    // After ctx.session = null, beforeSave is not called.
    const again = await ask("/login", undefined, "agent-A");
    await ask("/logout", again.setCookies[0]!.split(";")[0]!, "agent-A");
    expect(calls).toEqual({ valid: 3, beforeSave: 4 });
  });
});
