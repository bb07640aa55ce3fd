/**
 * Passport on shared-session, end to end over real HTTP on a real Redis, with passport-local:
 * `passport` (Express), `@fastify/passport` (Fastify) and `koa-passport` (Koa). Each framework runs
 * two app instances, each with its own manager, store and Redis client (two processes as far as the
 * sessions can tell): a login on one is seen by the other, a logout on the other is seen by the first.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import Fastify from "fastify";
import fastifyPassport from "@fastify/passport";
import Koa from "koa";
import koaPassport from "koa-passport";
import passport from "passport";
import { Strategy as LocalStrategy } from "passport-local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisClient, RedisStore } from "../../adapters/redis.js";
import { expressSession } from "../../src/frameworks/express/index.js";
import { fastifySession } from "../../src/frameworks/fastify.js";
import { koaSession } from "../../src/frameworks/koa.js";
import type { SessionOptions } from "../../src/index.js";
import { listen, type RunningApp } from "../helpers/framework-apps.js";
import { storeKeysFor } from "../helpers/store-keys.js";
import { services, uniquePrefix } from "../services/index.js";
import { Browser } from "../helpers/app-process.js";
import { closeClients, rawRedis, tracked } from "../helpers/redis-clients.js";

const SECRET = "a-passport-test-secret-of-at-least-32-characters";
const keyOf = storeKeysFor(SECRET);

interface User {
  id: number;
  name: string;
}
const USERS: readonly User[] = [{ id: 7, name: "ada" }];

/** passport-local's verify: `ada` / `lovelace`. */
function verify(username: string, password: string, done: (err: unknown, user?: User | false) => void): void {
  const user = USERS.find((u) => u.name === username);
  done(null, user !== undefined && password === "lovelace" ? user : false);
}
const findUser = (id: unknown): User | false => USERS.find((u) => u.id === id) ?? false;

/** What `GET /me` answers in every app. */
interface Me {
  user: string | null;
  visits: number | null;
}

/**
 * One app of a framework, with routes:
 * - `POST /visit`: `session.visits += 1` (data from before a login)
 * - `POST /login?username=&password=`: passport-local
 * - `POST /login-keep?…`: the same with `keepSessionInfo: true`, keeping the data from before the login
 *   (passport and koa-passport merge it from the object `req.session` was before `regenerate()`)
 * - `POST /login-drop?…`: the same with `keepSessionInfo: false` said out loud
 * - `GET /me`: the user Passport found and the visits
 * - `POST /logout`: Passport's logout
 */
type StartApp = (options: SessionOptions) => Promise<RunningApp>;

const startExpress: StartApp = async (options) => {
  const authenticator = new passport.Passport(); // one per app instance, as one per process
  authenticator.use(new LocalStrategy(verify));
  authenticator.serializeUser((user, done) => done(null, (user as User).id));
  authenticator.deserializeUser((id, done) => done(null, findUser(id)));
  const app = express();
  app.use(expressSession(options));
  app.use(authenticator.session());
  app.post("/visit", (req, res) => {
    req.session.visits = ((req.session.visits as number | undefined) ?? 0) + 1;
    res.json({ visits: req.session.visits });
  });
  const answerUser: express.RequestHandler = (req, res) => {
    res.json({ user: (req.user as User).name });
  };
  app.post("/login", authenticator.authenticate("local"), answerUser);
  app.post("/login-keep", authenticator.authenticate("local", { keepSessionInfo: true }), answerUser);
  app.post("/login-drop", authenticator.authenticate("local", { keepSessionInfo: false }), answerUser);
  app.get("/me", (req, res) => {
    res.json({ user: (req.user as User | undefined)?.name ?? null, visits: req.session.visits ?? null });
  });
  app.post("/logout", (req, res, next) => {
    req.logout((err) => (err ? next(err) : res.json({ ok: true })));
  });
  return listen(createServer(app));
};

