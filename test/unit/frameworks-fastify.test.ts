/** Fastify binding edge cases, through `inject` (no socket): failures at onSend, streams, options. */
import { Readable } from "node:stream";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { fastifySession } from "../../src/frameworks/fastify.js";
import { SessionConfigError, StoreUnavailableError, type SessionOptions } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";
import { InstrumentedStore } from "../helpers/instrumented-store.js";

const SECRET = "fastify-unit-test-secret-of-32-chars!";
const apps: FastifyInstance[] = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function setup(options: Partial<SessionOptions> = {}) {
  const store = new InstrumentedStore(new MemoryStore({ quiet: true }));
  const app = Fastify();
  apps.push(app);
  await app.register(fastifySession, { store, secret: SECRET, ...options });
  app.get("/me", async (request) => ({ visits: request.session.visits ?? null }));
  app.post("/visit", async (request) => {
    request.session.visits = (request.session.visits ?? 0) + 1;
    return { ok: true };
  });
  app.get("/stream", async (request, reply) => {
    request.session.visits = 1;
    return reply.type("text/plain").send(Readable.from(["a", "b", "c"]));
  });
  app.post("/boom", async (request) => {
    request.session.visits = 7;
    throw Object.assign(new Error("boom"), { statusCode: 422 });
  });
  return { app, store };
}

function sidOf(headers: Record<string, unknown>): string {
  const raw = headers["set-cookie"];
  const list = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]) as string[];
  const ours = list.filter((c) => c.startsWith("sid=") && !c.startsWith("sid=;"));
  expect(ours).toHaveLength(1);
  return ours[0]!.split(";")[0]!;
}

describe("commit failures in onSend", () => {
  it("become one 503 through the app's error handler, without a second commit", async () => {
    const { app, store } = await setup({ retryAfter: 4 });
    const seen: unknown[] = [];
    app.setErrorHandler((error, _request, reply) => {
      seen.push(error);
      return reply.code(503).send({ error: "try later" });
    });
    store.faults.set("create", "throw");
    const response = await app.inject({ method: "POST", url: "/visit" });
    expect(response.statusCode).toBe(503);
    expect(response.headers["retry-after"]).toBe("4");
    expect(response.json()).toEqual({ error: "try later" });
    expect(response.headers["set-cookie"]).toBeUndefined();
    expect(store.count("create")).toBe(1);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(StoreUnavailableError);
  });

  it("replace a stream payload by a complete 503, never a half-sent body", async () => {
    const { app, store } = await setup();
    store.faults.set("create", "throw");
    const response = await app.inject({ method: "GET", url: "/stream" });
    expect(response.statusCode).toBe(503);
    expect(response.headers["retry-after"]).toBe("5");
    expect(response.json()).toMatchObject({ statusCode: 503, code: "ERR_SESSION_STORE_UNAVAILABLE" });
  });

  it("streams normally once the write is in", async () => {
    const { app } = await setup();
    const response = await app.inject({ method: "GET", url: "/stream" });
    expect(response.body).toBe("abc");
    const cookie = sidOf(response.headers);
    expect((await app.inject({ method: "GET", url: "/me", headers: { cookie } })).json()).toEqual({ visits: 1 });
  });
});

describe("requests", () => {
  it("a failed load is a 503 with Retry-After through Fastify's default error handler", async () => {
    const { app, store } = await setup({ storeTimeout: 0.2 });
    const cookie = sidOf((await app.inject({ method: "POST", url: "/visit" })).headers);
    store.faults.set("get", "hang");
    const response = await app.inject({ method: "GET", url: "/me", headers: { cookie } });
    expect(response.statusCode).toBe(503);
    expect(response.headers["retry-after"]).toBe("5");
    expect(response.json()).toMatchObject({ code: "ERR_SESSION_STORE_UNAVAILABLE" });
  });

  it("an error reply from the route still commits what the request changed", async () => {
    const { app } = await setup();
    const response = await app.inject({ method: "POST", url: "/boom" });
    expect(response.statusCode).toBe(422);
    const cookie = sidOf(response.headers);
    expect((await app.inject({ method: "GET", url: "/me", headers: { cookie } })).json()).toEqual({ visits: 7 });
  });

  it("404s are lazy too", async () => {
    const { app, store } = await setup();
    const response = await app.inject({ method: "GET", url: "/nowhere" });
    expect(response.statusCode).toBe(404);
    expect(response.headers["set-cookie"]).toBeUndefined();
    expect(store.calls).toEqual([]);
  });
});

describe("registration", () => {
  it("refuses bad options when the plugin loads, not at the first request", async () => {
    const app = Fastify();
    apps.push(app);
    app.register(fastifySession, { store: new MemoryStore({ quiet: true }), secret: "short" });
    await expect(app.ready()).rejects.toBeInstanceOf(SessionConfigError);
  });
});
