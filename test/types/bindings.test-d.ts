import type { Request, RequestHandler } from "express";
import express from "express";
import Fastify, { type FastifyRequest } from "fastify";
import Koa, { type Context, type ParameterizedContext } from "koa";
import { describe, expectTypeOf, it } from "vitest";
import { expressSession, type ExpressSessionOptions } from "../../src/frameworks/express/index.js";
import { fastifySession, type FastifySessionOptions } from "../../src/frameworks/fastify.js";
import { koaSession, type KoaSessionOptions } from "../../src/frameworks/koa.js";
import type { Session, SessionManager, SessionOptions } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";

declare module "../../src/index.js" {
  interface SessionData {
    userId: number;
    theme: "light" | "dark";
  }
}

const store = new MemoryStore({ quiet: true });
const secret = "x".repeat(32);

describe("express: req.session", () => {
  it("is the augmented Session on every request", () => {
    expectTypeOf<Request["session"]>().toEqualTypeOf<Session>();
    expectTypeOf(expressSession({ store, secret })).toMatchTypeOf<RequestHandler>();
    expectTypeOf(expressSession({ store, secret }).manager).toEqualTypeOf<SessionManager>();
    expectTypeOf<ExpressSessionOptions>().toEqualTypeOf<SessionOptions>();
    const app = express();
    app.get("/", (req, res) => {
      expectTypeOf(req.session.theme).toEqualTypeOf<"light" | "dark" | undefined>();
      expectTypeOf(req.session.userId).toEqualTypeOf<number | undefined>();
      expectTypeOf(req.session.id).toEqualTypeOf<string>();
      req.session.theme = "dark";
      // @ts-expect-error a value outside the augmented type
      req.session.theme = "blue";
      // @ts-expect-error keys that are not session data
      req.session.somethingElse = 1;
      // @ts-expect-error the id is read-only
      req.session.id = "mine";
      res.end();
    });
  });

  it("has promise-returning methods that also take node-style callbacks", () => {
    const req = {} as Request;
    expectTypeOf(req.session.regenerate()).toEqualTypeOf<Promise<void>>();
    expectTypeOf(req.session.destroy()).toEqualTypeOf<Promise<void>>();
    expectTypeOf(req.session.save()).toEqualTypeOf<Promise<void>>();
    expectTypeOf(req.session.reload()).toEqualTypeOf<Promise<void>>();
    expectTypeOf(req.session.touch()).toEqualTypeOf<Promise<void>>();
    expectTypeOf(req.session.save((err) => expectTypeOf(err).toEqualTypeOf<unknown>())).toEqualTypeOf<Promise<void>>();
  });

  it("refuses options the core refuses", () => {
    // @ts-expect-error secret is required
    expressSession({ store });
    // @ts-expect-error maxAge is seconds, a number
    expressSession({ store, secret, cookie: { maxAge: "1d" } });
  });
});

describe("koa: ctx.session", () => {
  it("reads as the augmented Session on inferred and declared contexts", () => {
    const app = new Koa();
    app.use(koaSession({ store, secret }));
    expectTypeOf(koaSession({ store, secret }).manager).toEqualTypeOf<SessionManager>();
    app.use(async (ctx) => {
      expectTypeOf(ctx.session).toEqualTypeOf<Session>();
      expectTypeOf(ctx.session.userId).toEqualTypeOf<number | undefined>();
      expectTypeOf(ctx.session.regenerate()).toEqualTypeOf<Promise<void>>();
    });
    expectTypeOf<Context["session"]>().toEqualTypeOf<Session>();
    expectTypeOf<ParameterizedContext["session"]>().toEqualTypeOf<Session>();
    expectTypeOf<KoaSessionOptions>().toMatchTypeOf<SessionOptions>();
  });

  it("accepts null (destroy) or data, nothing else", () => {
    const ctx = {} as Context;
    ctx.session = null;
    ctx.session = { theme: "light", userId: 3 };
    const same: Session = ctx.session;
    ctx.session = same;
    // @ts-expect-error wrong data type
    ctx.session = { theme: "blue" };
    // @ts-expect-error not data
    ctx.session = 1;
    // @ts-expect-error reserved names are not data
    ctx.session = { id: "x" };
  });
});

describe("fastify: request.session", () => {
  it("is the augmented Session with typed get/set", async () => {
    const app = Fastify();
    await app.register(fastifySession, { store, secret });
    expectTypeOf(app.sessionManager).toEqualTypeOf<SessionManager>();
    app.get("/", async (request) => {
      expectTypeOf(request.session).toEqualTypeOf<Session>();
      expectTypeOf(request.session.get("theme")).toEqualTypeOf<"light" | "dark" | undefined>();
      request.session.set("theme", "light");
      request.session.set("theme", undefined);
      // @ts-expect-error wrong value type
      request.session.set("theme", "blue");
      // @ts-expect-error reserved names are not data
      request.session.set("id", "x");
      // @ts-expect-error reserved names are not data
      request.session.get("regenerate");
      expectTypeOf(request.session.destroy()).toEqualTypeOf<Promise<void>>();
      return "ok";
    });
    expectTypeOf<FastifyRequest["session"]>().toEqualTypeOf<Session>();
    expectTypeOf<FastifySessionOptions>().toEqualTypeOf<SessionOptions>();
    // @ts-expect-error secret is required
    await app.register(fastifySession, { store });
  });
});

describe("reserved names", () => {
  it("can never be data, even through the generic escape hatch", () => {
    type Odd = { id: number; save: string; isNew: string; label: string };
    const session = {} as Session<Odd>;
    expectTypeOf(session.id).toEqualTypeOf<string>();
    expectTypeOf(session.isNew).toEqualTypeOf<boolean>();
    expectTypeOf(session.save).toBeFunction();
    expectTypeOf(session.label).toEqualTypeOf<string | undefined>();
    // @ts-expect-error "save" is a method, not data
    session.set("save", "x");
    session.set("label", "ok");
  });
});
