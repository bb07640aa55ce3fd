/**
 * `regenerate()` on Express and Koa hands the request a NEW session object (as express-session does),
 * over real HTTP on a real Redis, two app instances. The object the app held before is a detached
 * snapshot: its data stay readable (Passport's `keepSessionInfo` merges from it), writes to it reach
 * nothing, and its session operations refuse with `ERR_SESSION_REPLACED` instead of writing the
 * pre-login data anywhere.
 */
import { createServer } from "node:http";
import express from "express";
import Koa from "koa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisClient, RedisStore } from "../../adapters/redis.js";
import { expressSession } from "../../src/frameworks/express/index.js";
import { koaSession } from "../../src/frameworks/koa.js";
import type { Session, SessionOptions } from "../../src/index.js";
import { listen, type RunningApp } from "../helpers/framework-apps.js";
import { storeKeysFor } from "../helpers/store-keys.js";
import { services, uniquePrefix } from "../services/index.js";
import { Browser } from "../helpers/app-process.js";
import { closeClients, rawRedis, tracked } from "../helpers/redis-clients.js";

const SECRET = "a-regenerate-replace-secret-of-32-characters-or-more";
const keyOf = storeKeysFor(SECRET);

/** What a session operation on the stale object gave: "ok", or the error's code. */
async function outcome(run: () => unknown): Promise<string> {
  try {
    await run();
    return "ok";
  } catch (err) {
    return String((err as { code?: unknown }).code ?? err);
  }
}

/**
 * The route under test, the same on both frameworks: `current()` reads `req.session` / `ctx.session`.
 * It regenerates through a reference taken before, then reports what the old object and the live one show.
 */
type Data = { visits?: number; planted?: string; user?: string };

async function staleReport(current: () => Session<Data>): Promise<Record<string, unknown>> {
  const old = current();
  const oldId = old.id;
  await old.regenerate();
  const live = current();
  const report: Record<string, unknown> = {
    replaced: live !== old,
    oldData: { ...old },
    oldVisits: old.visits ?? null,
    oldGet: old.get("visits") ?? null,
    oldId: old.id === oldId,
    oldKeys: Object.keys(old),
    liveData: { ...live },
    liveIdChanged: live.id !== oldId,
  };
  old.planted = "by the stale reference"; // a write to the old object stays on it
  report.livePlanted = live.planted ?? null;
  report.save = await outcome(() => old.save());
  report.saveCallback = await new Promise((resolve) => old.save((err) => resolve(err === null ? "ok" : (err as { code?: string }).code)));
  report.reload = await outcome(() => old.reload());
  report.touch = await outcome(() => old.touch());
  report.destroy = await outcome(() => old.destroy());
  report.regenerate = await outcome(() => old.regenerate());
  report.setLifetime = await outcome(() => old.setLifetime(3600));
  report.sameLive = current() === live;
  live.user = "ada";
  return report;
}

type StartApp = (options: SessionOptions) => Promise<RunningApp>;

const startExpress: StartApp = async (options) => {
  const app = express();
  app.use(expressSession(options));
  app.post("/visit", (req, res) => {
    req.session.visits = ((req.session.visits as number | undefined) ?? 0) + 1;
    res.json({ visits: req.session.visits });
  });
  app.post("/stale", (req, res, next) => {
    staleReport(() => req.session as unknown as Session<Data>).then((report) => res.json(report), next);
  });
  app.post("/chain", (req, res, next) => {
    // Two regenerates in one request, each through the object the first call left behind.
    const first = req.session;
    first.regenerate((err) => {
      if (err) return next(err);
      req.session.regenerate((err2) => {
        if (err2) return next(err2);
        (req.session as unknown as Session<Data>).user = "grace";
        res.json({ id: req.session.id, sessionID: req.sessionID });
      });
    });
  });
  app.post("/unawaited", (req, res) => {
    void req.session.regenerate(); // the commit waits for it, and commits the object it leaves
    res.json({ ok: true });
  });
  app.get("/me", (req, res) => {
    res.json({ ...req.session });
  });
  return listen(createServer(app));
};

