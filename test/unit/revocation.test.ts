/**
 * Revocation marks (#19): "sessions of this owner owned before T are revoked", on a store with an
 * owner index and on one without (as Memcached), through the core and a counting store.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createSessionManager, type SessionOptions } from "../../src/index.js";
import { CountingStore, SECRET, cookiePair } from "../helpers/manager-support.js";

type Data = { userId?: number; device?: string; n?: number };

function setup(options: Partial<SessionOptions<Data>> = {}, store = new CountingStore()) {
  const manager = createSessionManager<Data>({ store, secret: SECRET, owner: (data) => data.userId, ...options });
  async function request(cookie: string | undefined, handler: (s: Awaited<ReturnType<typeof manager.load>>) => unknown = () => {}) {
    const session = await manager.load(cookie, { secure: false });
    await handler(session);
    const { setCookie } = await manager.commit(session);
    return { session, cookie: setCookie && !/Max-Age=0/.test(setCookie) ? cookiePair(setCookie) : cookie };
  }
  async function login(userId: number, device: string, from?: string) {
    const { session, cookie } = await request(from, async (s) => {
      if (from !== undefined) await s.regenerate();
      s.userId = userId;
      s.device = device;
    });
    return { id: session.id, cookie: cookie! };
  }
  return { store, manager, request, login };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(new Date("2026-03-01T00:00:00Z"));
});
afterEach(() => vi.useRealTimers());

describe.each([
  ["with an owner index", true],
  ["without an owner index (as Memcached)", false],
])("revokeOwnerSessions %s", (_name, ownerIndex) => {
  it("revokes every session owned before now, in every process, and not other owners' or later logins", async () => {
    const store = new CountingStore({ ownerIndex });
    const a = setup({}, store);
    const b = setup({}, store); // another app process on the same store
    const phone = await a.login(1, "phone");
    const laptop = await b.login(1, "laptop");
    const other = await a.login(2, "other");
    vi.advanceTimersByTime(3_600_000); // old sessions: past the index's grace window
    const revoked: string[] = [];
    a.manager.on("revoked", (e) => revoked.push(e.session));
    b.manager.on("revoked", (e) => revoked.push(e.session));
    expect(await a.manager.revokeOwnerSessions(1)).toBe(ownerIndex ? 2 : 0);
    vi.advanceTimersByTime(1);
    const after = await b.login(1, "new laptop");
    for (const m of [a, b]) {
      expect((await m.request(phone.cookie)).session.userId).toBeUndefined();
      expect((await m.request(laptop.cookie)).session.userId).toBeUndefined();
      expect((await m.request(other.cookie)).session.userId).toBe(2);
      expect((await m.request(after.cookie)).session.userId).toBe(1);
    }
    // Without an index the mark is what refuses them, and the record is deleted on the way.
    if (!ownerIndex) expect(new Set(revoked)).toEqual(new Set([a.manager.hashOf(phone.id), a.manager.hashOf(laptop.id)]));
    expect(await store.inner.get(a.manager.storeKeyOf(phone.id))).toBeNull();
  });

  it("keeps `except` (the request that changed the password) and revokes the rest", async () => {
    const store = new CountingStore({ ownerIndex });
    const { manager, login, request } = setup({}, store);
    const here = await login(1, "here");
    const there = await login(1, "there");
    const current = await manager.load(here.cookie, { secure: false });
    await manager.revokeOwnerSessions(1, { except: current });
    expect((await request(there.cookie)).session.userId).toBeUndefined();
    expect((await request(here.cookie)).session.userId).toBe(1);
  });

  it("`before` revokes only sessions owned before it; the mark never moves back", async () => {
    const store = new CountingStore({ ownerIndex });
    const { manager, login, request } = setup({}, store);
    const early = await login(1, "early");
    vi.advanceTimersByTime(60_000);
    const cut = Date.now();
    vi.advanceTimersByTime(60_000);
    const late = await login(1, "late");
    vi.advanceTimersByTime(3_600_000);
    await manager.revokeOwnerSessions(1, { before: cut });
    await manager.revokeOwnerSessions(1, { before: cut - 1 }); // an older mark does not undo the newer one
    expect((await request(early.cookie)).session.userId).toBeUndefined();
    expect((await request(late.cookie)).session.userId).toBe(1);
  });

  it("an anonymous session that existed before the revocation and logs in after it is not revoked (the owner time counts, not the creation)", async () => {
    const store = new CountingStore({ ownerIndex });
    const { manager, request } = setup({}, store);
    const { cookie } = await request(undefined, (s) => void (s.n = 1)); // a cart, no owner
    vi.advanceTimersByTime(60_000);
    await manager.revokeOwnerSessions(1);
    vi.advanceTimersByTime(1);
    const loggedIn = await request(cookie, async (s) => {
      await s.regenerate({ keep: ["n"] } as never);
      s.userId = 1;
    });
    expect((await request(loggedIn.cookie)).session.userId).toBe(1);
  });
});

describe("the cost of the mark", () => {
  it("without an owner index every load of an owned session reads the mark: 2 reads per request; anonymous sessions: 1", async () => {
    const store = new CountingStore({ ownerIndex: false });
    const { login, request } = setup({}, store);
    const { cookie } = await login(1, "x");
    const anonymous = (await request(undefined, (s) => void (s.n = 1))).cookie;
    vi.advanceTimersByTime(3_600_000);
    store.reset();
    await request(cookie);
    expect(store.calls.map((c) => c.op)).toEqual(["get", "get"]);
    store.reset();
    await request(anonymous);
    expect(store.calls.map((c) => c.op)).toEqual(["get"]);
  });
  it("a login reads its owner's mark once, after its record landed", async () => {
    const store = new CountingStore();
    const { login } = setup({}, store);
    await login(1, "x");
    expect(store.calls.map((c) => c.op)).toEqual(["owners.add", "create", "get"]);
  });
});

describe("a login racing a revocation", () => {
  it("a login whose record lands after the revocation read the index is deleted again by its own check, and sends no session cookie", async () => {
    const store = new CountingStore();
    const { manager, request } = setup({}, store);
    // Hold the login's create until the revocation has run to completion.
    const create = store.create.bind(store);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    store.create = async (id, record, ttl) => {
      if (!id.startsWith("revoked:")) await held;
      return create(id, record, ttl);
    };
    const login = request(undefined, (s) => void (s.userId = 1));
    await vi.waitFor(() => expect(store.count("owners.add")).toBe(1));
    await manager.revokeOwnerSessions(1);
    store.create = create;
    release();
    const { session, cookie } = await login;
    expect(cookie).toBeUndefined();
    expect(session.userId).toBeUndefined();
    expect(await store.inner.owners.entries("1")).toEqual([]);
  });
});

describe("audit: sessions that ended by expiry are reported with their owner (#19 item 4)", () => {
  it("idle expiry, when listSessions finds the record gone; absolute expiry, when a cookie names it", async () => {
    const { manager, login } = setup({ idleTimeout: 60, absoluteTimeout: 3600 });
    const expired: unknown[] = [];
    manager.on("expired", (e) => expired.push(e));
    const idle = await login(1, "idle");
    vi.advanceTimersByTime(61_000);
    expect(await manager.listSessions(1)).toEqual([]);
    expect(expired).toEqual([{ session: manager.hashOf(idle.id), owner: "1", reason: "idle" }]);
    // Reported once: the entry is gone after.
    expect(await manager.listSessions(1)).toEqual([]);
    expect(expired.length).toBe(1);
  });
  it("absolute expiry reported at load, with the owner", async () => {
    const store = new CountingStore({ ownerIndex: false, refreshOnGet: false });
    const { manager, login } = setup({ idleTimeout: 3600, absoluteTimeout: 3600 }, store);
    const expired: unknown[] = [];
    manager.on("expired", (e) => expired.push(e));
    const session = await login(1, "x");
    // The store keeps it a little longer than the deadline (a TTL rounded up): the load finds it past its deadline.
    const key = manager.storeKeyOf(session.id);
    await store.inner.touch(key, 7200);
    vi.advanceTimersByTime(3_600_000);
    expect((await manager.load(session.cookie, { secure: false })).isNew).toBe(true);
    expect(expired).toEqual([{ session: manager.hashOf(session.id), owner: "1", reason: "absolute" }]);
  });
});
