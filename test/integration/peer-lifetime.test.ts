/**
 * Per-session lifetime ("remember me") in each peer's idiom, with the peer's units (milliseconds):
 * express-session `req.session.cookie.maxAge = ms` / `cookie.expires = date`, @fastify/session
 * `request.session.cookie.maxAge = ms` / `request.session.options({ maxAge })`, koa-session
 * `ctx.session.maxAge = ms`, and the core's `session.setLifetime(seconds)`. Over real HTTP on a real
 * Redis, with two app instances (two processes as far as sessions can tell): the lifetime is stored
 * in the record's metadata, sets the cookie's Max-Age and the record's TTL, and survives a read by
 * the other instance; `req.session.cookie` reads the attributes.
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
import type { Session, SessionOptions } from "../../src/index.js";
import { listen, type RunningApp } from "../helpers/framework-apps.js";
import { storeKeysFor } from "../helpers/store-keys.js";
import { services, uniquePrefix } from "../services/index.js";
import { Browser } from "../helpers/app-process.js";
import { closeClients, rawRedis, serverTtl, storedRecord, tracked } from "../helpers/redis-clients.js";

const SECRET = "a-peer-lifetime-test-secret-of-at-least-32-characters";
const keyOf = storeKeysFor(SECRET);
const DAY = 86_400;
const IDLE = 3600;
const ABSOLUTE = 60 * DAY;

afterAll(() => closeClients());

/** How an app written for a peer asks for a lifetime of `days` (`0`: back to the default). */
type Remember = (session: Session, days: number) => void;

/** The routes every app serves: `POST /remember?days=&how=`, `GET /me`, `GET /cookie`. */
function handle(path: string, query: URLSearchParams, session: Session, remember: Readonly<Record<string, Remember>>): unknown {
  if (path === "/remember") {
    session.userId = 7;
    remember[query.get("how")!]!(session, Number(query.get("days")));
    return { ok: true };
  }
  if (path === "/me") return { userId: session.userId ?? null };
  if (path === "/cookie") return JSON.parse(JSON.stringify(session.cookie)) as unknown;
  return undefined;
}

const core: Remember = (s, days) => s.setLifetime(days === 0 ? null : days * DAY);

const VARIANTS: readonly { name: string; remember: Readonly<Record<string, Remember>>; start: (options: SessionOptions, remember: Readonly<Record<string, Remember>>) => Promise<RunningApp> }[] = [
  {
    name: "express",
    remember: {
      "cookie.maxAge": (s, days) => (s.cookie.maxAge = days === 0 ? null : days * DAY * 1000),
      "cookie.expires": (s, days) => (s.cookie.expires = days === 0 ? null : new Date(Date.now() + days * DAY * 1000)),
      setLifetime: core,
    },
    start: (options, remember) => {
      const app = express();
      app.use(expressSession(options));
      app.use((req, res, next) => {
        const body = handle(req.path, new URLSearchParams(req.url.split("?")[1] ?? ""), req.session, remember);
        if (body === undefined) next();
        else res.json(body);
      });
      return listen(createServer(app));
    },
  },
  {
    name: "koa",
    remember: { "ctx.session.maxAge": (s, days) => (s.maxAge = days === 0 ? "session" : days * DAY * 1000), setLifetime: core },
    start: (options, remember) => {
      const app = new Koa();
      app.use(koaSession(options));
      app.use((ctx) => {
        const body = handle(ctx.path, new URLSearchParams(ctx.querystring), ctx.session!, remember);
        if (body !== undefined) ctx.body = body;
      });
      return listen(createServer(app.callback()));
    },
  },
  {
    name: "fastify",
    remember: {
      "cookie.maxAge": (s, days) => (s.cookie.maxAge = days === 0 ? null : days * DAY * 1000),
      "options({ maxAge })": (s, days) => s.options({ maxAge: days === 0 ? null : days * DAY * 1000 }),
      setLifetime: core,
    },
    start: async (options, remember) => {
      const app = Fastify();
      await app.register(fastifySession, options);
      app.all("/*", async (request, reply) => {
        const url = new URL(request.url, "http://x");
        const body = handle(url.pathname, url.searchParams, request.session, remember);
        if (body === undefined) return reply.code(404).send();
        return body;
      });
      await app.listen({ host: "127.0.0.1", port: 0 });
      const address = app.server.address() as { port: number };
      return { url: `http://127.0.0.1:${address.port}`, close: () => app.close() };
    },
  },
];

const maxAgeOf = (setCookie: string): string | undefined => /Max-Age=(\d+)/i.exec(setCookie)?.[1];

