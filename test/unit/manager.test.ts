import signature from "cookie-signature";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  createSessionManager,
  decodeRecord,
  hashId,
  SessionConfigError,
  SessionError,
  SessionTooLargeError,
  StoreUnavailableError,
  type SessionLogEntry,
  type SessionOptions,
  type SessionStore,
} from "../../src/index.js";
import { CountingStore, OLD_SECRET, SECRET, VersionedCountingStore, cookiePair, storeKey } from "../helpers/manager-support.js";

type Data = { userId?: number; cart?: string[]; prefs?: { theme: string; tags: string[] }; a?: number; b?: number; big?: string };

const HOUR = 3600 * 1000;

function setup(options: Partial<SessionOptions<Data>> = {}, store = new CountingStore()) {
  const logs: SessionLogEntry[] = [];
  const manager = createSessionManager<Data>({ store, secret: SECRET, logger: (e) => logs.push(e), ...options });
  /** One request: load with `cookie`, run `handler`, commit. */
  async function request(cookie: string | undefined, handler: (s: Awaited<ReturnType<typeof manager.load>>) => unknown = () => {}, secure = false) {
    const session = await manager.load(cookie, { secure });
    await handler(session);
    const result = await manager.commit(session);
    return { session, setCookie: result.setCookie };
  }
  async function login(userId = 7): Promise<{ cookie: string; id: string }> {
    const { session, setCookie } = await request(undefined, (s) => {
      s.userId = userId;
    });
    return { cookie: cookiePair(setCookie), id: session.id };
  }
  return { store, manager, logs, request, login };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(new Date("2026-01-01T00:00:00Z"));
});
afterEach(() => {
  vi.useRealTimers();
});

describe("loadNow and commitNow: no promise where no store call is needed", () => {
  it("loadNow returns the session itself for no cookie and for a rejected one, a promise for a signed one", async () => {
    const { manager, store, login } = setup();
    const { cookie } = await login();
    store.calls.length = 0;
    const anonymous = manager.loadNow(undefined, { secure: false });
    expect(anonymous).not.toBeInstanceOf(Promise);
    expect(manager.loadNow(`sid=${"x".repeat(40)}`, { secure: false })).not.toBeInstanceOf(Promise);
    expect(store.count()).toBe(0);
    const pending = manager.loadNow(cookie, { secure: false });
    expect(pending).toBeInstanceOf(Promise);
    expect((await pending).userId).toBe(7);
    expect(store.count("get")).toBe(1);
  });

  it("commitNow returns the result itself when nothing is written, a promise when the store is written", async () => {
    const { manager, store, login } = setup();
    const { cookie } = await login();
    const session = await manager.load(cookie, { secure: false });
    store.calls.length = 0;
    expect(manager.commitNow(session)).toEqual({ setCookie: undefined });
    session.userId = 8;
    const pending = manager.commitNow(session);
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(store.count()).toBe(1);
    expect((await manager.load(cookie, { secure: false })).userId).toBe(8);
  });

  it("commitNow rejects, never throws, for an object that is not a session", async () => {
    const { manager } = setup();
    const result = manager.commitNow({} as never);
    expect(result).toBeInstanceOf(Promise);
    await expect(result).rejects.toThrow(/not a session/);
  });
});

describe("configuration is checked at construction", () => {
  const store = new CountingStore();
  const cases: [string, Partial<SessionOptions<Data>>, RegExp][] = [
    ["a short secret", { secret: "too-short" }, /at least 32 characters/],
    ["an empty secret", { secret: "" }, /non-empty string|at least 32/],
    ["an empty secret list", { secret: [] }, /secret is required/],
    ["a short first secret in a list", { secret: ["short", SECRET] }, /at least 32 characters/],
    ["a non-integer idleTimeout", { idleTimeout: 1.5 }, /idleTimeout/],
    ["a zero absoluteTimeout", { absoluteTimeout: 0 }, /absoluteTimeout/],
    ["a negative touchAfter", { touchAfter: -1 }, /touchAfter/],
    ["a tiny maxSize", { maxSize: 10 }, /maxSize/],
    ["a zero storeTimeout", { storeTimeout: 0 }, /storeTimeout/],
    ["an unknown onStoreError", { onStoreError: "ignore" as "fail" }, /onStoreError/],
    ["an invalid cookie name", { name: "my sid" }, /cookie name/],
    ["a __Host- cookie with a domain", { name: "__Host-sid", cookie: { domain: "example.com" } }, /must not have a domain/],
    ["a __Host- cookie with a path", { name: "__Host-sid", cookie: { path: "/app" } }, /path "\/"/],
    ["a __Secure- cookie that is not secure", { name: "__Secure-sid", cookie: { secure: false } }, /needs Secure/],
    ["SameSite=None without Secure", { cookie: { sameSite: "none", secure: false } }, /needs Secure/],
    ["a bad sameSite", { cookie: { sameSite: "loose" as "lax" } }, /sameSite/],
    ["a fractional maxAge", { cookie: { maxAge: 1.5 } }, /maxAge/],
    ["genid without validateId", { genid: () => "abc" }, /validateId/],
    ["genid whose ids validateId refuses", { genid: () => "abc", validateId: (id) => id.length > 5 }, /validateId refuses/],
    ["genid making cookie-unsafe ids", { genid: () => "a b;c", validateId: () => true }, /cookie-safe/],
    ["a serializer without parse", { serializer: { stringify: JSON.stringify } as never }, /serializer/],
  ];
  for (const [label, options, message] of cases) {
    it(`refuses ${label}`, () => {
      expect(() => createSessionManager<Data>({ store, secret: SECRET, ...options })).toThrow(SessionConfigError);
      expect(() => createSessionManager<Data>({ store, secret: SECRET, ...options })).toThrow(message);
    });
  }
  it("refuses a store that does not implement the contract", () => {
    expect(() => createSessionManager({ store: {} as SessionStore, secret: SECRET })).toThrow(/SessionStore/);
    const liar = { ...new CountingStore(), capabilities: { refreshOnGet: true, list: false, compareAndSet: true, ownerIndex: false } };
    expect(() =>
      createSessionManager({ store: Object.assign(Object.create(CountingStore.prototype), liar, { compareAndSet: undefined }) as SessionStore, secret: SECRET }),
    ).toThrow(/declares compareAndSet/);
  });
  it("accepts a valid custom genid with its validator", () => {
    let n = 0;
    const manager = createSessionManager({ store, secret: SECRET, genid: () => `custom-${++n}-xyz`, validateId: (id) => /^custom-\d+-xyz$/.test(id) });
    expect(manager.cookieName).toBe("sid");
  });
});

