/**
 * `session.regenerate()` (issue #16 items 4 and 5, #15 and #17): it starts EMPTY, keeping data is
 * explicit (`regenerate(keys)`, `regenerate({ keep })`), every other argument is a synchronous
 * TypeError, and it never restarts the absolute deadline unless `renewDeadline: true`. In compat mode a
 * session that express-session made gets a deadline the first time we see it, and keeps it.
 */
import { randomBytes } from "node:crypto";
import signature from "cookie-signature";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createSessionManager, decodeRecord, type Session, type SessionOptions } from "../../src/index.js";
import { CountingStore, SECRET, cookiePair } from "../helpers/manager-support.js";

type Data = { userId?: number; returnTo?: string; oauthLink?: string; cart?: string[]; flash?: string };

const SECOND = 1000;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(new Date("2026-01-01T00:00:00Z"));
});
afterEach(() => {
  vi.useRealTimers();
});

function setup(options: Partial<SessionOptions<Data>> = {}) {
  const store = new CountingStore();
  const manager = createSessionManager<Data>({ store, secret: SECRET, idleTimeout: 3600, absoluteTimeout: 600, ...options });
  async function request(cookie: string | undefined, handler: (s: Session<Data>) => unknown = () => {}) {
    const session = await manager.load(cookie, { secure: false });
    await handler(session);
    const { setCookie } = await manager.commit(session);
    return { session, cookie: setCookie === undefined || /Max-Age=0/.test(setCookie) ? cookie : cookiePair(setCookie) };
  }
  /** The stored metadata of the session `cookie` names, as the store holds it. */
  async function metaOf(id: string) {
    const raw = await store.inner.get(manager.storeKeyOf(id));
    return raw === null ? null : decodeRecord(raw)!.meta;
  }
  return { store, manager, request, metaOf };
}

describe("regenerate() starts empty (item 5)", () => {
  it("data planted before a login does not survive it", async () => {
    const { request } = setup();
    // The attacker's session, planted in the victim's browser, carries a redirect and an OAuth link.
    const planted = await request(undefined, (s) => {
      s.returnTo = "https://evil.example";
      s.oauthLink = "attacker-account";
    });
    const login = await request(planted.cookie, async (s) => {
      await s.regenerate();
      expect({ ...s }).toEqual({});
      s.userId = 1;
    });
    const after = await request(login.cookie);
    expect({ ...after.session }).toEqual({ userId: 1 });
  });

  it("regenerate(keys, cb) carries the listed keys over and calls back (the @fastify/session ignoreFields form)", async () => {
    const { request } = setup();
    const first = await request(undefined, (s) => {
      s.cart = ["pear"];
      s.returnTo = "/checkout";
      s.flash = "hello";
    });
    let called = 0;
    const second = await request(first.cookie, async (s) => {
      await new Promise<void>((resolve, reject) =>
        s.regenerate(["cart", "flash"], (err) => {
          called++;
          if (err) reject(err as Error);
          else resolve();
        }),
      );
      s.userId = 2;
    });
    expect(called).toBe(1);
    expect(second.session.id).not.toBe(first.session.id);
    expect({ ...(await request(second.cookie)).session }).toEqual({ cart: ["pear"], flash: "hello", userId: 2 });
  });

  it("regenerate({ keep }) carries the listed keys over; the promise and callback forms still work", async () => {
    const { request } = setup();
    const first = await request(undefined, (s) => {
      s.cart = ["fig"];
      s.returnTo = "/x";
    });
    const second = await request(first.cookie, (s) => s.regenerate({ keep: ["cart"] }));
    expect({ ...(await request(second.cookie)).session }).toEqual({ cart: ["fig"] });
    let err: unknown = "not called";
    const third = await request(second.cookie, (s) => new Promise<void>((resolve) => void s.regenerate((e) => ((err = e), resolve()))));
    expect(err).toBeNull(); // null on success, as the peers pass it
    expect(third.session.id).not.toBe(second.session.id);
  });

  it("any other argument is a synchronous TypeError, never a callback left uncalled", async () => {
    const { manager } = setup();
    const session = await manager.load(undefined, { secure: false });
    const cb = () => {};
    const bad: unknown[][] = [["message"], [null], [42], [{ keep: "cart" }], [{ keep: [1] }], [{ kepp: ["cart"] }], [{ renewDeadline: "yes" }], [cb, cb], [["cart"], "not a function"], [{}, 1]];
    for (const args of bad) {
      expect(() => (session.regenerate as (...a: unknown[]) => unknown)(...args), JSON.stringify(args)).toThrow(TypeError);
    }
  });
});

