/**
 * Security of store errors (issue #16, items 1-3), on real servers made to fail for real:
 * a Redis replica (`REPLICAOF`: READONLY), `maxmemory` (OOM), a server without `EVAL` (NOSCRIPT, then
 * Redis quoting the script's arguments), a key of the wrong type (WRONGTYPE), a wrong password
 * (WRONGPASS), a stopped Redis and a stopped Memcached (ECONNREFUSED).
 *
 * Everything that reached the logger, the `storeError` events and the rejections is searched, deeply
 * (`cause` chains, own properties enumerable or not, `util.inspect` with hidden properties), for the
 * session id, the cookie value and the session's data. 503 bodies go through Koa's and Fastify's
 * default error handlers with NODE_ENV=production and must not name hosts, ports or drivers.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { inspect } from "node:util";
import Fastify from "fastify";
import { Redis } from "ioredis";
import Koa from "koa";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createMemcachedClient, MemcachedStore } from "../../adapters/memcached.js";
import { createRedisClient, RedisStore } from "../../adapters/redis.js";
import { fastifySession } from "../../src/frameworks/fastify.js";
import { koaSession } from "../../src/frameworks/koa.js";
import { createSessionManager, StoreUnavailableError, type SessionLogEntry, type SessionManager, type SessionStore } from "../../src/index.js";
import { startMemcached, startRedis, type MemcachedHandle, type RedisHandle } from "../services/index.js";

const SECRET = "security-errors-secret-of-at-least-32-chars";
type Data = Record<string, unknown>;

/** Every string reachable from `value`: own properties (hidden ones too), causes, nested errors. */
function everything(value: unknown): string {
  const out: string[] = [];
  const seen = new Set<unknown>();
  const walk = (v: unknown, depth: number): void => {
    if (depth > 12) return;
    if (typeof v === "string") out.push(v);
    else if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") out.push(String(v));
    else if (typeof v === "object" && v !== null && !seen.has(v)) {
      seen.add(v);
      if (v instanceof Error) out.push(String(v), v.stack ?? "");
      if (Buffer.isBuffer(v)) out.push(v.toString("latin1"));
      for (const key of Reflect.ownKeys(v)) {
        let child: unknown;
        try {
          child = (v as Record<string | symbol, unknown>)[key];
        } catch {
          continue;
        }
        if (typeof key === "string") out.push(key);
        walk(child, depth + 1);
      }
    }
  };
  walk(value, 0);
  out.push(inspect(value, { depth: 12, showHidden: true }));
  return out.join("\n");
}

interface Harness {
  readonly manager: SessionManager<Data>;
  readonly logs: SessionLogEntry[];
  readonly events: unknown[];
  readonly thrown: unknown[];
  /** Log in: a stored session holding `marker`; returns its cookie header, id and marker. */
  login(): Promise<{ cookie: string; id: string; marker: string; cookieValue: string }>;
  /** A read and a write of that session; whatever they throw is kept. */
  use(cookie: string): Promise<void>;
}

function harness(store: SessionStore, options: { storeTimeout?: number } = {}): Harness {
  const logs: SessionLogEntry[] = [];
  const events: unknown[] = [];
  const thrown: unknown[] = [];
  const manager = createSessionManager<Data>({ store, secret: SECRET, logger: (entry) => logs.push(entry), storeTimeout: options.storeTimeout ?? 2 });
  manager.on("storeError", (payload) => events.push(payload));
  manager.on("rejected", (payload) => events.push(payload));
  return {
    manager,
    logs,
    events,
    thrown,
    async login() {
      const marker = `private-data-${Math.random().toString(36).slice(2)}-${"m".repeat(20)}`;
      const session = await manager.load(undefined, { secure: false });
      session.userId = 42;
      session.note = marker;
      const { setCookie } = await manager.commit(session);
      const cookieValue = /^sid=([^;]+)/.exec(setCookie!)![1]!;
      return { cookie: `sid=${cookieValue}`, id: session.id, marker, cookieValue };
    },
    async use(cookie) {
      try {
        const session = await manager.load(cookie, { secure: false });
        session.visits = Number(session.visits ?? 0) + 1;
        await manager.commit(session);
      } catch (err) {
        thrown.push(err);
      }
      try {
        const fresh = await manager.load(undefined, { secure: false });
        fresh.other = "x";
        await manager.commit(fresh);
      } catch (err) {
        thrown.push(err);
      }
    },
  };
}

