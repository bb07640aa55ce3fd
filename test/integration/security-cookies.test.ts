/**
 * Cookies of one name sent many times (issue #16 items 7 and 8), over real HTTP in Express, Koa and
 * Fastify on a real Redis: at most MAX_COOKIE_VALUES (4) values are looked at, and a validly signed
 * but dead cookie sent first (tossed from a sibling subdomain) does not cost the user the live session
 * behind it, nor its cookie. Plus the smaller items that show at the HTTP level (10, 11).
 */
import { randomUUID } from "node:crypto";
import signature from "cookie-signature";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisClient, RedisStore } from "../../adapters/redis.js";
import { createSessionManager, SessionConfigError } from "../../src/index.js";
import { redisBackend, type Backend } from "../helpers/session-backends.js";
import { storeKeysFor } from "../helpers/store-keys.js";
import { FRAMEWORKS, idOfValue, raw, sid, startApp, type App } from "../helpers/failure-apps.js";

const SECRET = "security-cookies-secret-of-32-chars-or-more";

let backend: Backend & { server: { url: string }; prefix: string };
let admin: Redis;

beforeAll(async () => {
  backend = await redisBackend(storeKeysFor(SECRET));
  admin = new Redis(backend.server.url);
  admin.on("error", () => undefined);
});
afterAll(async () => {
  admin?.disconnect();
  await backend?.close();
});

/** A validly signed cookie value for an id the store does not hold. */
const dead = () => signature.sign(randomUUID(), SECRET);
/** A well-formed value with a wrong signature. */
const forged = () => signature.sign(randomUUID(), "not-our-secret-but-32-characters-long");

for (const framework of FRAMEWORKS) {
  describe(`${framework}: many cookies of one name`, () => {
    let app: App;
    beforeAll(async () => {
      app = await startApp(framework, { store: backend.openStore(), secret: SECRET });
    });
    afterAll(async () => {
      await app?.close();
    });

    async function login(): Promise<string> {
      const answer = await raw(app.port, "POST", "/login", undefined);
      expect(answer.status).toBe(200);
      return sid(answer)!;
    }

    it("looks at no more than 4 values: the live cookie behind 180 forged ones is not found, and costs no store read", async () => {
      const live = await login();
      const stuffed = Array.from({ length: 180 }, () => `sid=${forged()}`).join("; ");
      const mark = await backend.mark();
      const answer = await raw(app.port, "GET", "/me", `${stuffed}; sid=${live}`);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ isNew: true, userId: null });
      expect((await backend.since(mark)).total).toBe(0);
      // Within the bound it is found.
      const near = [forged(), forged(), forged()].map((v) => `sid=${v}`).join("; ");
      expect(JSON.parse((await raw(app.port, "GET", "/me", `${near}; sid=${live}`)).body)).toMatchObject({ isNew: false, userId: 1 });
    });

    it("180 validly signed dead values cost at most 4 store reads", async () => {
      const stuffed = Array.from({ length: 180 }, () => `sid=${dead()}`).join("; ");
      const mark = await backend.mark();
      const answer = await raw(app.port, "GET", "/me", stuffed);
      expect(answer.status).toBe(200);
      const used = await backend.since(mark);
      expect(used.reads).toBeLessThanOrEqual(4);
      expect(used.reads).toBeGreaterThan(0);
    });

    it("a dead cookie tossed in front of the live one neither hides it nor gets it cleared", async () => {
      const live = await login();
      const tossed = dead();
      const answer = await raw(app.port, "GET", "/me", `sid=${tossed}; sid=${live}`);
      expect(JSON.parse(answer.body)).toMatchObject({ isNew: false, userId: 1 });
      // No clearing Set-Cookie: the browser would apply it to the victim's host-only cookie.
      expect(answer.setCookies.filter((c) => c.startsWith("sid="))).toEqual([]);
      // A write goes to the live session, under its own id.
      const visit = await raw(app.port, "POST", "/visit", `sid=${tossed}; sid=${live}`);
      expect(visit.status).toBe(200);
      expect(sid(visit)).toBeUndefined();
      expect(JSON.parse((await raw(app.port, "GET", "/me", `sid=${live}`)).body)).toMatchObject({ userId: 1, visits: 2 });
      expect(await backend.has(idOfValue(tossed))).toBe(false);
    });

    it("three dead cookies in front still leave the fourth, live, value in use", async () => {
      const live = await login();
      const header = [dead(), dead(), dead(), live].map((v) => `sid=${v}`).join("; ");
      expect(JSON.parse((await raw(app.port, "GET", "/me", header)).body)).toMatchObject({ isNew: false, userId: 1 });
    });
  });
}

