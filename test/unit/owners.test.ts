import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createSessionManager, SessionConfigError, UnsupportedOperationError, type SessionOptions } from "../../src/index.js";
import { CountingStore, SECRET, cookiePair } from "../helpers/manager-support.js";

type Data = { userId?: number; device?: string; n?: number };

function setup(options: Partial<SessionOptions<Data>> = {}, store = new CountingStore()) {
  const manager = createSessionManager<Data>({
    store,
    secret: SECRET,
    owner: (data) => data.userId,
    ownerMetadata: (data) => ({ device: data.device ?? null }),
    ...options,
  });
  async function request(cookie: string | undefined, handler: (s: Awaited<ReturnType<typeof manager.load>>) => unknown = () => {}) {
    const session = await manager.load(cookie, { secure: false });
    await handler(session);
    const { setCookie } = await manager.commit(session);
    return { session, cookie: setCookie && !/Max-Age=0/.test(setCookie) ? cookiePair(setCookie) : cookie };
  }
  async function login(userId: number, device: string) {
    const { session, cookie } = await request(undefined, async (s) => {
      await s.regenerate();
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

describe("sessions per owner", () => {
  it("accepts the owner option on a store without an owner index (revocation marks work there), but listing is refused", async () => {
    const store = new CountingStore({ ownerIndex: false });
    const manager = createSessionManager<Data>({ store, secret: SECRET, owner: (d) => d.userId });
    await expect(manager.listSessions(1)).rejects.toBeInstanceOf(UnsupportedOperationError);
    await expect(manager.destroyOwnerSessions(1)).rejects.toBeInstanceOf(UnsupportedOperationError);
    const plain = createSessionManager<Data>({ store, secret: SECRET });
    await expect(plain.revokeOwnerSessions(1)).rejects.toThrow(SessionConfigError);
  });
  it("answers listing on such a store with UnsupportedOperationError, and without the option with a config error", async () => {
    const plain = createSessionManager<Data>({ store: new CountingStore({ ownerIndex: false }), secret: SECRET });
    await expect(plain.listSessions(1)).rejects.toBeInstanceOf(UnsupportedOperationError);
    const noOption = createSessionManager<Data>({ store: new CountingStore(), secret: SECRET });
    await expect(noOption.destroyOwnerSessions(1)).rejects.toThrow(/owner option is not set/);
  });
  it("lists an owner's live sessions with hashed ids, times, metadata and the current one marked", async () => {
    const { manager, login } = setup();
    const phone = await login(1, "phone");
    vi.advanceTimersByTime(60_000);
    const laptop = await login(1, "laptop");
    await login(2, "other user");
    const current = await manager.load(laptop.cookie, { secure: false });
    const list = await manager.listSessions(1, { current });
    expect(list.map((s) => s.session)).toEqual([manager.hashOf(phone.id), manager.hashOf(laptop.id)]);
    expect(list.map((s) => s.metadata)).toEqual([{ device: "phone" }, { device: "laptop" }]);
    expect(list.map((s) => s.current)).toEqual([false, true]);
    expect(list[1]!.createdAt - list[0]!.createdAt).toBe(60_000);
    expect(list[0]!.expiresAt).toBe(list[0]!.createdAt + 604_800_000);
    expect(JSON.stringify(list)).not.toContain(phone.id);
  });
  it("reports last activity from the TTL the store holds", async () => {
    const { manager, login, request } = setup({ idleTimeout: 3600 });
    const { cookie } = await login(1, "phone");
    vi.advanceTimersByTime(600_000);
    await request(cookie); // a read: no write, but the TTL rolled
    vi.advanceTimersByTime(60_000);
    const [entry] = await manager.listSessions(1);
    expect(entry!.lastActiveAt).toBe(Date.now() - 60_000);
  });
  it("log out everywhere except here: the others are dead on their next request", async () => {
    const { manager, login, request } = setup();
    const a = await login(1, "a");
    const b = await login(1, "b");
    const here = await login(1, "here");
    const other = await login(2, "someone else");
    const current = await manager.load(here.cookie, { secure: false });
    expect(await manager.destroyOwnerSessions(1, { except: current })).toBe(2);
    for (const cookie of [a.cookie, b.cookie]) expect((await request(cookie)).session.userId).toBeUndefined();
    expect((await request(here.cookie)).session.userId).toBe(1);
    expect((await request(other.cookie)).session.userId).toBe(2);
    expect((await manager.listSessions(1)).map((s) => s.metadata)).toEqual([{ device: "here" }]);
    expect(await manager.destroyOwnerSessions(1)).toBe(1);
    expect((await request(here.cookie)).session.userId).toBeUndefined();
  });
  it("revokes one session by the hash listSessions reports", async () => {
    const { manager, login, request } = setup();
    const a = await login(1, "a");
    const b = await login(1, "b");
    expect(await manager.destroyOwnerSession(1, manager.hashOf(a.id))).toBe(true);
    expect(await manager.destroyOwnerSession(1, manager.hashOf(a.id))).toBe(false);
    expect((await request(a.cookie)).session.userId).toBeUndefined();
    expect((await request(b.cookie)).session.userId).toBe(1);
  });
  it("keeps the index right across regenerate, destroy, owner change and expiry", async () => {
    const { store, manager, login, request } = setup({ idleTimeout: 3600 });
    const first = await login(1, "x");
    // The owner key carried over explicitly (regenerate() alone starts empty): the index follows the new id.
    const { session: regenerated, cookie } = await request(first.cookie, (s) => s.regenerate(["userId"]));
    expect((await store.inner.owners.entries("1")).map((e) => e.id)).toEqual([manager.storeKeyOf(regenerated.id)]);
    await request(cookie, (s) => void (s.userId = 3));
    expect(await store.inner.owners.entries("1")).toEqual([]);
    expect((await manager.listSessions(3)).length).toBe(1);
    await request(cookie, (s) => s.destroy());
    expect(await store.inner.owners.entries("3")).toEqual([]);
    await login(4, "y");
    vi.advanceTimersByTime(3601_000);
    expect(await manager.listSessions(4)).toEqual([]);
    expect(await store.inner.owners.entries("4")).toEqual([]);
  });
  it("costs no index call when the owner does not change; the owner's mark is read only in the first 30 s after a login", async () => {
    const { store, login, request } = setup();
    const { cookie } = await login(1, "x");
    store.reset();
    await request(cookie, (s) => void (s.n = 1));
    // Within the grace window a load also reads the owner's revocation mark (#19).
    expect(store.calls.map((c) => c.op)).toEqual(["get", "get", "compareAndSet"]);
    vi.advanceTimersByTime(30_000);
    store.reset();
    await request(cookie, (s) => void (s.n = 2));
    expect(store.calls.map((c) => c.op)).toEqual(["get", "compareAndSet"]);
  });
});
