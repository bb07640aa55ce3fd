import express from "express";
import Fastify from "fastify";
import Koa from "koa";
import request from "supertest";
import { describe, expect, it } from "vitest";
import { expressSession } from "../../src/frameworks/express/index.js";
import { fastifySession } from "../../src/frameworks/fastify.js";
import { koaSession } from "../../src/frameworks/koa.js";
import { MemoryStore } from "../../src/testing/index.js";
import { SECRET } from "../helpers/manager-support.js";

declare module "../../src/index.js" {
  interface SessionData {
    userId: number;
  }
}

// The manager each binding exposes is the one serving its requests: events and the owner API reach it.
describe("each binding exposes its manager", () => {
  it("express: middleware.manager", async () => {
    const middleware = expressSession({ store: new MemoryStore({ quiet: true }), secret: SECRET });
    const created: string[] = [];
    middleware.manager.on("created", ({ session }) => created.push(session));
    const app = express().use(middleware).get("/login", (req, res) => {
      req.session.userId = 1;
      res.end();
    });
    await request(app).get("/login").expect(200);
    expect(created).toHaveLength(1);
  });
  it("koa: middleware.manager", async () => {
    const middleware = koaSession({ store: new MemoryStore({ quiet: true }), secret: SECRET });
    const created: string[] = [];
    middleware.manager.on("created", ({ session }) => created.push(session));
    const app = new Koa().use(middleware).use((ctx) => {
      ctx.session.userId = 1;
      ctx.body = "ok";
    });
    await request(app.callback()).get("/").expect(200);
    expect(created).toHaveLength(1);
  });
  it("fastify: fastify.sessionManager", async () => {
    const app = Fastify();
    await app.register(fastifySession, { store: new MemoryStore({ quiet: true }), secret: SECRET });
    const created: string[] = [];
    app.sessionManager.on("created", ({ session }) => created.push(session));
    app.get("/", async (req) => {
      req.session.userId = 1;
      return "ok";
    });
    expect((await app.inject("/")).statusCode).toBe(200);
    expect(created).toHaveLength(1);
    await app.close();
  });
});
