/**
 * The concrete cases of issue 15, over real HTTP on a real Redis: everyday ways of answering that
 * took the process down or lost the session, and a second, differently configured session
 * middleware that was silently skipped. Each test watches the process for errors nobody handled.
 * Express runs on the Express that `SHARED_SESSION_EXPRESS_MODULE` names (4.x in CI) or 5; Koa on
 * the one `SHARED_SESSION_KOA_MODULE` names (2.x in CI) or 3.
 */
import { createServer } from "node:http";
import type { Express, NextFunction, Request, Response } from "express";
import Fastify, { type FastifyInstance } from "fastify";
import type Koa from "koa";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { expressSession } from "../../src/frameworks/express/index.js";
import { fastifySession } from "../../src/frameworks/fastify.js";
import { koaSession } from "../../src/frameworks/koa.js";
import type { SessionOptions } from "../../src/index.js";
import { expressModule, koaModule, listen, type RunningApp } from "../helpers/framework-apps.js";
import { cookieOf, pause, redisArea, send, watchProcess, type ProcessWatch, type RedisArea } from "../helpers/answers.js";

const SECRET = "answers-regression-secret-of-32-chars!";

let area: RedisArea;
let watch: ProcessWatch;
const running: RunningApp[] = [];

beforeEach(async (context) => {
  area = await redisArea(`answers-${context.task.name}`);
  watch = watchProcess();
});

afterEach(async () => {
  await pause();
  watch.stop();
  await Promise.all(running.splice(0).map((app) => app.close()));
  await area.close();
  expect(watch.errors).toEqual([]);
});

function options(extra: Partial<SessionOptions> = {}): SessionOptions {
  return { store: area.openStore(), secret: SECRET, ...extra };
}

async function expressServer(routes: (app: Express) => void, extra: Partial<SessionOptions> = {}): Promise<string> {
  const app = expressModule();
  app.use(expressSession(options(extra)));
  app.get("/visits", (req, res) => {
    res.json({ visits: req.session.visits ?? null, userId: req.session.userId ?? null });
  });
  routes(app);
  const server = await listen(createServer(app));
  running.push(server);
  return server.url;
}

async function fastifyServer(routes: (app: FastifyInstance) => void | Promise<void>, extra: Partial<SessionOptions> = {}): Promise<string> {
  const app = Fastify();
  await app.register(fastifySession, options(extra));
  app.get("/visits", async (request) => ({ visits: request.session.visits ?? null, userId: request.session.userId ?? null }));
  await routes(app);
  await app.listen({ port: 0, host: "127.0.0.1" });
  const { port } = app.server.address() as { port: number };
  running.push({ url: `http://127.0.0.1:${port}`, close: () => app.close() });
  return `http://127.0.0.1:${port}`;
}

async function koaServer(build: (app: Koa) => void): Promise<string> {
  const app = new koaModule();
  app.silent = true;
  build(app);
  const server = await listen(createServer(app.callback()));
  running.push(server);
  return server.url;
}

/** A second instance of the app (its own store client) sees the session the cookie names. */
async function visitsOn(url: string, cookie: string | undefined): Promise<unknown> {
  expect(cookie).toBeDefined();
  const response = await send(`${url}/visits`, { cookie });
  return JSON.parse(response.body);
}