const startKoa: StartApp = async (options) => {
  const app = new Koa();
  app.silent = true;
  app.use(koaSession(options));
  app.use(async (ctx) => {
    const route = `${ctx.method} ${ctx.path}`;
    if (route === "POST /visit") {
      ctx.session.visits = ((ctx.session.visits as number | undefined) ?? 0) + 1;
      ctx.body = { visits: ctx.session.visits };
    } else if (route === "POST /stale") {
      ctx.body = await staleReport(() => ctx.session as unknown as Session<Data>);
    } else if (route === "POST /chain") {
      await ctx.session.regenerate();
      await ctx.session.regenerate();
      (ctx.session as unknown as Session<Data>).user = "grace";
      ctx.body = { id: ctx.session.id, sessionID: ctx.session.id };
    } else if (route === "POST /unawaited") {
      void ctx.session.regenerate(); // the commit waits for it, and commits the object it leaves
      ctx.body = { ok: true };
    } else if (route === "GET /me") {
      ctx.body = { ...ctx.session };
    }
  });
  return listen(createServer(app.callback()));
};

afterAll(() => closeClients());

describe.each([
  { name: "Express", start: startExpress },
  { name: "Koa", start: startKoa },
])("$name: regenerate() replaces the request's session object", ({ name, start }) => {
  const prefix = uniquePrefix(`regen-replace-${name}`);
  const options = (): SessionOptions => ({ store: new RedisStore({ client: tracked(createRedisClient(services().redis.url)), prefix }), secret: SECRET });
  let a: RunningApp;
  let b: RunningApp;
  const held = (id: string | undefined) => rawRedis(services().redis.url).exists(prefix + keyOf(id!));

  beforeAll(async () => {
    a = await start(options());
    b = await start(options());
    return () => Promise.all([a.close(), b.close()]).then(() => undefined);
  });

  it("the old object keeps the old data to read, its writes reach nothing, its operations refuse; the new one is committed", async () => {
    const browser = new Browser();
    await browser.post(a.url, "/visit");
    await browser.post(a.url, "/visit");
    const before = browser.sessionId;
    expect(await held(before)).toBe(1);

    const reply = await browser.post(a.url, "/stale");
    expect(reply.status, reply.text).toBe(200);
    expect(JSON.parse(reply.text)).toEqual({
      replaced: true,
      oldData: { visits: 2 },
      oldVisits: 2,
      oldGet: 2,
      oldId: true,
      oldKeys: ["visits"],
      liveData: {},
      liveIdChanged: true,
      livePlanted: null,
      save: "ERR_SESSION_REPLACED",
      saveCallback: "ERR_SESSION_REPLACED",
      reload: "ERR_SESSION_REPLACED",
      touch: "ERR_SESSION_REPLACED",
      destroy: "ERR_SESSION_REPLACED",
      regenerate: "ERR_SESSION_REPLACED",
      setLifetime: "ERR_SESSION_REPLACED",
      sameLive: true,
    });
    const after = browser.sessionId;
    expect(after).not.toBe(before);
    // The old record stays gone (no stale save wrote it back); the new one holds only what the live object got.
    expect(await held(before)).toBe(0);
    expect(await held(after)).toBe(1);
    expect(JSON.parse((await browser.get(b.url, "/me")).text)).toEqual({ user: "ada" });
    expect(JSON.parse((await browser.get(a.url, "/me")).text)).toEqual({ user: "ada" });
  });

  it("a regenerate() the app does not await is committed under the new id, not refused as a replaced object", async () => {
    const browser = new Browser();
    await browser.post(a.url, "/visit");
    const before = browser.sessionId;
    const reply = await browser.post(a.url, "/unawaited");
    expect(reply.status, reply.text).toBe(200);
    expect(reply.setCookies).toHaveLength(1);
    const after = browser.sessionId;
    expect(after).not.toBe(before);
    expect(await held(before)).toBe(0);
    expect(await held(after)).toBe(1);
    expect(JSON.parse((await browser.get(b.url, "/me")).text)).toEqual({});
  });

  it("two regenerates in one request, each through the live object, end with one record under the last id", async () => {
    const browser = new Browser();
    await browser.post(a.url, "/visit");
    const before = browser.sessionId;
    const reply = await browser.post(a.url, "/chain");
    expect(reply.status, reply.text).toBe(200);
    const { id, sessionID } = JSON.parse(reply.text) as { id: string; sessionID: string };
    expect(sessionID).toBe(id);
    expect(browser.sessionId).toBe(id);
    expect(await held(before)).toBe(0);
    expect(await held(id)).toBe(1);
    expect(JSON.parse((await browser.get(b.url, "/me")).text)).toEqual({ user: "grace" });
  });
});