describe("lazy sessions", () => {
  it("a request without a cookie that never uses the session touches no store and sends no cookie", async () => {
    const { store, request } = setup();
    const { setCookie } = await request(undefined);
    expect(store.count()).toBe(0);
    expect(setCookie).toBeUndefined();
  });
  it("reading a new session's id or data writes nothing", async () => {
    const { store, request } = setup();
    const { setCookie } = await request(undefined, (s) => {
      expect(typeof s.id).toBe("string");
      expect(s.userId).toBeUndefined();
      expect(s.isNew).toBe(true);
    });
    expect(store.count()).toBe(0);
    expect(setCookie).toBeUndefined();
  });
  it("setting data creates the session with one store write and one cookie", async () => {
    const { store, request } = setup();
    const { session, setCookie } = await request(undefined, (s) => {
      s.userId = 1;
    });
    expect(store.calls).toEqual([{ op: "create", id: storeKey(session.id) }]);
    expect(setCookie).toBe(`sid=${signature.sign(session.id, SECRET)}; Path=/; HttpOnly; SameSite=Lax`);
  });
  it("setting and removing data in the same request writes nothing", async () => {
    const { store, request } = setup();
    const { setCookie } = await request(undefined, (s) => {
      s.userId = 1;
      delete s.userId;
    });
    expect(store.count()).toBe(0);
    expect(setCookie).toBeUndefined();
  });
});

describe("cookie attributes", () => {
  it("adds Secure when the request is HTTPS and cookie.secure is auto", async () => {
    const { request } = setup();
    const { setCookie } = await request(undefined, (s) => void (s.userId = 1), true);
    expect(setCookie).toMatch(/; Secure$/);
  });
  it("never adds Secure over HTTP by default, always with secure: true", async () => {
    const { setCookie: http } = await setup().request(undefined, (s) => void (s.userId = 1), false);
    expect(http).not.toMatch(/Secure/);
    const { setCookie: forced } = await setup({ cookie: { secure: true } }).request(undefined, (s) => void (s.userId = 1), false);
    expect(forced).toMatch(/; Secure/);
  });
  it("writes every configured attribute, and Max-Age only when maxAge is set", async () => {
    const { setCookie } = await setup({
      name: "__Host-app",
      cookie: { sameSite: "strict", maxAge: 3600, partitioned: true, priority: "high", httpOnly: true },
    }).request(undefined, (s) => void (s.userId = 1));
    expect(setCookie).toMatch(/^__Host-app=[^;]+; Path=\/; Max-Age=3600; HttpOnly; SameSite=Strict; Partitioned; Priority=High; Secure$/);
    const { setCookie: plain } = await setup({ cookie: { domain: "example.com", path: "/app", httpOnly: false } }).request(undefined, (s) => void (s.userId = 1));
    expect(plain).toMatch(/; Path=\/app; Domain=example.com; SameSite=Lax$/);
    expect(plain).not.toMatch(/Max-Age|HttpOnly/);
  });
  it("re-sends a persistent cookie at most once per touchAfter", async () => {
    const { login, request } = setup({ cookie: { maxAge: 86400 }, touchAfter: 60 });
    const { cookie } = await login();
    expect((await request(cookie)).setCookie).toBeUndefined();
    vi.advanceTimersByTime(61_000);
    expect((await request(cookie)).setCookie).toMatch(/Max-Age=86400/);
  });
});