describe("regenerate() never restarts the absolute deadline (item 4)", () => {
  it("the new id inherits the old deadline; a route that regenerates on every request cannot keep a session past it", async () => {
    const { request, metaOf } = setup();
    let browser = await request(undefined, (s) => void (s.userId = 1));
    const original = (await metaOf(browser.session.id))!;
    expect(original.expiresAt).toBe(Date.now() + 600 * SECOND);
    for (let i = 0; i < 5; i++) {
      vi.setSystemTime(Date.now() + 100 * SECOND);
      browser = await request(browser.cookie, async (s) => {
        expect(s.isNew).toBe(false);
        await s.regenerate(["userId"]);
      });
      const meta = (await metaOf(browser.session.id))!;
      expect(meta.createdAt).toBe(original.createdAt);
      expect(meta.expiresAt).toBe(original.expiresAt);
    }
    vi.setSystemTime(original.expiresAt + SECOND);
    const late = await request(browser.cookie);
    expect(late.session.isNew).toBe(true);
    expect(late.session.userId).toBeUndefined();
  });

  it("renewDeadline: true (a login that checked credentials) starts a fresh one", async () => {
    const { request, metaOf } = setup();
    const before = await request(undefined, (s) => void (s.flash = "x"));
    vi.setSystemTime(Date.now() + 300 * SECOND);
    const login = await request(before.cookie, async (s) => {
      await s.regenerate({ renewDeadline: true });
      s.userId = 3;
    });
    const meta = (await metaOf(login.session.id))!;
    expect(meta.createdAt).toBe(Date.now());
    expect(meta.expiresAt).toBe(Date.now() + 600 * SECOND);
  });
});

describe("compat: a session express-session created gets a deadline, once (item 4)", () => {
  const legacyId = () => randomBytes(24).toString("base64url");
  const legacyCookie = (id: string) => `connect.sid=${encodeURIComponent(`s:${signature.sign(id, SECRET)}`)}`;

  for (const compat of ["express-session", "express-session-read"] as const) {
    it(`${compat}: the first request stores the deadline; later ones keep it; past it the session is gone`, async () => {
      const { store, manager } = setup({ compat });
      const id = legacyId();
      // As connect-redis stores it: no metadata of ours, a browser-session cookie (no expires).
      await store.inner.create(id, JSON.stringify({ cookie: { originalMaxAge: null, expires: null, httpOnly: true, path: "/" }, userId: 9 }), 3600);
      const load = async () => {
        const session = await manager.load(legacyCookie(id), { secure: false });
        await manager.commit(session);
        return session;
      };
      expect((await load()).userId).toBe(9);
      const storedMeta = async () => {
        // express-session-read moves the record to its hashed key on first use; express-session keeps connect-redis's key.
        const text = await store.inner.get(manager.storeKeyOf(id));
        if (text === null) return null;
        // express-session's layout carries our metadata under "sharedSession"; ours has it on line one.
        return text.startsWith("{\"v\":") ? decodeRecord(text)!.meta.expiresAt : (JSON.parse(text) as { sharedSession?: { expiresAt: number } }).sharedSession?.expiresAt;
      };
      const deadline = await storedMeta();
      expect(deadline).toBe(Date.now() + 600 * SECOND);
      for (let i = 0; i < 3; i++) {
        vi.setSystemTime(Date.now() + 150 * SECOND);
        expect((await load()).userId).toBe(9);
        expect(await storedMeta()).toBe(deadline);
      }
      vi.setSystemTime(deadline! + SECOND);
      expect((await load()).isNew).toBe(true);
    });
  }

  it("a persistent express-session cookie dates the deadline from the record's last save (expires - originalMaxAge)", async () => {
    const { store, manager } = setup({ compat: "express-session" });
    const id = legacyId();
    const savedAt = Date.now() - 500 * SECOND;
    const cookie = { originalMaxAge: 3_600_000, expires: new Date(savedAt + 3_600_000).toISOString(), httpOnly: true, path: "/" };
    await store.inner.create(id, JSON.stringify({ cookie, userId: 4 }), 3600);
    const session = await manager.load(legacyCookie(id), { secure: false });
    await manager.commit(session);
    expect((JSON.parse((await store.inner.get(id))!) as { sharedSession: { expiresAt: number } }).sharedSession.expiresAt).toBe(savedAt + 600 * SECOND);
  });
});

describe("through Fastify: the @fastify/session call that used to hang", () => {
  it("request.session.regenerate(['message'], cb) calls back and keeps only message", async () => {
    vi.useRealTimers();
    const { default: Fastify } = await import("fastify");
    const { fastifySession } = await import("../../src/frameworks/fastify.js");
    const { MemoryStore } = await import("../../src/testing/index.js");
    const app = Fastify();
    await app.register(fastifySession, { store: new MemoryStore({ quiet: true }), secret: SECRET });
    app.post("/plant", async (request) => {
      const s = request.session as unknown as Record<string, unknown>;
      s.message = "hello";
      s.returnTo = "https://evil.example";
      return { ok: true };
    });
    app.post("/login", (request, reply) => {
      request.session.regenerate(["message"], (err) => {
        if (err) return reply.send(err);
        (request.session as unknown as Record<string, unknown>).userId = 1;
        return reply.send({ keys: Object.keys(request.session) });
      });
    });
    try {
      const planted = await app.inject({ method: "POST", url: "/plant" });
      const cookie = cookiePair(planted.headers["set-cookie"] as string);
      const login = await app.inject({ method: "POST", url: "/login", headers: { cookie } });
      expect(login.statusCode).toBe(200);
      expect(login.json()).toEqual({ keys: ["message", "userId"] });
    } finally {
      await app.close();
    }
  });
});