describe("Express: the app answers, then Express's own handlers run", () => {
  it("res.json(x); next(): the answer stands, no 404 after it, the session is stored", async () => {
    const url = await expressServer((app) => {
      app.post("/json-next", (req: Request, res: Response, next: NextFunction) => {
        req.session.visits = 1;
        res.json({ ok: true });
        next();
      });
    });
    const response = await send(`${url}/json-next`, { method: "POST" });
    expect(response.status).toBe(200);
    expect(response.body).toBe('{"ok":true}');
    expect(response.headers["content-type"]).toMatch(/^application\/json/);
    expect(response.complete).toBe(true);
    expect(await area.records()).toBe(1);
    const other = await expressServer(() => undefined);
    expect(await visitsOn(other, cookieOf(response.headers))).toEqual({ visits: 1, userId: null });
  });

  it("throw after res.send(): the client gets the answer that was sent, the process lives", async () => {
    const url = await expressServer((app) => {
      app.post("/send-throw", (req: Request, res: Response) => {
        req.session.visits = 2;
        res.send("done");
        throw new Error("after the answer");
      });
    });
    const response = await send(`${url}/send-throw`, { method: "POST" });
    expect(response.status).toBe(200);
    expect(response.body).toBe("done");
    expect(await area.records()).toBe(1);
    expect(cookieOf(response.headers)).toBeDefined();
  });

  it("res.send() twice: the first answer goes out, the second throws in the app as without sessions", async () => {
    let secondThrew: unknown;
    const url = await expressServer((app) => {
      app.post("/twice", (req: Request, res: Response) => {
        req.session.visits = 3;
        res.send("first");
        try {
          res.send("second");
        } catch (err) {
          secondThrew = err;
        }
      });
    });
    const response = await send(`${url}/twice`, { method: "POST" });
    expect(response.status).toBe(200);
    expect(response.body).toBe("first");
    expect((secondThrew as { code?: string } | undefined)?.code).toBe("ERR_HTTP_HEADERS_SENT");
    expect(await area.records()).toBe(1);
  });
});

describe("Express: a held answer looks as it would without the binding", () => {
  it("after res.send(), res.headersSent and res.writableEnded are true while the write is under way", async () => {
    let seen: unknown;
    const url = await expressServer((app) => {
      app.post("/flags", (req: Request, res: Response) => {
        req.session.visits = 6;
        res.send("sent");
        seen = { headersSent: res.headersSent, writableEnded: res.writableEnded };
      });
    });
    const response = await send(`${url}/flags`, { method: "POST" });
    expect(response.body).toBe("sent");
    expect(seen).toEqual({ headersSent: true, writableEnded: true });
    expect(await area.records()).toBe(1);
  });
});

describe("Fastify: answers without return, twice, after errors", () => {
  it("async handler: reply.send(x) without return reply", async () => {
    const url = await fastifyServer((app) => {
      app.post("/no-return", async (request, reply) => {
        request.session.visits = 1;
        void reply.send({ ok: true });
      });
    });
    const response = await send(`${url}/no-return`, { method: "POST" });
    expect(response.status).toBe(200);
    expect(response.body).toBe('{"ok":true}');
    expect(await area.records()).toBe(1);
    expect(await visitsOn(url, cookieOf(response.headers))).toEqual({ visits: 1, userId: null });
  });

  it("regenerate, set, reply.redirect() without return", async () => {
    const url = await fastifyServer((app) => {
      app.post("/login", async (request, reply) => {
        await request.session.regenerate();
        request.session.userId = 1;
        void reply.redirect("/");
      });
    });
    const response = await send(`${url}/login`, { method: "POST" });
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe("/");
    expect(await area.records()).toBe(1);
    expect(await visitsOn(url, cookieOf(response.headers))).toEqual({ visits: null, userId: 1 });
  });

  it("reply.send() twice: the first answer goes out", async () => {
    const url = await fastifyServer((app) => {
      app.post("/twice", async (request, reply) => {
        request.session.visits = 2;
        void reply.send("first");
        void reply.send("second");
        return reply;
      });
    });
    const response = await send(`${url}/twice`, { method: "POST" });
    expect(response.status).toBe(200);
    expect(response.body).toBe("first");
    expect(await area.records()).toBe(1);
  });

  it("throw after reply.send(): the first answer goes out", async () => {
    const url = await fastifyServer((app) => {
      app.post("/send-throw", async (request, reply) => {
        request.session.visits = 3;
        void reply.send("done");
        throw new Error("after the answer");
      });
    });
    const response = await send(`${url}/send-throw`, { method: "POST" });
    expect(response.status).toBe(200);
    expect(response.body).toBe("done");
    expect(await area.records()).toBe(1);
  });

  it("a later onSend hook that fails after the commit still gets its error reply out", async () => {
    const url = await fastifyServer((app) => {
      app.addHook("onSend", async (_request, _reply, payload) => {
        if (payload === "ok") throw new Error("a later hook failed");
        return payload;
      });
      app.post("/later-hook", async (request) => {
        request.session.visits = 5;
        return "ok";
      });
    });
    const response = await send(`${url}/later-hook`, { method: "POST" });
    expect(response.status).toBe(500);
    expect(response.complete).toBe(true);
    expect(JSON.parse(response.body)).toMatchObject({ message: "a later hook failed" });
  });

  it("save(cb) not awaited, then reply.send(): one record, and the cookie names it", async () => {
    const url = await fastifyServer((app) => {
      app.post("/save-cb", async (request, reply) => {
        request.session.visits = 4;
        request.session.save(() => undefined);
        return reply.send("ok");
      });
    });
    const response = await send(`${url}/save-cb`, { method: "POST" });
    expect(response.status).toBe(200);
    expect(await area.records()).toBe(1);
    expect(await visitsOn(url, cookieOf(response.headers))).toEqual({ visits: 4, userId: null });
  });
});