describe("change detection", () => {
  it("an unchanged session is read once and never rewritten", async () => {
    const { store, login, request } = setup();
    const { cookie } = await login();
    store.reset();
    const { session, setCookie } = await request(cookie, (s) => {
      expect(s.userId).toBe(7);
    });
    expect(store.calls).toEqual([{ op: "get", id: storeKey(session.id) }]);
    expect(setCookie).toBeUndefined();
  });
  it("a changed session is written exactly once, nested changes included", async () => {
    const { store, request } = setup();
    const { setCookie } = await request(undefined, (s) => {
      s.prefs = { theme: "dark", tags: [] };
    });
    const cookie = cookiePair(setCookie);
    store.reset();
    await request(cookie, (s) => {
      s.prefs!.tags.push("x");
    });
    expect(store.writes()).toBe(1);
    const { session } = await request(cookie);
    expect(session.prefs).toEqual({ theme: "dark", tags: ["x"] });
  });
  it("assigning an equal value is not a change", async () => {
    const { store, login, request } = setup();
    const { cookie } = await login(7);
    store.reset();
    await request(cookie, (s) => void (s.userId = 7));
    expect(store.writes()).toBe(0);
  });
});

describe("idle and absolute expiry", () => {
  it("activity extends the idle timeout; inactivity past it ends the session", async () => {
    const { store, login, request } = setup({ idleTimeout: 3600, absoluteTimeout: 7 * 86400 });
    const { cookie, id } = await login();
    expect(store.inner.ttlOf(storeKey(id))).toBe(3600);
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(50 * 60 * 1000);
      const { session } = await request(cookie);
      expect(session.userId).toBe(7);
      expect(store.inner.ttlOf(storeKey(id))).toBe(3600);
    }
    vi.advanceTimersByTime(3601 * 1000);
    const { session, setCookie } = await request(cookie);
    expect(session.isNew).toBe(true);
    expect(session.userId).toBeUndefined();
    expect(setCookie).toMatch(/Max-Age=0/);
  });
  it("nothing extends the absolute timeout, and the store TTL never reaches past it", async () => {
    const { store, login, request } = setup({ idleTimeout: 86400, absoluteTimeout: 3 * 86400 });
    const { cookie, id } = await login();
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(12 * HOUR);
      await request(cookie);
    }
    // 12 hours left: the read-refresh would have set 24 h; the core caps it.
    expect(store.inner.ttlOf(storeKey(id))).toBe(12 * 3600);
    vi.advanceTimersByTime(12 * HOUR - 1000);
    expect((await request(cookie)).session.userId).toBe(7);
    expect(store.inner.ttlOf(storeKey(id))).toBeLessThanOrEqual(1);
    vi.advanceTimersByTime(1000);
    const { session } = await request(cookie);
    expect(session.isNew).toBe(true);
    expect(session.id).not.toBe(id);
  });
  it("a record past its absolute deadline whose TTL has not fired is refused and deleted", async () => {
    const { store, login, request, logs } = setup({ absoluteTimeout: 3600 });
    const { cookie, id } = await login();
    const raw = (await store.inner.get(storeKey(id)))!;
    const past = raw.replace(/"expiresAt":\d+/, `"expiresAt":${Date.now() - 1}`);
    await store.inner.update(storeKey(id), past, 3600);
    const { session, setCookie } = await request(cookie);
    expect(session.isNew).toBe(true);
    expect(session.userId).toBeUndefined();
    expect(await store.inner.get(storeKey(id))).toBeNull();
    expect(setCookie).toMatch(/Max-Age=0/);
    expect(logs.some((l) => l.event === "session.expired" && l.session === hashId(storeKey(id)))).toBe(true);
  });
  it("on a store that cannot refresh while reading, the record is rewritten once per touchAfter", async () => {
    const store = new CountingStore({ refreshOnGet: false, compareAndSet: false });
    const { login, request } = setup({ touchAfter: 300, idleTimeout: 3600 }, store);
    const { cookie, id } = await login();
    store.reset();
    vi.advanceTimersByTime(200_000);
    await request(cookie);
    expect(store.writes()).toBe(0);
    expect(store.inner.ttlOf(storeKey(id))).toBe(3600 - 200);
    vi.advanceTimersByTime(200_000);
    await request(cookie);
    expect(store.calls.map((c) => c.op)).toEqual(["get", "get", "update"]);
    expect(store.inner.ttlOf(storeKey(id))).toBe(3600);
    await request(cookie);
    expect(store.writes()).toBe(1);
  });
});

describe("signed cookies", () => {
  async function rejected(value: string | ((cookie: string) => string)) {
    const env = setup();
    const { cookie, id } = await env.login();
    env.store.reset();
    const header = typeof value === "function" ? value(cookie) : value;
    const { session, setCookie } = await env.request(header);
    return { env, id, session, setCookie };
  }
  const tampered: [string, (cookie: string) => string][] = [
    ["a wrong signature", (c) => c.slice(0, -3) + (c.endsWith("AAA") ? "BBB" : "AAA")],
    ["a truncated signature", (c) => c.slice(0, -5)],
    ["extra content after the signature", (c) => `${c}xyz`],
    ["an unsigned id", (c) => c.slice(0, c.lastIndexOf("."))],
    ["an empty value", () => "sid="],
    ["a signature that is not base64", (c) => c.slice(0, c.lastIndexOf(".") + 1) + "!".repeat(43)],
    ["a signature of the wrong length", (c) => `${c}AAAA`],
    ["the id of another session with this one's signature", (c) => c.replace(/sid=[0-9a-f]/, (m) => (m.endsWith("0") ? "sid=1" : "sid=0"))],
  ];
  for (const [label, mutate] of tampered) {
    it(`treats ${label} as no session, without a store lookup`, async () => {
      const { env, id, session, setCookie } = await rejected(mutate);
      expect(env.store.count()).toBe(0);
      expect(session.isNew).toBe(true);
      expect(session.id).not.toBe(id);
      expect(setCookie).toMatch(/^sid=; .*Max-Age=0/);
      expect(env.logs.some((l) => l.event === "cookie.rejected")).toBe(true);
    });
  }
  it("refuses a validly signed id of the wrong format before the store", async () => {
    const { store, request } = setup();
    const { session } = await request(`sid=${signature.sign("../../etc/passwd*", SECRET)}`);
    expect(store.count()).toBe(0);
    expect(session.isNew).toBe(true);
  });
  it("picks the validly signed value when the header carries duplicates", async () => {
    const { login, request } = setup();
    const { cookie, id } = await login();
    const { session } = await request(`sid=garbage; other=1; ${cookie}; sid=more`);
    expect(session.id).toBe(id);
    expect(session.userId).toBe(7);
  });
  it("accepts a quoted cookie value", async () => {
    const { login, request } = setup();
    const { cookie, id } = await login();
    const { session } = await request(`sid="${cookie.slice(4)}"`);
    expect(session.id).toBe(id);
  });
});

