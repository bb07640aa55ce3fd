/**
 * The same small app written for Express, Koa and Fastify, so one behaviour suite can run against
 * all three. Each app only translates a shared route table to its framework, plus a few routes that
 * exercise one framework's own idiom.
 *
 * `SHARED_SESSION_EXPRESS_MODULE=/path/to/node_modules/express` runs the Express app on another
 * Express (such as 4.x installed in a temporary folder) instead of the repository's;
 * `SHARED_SESSION_KOA_MODULE` does the same for Koa (such as 2.x).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import fastifyCookie from "@fastify/cookie";
import express from "express";
import Fastify from "fastify";
import Koa from "koa";
import { expressSession } from "../../src/frameworks/express/index.js";
import { fastifySession } from "../../src/frameworks/fastify.js";
import { koaSession } from "../../src/frameworks/koa.js";
import type { Session, SessionOptions } from "../../src/index.js";

declare module "../../src/index.js" {
  interface SessionData {
    userId: number;
    visits: number;
  }
}

export type FrameworkName = "express" | "koa" | "fastify";

export interface AppConfig {
  /** Express `trust proxy`, Koa `app.proxy`, Fastify `trustProxy`. @default false */
  trustProxy?: boolean;
  /** Fastify only: also register `@fastify/cookie`, before or after the session plugin. */
  fastifyCookie?: "before" | "after";
}

export interface RunningApp {
  readonly url: string;
  close(): Promise<void>;
}

export interface Framework {
  readonly name: FrameworkName;
  start(options: SessionOptions, config?: AppConfig): Promise<RunningApp>;
}

/** What a route answers: a redirect (303) or JSON. */
export type Reply = { redirect: string } | { status?: number; json: unknown };
/**
 * `current()` reads the request's session again (`req.session`, `ctx.session`): after `regenerate()`,
 * Express and Koa have a new session object there (express-session's semantics), so a route that
 * regenerates writes to `current()`, not to the `session` it was given.
 */
export type Route = (session: Session, query: URLSearchParams, current: () => Session) => Reply | Promise<Reply>;

/** Routes every framework serves, written once against the session API. */
export const ROUTES: Readonly<Record<string, Route>> = {
  "GET /noop": () => ({ json: { ok: true } }),
  "GET /me": (s) => ({ json: { userId: s.userId ?? null, visits: s.visits ?? null, isNew: s.isNew } }),
  "POST /login": async (s, q, current) => {
    await s.regenerate();
    current().userId = Number(q.get("user") ?? 1);
    return { json: { ok: true } };
  },
  "POST /login-redirect": async (s, q, current) => {
    await s.regenerate();
    current().userId = Number(q.get("user") ?? 1);
    return { redirect: "/me" };
  },
  "POST /visit": (s) => {
    s.visits = (s.visits ?? 0) + 1;
    return { json: { visits: s.visits } };
  },
  "POST /regenerate": async (s) => {
    await s.regenerate();
    return { json: { ok: true } };
  },
  "POST /logout": async (s) => {
    await s.destroy();
    return { json: { ok: true } };
  },
};

/** Listen on 127.0.0.1 and a free port; `close()` also drops kept-alive connections. */
export function listen(server: Server): Promise<RunningApp> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** Express as the tests use it: the repository's, or the one `SHARED_SESSION_EXPRESS_MODULE` names. */
export const expressModule: typeof express = process.env.SHARED_SESSION_EXPRESS_MODULE
  ? ((await import(process.env.SHARED_SESSION_EXPRESS_MODULE)) as { default: typeof express }).default
  : express;

/** Koa as the tests use it: the repository's (3), or the one `SHARED_SESSION_KOA_MODULE` names (such as 2.x). */
export const koaModule: typeof Koa = process.env.SHARED_SESSION_KOA_MODULE
  ? ((await import(process.env.SHARED_SESSION_KOA_MODULE)) as { default: typeof Koa }).default
  : Koa;

