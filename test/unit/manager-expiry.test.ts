// Idle and absolute expiry, as the store's TTL and as the record's own deadlines.
import { describe, expect, it, vi } from "vitest";
import { hashId } from "../../src/index.js";
import { CountingStore, storeKey } from "../helpers/manager-support.js";
import { HOUR, setup, useFixedClock } from "../helpers/manager-setup.js";

useFixedClock();

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