describe("secret rotation", () => {
  it("accepts a cookie signed with an older secret and re-signs it with the first", async () => {
    const old = setup({ secret: OLD_SECRET });
    const { cookie, id } = await old.login();
    const rotated = setup({ secret: [SECRET, OLD_SECRET] }, old.store);
    const { session, setCookie } = await rotated.request(cookie);
    expect(session.id).toBe(id);
    expect(session.userId).toBe(7);
    expect(cookiePair(setCookie)).toBe(`sid=${signature.sign(id, SECRET)}`);
    const { setCookie: again } = await rotated.request(cookiePair(setCookie));
    expect(again).toBeUndefined();
  });
  it("refuses a cookie signed with a secret that was rotated out", async () => {
    const old = setup({ secret: OLD_SECRET });
    const { cookie } = await old.login();
    const current = setup({ secret: SECRET }, old.store);
    old.store.reset();
    const { session } = await current.request(cookie);
    expect(session.isNew).toBe(true);
    expect(old.store.count()).toBe(0);
  });
});

describe("strict mode", () => {
  it("never adopts a validly signed id the store does not know", async () => {
    const { store, request } = setup();
    const planted = "0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b";
    const { session, setCookie } = await request(`sid=${signature.sign(planted, SECRET)}`, (s) => void (s.userId = 1));
    expect(session.id).not.toBe(planted);
    expect(cookiePair(setCookie)).toBe(`sid=${signature.sign(session.id, SECRET)}`);
    expect(await store.inner.get(storeKey(planted))).toBeNull();
    expect(store.calls.map((c) => c.op)).toEqual(["get", "create"]);
  });
  it("clears the cookie of an unknown id when nothing is written", async () => {
    const { request } = setup();
    const { setCookie } = await request(`sid=${signature.sign("0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b", SECRET)}`);
    expect(setCookie).toBe("sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; SameSite=Lax");
  });
});

