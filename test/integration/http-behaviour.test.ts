/**
 * One HTTP behaviour suite, written once, run against the Express, Koa and Fastify bindings, each
 * on a MemoryStore and on a real Redis (a server of this file's own, from the test-services module).
 * Everything goes through real HTTP on 127.0.0.1; store operations are counted where the data lives.
 */
import { randomUUID } from "node:crypto";
import signature from "cookie-signature";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SessionOptions } from "../../src/index.js";
import { FRAMEWORKS, type AppConfig, type Framework, type RunningApp } from "../helpers/framework-apps.js";
import { cookieHeader, idOf, isClearing, parseSetCookie, request, sessionCookie, type HttpResponse, type ParsedCookie } from "../helpers/http.js";
import type { Fault, InstrumentedStore, StoreOp } from "../helpers/instrumented-store.js";
import { memoryBackend, redisBackend, type Backend } from "../helpers/session-backends.js";
import { storeKeysFor } from "../helpers/store-keys.js";

const SECRET = "the-current-secret-of-at-least-32-chars";
const OLD_SECRET = "a-retired-secret-that-is-32-chars-long!";
const SIGNED_VALUE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.[A-Za-z0-9+/]{43}$/;

const BACKENDS: { name: string; open: () => Promise<Backend> }[] = [
  { name: "MemoryStore", open: async () => memoryBackend(storeKeysFor(SECRET)) },
  { name: "Redis", open: () => redisBackend(storeKeysFor(SECRET)) },
];

/** The sid cookies of a response (none, one value, or one clearing). */
function sidCookies(response: HttpResponse): ParsedCookie[] {
  return response.setCookies.map(parseSetCookie).filter((c) => c.name === "sid");
}