describe("Koa: un-awaited save()", () => {
  it("ctx.session.save(); ctx.body = 'ok' with data: one record, Set-Cookie names it", async () => {
    const build = (app: Koa): void => {
      app.use(koaSession(options()));
      app.use(async (ctx) => {
        if (ctx.path === "/visits") {
          ctx.body = { visits: ctx.session.visits ?? null, userId: ctx.session.userId ?? null };
          return;
        }
        ctx.session.visits = 5;
        void ctx.session.save();
        ctx.body = "ok";
      });
    };
    const url = await koaServer(build);
    const response = await send(`${url}/save`, { method: "POST" });
    expect(response.status).toBe(200);
    expect(response.body).toBe("ok");
    expect(await area.records()).toBe(1);
    const other = await koaServer(build);
    expect(await visitsOn(other, cookieOf(response.headers))).toEqual({ visits: 5, userId: null });
  });

  it("ctx.session.save(); ctx.body = 'ok' on a new, empty session: the cookie names the one record", async () => {
    const url = await koaServer((app) => {
      app.use(koaSession(options()));
      app.use(async (ctx) => {
        void ctx.session.save();
        ctx.body = "ok";
      });
    });
    const response = await send(`${url}/save`, { method: "POST" });
    expect(response.status).toBe(200);
    expect(await area.records()).toBe(1);
    expect(cookieOf(response.headers)).toBeDefined();
  });
});