describe("regenerate, destroy, save, reload, touch", () => {
  it("regenerate destroys the old record at once and starts a new id with empty data", async () => {
    const { store, login, request } = setup();
    const { cookie, id } = await login();
    const { session, setCookie } = await request(cookie, async (s) => {
      s.cart = ["apple"];
      await s.regenerate();
      expect(await store.inner.get(storeKey(id))).toBeNull();
      expect(s.id).not.toBe(id);
      expect(s.isNew).toBe(true);
      s.userId = 8;
    });
    expect(cookiePair(setCookie)).toBe(`sid=${signature.sign(session.id, SECRET)}`);
    const next = await request(cookiePair(setCookie));
    expect(next.session.userId).toBe(8);
    expect(next.session.cart).toBeUndefined(); // regenerate() starts empty, as express-session and Passport expect
    expect(Object.keys(next.session)).toEqual(["userId"]);
    const old = await request(cookie);
    expect(old.session.isNew).toBe(true);
    expect(old.session.userId).toBeUndefined();
  });
  it("regenerate on an anonymous session stores the new session even when empty", async () => {
    const { store, request } = setup();
    const { session, setCookie } = await request(undefined, (s) => s.regenerate());
    expect(setCookie).toBeDefined();
    expect(await store.inner.get(storeKey(session.id))).not.toBeNull();
  });
  it("destroy deletes the record, empties the data and expires the cookie", async () => {
    const { store, login, request } = setup();
    const { cookie, id } = await login();
    const { session, setCookie } = await request(cookie, async (s) => {
      await s.destroy();
      expect(s.userId).toBeUndefined();
      expect(Object.keys(s)).toEqual([]);
    });
    expect(await store.inner.get(storeKey(id))).toBeNull();
    expect(session.id).not.toBe(id);
    expect(setCookie).toMatch(/^sid=; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0/);
    expect((await request(cookie)).session.userId).toBeUndefined();
  });
  it("data set after destroy starts a new session under a new id", async () => {
    const { login, request } = setup();
    const { cookie, id } = await login();
    const { session, setCookie } = await request(cookie, async (s) => {
      await s.destroy();
      s.userId = 99;
    });
    expect(session.id).not.toBe(id);
    expect(cookiePair(setCookie)).toBe(`sid=${signature.sign(session.id, SECRET)}`);
  });
  it("save writes at once, and commit does not write the same data again", async () => {
    const { store, request } = setup();
    await request(undefined, async (s) => {
      s.userId = 3;
      await s.save();
      expect(store.writes()).toBe(1);
      expect(decodeRecord((await store.inner.get(storeKey(s.id)))!)!.dataText).toBe('{"userId":3}');
    });
    expect(store.writes()).toBe(1);
  });
  it("save persists a new empty session", async () => {
    const { store, request } = setup();
    const { session, setCookie } = await request(undefined, (s) => s.save());
    expect(await store.inner.get(storeKey(session.id))).not.toBeNull();
    expect(setCookie).toBeDefined();
  });
  it("reload replaces the data with what the store holds now", async () => {
    const { login, request } = setup();
    const { cookie } = await login(1);
    await request(cookie, async (s) => {
      await request(cookie, (other) => void (other.userId = 2));
      expect(s.userId).toBe(1);
      await s.reload();
      expect(s.userId).toBe(2);
    });
  });
  it("reload of a session destroyed meanwhile rejects with ERR_SESSION_GONE and leaves the request without it", async () => {
    const { store, login, request } = setup();
    const { cookie, id } = await login(1);
    const { setCookie } = await request(cookie, async (s) => {
      await store.inner.destroy(storeKey(id));
      await expect(s.reload()).rejects.toMatchObject({ code: "ERR_SESSION_GONE" });
      expect(s.userId).toBeUndefined();
    });
    expect(setCookie).toMatch(/Max-Age=0/);
    expect(await store.inner.get(storeKey(id))).toBeNull();
  });
  it("touch resets the idle TTL now", async () => {
    const store = new CountingStore({ refreshOnGet: false });
    const { login, request } = setup({ idleTimeout: 1000, touchAfter: 900 }, store);
    const { cookie, id } = await login();
    vi.advanceTimersByTime(500_000);
    await request(cookie, (s) => s.touch());
    expect(store.inner.ttlOf(storeKey(id))).toBe(1000);
  });
  it("every method also takes a node-style callback", async () => {
    const { login, request } = setup();
    const { cookie } = await login();
    await request(cookie, async (s) => {
      const err = await new Promise((resolve) => s.regenerate(resolve));
      expect(err).toBeNull(); // null on success, as the peers pass it
      const saved = await new Promise((resolve) => s.save((e) => resolve(e ?? "ok")));
      expect(saved).toBe("ok");
    });
  });
});