/** Express through the repository's Express 5 (or `SHARED_SESSION_EXPRESS_MODULE`). */
export const expressApp: Framework = {
  name: "express",
  async start(options, config = {}) {
    const app = expressModule();
    app.set("trust proxy", config.trustProxy === true);
    app.use(expressSession(options));
    for (const [key, route] of Object.entries(ROUTES)) {
      const [method, path] = key.split(" ") as [string, string];
      // Promise-based so it also works on Express 4, which ignores a handler's promise.
      app[method === "GET" ? "get" : "post"](path, (req, res, next) => {
        Promise.resolve()
          .then(() => route(req.session, new URL(req.originalUrl, "http://x").searchParams, () => req.session))
          .then((reply) => {
            if ("redirect" in reply) res.redirect(303, reply.redirect);
            else res.status(reply.status ?? 200).json(reply.json);
          }, next);
      });
    }
    // Every method in its node-style callback form.
    app.post("/callbacks", (req, res, next) => {
      req.session.regenerate((err) => {
        if (err) return next(err);
        req.session.userId = 11;
        req.session.save((err2) => {
          if (err2) return next(err2);
          req.session.touch((err3) => {
            if (err3) return next(err3);
            req.session.reload((err4) => {
              if (err4) return next(err4);
              res.redirect(303, "/me");
            });
          });
        });
      });
    });
    app.post("/destroy-callback", (req, res, next) => {
      req.session.destroy((err) => (err ? next(err) : res.json({ ok: true })));
    });
    return listen(createServer(app));
  },
};

/** Koa 3 with a hand-written router (no extra dependency). */
export const koaApp: Framework = {
  name: "koa",
  async start(options, config = {}) {
    const app = new koaModule();
    app.proxy = config.trustProxy === true;
    app.silent = true;
    app.use(koaSession(options));
    app.use(async (ctx) => {
      const route = ROUTES[`${ctx.method} ${ctx.path}`];
      if (route !== undefined) {
        const reply = await route(ctx.session, new URLSearchParams(ctx.querystring), () => ctx.session);
        if ("redirect" in reply) {
          ctx.redirect(reply.redirect);
          ctx.status = 303;
        } else {
          ctx.status = reply.status ?? 200;
          ctx.body = reply.json;
        }
        return;
      }
      if (ctx.method === "POST" && ctx.path === "/logout-null") {
        ctx.session = null;
        ctx.body = { ok: true };
      } else if (ctx.method === "POST" && ctx.path === "/replace") {
        ctx.session = { visits: 10 };
        ctx.body = { ok: true };
      }
    });
    return listen(createServer(app.callback()));
  },
};

/** Fastify 5, optionally alongside `@fastify/cookie`. */
export const fastifyApp: Framework = {
  name: "fastify",
  async start(options, config = {}) {
    const app = Fastify({ trustProxy: config.trustProxy === true });
    if (config.fastifyCookie === "before") await app.register(fastifyCookie);
    await app.register(fastifySession, options);
    if (config.fastifyCookie === "after") await app.register(fastifyCookie);
    for (const [key, route] of Object.entries(ROUTES)) {
      const [method, path] = key.split(" ") as ["GET" | "POST", string];
      app.route({
        method,
        url: path,
        handler: async (request, reply) => {
          const answer = await route(request.session, new URLSearchParams(request.url.split("?")[1] ?? ""), () => request.session);
          if ("redirect" in answer) return reply.redirect(answer.redirect, 303);
          return reply.code(answer.status ?? 200).send(answer.json);
        },
      });
    }
    app.post("/getset", async (request) => {
      request.session.set("visits", (request.session.get("visits") ?? 0) + 5);
      return { visits: request.session.get("visits") ?? null };
    });
    if (config.fastifyCookie !== undefined) {
      app.post("/other-cookie", async (request, reply) => {
        reply.setCookie("theme", "dark", { path: "/" });
        request.session.visits = 1;
        return { ok: true };
      });
    }
    await app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = app.server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
  },
};

export const FRAMEWORKS: readonly Framework[] = [expressApp, koaApp, fastifyApp];