describe("smaller items at construction and on the wire (items 10, 11)", () => {
  it("cookie.priority accepts low, medium and high in any case, and nothing else", async () => {
    const store = new RedisStore({ client: createRedisClient(backend.server.url), prefix: backend.prefix });
    try {
      for (const priority of ["High; Domain=evil.example", "urgent", "", "high ", 1]) {
        expect(() => createSessionManager({ store, secret: SECRET, cookie: { priority: priority as "high" } }), String(priority)).toThrow(SessionConfigError);
      }
      for (const [priority, shown] of [["HIGH", "High"], ["low", "Low"], ["Medium", "Medium"]] as const) {
        const manager = createSessionManager({ store, secret: SECRET, cookie: { priority: priority as "high" } });
        const session = await manager.load(undefined, { secure: false });
        (session as unknown as Record<string, unknown>).x = 1;
        const { setCookie } = await manager.commit(session);
        expect(setCookie).toContain(`; Priority=${shown}`);
        expect(setCookie).not.toContain("Domain");
      }
    } finally {
      store.client.disconnect();
    }
  });

  it("a rotation secret under 32 characters is refused", () => {
    const store = new RedisStore({ client: createRedisClient(backend.server.url, { lazyConnect: true }), prefix: backend.prefix });
    expect(() => createSessionManager({ store, secret: [SECRET, "x"] })).toThrow(/secret\[1\] must be at least 32 characters/);
    store.client.disconnect();
  });

  it("RedisStore refuses an empty prefix (listing would return every key of the database) unless the client has a keyPrefix", async () => {
    const client = createRedisClient(backend.server.url);
    const scoped = createRedisClient(backend.server.url, { keyPrefix: `${backend.prefix}scoped:` });
    try {
      await admin.set(`not-a-session-${randomUUID()}`, "x");
      expect(() => new RedisStore({ client, prefix: "" })).toThrow(/prefix must not be empty/);
      const store = new RedisStore({ client: scoped, prefix: "" });
      const listed: string[] = [];
      for await (const id of store.list()) listed.push(id);
      expect(listed.filter((id) => id.startsWith("not-a-session-"))).toEqual([]);
    } finally {
      client.disconnect();
      scoped.disconnect();
    }
  });

  it("an owner id over 1024 characters is an argument error (500 in the app), not a 503", async () => {
    const store = new RedisStore({ client: createRedisClient(backend.server.url), prefix: `${backend.prefix}owners:` });
    try {
      const manager = createSessionManager<{ userId?: string }>({ store, secret: SECRET, owner: (d) => d.userId });
      const session = await manager.load(undefined, { secure: false });
      session.userId = "u".repeat(2000);
      const error = await manager.commit(session).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RangeError);
      expect((error as Error).message).toMatch(/owner id of 2000 characters; owner ids are at most 1024/);
      const listing = await manager.listSessions("u".repeat(2000)).catch((e: unknown) => e);
      expect((listing as { status?: number }).status).not.toBe(503);
      expect((listing as { code?: string }).code).toBe("ERR_REDIS_ARGUMENT");
    } finally {
      store.client.disconnect();
    }
  });

  for (const framework of FRAMEWORKS) {
    it(`${framework}: a deeply nested record written from outside is a fresh session and a log line, never a 500`, async () => {
      const app = await startApp(framework, { store: backend.openStore(), secret: SECRET });
      try {
        const login = await raw(app.port, "POST", "/login", undefined);
        const value = sid(login)!;
        const id = idOfValue(value);
        const [key] = (await admin.keys(`${backend.prefix}*`)).filter((k) => k.endsWith(storeKeysFor(SECRET)(id)));
        const depth = 100_000;
        const head = (await admin.get(key!))!.split("\n", 1)[0]!;
        await admin.set(key!, `${head}\n${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`, "KEEPTTL");
        for (const [method, path] of [["GET", "/me"], ["POST", "/visit"]] as const) {
          const answer = await raw(app.port, method, path, `sid=${value}`);
          expect(answer.status, `${method} ${path}`).toBe(200);
        }
        expect(app.logs.some((entry) => entry.event === "record.corrupt")).toBe(true);
        expect(app.errors).toEqual([]);
      } finally {
        await app.close();
      }
    });
  }
});
