// One request: load and commit (without a promise where no store call is needed), lazy sessions, change detection.
import signature from "cookie-signature";
import { describe, expect, it } from "vitest";
import { SECRET, cookiePair, storeKey } from "../helpers/manager-support.js";
import { setup, useFixedClock } from "../helpers/manager-setup.js";

useFixedClock();

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