describe("session data is safe", () => {
  async function loadRecord(dataText: string) {
    const env = setup();
    const { cookie, id } = await env.login();
    const raw = (await env.store.inner.get(storeKey(id)))!;
    await env.store.inner.update(storeKey(id), `${raw.slice(0, raw.indexOf("\n"))}\n${dataText}`, 3600);
    const { session } = await env.request(cookie);
    return { env, id, session };
  }
  it("drops __proto__, constructor and prototype keys at every depth", async () => {
    const { session } = await loadRecord(
      '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"prefs":{"__proto__":{"x":1},"theme":"dark","tags":[]}}',
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(session)).toEqual(["prefs"]);
    expect(Object.getPrototypeOf(session.prefs)).toBe(Object.prototype);
    expect(session.prefs).toEqual({ theme: "dark", tags: [] });
  });
  it("stored data can never shadow the id or a method", async () => {
    const { session, id } = await loadRecord('{"id":"evil","save":"x","regenerate":1,"isNew":true,"get":0,"userId":2}');
    expect(session.id).toBe(id);
    expect(typeof session.save).toBe("function");
    expect(typeof session.regenerate).toBe("function");
    expect(session.isNew).toBe(false);
    expect(session.userId).toBe(2);
  });
  it("the app cannot overwrite the id or a method either", async () => {
    const { request } = setup();
    await request(undefined, (s) => {
      expect(() => ((s as unknown as Record<string, unknown>).id = "x")).toThrow(TypeError);
      expect(() => ((s as unknown as Record<string, unknown>).save = 1)).toThrow(TypeError);
      expect(() => s.set("destroy" as "userId", 1)).toThrow(/reserved/);
      s.set("userId", 5);
      expect(s.get("userId")).toBe(5);
      s.set("userId", undefined);
      expect("userId" in s).toBe(false);
    });
  });
  it("setting __proto__ on a session is refused with a TypeError, never changing prototypes", async () => {
    const { request } = setup();
    const { setCookie } = await request(undefined, (s) => {
      expect(() => ((s as unknown as Record<string, unknown>)["__proto__"] = { polluted: true })).toThrow(TypeError);
      expect(() => Object.assign(s, JSON.parse('{"__proto__":{"polluted":true}}') as object)).toThrow(TypeError);
      expect((s as unknown as Record<string, unknown>).polluted).toBeUndefined();
      s.userId = 1;
    });
    const { session } = await request(cookiePair(setCookie));
    expect(Object.keys(session)).toEqual(["userId"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  const corrupt: [string, (raw: string) => string][] = [
    ["an empty record", () => ""],
    ["a record without a data line", (raw) => raw.slice(0, raw.indexOf("\n"))],
    ["truncated metadata", (raw) => raw.slice(0, 20)],
    ["truncated data", (raw) => raw.slice(0, -3)],
    ["an unknown version", (raw) => raw.replace('"v":1', '"v":2')],
    ["metadata that is an array", (raw) => `[1,2,3]\n${raw.slice(raw.indexOf("\n") + 1)}`],
    ["a null date", (raw) => raw.replace(/"createdAt":\d+/, '"createdAt":null')],
    ["a string date", (raw) => raw.replace(/"expiresAt":\d+/, '"expiresAt":"tomorrow"')],
    ["a missing field", (raw) => raw.replace(/,"writtenAt":\d+/, "")],
    ["data that is an array", (raw) => `${raw.slice(0, raw.indexOf("\n"))}\n[1,2]`],
    ["data that is a number", (raw) => `${raw.slice(0, raw.indexOf("\n"))}\n42`],
    ["data that is null", (raw) => `${raw.slice(0, raw.indexOf("\n"))}\nnull`],
    ["binary garbage", () => "\u0000\u0001\uffff\n\u0000"],
  ];
  for (const [label, corruptIt] of corrupt) {
    it(`treats ${label} as a missing session and logs it with a hashed id`, async () => {
      const env = setup();
      const { cookie, id } = await env.login();
      const raw = (await env.store.inner.get(storeKey(id)))!;
      await env.store.inner.update(storeKey(id), corruptIt(raw), 3600);
      const { session } = await env.request(cookie);
      expect(session.isNew).toBe(true);
      expect(session.id).not.toBe(id);
      const entry = env.logs.find((l) => l.event === "record.corrupt");
      expect(entry?.level).toBe("warn");
      expect(entry?.session).toBe(hashId(storeKey(id)));
    });
  }
});

describe("size limit", () => {
  it("refuses a record over maxSize with SessionTooLargeError and writes nothing", async () => {
    const { store, login, request } = setup({ maxSize: 4096 });
    const { cookie, id } = await login();
    const before = await store.inner.get(storeKey(id));
    store.reset();
    const error = await request(cookie, (s) => void (s.big = "é".repeat(3000))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionTooLargeError);
    expect((error as SessionTooLargeError).size).toBeGreaterThan(6000);
    expect((error as SessionTooLargeError).limit).toBe(4096);
    expect(store.writes()).toBe(0);
    expect(await store.inner.get(storeKey(id))).toBe(before);
  });
  it("refuses an oversize new session before it reaches the store", async () => {
    const { store, request } = setup();
    await expect(request(undefined, (s) => void (s.big = "x".repeat(3 * 1024 * 1024)))).rejects.toThrow(SessionTooLargeError);
    expect(store.count()).toBe(0);
  });
});

describe("store failures", () => {
  class FailingStore extends CountingStore {
    mode: "ok" | "throw" | "hang" = "ok";
    override get(id: string, ttl?: number) {
      if (this.mode === "throw") return Promise.reject(new Error("connection refused"));
      if (this.mode === "hang") return new Promise<string | null>(() => {});
      return super.get(id, ttl);
    }
    override update(id: string, record: string, ttl: number) {
      if (this.mode === "throw") return Promise.reject(new Error("connection reset"));
      return super.update(id, record, ttl);
    }
    override create(id: string, record: string, ttl: number) {
      if (this.mode === "throw") return Promise.reject(new Error("connection reset"));
      if (this.mode === "hang") return new Promise<boolean>(() => {});
      return super.create(id, record, ttl);
    }
  }
  it("a failing store becomes StoreUnavailableError with status 503, Retry-After and the cause", async () => {
    const store = new FailingStore({ compareAndSet: false });
    const { login, manager } = setup({ retryAfter: 7 }, store);
    const { cookie } = await login();
    store.mode = "throw";
    const error = (await manager.load(cookie, { secure: false }).catch((e: unknown) => e)) as StoreUnavailableError;
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error.status).toBe(503);
    expect(error.statusCode).toBe(503);
    expect(error.retryAfter).toBe(7);
    expect(error.store).toBe("CountingStore");
    expect((error.cause as Error).message).toBe("connection refused");
    // The message is generic (frameworks show it to clients); what failed is in store, operation and cause.
    expect(error.message).toBe("[shared-session] session store unavailable");
    expect(error.operation).toBe("get");
  });
  it("a store that hangs is cut off after storeTimeout", async () => {
    vi.useRealTimers();
    const store = new FailingStore();
    const { login, manager } = setup({ storeTimeout: 0.05 }, store);
    const { cookie } = await login();
    store.mode = "hang";
    const timedOut = (await manager.load(cookie, { secure: false }).catch((e: unknown) => e)) as StoreUnavailableError;
    expect(timedOut).toBeInstanceOf(StoreUnavailableError);
    expect((timedOut.cause as Error).message).toMatch(/get did not answer within 0.05s/);
    const fresh = await manager.load(undefined, { secure: false });
    fresh.userId = 1;
    await expect(manager.commit(fresh)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
  it("a store that bounds its own calls within storeTimeout gets no second timer, and its failures still map", async () => {
    vi.useRealTimers();
    class SelfBounded extends FailingStore {
      constructor(readonly timeout: number) {
        super();
      }
    }
    const timersDuringLoad = async (storeTimeout: number, store: FailingStore) => {
      const { login, manager, logs } = setup({ storeTimeout }, store);
      const { cookie } = await login();
      const spy = vi.spyOn(globalThis, "setTimeout");
      try {
        await manager.load(cookie, { secure: false });
        const armed = spy.mock.calls.length;
        store.mode = "throw";
        const error = await manager.load(cookie, { secure: false }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect(((error as StoreUnavailableError).cause as Error).message).toMatch(/connection refused/);
        expect(logs.some((entry) => entry.event === "store.error")).toBe(true);
        return armed;
      } finally {
        spy.mockRestore();
      }
    };
    expect(await timersDuringLoad(2, new SelfBounded(1))).toBe(0);
    // Not bounded tighter than storeTimeout, or not at all: the manager keeps its own timer.
    expect(await timersDuringLoad(2, new SelfBounded(3))).toBe(1);
    expect(await timersDuringLoad(2, new FailingStore())).toBe(1);
  });
  it("a failing write at commit is a StoreUnavailableError too", async () => {
    const store = new FailingStore({ compareAndSet: false });
    const { login, manager } = setup({}, store);
    const { cookie } = await login();
    const session = await manager.load(cookie, { secure: false });
    session.userId = 8;
    store.mode = "throw";
    await expect(manager.commit(session)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
  it('onStoreError "continue" serves without a session and writes nothing', async () => {
    const store = new FailingStore();
    const { login, manager } = setup({ onStoreError: "continue" }, store);
    const { cookie } = await login();
    store.mode = "throw";
    const session = await manager.load(cookie, { secure: false });
    expect(session.userId).toBeUndefined();
    session.userId = 99;
    store.mode = "ok";
    store.reset();
    expect(await manager.commit(session)).toEqual({ setCookie: undefined });
    expect(store.count()).toBe(0);
    await expect(session.regenerate()).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(session.destroy()).rejects.toBeInstanceOf(StoreUnavailableError);
  });
  it('onStoreError "continue" also swallows a failed write, sending no cookie', async () => {
    const store = new FailingStore({ compareAndSet: false });
    const { manager } = setup({ onStoreError: "continue" }, store);
    const session = await manager.load(undefined, { secure: false });
    session.userId = 1;
    store.mode = "throw";
    expect(await manager.commit(session)).toEqual({ setCookie: undefined });
  });
  it("a timed-out store call that rejects later causes no unhandled rejection", async () => {
    vi.useRealTimers();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const store = new CountingStore();
      store.get = () => new Promise((_, reject) => setTimeout(() => reject(new Error("late")), 80));
      const { manager } = setup({ storeTimeout: 0.02 }, store);
      const { cookie } = await setup({}, store).login();
      await expect(manager.load(cookie, { secure: false })).rejects.toBeInstanceOf(StoreUnavailableError);
      await new Promise((r) => setTimeout(r, 150));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});

describe("no lost updates and no resurrection (compare-and-set stores)", () => {
  it("two requests that change different keys both land", async () => {
    const { login, manager, store } = setup();
    const { cookie } = await login();
    const a = await manager.load(cookie, { secure: false });
    const b = await manager.load(cookie, { secure: false });
    a.a = 1;
    b.b = 2;
    delete b.userId;
    await manager.commit(a);
    store.reset();
    await manager.commit(b);
    expect(store.count("compareAndSet")).toBe(2);
    const { session } = await setup({}, store).request(cookie);
    expect({ ...session }).toEqual({ a: 1, b: 2 });
  });
  it("the same key changed by both: the later write wins", async () => {
    const { login, manager, request } = setup();
    const { cookie } = await login();
    const a = await manager.load(cookie, { secure: false });
    const b = await manager.load(cookie, { secure: false });
    a.a = 1;
    b.a = 2;
    await manager.commit(a);
    await manager.commit(b);
    expect((await request(cookie)).session.a).toBe(2);
  });
  it("a request that loaded a session before it was destroyed never writes it back", async () => {
    const { login, manager, store } = setup();
    const { cookie, id } = await login();
    const slow = await manager.load(cookie, { secure: false });
    const logout = await manager.load(cookie, { secure: false });
    await logout.destroy();
    await manager.commit(logout);
    slow.cart = ["late"];
    const { setCookie } = await manager.commit(slow);
    expect(await store.inner.get(storeKey(id))).toBeNull();
    expect(setCookie).toMatch(/Max-Age=0/);
  });
  it("without compare-and-set, update-if-present still refuses to resurrect", async () => {
    const store = new CountingStore({ compareAndSet: false });
    const { login, manager } = setup({}, store);
    const { cookie, id } = await login();
    const slow = await manager.load(cookie, { secure: false });
    await store.inner.destroy(storeKey(id));
    slow.cart = ["late"];
    await manager.commit(slow);
    expect(await store.inner.get(storeKey(id))).toBeNull();
  });
});

describe("versioned stores: compare-and-set with the version the read returned", () => {
  it("loads through getVersioned and hands its version to the write, so the store need not read again", async () => {
    const store = new VersionedCountingStore();
    const { login, manager } = setup({}, store);
    const { cookie, id } = await login();
    store.reset();
    const session = await manager.load(cookie, { secure: false });
    expect(store.calls.map((c) => c.op)).toEqual(["getVersioned"]);
    const loaded = await store.inner.getVersioned(storeKey(id));
    session.cart = ["a"];
    await manager.commit(session);
    expect(store.casVersions()).toEqual([loaded!.version]);
    expect(store.calls.map((c) => c.op)).toEqual(["getVersioned", "compareAndSet"]);

    // A second write in the same request carries the version the first one returned.
    const afterFirst = await store.inner.getVersioned(storeKey(id));
    session.cart = ["a", "b"];
    await session.save();
    expect(store.casVersions()).toEqual([loaded!.version, afterFirst!.version]);
    expect((await setup({}, store).request(cookie)).session.cart).toEqual(["a", "b"]);
  });

  it("a conflict retries with the version of the record it merged into", async () => {
    const store = new VersionedCountingStore();
    const { login, manager } = setup({}, store);
    const { cookie, id } = await login();
    const a = await manager.load(cookie, { secure: false });
    const b = await manager.load(cookie, { secure: false });
    const loaded = await store.inner.getVersioned(storeKey(id));
    a.a = 1;
    b.b = 2;
    await manager.commit(a);
    const afterA = await store.inner.getVersioned(storeKey(id));
    store.reset();
    await manager.commit(b);
    // First with the version both loaded (stale now: a conflict), then with a's.
    expect(store.casVersions()).toEqual([loaded!.version, afterA!.version]);
    expect({ ...(await setup({}, store).request(cookie)).session }).toEqual({ userId: 7, a: 1, b: 2 });
  });

  it("reload takes the current version; a record this request created has none until it is read", async () => {
    const store = new VersionedCountingStore();
    const { login, manager } = setup({}, store);
    const { cookie, id } = await login();
    const session = await manager.load(cookie, { secure: false });
    const other = await manager.load(cookie, { secure: false });
    other.a = 1;
    await manager.commit(other);
    await session.reload();
    const current = await store.inner.getVersioned(storeKey(id));
    store.reset();
    session.b = 2;
    await manager.commit(session);
    expect(store.casVersions()).toEqual([current!.version]);

    const fresh = await manager.load(undefined, { secure: false });
    fresh.userId = 1;
    await fresh.save(); // created: the store's create returns no version
    fresh.a = 3;
    store.reset();
    await manager.commit(fresh);
    expect(store.casVersions()).toEqual([undefined]);
  });

  it("without compare-and-set the store is read with get: a version would have nothing to serve", async () => {
    const store = new VersionedCountingStore({ compareAndSet: false });
    const { login, manager } = setup({}, store);
    const { cookie } = await login();
    store.reset();
    const session = await manager.load(cookie, { secure: false });
    session.a = 1;
    await manager.commit(session);
    expect(store.calls.map((c) => c.op)).toEqual(["get", "update"]);
  });
});

describe("ids", () => {
  it("retries a colliding new id and gives up after three collisions", async () => {
    const store = new CountingStore();
    const ids = ["id-aaaa", "id-aaaa", "id-bbbb"];
    let n = 0;
    const { request } = setup({ genid: () => ids[Math.min(n++, ids.length - 1)]!, validateId: (id) => /^id-[a-z]{4}$/.test(id) }, store);
    n = 0;
    await request(undefined, (s) => void (s.userId = 1));
    const { session } = await request(undefined, (s) => void (s.userId = 2));
    expect(session.id).toBe("id-bbbb");
    await expect(request(undefined, (s) => void (s.userId = 3))).rejects.toThrow(SessionError);
  });
  it("makes uuid v4 ids by default", async () => {
    const { request } = setup();
    const { session } = await request(undefined, (s) => void (s.userId = 1));
    expect(session.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe("logs and events never carry a raw session id", () => {
  it("reports created, regenerated, destroyed, rejected, expired and store errors with hashed ids", async () => {
    const store = new CountingStore();
    const { manager, login, request, logs } = setup({ absoluteTimeout: 3600 }, store);
    const seen: [string, unknown][] = [];
    for (const event of ["created", "regenerated", "destroyed", "rejected", "expired", "storeError"] as const) {
      manager.on(event, (payload) => seen.push([event, payload]));
    }
    const { cookie, id } = await login();
    const { session } = await request(cookie, (s) => s.regenerate());
    await request(cookiePair(`sid=${signature.sign(session.id, SECRET)}`), (s) => s.destroy());
    await request("sid=forged");
    const second = await login();
    vi.advanceTimersByTime(3600 * 1000 + 1);
    store.inner.get = async () => decodeRecord("") as never;
    await request(second.cookie).catch(() => {});
    const everything = JSON.stringify([seen, logs.map((l) => ({ ...l, error: String(l.error) }))]);
    for (const raw of [id, session.id, second.id]) expect(everything).not.toContain(raw);
    expect(seen.map(([e]) => e)).toEqual(expect.arrayContaining(["created", "regenerated", "destroyed", "rejected"]));
    expect(seen).toContainEqual(["created", { session: hashId(storeKey(id)) }]);
    expect(seen).toContainEqual(["regenerated", { from: hashId(storeKey(id)) }]);
    expect(seen).toContainEqual(["destroyed", { session: hashId(storeKey(session.id)) }]);
  });
  it("a throwing logger or listener does not break requests", async () => {
    const { manager } = setup({ logger: () => { throw new Error("logger down"); } });
    manager.on("created", () => {
      throw new Error("listener down");
    });
    const session = await manager.load("sid=garbage", { secure: false });
    session.userId = 1;
    await expect(manager.commit(session)).resolves.toHaveProperty("setCookie");
  });
});
