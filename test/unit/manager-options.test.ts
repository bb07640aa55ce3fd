// Options are checked once, at construction; ids are generated and validated as configured.
import { describe, expect, it } from "vitest";
import {
  createSessionManager,
  SessionConfigError,
  SessionError,
  type SessionOptions,
  type SessionStore,
} from "../../src/index.js";
import { CountingStore, SECRET } from "../helpers/manager-support.js";
import { type Data, setup, useFixedClock } from "../helpers/manager-setup.js";

useFixedClock();

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