/** Nothing logged, emitted or thrown holds the id, the cookie value or the data; something did fail. */
function expectClean(h: Harness, secrets: { id: string; marker: string; cookieValue: string }): string {
  expect(h.thrown.length + h.events.length, "the store failed, and that was reported").toBeGreaterThan(0);
  const text = everything({ logs: h.logs, events: h.events, thrown: h.thrown });
  expect(text).not.toContain(secrets.id);
  expect(text).not.toContain(secrets.cookieValue);
  expect(text).not.toContain(secrets.marker);
  expect(text).not.toContain(secrets.id.slice(0, 18)); // nor a cut-off part of it
  for (const error of h.thrown) {
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toBe("[shared-session] session store unavailable");
  }
  return text;
}

const clients: Redis[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

function redisStore(url: string, extra: Record<string, unknown> = {}): RedisStore {
  const client = createRedisClient(url, { maxRetriesPerRequest: 1, ...extra });
  clients.push(client);
  return new RedisStore({ client, prefix: "sec:" });
}

describe("store errors carry no session id, cookie value or record text (item 1)", () => {
  let redis: RedisHandle;
  let admin: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
    admin.on("error", () => undefined);
  });
  afterAll(async () => {
    admin?.disconnect();
    await redis?.close();
  });
  afterEach(async () => {
    await admin.replicaof("NO", "ONE");
    await admin.config("SET", "maxmemory", "0");
    await admin.flushall();
  });

  it("READONLY: the server became a replica (as after a Sentinel failover)", async () => {
    const h = harness(redisStore(redis.url));
    const secrets = await h.login();
    await admin.replicaof("127.0.0.1", 1); // a master that never answers: writes (and GETEX) are refused
    await h.use(secrets.cookie);
    const text = expectClean(h, secrets);
    expect(text).toContain("READONLY"); // the driver's answer is still there, scrubbed
  });

  it("OOM: maxmemory reached with noeviction", async () => {
    const h = harness(redisStore(redis.url));
    const secrets = await h.login();
    await admin.config("SET", "maxmemory-policy", "noeviction");
    await admin.config("SET", "maxmemory", "1");
    await h.use(secrets.cookie);
    const text = expectClean(h, secrets);
    expect(text).toContain("OOM");
  });

  it("WRONGTYPE: the session's key holds a list", async () => {
    const h = harness(redisStore(redis.url));
    const secrets = await h.login();
    const [key] = (await admin.keys("sec:*")).filter((k) => !k.includes("owner:"));
    await admin.del(key!);
    await admin.rpush(key!, "not a record");
    await h.use(secrets.cookie);
    const text = expectClean(h, secrets);
    expect(text).toContain("WRONGTYPE");
  });

  it("NOSCRIPT, then EVAL refused: Redis quotes the script's arguments (the key and both records)", async () => {
    const noEval = await startRedis({ args: ["--rename-command", "EVAL", ""] });
    try {
      const h = harness(redisStore(noEval.url));
      const secrets = await h.login();
      await h.use(secrets.cookie); // the write is a compare-and-set: EVALSHA → NOSCRIPT → EVAL unknown
      const text = expectClean(h, secrets);
      expect(text).toMatch(/unknown command/i);
    } finally {
      await noEval.close();
    }
  });
});

