// Concurrent requests on one session: compare-and-set merges, no resurrection, versioned reads.
import { describe, expect, it } from "vitest";
import { CountingStore, VersionedCountingStore, storeKey } from "../helpers/manager-support.js";
import { setup, useFixedClock } from "../helpers/manager-setup.js";

useFixedClock();

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
