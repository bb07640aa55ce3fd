// The session cookie: its attributes, its signature, secret rotation, strict mode.
import signature from "cookie-signature";
import { describe, expect, it, vi } from "vitest";
import { OLD_SECRET, SECRET, cookiePair, storeKey } from "../helpers/manager-support.js";
import { setup, useFixedClock } from "../helpers/manager-setup.js";

useFixedClock();

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
