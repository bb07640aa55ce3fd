import { randomBytes } from "node:crypto";
import signature from "cookie-signature";
import { describe, expect, it } from "vitest";
import { createSessionManager, decodeRecord, SessionConfigError, type SessionOptions } from "../../src/index.js";
import { CountingStore, SECRET, cookiePair } from "../helpers/manager-support.js";

type Data = { userId?: number; cart?: string[] };

/** An id as express-session makes it (uid-safe: 24 random bytes, base64url). */
const legacyId = () => randomBytes(24).toString("base64url");
/** A cookie exactly as express-session sets it. */
const legacyCookie = (id: string, secret = SECRET) => `connect.sid=${encodeURIComponent(`s:${signature.sign(id, secret)}`)}`;
/** A record exactly as connect-redis stores it. */
const legacyRecord = (data: object) => JSON.stringify({ cookie: { originalMaxAge: null, expires: null, httpOnly: true, path: "/" }, ...data });

function setup(compat: SessionOptions<Data>["compat"], options: Partial<SessionOptions<Data>> = {}) {
  const store = new CountingStore({ compareAndSet: false });
  const manager = createSessionManager<Data>({ store, secret: SECRET, compat, ...options });
  return { store, manager };
}

describe('compat: "express-session"', () => {
  it("reads express-session's cookie and connect-redis's record, and writes them back in that layout", async () => {
    const { store, manager } = setup("express-session");
    const id = legacyId();
    await store.inner.create(id, legacyRecord({ userId: 5 }), 600);
    const session = await manager.load(`other=1; ${legacyCookie(id)}`, { secure: false });
    expect(session.id).toBe(id);
    expect(session.isNew).toBe(false);
    expect({ ...session }).toEqual({ userId: 5 });
    session.cart = ["pear"];
    expect((await manager.commit(session)).setCookie).toBeUndefined();
    const stored = JSON.parse((await store.inner.get(id))!);
    expect(stored.cookie).toEqual({ originalMaxAge: null, expires: null, secure: false, httpOnly: true, path: "/", sameSite: "lax" });
    expect(stored.userId).toBe(5);
    expect(stored.cart).toEqual(["pear"]);
    expect(Object.keys(stored.sharedSession)).toEqual(["createdAt", "expiresAt", "writtenAt"]);
  });
  it("gives new sessions our ids, in express-session's cookie form", async () => {
    const { store, manager } = setup("express-session", { cookie: { maxAge: 3600 } });
    const session = await manager.load(undefined, { secure: true });
    session.userId = 1;
    const { setCookie } = await manager.commit(session);
    expect(session.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(cookiePair(setCookie)).toBe(`connect.sid=${encodeURIComponent(`s:${signature.sign(session.id, SECRET)}`)}`);
    const stored = JSON.parse((await store.inner.get(session.id))!);
    expect(stored.cookie.originalMaxAge).toBe(3_600_000);
    expect(Date.parse(stored.cookie.expires)).toBeGreaterThan(Date.now());
    expect(stored.cookie.secure).toBe(true);
    const again = await manager.load(cookiePair(setCookie), { secure: true });
    expect(again.userId).toBe(1);
  });
  it("still refuses forged, unsigned and undecodable legacy cookies, without a store lookup", async () => {
    const { store, manager } = setup("express-session");
    const id = legacyId();
    await store.inner.create(id, legacyRecord({ userId: 5 }), 600);
    store.reset();
    for (const header of [
      legacyCookie(id, "a-different-secret-of-enough-length!!"),
      `connect.sid=s%3A${id}`,
      "connect.sid=s%3A%E0%A4%A",
      `connect.sid=${encodeURIComponent(`s:${signature.sign("not an id", SECRET)}`)}`,
    ]) {
      const session = await manager.load(header, { secure: false });
      expect(session.isNew).toBe(true);
    }
    expect(store.count()).toBe(0);
  });
  it("treats a legacy record without a cookie object as corrupt", async () => {
    const { store, manager } = setup("express-session");
    const id = legacyId();
    await store.inner.create(id, JSON.stringify({ userId: 5 }), 600);
    expect((await manager.load(legacyCookie(id), { secure: false })).isNew).toBe(true);
  });
  it("refuses a custom serializer", () => {
    expect(() => setup("express-session", { serializer: { stringify: JSON.stringify, parse: JSON.parse } })).toThrow(SessionConfigError);
  });
});

describe('compat: "express-session-read"', () => {
  it("accepts legacy sessions and converts record and cookie to ours on first use", async () => {
    const { store, manager } = setup("express-session-read");
    const id = legacyId();
    await store.inner.create(id, legacyRecord({ userId: 9 }), 600);
    const session = await manager.load(legacyCookie(id), { secure: false });
    expect(session.userId).toBe(9);
    const { setCookie } = await manager.commit(session);
    expect(cookiePair(setCookie)).toBe(`connect.sid=${signature.sign(id, SECRET)}`);
    // Moved from the raw id (connect-redis's key) to its hashed key, in our layout.
    expect(await store.inner.get(id)).toBeNull();
    const stored = decodeRecord((await store.inner.get(manager.storeKeyOf(id)))!);
    expect(manager.storeKeyOf(id)).not.toBe(id);
    expect(stored?.dataText).toBe('{"userId":9}');
    store.reset();
    const next = await manager.load(cookiePair(setCookie), { secure: false });
    expect(next.userId).toBe(9);
    expect((await manager.commit(next)).setCookie).toBeUndefined();
    expect(store.writes()).toBe(0);
  });
});