describe("a second, differently configured session middleware does its own job", () => {
  it("Express: an admin area with its own cookie name gets its own session", async () => {
    const store = area.openStore();
    const app = expressModule();
    app.use(expressSession({ store, secret: SECRET }));
    app.use("/admin", expressSession({ store, secret: SECRET, name: "admin_sid", idleTimeout: 900, cookie: { sameSite: "strict" } }));
    app.post("/admin/login", (req, res) => {
      req.session.userId = 99;
      res.json({ ok: true });
    });
    app.post("/shop", (req, res) => {
      req.session.visits = 1;
      res.json({ ok: true });
    });
    const server = await listen(createServer(app));
    running.push(server);
    const admin = await send(`${server.url}/admin/login`, { method: "POST" });
    expect(admin.status).toBe(200);
    expect(cookieOf(admin.headers, "admin_sid")).toBeDefined();
    expect(cookieOf(admin.headers, "sid")).toBeUndefined();
    expect(admin.headers["set-cookie"]?.join("\n")).toMatch(/admin_sid=.*SameSite=Strict/i);
    const shop = await send(`${server.url}/shop`, { method: "POST" });
    expect(cookieOf(shop.headers, "sid")).toBeDefined();
    expect(cookieOf(shop.headers, "admin_sid")).toBeUndefined();
    expect(await area.records()).toBe(2);
  });

  it("Express: the same instance mounted twice loads and writes once", async () => {
    const store = area.openStore();
    const app = expressModule();
    const session = expressSession({ store, secret: SECRET });
    app.use(session);
    app.use(session);
    app.post("/visit", (req, res) => {
      req.session.visits = 1;
      res.json({ ok: true });
    });
    const server = await listen(createServer(app));
    running.push(server);
    const response = await send(`${server.url}/visit`, { method: "POST" });
    expect(response.headers["set-cookie"]).toHaveLength(1);
    expect(store.writes()).toBe(1);
  });

  it("Koa: an admin area with its own cookie name gets its own session, the outer one is back after it", async () => {
    const store = area.openStore();
    const url = await koaServer((app) => {
      app.use(koaSession({ store, secret: SECRET }));
      const admin = koaSession({ store, secret: SECRET, name: "admin_sid", idleTimeout: 900 });
      app.use(async (ctx, next) => {
        if (!ctx.path.startsWith("/admin")) return next();
        const outer = ctx.session;
        await admin(ctx, async () => {
          ctx.session.userId = 99;
          ctx.body = { innerIsOuter: ctx.session === outer };
        });
        ctx.set("x-outer-back", String(ctx.session === outer));
      });
      app.use(async (ctx) => {
        ctx.session.visits = 1;
        ctx.body = { ok: true };
      });
    });
    const admin = await send(`${url}/admin/login`, { method: "POST" });
    expect(admin.status).toBe(200);
    expect(JSON.parse(admin.body)).toEqual({ innerIsOuter: false });
    expect(admin.headers["x-outer-back"]).toBe("true");
    expect(cookieOf(admin.headers, "admin_sid")).toBeDefined();
    expect(cookieOf(admin.headers, "sid")).toBeUndefined();
    const shop = await send(`${url}/shop`, { method: "POST" });
    expect(cookieOf(shop.headers, "sid")).toBeDefined();
    expect(cookieOf(shop.headers, "admin_sid")).toBeUndefined();
    expect(await area.records()).toBe(2);
  });

  it("Fastify: two registrations in separate contexts, each with its own cookie", async () => {
    const store = area.openStore();
    const app = Fastify();
    await app.register(fastifySession, { store, secret: SECRET });
    app.post("/shop", async (request) => {
      request.session.visits = 1;
      return { ok: true };
    });
    await app.register(
      async (child) => {
        await child.register(fastifySession, { store, secret: SECRET, name: "admin_sid", idleTimeout: 900 });
        child.post("/login", async (request) => {
          request.session.userId = 99;
          return { ok: true };
        });
      },
      { prefix: "/admin" },
    );
    await app.listen({ port: 0, host: "127.0.0.1" });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    running.push({ url, close: () => app.close() });
    const admin = await send(`${url}/admin/login`, { method: "POST" });
    expect(admin.status).toBe(200);
    expect(cookieOf(admin.headers, "admin_sid")).toBeDefined();
    expect(cookieOf(admin.headers, "sid")).toBeUndefined();
    const shop = await send(`${url}/shop`, { method: "POST" });
    expect(cookieOf(shop.headers, "sid")).toBeDefined();
    expect(await area.records()).toBe(2);
  });
});

describe("two instances that would share a cookie are refused, never skipped", () => {
  it("Express: a second instance with the same cookie name on one request is a clear error", async () => {
    const store = area.openStore();
    const app = expressModule();
    app.use(expressSession({ store, secret: SECRET }));
    app.use(expressSession({ store, secret: SECRET, idleTimeout: 900 }));
    app.get("/", (req, res) => {
      res.send("never");
    });
    let seen: unknown;
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      seen = err;
      res.status(500).send("refused");
    });
    const server = await listen(createServer(app));
    running.push(server);
    const response = await send(`${server.url}/`);
    expect(response.body).toBe("refused");
    expect(String((seen as Error).message)).toMatch(/two different instances with the cookie name "sid"/);
  });

  it("Koa: a second instance with the same cookie name on one request is a clear error", async () => {
    const store = area.openStore();
    let seen: unknown;
    const url = await koaServer((app) => {
      app.use(async (ctx, next) => {
        try {
          await next();
        } catch (err) {
          seen = err;
          ctx.status = 500;
          ctx.body = "refused";
        }
      });
      app.use(koaSession({ store, secret: SECRET }));
      app.use(koaSession({ store, secret: SECRET, idleTimeout: 900 }));
      app.use((ctx) => {
        ctx.body = "never";
      });
    });
    const response = await send(`${url}/`);
    expect(response.body).toBe("refused");
    expect(String((seen as Error).message)).toMatch(/two different instances with the cookie name "sid"/);
  });

  it("Fastify: registered twice in one context is refused at registration", async () => {
    const store = area.openStore();
    const app = Fastify();
    await app.register(fastifySession, { store, secret: SECRET });
    await expect(app.register(fastifySession, { store, secret: SECRET, name: "other" }).ready()).rejects.toThrow(/registered twice in one Fastify context/);
    await app.close();
  });
});