describe("the cause chain reaches the driver's error, each layer saying its part once (item 3)", () => {
  it("a wrong password: WRONGPASS at the root, no password anywhere", async () => {
    const redis = await startRedis();
    const admin = new Redis(redis.url);
    await admin.config("SET", "requirepass", "the-right-password-1234");
    admin.disconnect();
    try {
      const h = harness(redisStore(redis.url.replace("redis://", "redis://:a-wrong-password-5678@")), { storeTimeout: 2 });
      const session = await h.manager.load(undefined, { secure: false });
      session.userId = 1;
      const error = (await h.manager.commit(session).catch((e: unknown) => e)) as StoreUnavailableError;
      expect(error).toBeInstanceOf(StoreUnavailableError);
      const chain = causes(error);
      const messages = chain.map((e) => e.message);
      expect(messages.some((m) => /WRONGPASS|NOAUTH/.test(m)), messages.join(" <- ")).toBe(true);
      expectNoRepetition(messages);
      const text = everything({ error, logs: h.logs, events: h.events });
      expect(text).not.toContain("a-wrong-password-5678");
      expect(text).not.toContain(session.id);
    } finally {
      await redis.close();
    }
  });

  it("a stopped Redis: ECONNREFUSED at the root", async () => {
    const redis = await startRedis();
    try {
      const h = harness(redisStore(redis.url));
      const secrets = await h.login();
      await redis.stop();
      // Wait until the client saw the refused reconnect.
      for (let i = 0; i < 100 && !h.thrown.some((e) => causes(e as Error).some((c) => (c as { code?: string }).code === "ECONNREFUSED")); i++) {
        await h.use(secrets.cookie);
        await new Promise((r) => setTimeout(r, 50));
      }
      const last = h.thrown.at(-1) as StoreUnavailableError;
      const chain = causes(last);
      expect(
        chain.map((e) => `${(e as { code?: string }).code ?? ""} ${e.message}`),
        "the chain ends at the driver's connection error",
      ).toEqual(expect.arrayContaining([expect.stringMatching(/ECONNREFUSED/)]));
      expectNoRepetition(chain.map((e) => e.message));
      expectClean(h, secrets);
    } finally {
      await redis.close();
    }
  });

  it("a stopped Memcached: ECONNREFUSED at the root, nothing of the session anywhere", async () => {
    const memcached: MemcachedHandle = await startMemcached(1);
    const client = createMemcachedClient(memcached.servers.map((s) => s.address), { retries: 0 });
    try {
      const h = harness(new MemcachedStore({ client, prefix: "sec:" }));
      const secrets = await h.login();
      await memcached.servers[0]!.stop();
      await h.use(secrets.cookie);
      await h.use(secrets.cookie);
      const text = expectClean(h, secrets);
      expect(text).toMatch(/ECONNREFUSED|connect|closed|no answer/i);
      for (const error of h.thrown) expectNoRepetition(causes(error as Error).map((e) => e.message));
    } finally {
      client.close();
      await memcached.close();
    }
  });
});

function causes(error: Error): Error[] {
  const chain: Error[] = [];
  for (let e: unknown = error; e instanceof Error && chain.length < 10; e = e.cause) chain.push(e);
  return chain;
}

/** No message in the chain contains the whole message of the one above it (the old "create failed: … create failed at once: …"). */
function expectNoRepetition(messages: string[]): void {
  for (let i = 1; i < messages.length; i++) expect(messages[i - 1]!.includes(messages[i]!) && messages[i]!.length > 20, messages.join(" <- ")).toBe(false);
  expect(messages.join(" ").match(/\[shared-session\]/g)?.length ?? 0).toBeLessThanOrEqual(2);
}

describe("503 answers show no infrastructure (item 2)", () => {
  let redis: RedisHandle;
  const previousEnv = process.env.NODE_ENV;
  beforeAll(async () => {
    process.env.NODE_ENV = "production";
    redis = await startRedis();
  });
  afterAll(async () => {
    process.env.NODE_ENV = previousEnv;
    await redis?.close();
  });

  function listen(server: Server): Promise<number> {
    return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
  }

  const leaks = (body: string, port: number) => {
    expect(body).not.toContain(String(port));
    expect(body).not.toContain("127.0.0.1");
    expect(body).not.toMatch(/ECONNREFUSED|RedisStore|ioredis|failed|connect/i);
  };

  it("Koa's default error handler", async () => {
    const store = redisStore(redis.url);
    const app = new Koa();
    app.silent = true;
    app.use(koaSession({ store, secret: SECRET }));
    app.use((ctx) => {
      ctx.session.userId = 1;
      ctx.body = "ok";
    });
    const server = createServer(app.callback());
    const port = await listen(server);
    try {
      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
      await redis.stop();
      const answer = await fetch(`http://127.0.0.1:${port}/`);
      const body = await answer.text();
      expect(answer.status).toBe(503);
      expect(answer.headers.get("retry-after")).toBe("5");
      expect(body).toBe("[shared-session] session store unavailable");
      leaks(body, redis.port);
    } finally {
      server.close();
      await redis.start();
    }
  });

  it("Fastify's default error handler", async () => {
    const store = redisStore(redis.url);
    const app = Fastify({ logger: false });
    await app.register(fastifySession, { store, secret: SECRET });
    app.get("/", async (request) => {
      request.session.userId = 1;
      return "ok";
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const port = (app.server.address() as AddressInfo).port;
    try {
      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
      await redis.stop();
      const answer = await fetch(`http://127.0.0.1:${port}/`);
      const body = await answer.text();
      expect(answer.status).toBe(503);
      expect(JSON.parse(body)).toMatchObject({ statusCode: 503, message: "[shared-session] session store unavailable" });
      leaks(body, redis.port);
    } finally {
      await app.close();
      await redis.start();
    }
  });
});
