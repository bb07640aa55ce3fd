/**
 * Sessions for API and mobile clients: the signed id in `Authorization: Bearer …` or a named header,
 * over real HTTP in every binding, with a client that keeps no cookies (the `request` helper sends
 * only the headers it is given), on a real Redis.
 */
import signature from "cookie-signature";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisClient, RedisStore } from "../../adapters/redis.js";
import { createSessionManager, SessionConfigError, type SessionLogEntry, type SessionOptions } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";
import { FRAMEWORKS, type RunningApp } from "../helpers/framework-apps.js";
import { cookieHeader, idOf, request, sessionCookie, type HttpResponse } from "../helpers/http.js";
import { services, uniquePrefix } from "../services/index.js";
import { closeClients, rawRedis, tracked } from "../helpers/redis-clients.js";

const SECRET = "a-test-secret-that-is-at-least-32-characters-long";
const OLD = "an-older-secret-that-is-at-least-32-characters";

afterAll(() => closeClients());

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
/** The token a response hands out, or `undefined`. */
const tokenOf = (response: HttpResponse, name = "x-session-token") => response.headers.get(name) ?? undefined;
const idOfToken = (token: string) => token.slice(0, token.lastIndexOf("."));

describe.each(FRAMEWORKS)("header carrier through $name on Redis", (framework) => {
  let app: RunningApp;
  let custom: RunningApp;
  let rotated: RunningApp;
  let plain: RunningApp;
  let logs: SessionLogEntry[];
  const prefix = uniquePrefix(`header-${framework.name}`);
  const options = (extra: Partial<SessionOptions>): SessionOptions => ({
    store: new RedisStore({ client: tracked(createRedisClient(services().redis.url)), prefix }),
    secret: SECRET,
    logger: (entry) => logs.push(entry),
    ...extra,
  });

  beforeAll(async () => {
    logs = [];
    app = await framework.start(options({ header: {} }));
    custom = await framework.start(options({ header: { name: "X-Session" } }));
    rotated = await framework.start(options({ secret: [OLD, SECRET], header: {} }));
    plain = await framework.start(options({}));
    return () => Promise.all([app.close(), custom.close(), rotated.close(), plain.close()]).then(() => undefined);
  });

  it("hands out a token when a session is created or its id changes, and reads it back from Authorization: Bearer", async () => {
    const login = await request(app.url, "/login?user=31", { method: "POST" });
    expect(login.status).toBe(200);
    const token = tokenOf(login)!;
    expect(token).toBe(signature.sign(idOfToken(token), SECRET));
    // The store holds it (under its hashed key).
    const raw = rawRedis(services().redis.url);
    const manager = createSessionManager(options({}));
    expect(await raw.exists(prefix + manager.storeKeyOf(idOfToken(token)))).toBe(1);

    // Read and change with the header only: no cookie, no new token.
    const me = await request(app.url, "/me", { headers: bearer(token) });
    expect(me.json()).toEqual({ userId: 31, visits: null, isNew: false });
    expect(me.setCookies).toEqual([]);
    expect(tokenOf(me)).toBeUndefined();
    const visit = await request(app.url, "/visit", { method: "POST", headers: bearer(token) });
    expect(visit.json()).toEqual({ visits: 1 });
    expect(visit.setCookies).toEqual([]);
    expect(tokenOf(visit)).toBeUndefined();
    expect((await request(app.url, "/me", { headers: { authorization: `bearer   ${token}` } })).json()).toMatchObject({ userId: 31, visits: 1 });

    // regenerate() rotates the id: a new token, the old one is dead.
    const again = await request(app.url, "/login?user=32", { method: "POST", headers: bearer(token) });
    const fresh = tokenOf(again)!;
    expect(fresh).toBeDefined();
    expect(idOfToken(fresh)).not.toBe(idOfToken(token));
    expect(again.setCookies).toEqual([]);
    expect((await request(app.url, "/me", { headers: bearer(fresh) })).json()).toMatchObject({ userId: 32, isNew: false });
    expect((await request(app.url, "/me", { headers: bearer(token) })).json()).toMatchObject({ userId: null, isNew: true });

    // Logout: the token stops working.
    await request(app.url, "/logout", { method: "POST", headers: bearer(fresh) });
    expect((await request(app.url, "/me", { headers: bearer(fresh) })).json()).toMatchObject({ userId: null, isNew: true });
  });

  it("checks the token exactly like the cookie: forged, tampered or malformed is a fresh session, never an error", async () => {
    const token = tokenOf(await request(app.url, "/login?user=5", { method: "POST" }))!;
    const id = idOfToken(token);
    logs.length = 0;
    for (const value of [
      `Bearer ${signature.sign(id, "a-secret-this-app-has-never-configured!!")}`,
      `Bearer ${id}`,
      `Bearer ${token}x`,
      `Bearer ${token} extra`,
      "Bearer",
      `Bearer ${signature.sign("not-a-uuid", SECRET)}`,
    ]) {
      const me = await request(app.url, "/me", { headers: { authorization: value } });
      expect(me.status, value).toBe(200);
      expect(me.json(), value).toMatchObject({ userId: null, isNew: true });
    }
    expect(logs.filter((l) => l.event === "header.rejected")).toHaveLength(6);
    // Another scheme is not ours: as if no header were sent (the cookie, if any, is used).
    const login = sessionCookie(await request(app.url, "/login?user=6", { method: "POST" }));
    expect((await request(app.url, "/me", { cookie: cookieHeader(login), headers: { authorization: "Basic dXNlcjpwYXNz" } })).json()).toMatchObject({ userId: 6 });
  });

  it("when a request carries both, the header wins and the cookie is not looked at", async () => {
    const viaCookie = await request(app.url, "/login?user=1", { method: "POST" });
    const cookie = sessionCookie(viaCookie);
    const token = tokenOf(await request(app.url, "/login?user=2", { method: "POST" }))!;
    expect((await request(app.url, "/me", { cookie: cookieHeader(cookie), headers: bearer(token) })).json()).toMatchObject({ userId: 2 });
    expect((await request(app.url, "/me", { cookie: cookieHeader(cookie) })).json()).toMatchObject({ userId: 1 });
    // A bad header does not fall back to the cookie.
    expect((await request(app.url, "/me", { cookie: cookieHeader(cookie), headers: bearer("garbage.token") })).json()).toMatchObject({ userId: null });
    // The login without any carrier got both: the cookie for browsers, the token for API clients.
    expect(tokenOf(viaCookie)).toBe(signature.sign(idOf(cookie), SECRET));
  });

  it("a named header carries the token both ways; a token under a rotated-out-of-first secret is re-signed", async () => {
    const login = await request(custom.url, "/login?user=8", { method: "POST" });
    const token = tokenOf(login, "x-session")!;
    expect(token).toBeDefined();
    expect((await request(custom.url, "/me", { headers: { "x-session": token } })).json()).toMatchObject({ userId: 8, isNew: false });
    // The Authorization header means nothing to this app.
    expect((await request(custom.url, "/me", { headers: bearer(token) })).json()).toMatchObject({ userId: null });

    // An app whose first secret is OLD accepts the SECRET-signed token and hands out a re-signed one.
    const read = await request(rotated.url, "/me", { headers: bearer(token) });
    expect(read.json()).toMatchObject({ userId: 8 });
    expect(tokenOf(read)).toBe(signature.sign(idOfToken(token), OLD));
  });

  it("is off unless configured: the header is ignored and no token is handed out", async () => {
    const login = await request(plain.url, "/login?user=9", { method: "POST" });
    expect(tokenOf(login)).toBeUndefined();
    const cookie = sessionCookie(login);
    expect((await request(plain.url, "/me", { headers: bearer(cookie.value) })).json()).toMatchObject({ userId: null });
  });
});

describe("header option", () => {
  it("is checked at construction", () => {
    const store = new MemoryStore({ quiet: true });
    expect(() => createSessionManager({ store, secret: SECRET, header: { name: "bad name" } })).toThrow(SessionConfigError);
    expect(() => createSessionManager({ store, secret: SECRET, header: { name: "Cookie" } })).toThrow(/cookie/);
    expect(() => createSessionManager({ store, secret: SECRET, header: { response: "a:b" } })).toThrow(/header.response/);
    expect(createSessionManager({ store, secret: SECRET, header: {} }).headerName).toBe("authorization");
    expect(createSessionManager({ store, secret: SECRET, header: { name: "X-Session" } }).headerName).toBe("x-session");
    expect(createSessionManager({ store, secret: SECRET }).headerName).toBeUndefined();
  });
});
