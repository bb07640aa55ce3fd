// The session's methods: regenerate, destroy, save, reload, touch.
import signature from "cookie-signature";
import { describe, expect, it, vi } from "vitest";
import { decodeRecord } from "../../src/index.js";
import { CountingStore, SECRET, cookiePair, storeKey } from "../helpers/manager-support.js";
import { setup, useFixedClock } from "../helpers/manager-setup.js";

useFixedClock();

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
