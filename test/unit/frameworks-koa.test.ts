/** Koa binding edge cases: the setter idioms, errors downstream, and error middleware upstream. Runs on Koa 3, or the Koa that `SHARED_SESSION_KOA_MODULE` names (2.x in CI). */
import { createServer } from "node:http";
import type Koa from "koa";
import { afterEach, describe, expect, it } from "vitest";
import { koaSession } from "../../src/frameworks/koa.js";
import { StoreUnavailableError, type SessionOptions } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";
import { koaModule, listen, type RunningApp } from "../helpers/framework-apps.js";
import { cookieHeader, idOf, isClearing, parseSetCookie, request, sessionCookie } from "../helpers/http.js";
import { InstrumentedStore } from "../helpers/instrumented-store.js";

const SECRET = "koa-unit-test-secret-of-at-least-32-c";
const running: RunningApp[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((app) => app.close()));
});

async function setup(handler: Koa.Middleware, options: Partial<SessionOptions> = {}, before?: Koa.Middleware) {
  const store = new InstrumentedStore(new MemoryStore({ quiet: true }));
  const app = new koaModule();
  app.silent = true;
  if (before) app.use(before);
  app.use(koaSession({ store, secret: SECRET, ...options }));
  app.use(async (ctx, next) => {
    if (ctx.path === "/login") {
      ctx.session.userId = 1;
      ctx.body = "in";
    } else if (ctx.path === "/me") {
      ctx.body = { userId: ctx.session.userId ?? null, visits: ctx.session.visits ?? null };
    } else {
      await next();
    }
  });
  app.use(handler);
  const server = await listen(createServer(app.callback()));
  running.push(server);
  return { store, url: server.url };
}

describe("ctx.session", () => {
  it("= null, then new data: the old session is destroyed and the data starts a new one", async () => {
    const { store, url } = await setup(async (ctx) => {
      ctx.session = null;
      expect(ctx.session.userId).toBeUndefined();
      ctx.session.visits = 1;
      ctx.body = "ok";
    });
    const old = sessionCookie(await request(url, "/login", { method: "POST" }));
    const response = await request(url, "/x", { method: "POST", cookie: cookieHeader(old) });
    const fresh = sessionCookie(response);
    expect(idOf(fresh)).not.toBe(idOf(old));
    expect(await store.inner.get(idOf(old))).toBeNull();
    expect((await request(url, "/me", { cookie: cookieHeader(fresh) })).json()).toEqual({ userId: null, visits: 1 });
  });

  it("= null on a request without a session sends nothing and writes nothing", async () => {
    const { store, url } = await setup(async (ctx) => {
      ctx.session = null;
      ctx.body = "ok";
    });
    const response = await request(url, "/x");
    expect(response.setCookies.map(parseSetCookie).every(isClearing)).toBe(true);
    expect(store.writes()).toBe(0);
  });

  it("refuses values that are neither null nor data", async () => {
    const { url } = await setup(async (ctx) => {
      (ctx as unknown as { session: unknown }).session = "logout";
      ctx.body = "unreachable";
    });
    expect((await request(url, "/x")).status).toBe(500);
  });
});

describe("errors", () => {
  it("commits what the request changed even when downstream throws", async () => {
    const { url } = await setup(async (ctx) => {
      ctx.session.visits = 3;
      ctx.throw(400, "bad input");
    });
    const cookie = sessionCookie(await request(url, "/login", { method: "POST" }));
    const response = await request(url, "/x", { method: "POST", cookie: cookieHeader(cookie) });
    expect(response.status).toBe(400);
    expect((await request(url, "/me", { cookie: cookieHeader(cookie) })).json()).toEqual({ userId: 1, visits: 3 });
  });

  it("downstream's own error wins over a failed commit", async () => {
    const { store, url } = await setup(async (ctx) => {
      ctx.session.visits = 3;
      ctx.throw(409, "conflict");
    });
    store.faults.set("create", "throw");
    expect((await request(url, "/x", { method: "POST" })).status).toBe(409);
  });

  it("an error middleware upstream sees the StoreUnavailableError and Retry-After survives", async () => {
    const caught: unknown[] = [];
    const { store, url } = await setup(
      async (ctx) => {
        ctx.session.visits = 1;
        ctx.body = "ok";
      },
      { retryAfter: 11 },
      async (ctx, next) => {
        try {
          await next();
        } catch (err) {
          caught.push(err);
          ctx.status = (err as { status: number }).status;
          ctx.body = { error: "try later" };
        }
      },
    );
    store.faults.set("create", "throw");
    const response = await request(url, "/x", { method: "POST" });
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("11");
    expect(response.json()).toEqual({ error: "try later" });
    expect(response.setCookies).toEqual([]);
    expect(caught[0]).toBeInstanceOf(StoreUnavailableError);
  });
});