describe.each(BACKENDS)("on $name", ({ open }) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await open();
  });
  afterAll(async () => {
    await backend?.close();
  });

  describe.each(FRAMEWORKS)("$name", (framework: Framework) => {
    const running: RunningApp[] = [];
    let shared: InstrumentedStore;
    beforeAll(() => {
      shared = backend.openStore();
    });
    afterEach(async () => {
      await Promise.all(running.splice(0).map((app) => app.close()));
      backend.reset();
    });

    /** An app of this framework on `store` (the file's shared store by default), trust proxy on. */
    async function start(options: Partial<SessionOptions> = {}, config: AppConfig = { trustProxy: true }, on: Framework = framework): Promise<RunningApp> {
      const app = await on.start({ store: shared, secret: SECRET, ...options }, config);
      running.push(app);
      return app;
    }

    async function login(app: RunningApp, user = 1): Promise<ParsedCookie> {
      const response = await request(app.url, `/login?user=${user}`, { method: "POST" });
      expect(response.status).toBe(200);
      return sessionCookie(response);
    }

    it("is lazy: a request without a cookie reaches no store and gets no cookie", async () => {
      const app = await start();
      const mark = await backend.mark();
      const noop = await request(app.url, "/noop");
      const me = await request(app.url, "/me");
      expect([noop.status, me.status]).toEqual([200, 200]);
      expect(me.json()).toEqual({ userId: null, visits: null, isNew: true });
      expect([...noop.setCookies, ...me.setCookies]).toEqual([]);
      expect(await backend.since(mark)).toEqual({ reads: 0, writes: 0, total: 0 });
    });

    it("login sets exactly one cookie: HttpOnly, SameSite=Lax, Path=/, no Max-Age, not Secure over HTTP", async () => {
      const app = await start();
      const mark = await backend.mark();
      const response = await request(app.url, "/login?user=7", { method: "POST" });
      expect(response.setCookies).toHaveLength(1);
      const cookie = sessionCookie(response);
      expect(cookie.value).toMatch(SIGNED_VALUE);
      expect([...cookie.attributes.keys()].sort()).toEqual(["httponly", "path", "samesite"]);
      expect(cookie.attributes.get("path")).toBe("/");
      expect(cookie.attributes.get("samesite")).toBe("Lax");
      expect(await backend.since(mark)).toEqual({ reads: 0, writes: 1, total: 1 });
      const ttl = await backend.ttl(idOf(cookie));
      expect(ttl).toBeGreaterThan(86_000);
      expect(ttl).toBeLessThanOrEqual(86_400);
    });

    it("sets Secure over HTTPS behind a trusted proxy, and only when the proxy is trusted", async () => {
      const trusting = await start({}, { trustProxy: true });
      const distrusting = await start({}, { trustProxy: false });
      const https = { "x-forwarded-proto": "https" };
      const behindProxy = sessionCookie(await request(trusting.url, "/login", { method: "POST", headers: https }));
      expect(behindProxy.attributes.get("secure")).toBe(true);
      const plain = sessionCookie(await request(trusting.url, "/login", { method: "POST" }));
      expect(plain.attributes.has("secure")).toBe(false);
      const spoofed = sessionCookie(await request(distrusting.url, "/login", { method: "POST", headers: https }));
      expect(spoofed.attributes.has("secure")).toBe(false);
    });

    it("keeps data across requests", async () => {
      const app = await start();
      const cookie = cookieHeader(await login(app, 7));
      for (let i = 0; i < 2; i++) expect((await request(app.url, "/visit", { method: "POST", cookie })).status).toBe(200);
      const me = await request(app.url, "/me", { cookie });
      expect(me.json()).toEqual({ userId: 7, visits: 2, isNew: false });
    });

    it("writes nothing and sends no cookie for requests that change nothing", async () => {
      const app = await start();
      const cookie = cookieHeader(await login(app));
      const mark = await backend.mark();
      const first = await request(app.url, "/me", { cookie });
      const second = await request(app.url, "/noop", { cookie });
      expect(first.json()).toMatchObject({ userId: 1 });
      expect([...first.setCookies, ...second.setCookies]).toEqual([]);
      // One read per request (it also refreshes the idle TTL), no write.
      expect(await backend.since(mark)).toEqual({ reads: 2, writes: 0, total: 2 });
    });

    it("regenerate starts an empty session under a new id and kills the old one", async () => {
      const app = await start();
      const old = await login(app, 5);
      const response = await request(app.url, "/regenerate", { method: "POST", cookie: cookieHeader(old) });
      const fresh = sessionCookie(response);
      expect(idOf(fresh)).not.toBe(idOf(old));
      expect(await backend.has(idOf(old))).toBe(false);
      expect(await backend.has(idOf(fresh))).toBe(true);
      // regenerate() starts empty (express-session's and Passport's meaning): the login's data stays behind.
      expect((await request(app.url, "/me", { cookie: cookieHeader(fresh) })).json()).toEqual({ userId: null, visits: null, isNew: false });
      // The old cookie is now an unknown id: a fresh, empty session, and a write on it gets a new id.
      expect((await request(app.url, "/me", { cookie: cookieHeader(old) })).json()).toEqual({ userId: null, visits: null, isNew: true });
      const revived = sessionCookie(await request(app.url, "/visit", { method: "POST", cookie: cookieHeader(old) }));
      expect(idOf(revived)).not.toBe(idOf(old));
      expect(await backend.has(idOf(old))).toBe(false);
    });

    it("destroy expires the cookie and deletes the record", async () => {
      const app = await start();
      const cookie = await login(app);
      const response = await request(app.url, "/logout", { method: "POST", cookie: cookieHeader(cookie) });
      expect(response.status).toBe(200);
      const cleared = sessionCookie(response);
      expect(isClearing(cleared)).toBe(true);
      expect(cleared.attributes.get("path")).toBe("/");
      expect(await backend.has(idOf(cookie))).toBe(false);
      expect((await request(app.url, "/me", { cookie: cookieHeader(cookie) })).json()).toMatchObject({ userId: null, isNew: true });
    });

    it("accepts a cookie signed with a retired secret and re-signs it with the current one", async () => {
      const before = await start({ secret: OLD_SECRET });
      const after = await start({ secret: [SECRET, OLD_SECRET] });
      const old = await login(before, 9);
      expect(signature.unsign(decodeURIComponent(old.value), OLD_SECRET)).toBe(idOf(old));
      const response = await request(after.url, "/me", { cookie: cookieHeader(old) });
      expect(response.json()).toMatchObject({ userId: 9 });
      const resigned = sessionCookie(response);
      expect(idOf(resigned)).toBe(idOf(old));
      expect(signature.unsign(resigned.value, SECRET)).toBe(idOf(old));
      const again = await request(after.url, "/me", { cookie: cookieHeader(resigned) });
      expect(again.json()).toMatchObject({ userId: 9 });
      expect(again.setCookies).toEqual([]);
      // Without the old secret the old cookie is worthless.
      const strict = await start({ secret: SECRET });
      expect((await request(strict.url, "/me", { cookie: cookieHeader(old) })).json()).toMatchObject({ userId: null });
    });

    it("treats tampered cookies as no session, without asking the store", async () => {
      const app = await start();
      const good = await login(app, 3);
      const id = idOf(good);
      const sig = good.value.slice(id.length + 1);
      const flipped = sig[0] === "A" ? `B${sig.slice(1)}` : `A${sig.slice(1)}`;
      const variants: Record<string, string> = {
        "bad signature": `${id}.${flipped}`,
        unsigned: id,
        "extra bytes": `${good.value}x`,
        "another secret": signature.sign(id, "some-other-secret-of-32-characters!!"),
        "not an id": signature.sign("../../etc/passwd", SECRET),
      };
      for (const [label, value] of Object.entries(variants)) {
        const mark = await backend.mark();
        const response = await request(app.url, "/me", { cookie: `sid=${value}` });
        expect(response.json(), label).toEqual({ userId: null, visits: null, isNew: true });
        expect(await backend.since(mark), label).toEqual({ reads: 0, writes: 0, total: 0 });
        expect(sidCookies(response).every(isClearing), label).toBe(true);
      }
      expect((await request(app.url, "/me", { cookie: cookieHeader(good) })).json()).toMatchObject({ userId: 3 });
    });

    it("never adopts a validly signed id the store does not know", async () => {
      const app = await start();
      const unknown = randomUUID();
      const cookie = `sid=${signature.sign(unknown, SECRET)}`;
      const mark = await backend.mark();
      expect((await request(app.url, "/me", { cookie })).json()).toEqual({ userId: null, visits: null, isNew: true });
      expect(await backend.since(mark)).toEqual({ reads: 1, writes: 0, total: 1 });
      const created = sessionCookie(await request(app.url, "/visit", { method: "POST", cookie }));
      expect(idOf(created)).not.toBe(unknown);
      expect(await backend.has(unknown)).toBe(false);
      expect(await backend.has(idOf(created))).toBe(true);
    });

    describe.each<Fault>(["throw", "hang"])("a store that fails (%s)", (fault) => {
      const failing = { retryAfter: 7, storeTimeout: 0.5 };

      function inject(store: InstrumentedStore, ops: StoreOp[]): void {
        for (const op of ops) store.faults.set(op, fault);
      }

      function expect503(response: HttpResponse): void {
        expect(response.status).toBe(503);
        expect(response.headers.get("retry-after")).toBe("7");
        expect(sidCookies(response).filter((c) => !isClearing(c))).toEqual([]);
      }

      it("answers 503 with Retry-After when loading", async () => {
        const app = await start(failing);
        const cookie = cookieHeader(await login(app, 4));
        inject(shared, ["get"]);
        expect503(await request(app.url, "/me", { cookie }));
        expect503(await request(app.url, "/visit", { method: "POST", cookie }));
        shared.faults.clear();
        expect((await request(app.url, "/me", { cookie })).json()).toMatchObject({ userId: 4 });
      });

      it("answers 503 with Retry-After when committing a new session", async () => {
        const app = await start(failing);
        inject(shared, ["create"]);
        const mark = await backend.mark();
        expect503(await request(app.url, "/login?user=2", { method: "POST" }));
        expect((await backend.since(mark)).writes).toBe(0);
      });

      it("answers 503 with Retry-After when committing a change", async () => {
        const app = await start(failing);
        const cookie = cookieHeader(await login(app, 6));
        inject(shared, ["update", "compareAndSet"]);
        expect503(await request(app.url, "/visit", { method: "POST", cookie }));
        shared.faults.clear();
        expect((await request(app.url, "/me", { cookie })).json()).toMatchObject({ userId: 6, visits: null });
      });

      it('serves 200 without a session and writes nothing under onStoreError: "continue"', async () => {
        const app = await start({ ...failing, onStoreError: "continue" });
        const cookie = cookieHeader(await login(app, 8));
        inject(shared, ["get"]);
        let mark = await backend.mark();
        const me = await request(app.url, "/me", { cookie });
        expect(me.status).toBe(200);
        expect(me.json()).toMatchObject({ userId: null });
        const visit = await request(app.url, "/visit", { method: "POST", cookie });
        expect(visit.status).toBe(200);
        expect(visit.setCookies).toEqual([]);
        expect((await backend.since(mark)).writes).toBe(0);

        shared.faults.clear();
        inject(shared, ["create"]);
        mark = await backend.mark();
        const anonymous = await request(app.url, "/visit", { method: "POST" });
        expect(anonymous.status).toBe(200);
        expect(anonymous.setCookies).toEqual([]);
        expect((await backend.since(mark)).writes).toBe(0);
      });
    });

    it("a redirect after login, followed at once on a second instance, sees the data even when writes are slow", async () => {
      // A binding that sent the response before its write was in the store fails this: the second
      // instance would read before the (slowed) write lands.
      const slow = backend.openStore();
      slow.writeDelayMs = 300;
      const first = await start({ store: slow });
      const second = await start({ store: backend.openStore() });
      const response = await request(first.url, "/login-redirect?user=42", { method: "POST" });
      expect(response.status).toBe(303);
      expect(response.headers.get("location")).toBe("/me");
      const followed = await request(second.url, response.headers.get("location")!, { cookie: cookieHeader(sessionCookie(response)) });
      expect(followed.json()).toEqual({ userId: 42, visits: null, isNew: false });
    });

    it("shares sessions with the other frameworks on the same store", async () => {
      const here = await start();
      const cookie = cookieHeader(await login(here, 31));
      for (const other of FRAMEWORKS.filter((f) => f !== framework)) {
        const there = await start({}, { trustProxy: true }, other);
        expect((await request(there.url, "/visit", { method: "POST", cookie })).json()).toBeTruthy();
      }
      expect((await request(here.url, "/me", { cookie })).json()).toEqual({ userId: 31, visits: 2, isNew: false });
    });

    if (framework.name === "express") {
      it("express: every method also takes a node-style callback", async () => {
        const app = await start();
        const response = await request(app.url, "/callbacks", { method: "POST" });
        expect(response.status).toBe(303);
        const cookie = sessionCookie(response);
        expect((await request(app.url, "/me", { cookie: cookieHeader(cookie) })).json()).toMatchObject({ userId: 11 });
        const destroyed = await request(app.url, "/destroy-callback", { method: "POST", cookie: cookieHeader(cookie) });
        expect(isClearing(sessionCookie(destroyed))).toBe(true);
        expect(await backend.has(idOf(cookie))).toBe(false);
      });
    }

    if (framework.name === "koa") {
      it("koa: ctx.session = null destroys, ctx.session = {…} replaces the data", async () => {
        const app = await start();
        const cookie = await login(app, 12);
        const replaced = await request(app.url, "/replace", { method: "POST", cookie: cookieHeader(cookie) });
        expect(replaced.status).toBe(200);
        expect((await request(app.url, "/me", { cookie: cookieHeader(cookie) })).json()).toEqual({ userId: null, visits: 10, isNew: false });
        const nulled = await request(app.url, "/logout-null", { method: "POST", cookie: cookieHeader(cookie) });
        expect(isClearing(sessionCookie(nulled))).toBe(true);
        expect(await backend.has(idOf(cookie))).toBe(false);
      });
    }

    if (framework.name === "fastify") {
      it("fastify: request.session.get/set, with or without @fastify/cookie", async () => {
        for (const fastifyCookie of [undefined, "before", "after"] as const) {
          const app = await start({}, { trustProxy: true, fastifyCookie });
          const first = await request(app.url, "/getset", { method: "POST" });
          expect(first.json()).toEqual({ visits: 5 });
          const cookie = cookieHeader(sessionCookie(first));
          expect((await request(app.url, "/getset", { method: "POST", cookie })).json()).toEqual({ visits: 10 });
          if (fastifyCookie !== undefined) {
            // Both plugins set cookies on one reply: both arrive.
            const both = await request(app.url, "/other-cookie", { method: "POST" });
            expect(both.setCookies.map((c) => parseSetCookie(c).name).sort()).toEqual(["sid", "theme"]);
            // @fastify/cookie parsing the same header changes nothing for us.
            expect((await request(app.url, "/me", { cookie: `theme=dark; ${cookie}` })).json()).toMatchObject({ visits: 10 });
          }
        }
      });
    }
  });
});

describe("on Redis, a real outage", () => {
  let backend: Awaited<ReturnType<typeof redisBackend>>;
  const running: RunningApp[] = [];
  beforeAll(async () => {
    backend = await redisBackend(storeKeysFor(SECRET));
  });
  afterAll(async () => {
    await Promise.all(running.map((app) => app.close()));
    await backend?.close();
  });

  it.each(FRAMEWORKS)("$name answers 503 with Retry-After while the server is paused, and recovers", async (framework) => {
    const app = await framework.start({ store: backend.openStore(), secret: SECRET, storeTimeout: 0.5, retryAfter: 3 }, {});
    running.push(app);
    const cookie = cookieHeader(sessionCookie(await request(app.url, "/login?user=77", { method: "POST" })));
    await backend.server.pause();
    try {
      const response = await request(app.url, "/me", { cookie });
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("3");
    } finally {
      await backend.server.resume();
    }
    expect((await request(app.url, "/me", { cookie })).json()).toMatchObject({ userId: 77 });
  });
});