const startFastify: StartApp = async (options) => {
  const authenticator = new fastifyPassport.Authenticator();
  authenticator.use("local", new LocalStrategy(verify));
  authenticator.registerUserSerializer(async (user: User) => user.id);
  authenticator.registerUserDeserializer(async (id: unknown) => findUser(id) || null);
  const app = Fastify();
  await app.register(fastifySession, options);
  await app.register(authenticator.initialize());
  await app.register(authenticator.secureSession());
  app.post("/visit", async (request) => {
    request.session.visits = ((request.session.visits as number | undefined) ?? 0) + 1;
    return { visits: request.session.visits };
  });
  const answerUser = async (request: { user?: unknown }) => ({ user: (request.user as User).name });
  app.post("/login", { preValidation: authenticator.authenticate("local") }, answerUser);
  app.post("/login-keep", { preValidation: authenticator.authenticate("local", { keepSessionInfo: true }) }, answerUser);
  app.post("/login-drop", { preValidation: authenticator.authenticate("local", { keepSessionInfo: false }) }, answerUser);
  app.get("/me", async (request) => ({ user: (request.user as User | undefined)?.name ?? null, visits: request.session.visits ?? null }));
  app.post("/logout", async (request) => {
    await request.logout();
    return { ok: true };
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
};

const startKoa: StartApp = async (options) => {
  const authenticator = new koaPassport.KoaPassport();
  authenticator.use(new LocalStrategy(verify));
  authenticator.serializeUser((user, done) => done(null, (user as User).id));
  authenticator.deserializeUser((id, done) => done(null, findUser(id)));
  const app = new Koa();
  app.silent = true;
  app.use(koaSession(options));
  app.use(authenticator.initialize());
  app.use(authenticator.session());
  const login = authenticator.authenticate("local");
  const loginKeep = authenticator.authenticate("local", { keepSessionInfo: true });
  const loginDrop = authenticator.authenticate("local", { keepSessionInfo: false });
  app.use(async (ctx, next) => {
    const route = `${ctx.method} ${ctx.path}`;
    if (route === "POST /visit") {
      ctx.session.visits = ((ctx.session.visits as number | undefined) ?? 0) + 1;
      ctx.body = { visits: ctx.session.visits };
    } else if (route === "POST /login") {
      await login(ctx, async () => {
        ctx.body = { user: (ctx.state.user as User).name };
      });
    } else if (route === "POST /login-keep" || route === "POST /login-drop") {
      await (route === "POST /login-keep" ? loginKeep : loginDrop)(ctx, async () => {
        ctx.body = { user: (ctx.state.user as User).name };
      });
    } else if (route === "GET /me") {
      ctx.body = { user: (ctx.state.user as User | undefined)?.name ?? null, visits: ctx.session.visits ?? null };
    } else if (route === "POST /logout") {
      await ctx.logout();
      ctx.body = { ok: true };
    } else {
      await next();
    }
  });
  return listen(createServer(app.callback()));
};

const VARIANTS: readonly { name: string; start: StartApp }[] = [
  { name: "passport (Express)", start: startExpress },
  { name: "@fastify/passport (Fastify)", start: startFastify },
  { name: "koa-passport (Koa)", start: startKoa },
];

afterAll(() => closeClients());

describe.each(VARIANTS)("$name on Redis, two app instances", ({ name, start }) => {
  const prefix = uniquePrefix(`passport-${name.split(" ")[0]!.replace(/\W/g, "")}`);
  // Each instance opens its own client and manager, as its own process would.
  const options = (): SessionOptions => ({ store: new RedisStore({ client: tracked(createRedisClient(services().redis.url)), prefix }), secret: SECRET });
  let a: RunningApp;
  let b: RunningApp;
  const held = (id: string | undefined) => rawRedis(services().redis.url).exists(prefix + keyOf(id!));

  beforeAll(async () => {
    a = await start(options());
    b = await start(options());
    return () => Promise.all([a.close(), b.close()]).then(() => undefined);
  });

  const me = async (browser: Browser, app: RunningApp): Promise<Me> => {
    const reply = await browser.get(app.url, "/me");
    expect(reply.status, reply.text).toBe(200);
    return JSON.parse(reply.text) as Me;
  };

  it("login on A drops the data from before it and changes the id; B sees the user; logout on B drops the data, and A sees no one", async () => {
    const browser = new Browser();
    expect((await browser.post(a.url, "/visit")).status).toBe(200);
    const before = browser.sessionId;
    expect(before).toBeDefined();
    expect(await held(before)).toBe(1);

    const login = await browser.post(a.url, "/login?username=ada&password=lovelace");
    expect(login.status, login.text).toBe(200);
    expect(JSON.parse(login.text)).toEqual({ user: "ada" });
    expect(login.setCookies).toHaveLength(1);
    const after = browser.sessionId;
    expect(after).toBeDefined();
    expect(after).not.toBe(before); // a fresh id at login: the fixation defence
    expect(await held(before)).toBe(0);
    expect(await held(after)).toBe(1);

    // The other instance: the user, and none of the data from before the login.
    expect(await me(browser, b)).toEqual({ user: "ada", visits: null });
    expect((await browser.post(b.url, "/visit")).status).toBe(200);
    expect(await me(browser, a)).toEqual({ user: "ada", visits: 1 });

    const loggedIn = new Map(browser.cookies);
    const logout = await browser.post(b.url, "/logout");
    expect(logout.status, logout.text).toBe(200);
    expect(await held(after)).toBe(0); // the logged-in record is gone from Redis
    expect(await me(browser, a)).toEqual({ user: null, visits: null });

    // The cookie from before the logout, replayed on either instance, is nobody's.
    const replay = new Browser();
    for (const [cookie, value] of loggedIn) replay.cookies.set(cookie, value);
    expect(await me(replay, a)).toEqual({ user: null, visits: null });
    expect(await me(replay, b)).toEqual({ user: null, visits: null });
  });

  it("a login that keeps the data from before it keeps it from before the login (still under a new id), on the other instance too", async () => {
    const browser = new Browser();
    await browser.post(a.url, "/visit");
    await browser.post(a.url, "/visit");
    const before = browser.sessionId;
    const login = await browser.post(a.url, "/login-keep?username=ada&password=lovelace");
    expect(login.status, login.text).toBe(200);
    expect(browser.sessionId).not.toBe(before);
    expect(await held(before)).toBe(0);
    expect(await me(browser, b)).toEqual({ user: "ada", visits: 2 });
  });

  it("a login with keepSessionInfo: false drops the data from before it, on the other instance too", async () => {
    const browser = new Browser();
    await browser.post(a.url, "/visit");
    const before = browser.sessionId;
    const login = await browser.post(a.url, "/login-drop?username=ada&password=lovelace");
    expect(login.status, login.text).toBe(200);
    expect(browser.sessionId).not.toBe(before);
    expect(await held(before)).toBe(0);
    expect(await me(browser, b)).toEqual({ user: "ada", visits: null });
    expect(await me(browser, a)).toEqual({ user: "ada", visits: null });
  });

  it("a wrong password is a 401 and signs no one in", async () => {
    const browser = new Browser();
    await browser.post(a.url, "/visit");
    const login = await browser.post(a.url, "/login?username=ada&password=wrong");
    expect(login.status).toBe(401);
    expect(await me(browser, b)).toEqual({ user: null, visits: 1 });
  });
});