describe.each(VARIANTS)("$name: a session's own lifetime on Redis, two app instances", ({ name, remember, start }) => {
  const prefix = uniquePrefix(`peer-lifetime-${name}`);
  const options = (): SessionOptions => ({
    store: new RedisStore({ client: tracked(createRedisClient(services().redis.url)), prefix }),
    secret: SECRET,
    idleTimeout: IDLE,
    absoluteTimeout: ABSOLUTE,
  });
  const redis = () => rawRedis(services().redis.url);
  let a: RunningApp;
  let b: RunningApp;

  beforeAll(async () => {
    a = await start(options(), remember);
    b = await start(options(), remember);
    return () => Promise.all([a.close(), b.close()]).then(() => undefined);
  });

  it.each(Object.keys(remember))("%s: 30 days sets Max-Age, the record's TTL and metadata; the other instance keeps them", async (how) => {
    const browser = new Browser();
    const login = await browser.post(a.url, `/remember?days=30&how=${encodeURIComponent(how)}`);
    expect(login.status, login.text).toBe(200);
    expect(login.setCookies.length).toBe(1);
    expect(Number(maxAgeOf(login.setCookies[0]!))).toBeGreaterThanOrEqual(30 * DAY - 2);
    expect(Number(maxAgeOf(login.setCookies[0]!))).toBeLessThanOrEqual(30 * DAY);
    const key = prefix + keyOf(browser.sessionId!);
    expect(await storedRecord(redis(), key)).toMatch(/^\{[^\n]*"lifetime":2592000\}\n/);
    expect(await serverTtl(redis(), key)).toBeGreaterThan(30 * DAY - 10);
    // Instance B reads it (its GETEX resets the TTL to idleTimeout): the session's own lifetime is restored.
    expect(JSON.parse((await browser.get(b.url, "/me")).text)).toEqual({ userId: 7 });
    expect(await serverTtl(redis(), key)).toBeGreaterThan(30 * DAY - 10);
    const cookie = JSON.parse((await browser.get(b.url, "/cookie")).text) as Record<string, unknown>;
    expect(cookie).toMatchObject({ originalMaxAge: 30 * DAY * 1000, secure: false, httpOnly: true, path: "/", sameSite: "lax" });
    expect(cookie.expires).toEqual(expect.any(String));
    expect(Date.parse(cookie.expires as string)).toBeGreaterThan(Date.now() + 29 * DAY * 1000);
  });

  it("back to the default: the record's TTL is idleTimeout again and the cookie a browser-session cookie", async () => {
    const how = Object.keys(remember)[0]!;
    const browser = new Browser();
    await browser.post(a.url, `/remember?days=30&how=${encodeURIComponent(how)}`);
    const key = prefix + keyOf(browser.sessionId!);
    const reset = await browser.post(b.url, `/remember?days=0&how=${encodeURIComponent(how)}`);
    expect(reset.setCookies.length).toBe(1);
    expect(maxAgeOf(reset.setCookies[0]!)).toBeUndefined();
    expect(await storedRecord(redis(), key)).not.toContain('"lifetime"');
    expect(await serverTtl(redis(), key)).toBeLessThanOrEqual(IDLE);
    const cookie = JSON.parse((await browser.get(a.url, "/cookie")).text) as Record<string, unknown>;
    expect(cookie).toMatchObject({ originalMaxAge: null, expires: null });
  });

  it("never past the absolute deadline: 90 days within an absoluteTimeout of 60 gives a Max-Age and TTL of 60 days", async () => {
    const browser = new Browser();
    const login = await browser.post(a.url, "/remember?days=90&how=setLifetime");
    expect(Number(maxAgeOf(login.setCookies[0]!))).toBeLessThanOrEqual(ABSOLUTE);
    expect(Number(maxAgeOf(login.setCookies[0]!))).toBeGreaterThan(ABSOLUTE - 10);
    const ttl = await serverTtl(redis(), prefix + keyOf(browser.sessionId!));
    expect(ttl).toBeLessThanOrEqual(ABSOLUTE);
    expect(ttl).toBeGreaterThan(ABSOLUTE - 10);
  });
});

describe("a lifetime in milliseconds given to setLifetime is refused", () => {
  it("over 400 days throws a RangeError naming milliseconds", async () => {
    const app = express();
    app.use(expressSession({ store: new RedisStore({ client: tracked(createRedisClient(services().redis.url)), prefix: uniquePrefix("peer-lifetime-ms") }), secret: SECRET }));
    app.post("/", (req, res) => {
      try {
        req.session.setLifetime(30 * DAY * 1000);
        res.json({ error: null });
      } catch (err) {
        res.json({ error: `${(err as Error).name}: ${(err as Error).message}` });
      }
    });
    const running = await listen(createServer(app));
    try {
      const reply = await new Browser().post(running.url, "/");
      expect(JSON.parse(reply.text)).toEqual({ error: expect.stringMatching(/^RangeError: .*looks like milliseconds/) });
    } finally {
      await running.close();
    }
  });
});
