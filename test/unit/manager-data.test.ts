// What the session data may hold: no prototype keys, no shadowing of the id or methods, a size limit.
import { describe, expect, it } from "vitest";
import { hashId, SessionTooLargeError } from "../../src/index.js";
import { cookiePair, storeKey } from "../helpers/manager-support.js";
import { setup, useFixedClock } from "../helpers/manager-setup.js";

useFixedClock();

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
