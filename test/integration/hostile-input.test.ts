/**
 * Hostile and malformed input at the HTTP level, in Express, Koa and Fastify, on a real Redis of
 * this file's own (so `INFO commandstats` counts this file's commands alone). Cookies go out over
 * a raw socket, byte for byte, where an HTTP client would refuse to send them; stored records are
 * written straight into Redis under the store's key.
 *
 * Every case checks what the client sees (status, cookie, data), what reached the store (server
 * command counts), and what was logged (hashed ids only, never the raw id).
 */
import { randomUUID } from "node:crypto";
import signature from "cookie-signature";
import Fastify from "fastify";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { expressSession } from "../../src/frameworks/express/index.js";
import { fastifySession } from "../../src/frameworks/fastify.js";
import { koaSession } from "../../src/frameworks/koa.js";
import { encodeRecord, hashId, SessionConfigError, SessionTooLargeError } from "../../src/index.js";
import type { SessionOptions } from "../../src/index.js";
import type { InstrumentedStore } from "../helpers/instrumented-store.js";
import { redisBackend, type Backend } from "../helpers/session-backends.js";
import { storeKeysFor } from "../helpers/store-keys.js";
import { BIG, FRAMEWORKS, idOfValue, raw, sid, startApp, type App, type Data } from "../helpers/failure-apps.js";

const SECRET = "the-current-secret-of-at-least-32-chars";
const RETIRED = "a-retired-secret-that-is-32-chars-long!";
const STRANGER = "a-secret-this-app-has-never-configured!!";
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Ids, cookie values and fragments that must never appear in a log line. */
function expectNotLogged(app: App, ...secrets: string[]): void {
  const text = JSON.stringify(
    app.logs.map((entry) => [entry.level, entry.event, entry.message, entry.session, entry.error instanceof Error ? entry.error.message : String(entry.error ?? "")]),
  );
  for (const secret of secrets) if (secret.length >= 8) expect(text).not.toContain(secret);
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

let backend: Backend & { server: { url: string }; prefix: string };
let admin: Redis;
let store: InstrumentedStore;

beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  backend = await redisBackend(storeKeysFor([SECRET, RETIRED]));
  store = backend.openStore();
  admin = new Redis(backend.server.url);
  admin.on("error", () => undefined);
});

afterAll(async () => {
  process.off("unhandledRejection", onUnhandled);
  admin?.disconnect();
  await backend?.close();
  expect(unhandled).toEqual([]);
});

const someId = (): string => randomUUID();

describe.each(FRAMEWORKS)("%s", (framework) => {
  let app: App;
  const others: App[] = [];

  beforeAll(async () => {
    app = await startApp(framework, { store, secret: [SECRET, RETIRED] });
  });
  afterAll(async () => {
    await app?.close();
  });
  afterEach(async () => {
    await Promise.all(others.splice(0).map((other) => other.close()));
    // No request in this file is the client's fault: nothing of it reached the app's error handling,
    // except the app's own oversize write, which each such test checks and clears.
    expect(app.errors).toEqual([]);
    app.logs.length = 0;
  });

  /** Log in through the app: the signed cookie value and the id. */
  async function login(): Promise<{ value: string; id: string }> {
    const response = await raw(app.port, "POST", "/login", undefined);
    expect(response.status).toBe(200);
    const value = sid(response)!;
    expect(idOfValue(value)).toMatch(UUID_V4);
    return { value, id: idOfValue(value) };
  }

  /**
   * The cookie is treated as no session: a read answers 200 with a fresh, empty session and costs no
   * store command; a write gets a new random id (never one the header named) and costs one create.
   */
  async function expectNoSession(cookie: string, opts: { parserMayRefuse?: boolean; noSidValue?: boolean } = {}): Promise<void> {
    app.logs.length = 0;
    const before = await backend.mark();
    const me = await raw(app.port, "GET", "/me", cookie);
    if (opts.parserMayRefuse && me.status === 400) {
      // Node's HTTP parser refused the bytes before any framework saw them.
      expect(await backend.since(before)).toEqual({ reads: 0, writes: 0, total: 0 });
      const alive = await raw(app.port, "GET", "/noop", undefined);
      expect(alive.status).toBe(200);
      return;
    }
    expect(me.status).toBe(200);
    expect(JSON.parse(me.body)).toMatchObject({ userId: null, visits: null, isNew: true, keys: [] });
    const cleared = sid(me);
    // At most a cookie that expires the client's copy; never one carrying a value.
    if (cleared !== undefined) expect(cleared).toBe("");
    expect(await backend.since(before)).toEqual({ reads: 0, writes: 0, total: 0 });

    const write = await raw(app.port, "POST", "/visit", cookie);
    expect(write.status).toBe(200);
    expect(JSON.parse(write.body)).toEqual({ visits: 1 });
    const fresh = sid(write)!;
    const id = idOfValue(fresh);
    expect(id).toMatch(UUID_V4);
    expect(cookie).not.toContain(id);
    expect(await backend.since(before)).toEqual({ reads: 0, writes: 1, total: 1 });
    expect(await backend.has(id)).toBe(true);
    // Never a response header the client smuggled in.
    expect(write.headers.some(([name]) => name.startsWith("x-evil"))).toBe(false);
    // The rejection was logged (when the header named a sid at all), without the cookie's content.
    expect(app.logs.some((entry) => entry.event === "cookie.rejected")).toBe(!opts.noSidValue);
    expectNotLogged(app, ...cookie.split(/[;=\s]/));
  }

  describe("cookies that are not validly signed reach no store", () => {
    it("no cookie: 200, no cookie set, no store command", async () => {
      const before = await backend.mark();
      for (const path of ["/noop", "/me"]) {
        const response = await raw(app.port, "GET", path, undefined);
        expect(response.status).toBe(200);
        expect(response.setCookies).toEqual([]);
      }
      expect(await backend.since(before)).toEqual({ reads: 0, writes: 0, total: 0 });
    });

    it("an empty value, and a header with nothing but separators", async () => {
      await expectNoSession("sid=");
      await expectNoSession('sid=""');
      await expectNoSession(";;; ;sid ; =;", { noSidValue: true });
    });

    it("an unsigned id, the signature stripped or empty", async () => {
      const { id } = await login();
      await expectNoSession(`sid=${id}`);
      await expectNoSession(`sid=${id}.`);
      await expectNoSession(`sid=.${signature.sign(id, SECRET).split(".")[1]}`);
    });

    it("a wrong signature: another secret, another id's signature, one character changed", async () => {
      const { id, value } = await login();
      const other = signature.sign(someId(), SECRET);
      await expectNoSession(`sid=${signature.sign(id, STRANGER)}`);
      await expectNoSession(`sid=${id}.${other.split(".")[1]}`);
      const sig = value.slice(value.lastIndexOf(".") + 1);
      const flipped = sig[5] === "A" ? "B" : "A";
      await expectNoSession(`sid=${id}.${sig.slice(0, 5)}${flipped}${sig.slice(6)}`);
    });

    it("a signature from a secret that was rotated out", async () => {
      // An app that still verifies the retired secret accepts it (rotation)...
      const { id } = await login();
      const oldCookie = `sid=${signature.sign(id, RETIRED)}`;
      const accepted = await raw(app.port, "GET", "/me", oldCookie);
      expect(JSON.parse(accepted.body)).toMatchObject({ userId: 1, isNew: false });
      expect(sid(accepted)).toBe(signature.sign(id, SECRET)); // re-signed with the current secret
      // ...one whose configuration dropped it treats it as garbage and never asks the store.
      const rotated = await startApp(framework, { store, secret: SECRET });
      others.push(rotated);
      const before = await backend.mark();
      const response = await raw(rotated.port, "GET", "/me", oldCookie);
      expect(response.status).toBe(200);
      expect(JSON.parse(response.body)).toMatchObject({ userId: null, isNew: true });
      expect(await backend.since(before)).toEqual({ reads: 0, writes: 0, total: 0 });
      expect(rotated.logs.some((entry) => entry.event === "cookie.rejected")).toBe(true);
    });

    it("a valid signature with bytes appended or prepended", async () => {
      const { value } = await login();
      // (Trailing spaces and tabs are not "extra": HTTP strips them from header values.)
      for (const extra of ["x", "=", ".", "%00", "\tx", "A".repeat(100), "\xff"]) await expectNoSession(`sid=${value}${extra}`);
      for (const extra of ["x", "s:", "%20", "\xfe"]) await expectNoSession(`sid=${extra}${value}`);
      await expectNoSession(`sid=${value}.${value.split(".")[1]}`);
    });

    it("a signature of the wrong length, or not base64", async () => {
      const { id, value } = await login();
      const sig = value.slice(value.lastIndexOf(".") + 1);
      for (const bad of [sig.slice(0, 42), sig.slice(0, 10), `${sig}A`, `${sig}${sig}`, sig.replace(/[A-Za-z0-9]/g, "!"), `${sig.slice(0, 42)}=`, Buffer.from(sig, "base64").toString("hex")]) {
        await expectNoSession(`sid=${id}.${bad}`);
      }
    });

    it("duplicate session cookies: garbage ones cost nothing, and a validly signed dead one does not hide the live one behind it", async () => {
      await expectNoSession(`sid=garbage; sid=${someId()}; sid=; sid=${signature.sign(someId(), STRANGER)}`);
      await expectNoSession(Array(150).fill(`sid=${signature.sign(someId(), STRANGER)}`).join("; "));
      const { value } = await login();
      const planted = signature.sign(someId(), SECRET); // validly signed, unknown to the store
      let before = await backend.mark();
      const good = await raw(app.port, "GET", "/me", `sid=junk; sid=${value}; sid=${planted}`);
      expect(JSON.parse(good.body)).toMatchObject({ userId: 1, isNew: false });
      expect(await backend.since(before)).toEqual({ reads: 1, writes: 0, total: 1 });
      before = await backend.mark();
      // The dead value sent first (cookie tossing) costs one more read, not the user's session (#16 item 8).
      const first = await raw(app.port, "GET", "/me", `sid=${planted}; sid=${value}`);
      expect(first.status).toBe(200);
      expect(JSON.parse(first.body)).toMatchObject({ userId: 1, isNew: false });
      expect(first.setCookies).toEqual([]);
      expect(await backend.since(before)).toEqual({ reads: 2, writes: 0, total: 2 });
    });

    it("bad percent-encoding and percent-encoded values", async () => {
      const { value } = await login();
      for (const bad of ["%", "%E0%A4%A", "%zz", "%%%", "%00", "%ff%fe", encodeURIComponent(value).replace(".", "%2E")]) {
        await expectNoSession(`sid=${bad}`);
      }
      await expectNoSession(`sid=${value.replace(".", "%2E")}`);
    });

    it("non-UTF-8 bytes, control bytes and CR/LF (raw socket): refused by the parser or treated as no session", async () => {
      const { value } = await login();
      // Bytes 0x80-0xff reach the app (as latin1): no session.
      await expectNoSession(`sid=\xff\xfe\xfd`);
      await expectNoSession(`sid=${value}\xc3\x28`);
      await expectNoSession(`sid=\xc0\xaf${value}`);
      await expectNoSession(`sid=${value.replace(".", "\x85")}`);
      await expectNoSession(`sid=a\tb`);
      // CR LF ends the header: the rest is another request header, never a response header.
      await expectNoSession(`sid=${idOfValue(value)}\r\nX-Evil: 1`);
      await expectNoSession(`sid=x\r\nSet-Cookie: sid=${value}`);
      // NUL, other control bytes, DEL, a bare CR or LF, an obs-fold: Node's parser answers 400 itself.
      for (const bytes of ["\0", "\x01", "\x1b", "\x7f", "\r", "\n", "\r\n "]) {
        await expectNoSession(`sid=${value.slice(0, 10)}${bytes}${value.slice(10)}`, { parserMayRefuse: true });
      }
    });

    it("an oversize Cookie header: the server's own 431, and the process keeps serving", async () => {
      const { value } = await login();
      const before = await backend.mark();
      const oversize = await raw(app.port, "GET", "/me", `sid=${value}; pad=${"x".repeat(20_000)}`);
      expect(oversize.status).toBe(431);
      // Just under Node's 16 KiB limit: the framework sees it, and the session still loads.
      const large = await raw(app.port, "GET", "/me", `pad=${"x".repeat(14_000)}; sid=${value}`);
      expect(large.status).toBe(200);
      expect(JSON.parse(large.body)).toMatchObject({ userId: 1, isNew: false });
      expect(await backend.since(before)).toEqual({ reads: 1, writes: 0, total: 1 });
      // A large value that is all garbage: no session, no store command.
      await expectNoSession(`sid=${"A".repeat(14_000)}.${"B".repeat(43)}`);
      expect((await raw(app.port, "GET", "/noop", undefined)).status).toBe(200);
    });

    it("ids holding * ? [ ] \\ : and spaces never reach the store, even validly signed", async () => {
      for (const id of ["*", "sess:*", "?", "[a-z]*", "\\*", "a:b", "a b", " * ", "sess:", ":", "*\\[", "??????????"]) {
        await expectNoSession(`sid=${id}`);
        await expectNoSession(`sid=${signature.sign(id, SECRET)}`);
      }
      await expectNoSession(`sid=${signature.sign(`${someId()}*`, SECRET)}`);
      await expectNoSession(`sid=${signature.sign(`${someId().slice(0, -1)}?`, SECRET)}`);
    });
  });

  describe("validly signed cookies the store cannot vouch for", () => {
    it("an id the store does not know: one read, a fresh id, a log line with the hashed id", async () => {
      const planted = someId();
      const cookie = `sid=${signature.sign(planted, SECRET)}`;
      const before = await backend.mark();
      const me = await raw(app.port, "GET", "/me", cookie);
      expect(me.status).toBe(200);
      expect(JSON.parse(me.body)).toMatchObject({ isNew: true, userId: null });
      expect(await backend.since(before)).toEqual({ reads: 1, writes: 0, total: 1 });
      expect(app.logs.some((entry) => entry.event === "cookie.unknown" && entry.session === hashId(backend.keyOf(planted)))).toBe(true);
      const write = await raw(app.port, "POST", "/visit", cookie);
      const fresh = idOfValue(sid(write)!);
      expect(fresh).not.toBe(planted);
      expect(await backend.has(planted)).toBe(false);
      expect(await backend.has(fresh)).toBe(true);
      expectNotLogged(app, planted);
    });

    const now = Date.now();
    const meta = (over: Data = {}) => JSON.stringify({ v: 1, createdAt: now, expiresAt: now + 3_600_000, writtenAt: now, ...over });
    const CORRUPT: [string, string][] = [
      ["empty", ""],
      ["only a newline", "\n"],
      ["truncated JSON", `${meta()}\n{"userId":`],
      ["truncated metadata", meta().slice(0, 20)],
      ["metadata without data line", meta()],
      ["an array", `[1,2,3]`],
      ["a number", "42"],
      ["a JSON string", '"hello"'],
      ["data that is an array", `${meta()}\n[1,2]`],
      ["data that is a number", `${meta()}\n7`],
      ["data that is null", `${meta()}\nnull`],
      ["metadata that is an array", `[1,${now},${now}]\n{}`],
      ["missing fields", `{"v":1,"createdAt":${now}}\n{}`],
      ["no version", `{"createdAt":${now},"expiresAt":${now + 3_600_000},"writtenAt":${now}}\n{}`],
      ["a future version", `${meta({ v: 2 })}\n{}`],
      ["NaN dates (bare)", `{"v":1,"createdAt":NaN,"expiresAt":NaN,"writtenAt":NaN}\n{}`],
      ["NaN dates (strings)", `${meta({ createdAt: "NaN", expiresAt: "NaN" })}\n{}`],
      ["null dates", `${meta({ expiresAt: null })}\n{}`],
      ["infinite dates", `{"v":1,"createdAt":1e400,"expiresAt":1e400,"writtenAt":1}\n{}`],
      ["negative dates", `${meta({ createdAt: -1 })}\n{}`],
      ["an owner that is not a string", `${meta({ owner: { id: 1 } })}\n{}`],
      ["binary garbage", "\x00\xff\xfe\n\x00"],
      ["__proto__ in the metadata", `{"__proto__":{"v":1,"createdAt":1,"expiresAt":9007199254740991,"writtenAt":1}}\n{}`],
    ];

    it.each(CORRUPT)("a stored record that is %s: treated as missing, logged with the hashed id, never thrown", async (_name, record) => {
      const id = someId();
      await admin.set(backend.prefix + backend.keyOf(id), record, "EX", 3600);
      const cookie = `sid=${signature.sign(id, SECRET)}`;
      const before = await backend.mark();
      const me = await raw(app.port, "GET", "/me", cookie);
      expect(me.status).toBe(200);
      expect(JSON.parse(me.body)).toMatchObject({ isNew: true, userId: null, keys: [] });
      expect(await backend.since(before)).toEqual({ reads: 1, writes: 0, total: 1 });
      expect(app.logs.some((entry) => entry.event === "record.corrupt" && entry.session === hashId(backend.keyOf(id)))).toBe(true);
      // A write lands under a fresh id; the corrupt record is never rewritten in place.
      const write = await raw(app.port, "POST", "/visit", cookie);
      expect(write.status).toBe(200);
      expect(idOfValue(sid(write)!)).not.toBe(id);
      expect(await admin.get(backend.prefix + backend.keyOf(id))).toBe(record);
      expectNotLogged(app, id);
    });

    it("a stored record carrying __proto__ / constructor / prototype keys loads without pollution", async () => {
      const id = someId();
      const data = '{"__proto__":{"polluted":"yes","userId":99},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"},"userId":5,"nested":{"__proto__":{"polluted":"yes"}}}';
      await admin.set(backend.prefix + backend.keyOf(id), `${meta()}\n${data}`, "EX", 3600);
      const me = await raw(app.port, "GET", "/me", `sid=${signature.sign(id, SECRET)}`);
      expect(me.status).toBe(200);
      const body = JSON.parse(me.body) as Data;
      expect(body).toMatchObject({ isNew: false, userId: 5, polluted: null });
      expect(body.keys).toEqual(["userId", "nested"]);
      expect((Object.prototype as Data).polluted).toBeUndefined();
    });

    it("a stored record past its absolute deadline whose TTL has not fired: deleted, a fresh session", async () => {
      const id = someId();
      await admin.set(backend.prefix + backend.keyOf(id), encodeRecord({ createdAt: now - 7_200_000, expiresAt: Date.now() - 1000, writtenAt: now - 60_000 }, '{"userId":1}'), "EX", 3600);
      const before = await backend.mark();
      const me = await raw(app.port, "GET", "/me", `sid=${signature.sign(id, SECRET)}`);
      expect(me.status).toBe(200);
      expect(JSON.parse(me.body)).toMatchObject({ isNew: true, userId: null });
      expect(await backend.has(id)).toBe(false);
      // The read, then the delete of the expired record.
      expect(await backend.since(before)).toEqual({ reads: 1, writes: 1, total: 2 });
      expect(app.logs.some((entry) => entry.event === "session.expired" && entry.session === hashId(backend.keyOf(id)))).toBe(true);
      expectNotLogged(app, id);
    });

    it("a cookie replayed after logout finds nothing and is never revived", async () => {
      const { value, id } = await login();
      const logout = await raw(app.port, "POST", "/logout", `sid=${value}`);
      expect(logout.status).toBe(200);
      expect(sid(logout)).toBe(""); // the client's copy is expired
      expect(await backend.has(id)).toBe(false);
      const replay = await raw(app.port, "GET", "/me", `sid=${value}`);
      expect(JSON.parse(replay.body)).toMatchObject({ isNew: true, userId: null });
      const write = await raw(app.port, "POST", "/visit", `sid=${value}`);
      expect(idOfValue(sid(write)!)).not.toBe(id);
      expect(await backend.has(id)).toBe(false);
      expect(app.logs.some((entry) => entry.event === "cookie.unknown" && entry.session === hashId(backend.keyOf(id)))).toBe(true);
    });

    it("an anonymous id planted by an attacker is replaced at login (the app calls regenerate())", async () => {
      // The attacker gets a real anonymous session and plants its cookie in the victim's browser.
      const anonymous = await raw(app.port, "POST", "/visit", undefined);
      const planted = sid(anonymous)!;
      const plantedId = idOfValue(planted);
      expect(await backend.has(plantedId)).toBe(true);
      // The victim logs in carrying it.
      const login = await raw(app.port, "POST", "/login", `sid=${planted}`);
      expect(login.status).toBe(200);
      const victim = sid(login)!;
      expect(idOfValue(victim)).not.toBe(plantedId);
      expect(await backend.has(plantedId)).toBe(false);
      // The attacker's copy of the old id now opens nothing; the victim's session is the victim's.
      const attacker = await raw(app.port, "GET", "/me", `sid=${planted}`);
      expect(JSON.parse(attacker.body)).toMatchObject({ isNew: true, userId: null });
      const mine = await raw(app.port, "GET", "/me", `sid=${victim}`);
      expect(JSON.parse(mine.body)).toMatchObject({ isNew: false, userId: 1 });
    });
  });

  describe("the app's own mistakes get a clear error", () => {
    it("a multi-megabyte write: a 500 with SessionTooLargeError, nothing written, the stored record unchanged", async () => {
      const { value, id } = await login();
      const stored = await admin.get(backend.prefix + backend.keyOf(id));
      const before = await backend.mark();
      const response = await raw(app.port, "POST", "/big", `sid=${value}`);
      expect(response.status).toBe(500);
      expect(response.body).not.toContain("xxxxxxxx");
      expect(app.errors).toHaveLength(1);
      expect(app.errors[0]).toBeInstanceOf(SessionTooLargeError);
      expect((app.errors[0] as SessionTooLargeError).size).toBeGreaterThan(BIG);
      app.errors.length = 0;
      // The read that loaded the session, and no write.
      expect(await backend.since(before)).toEqual({ reads: 1, writes: 0, total: 1 });
      expect(await admin.get(backend.prefix + backend.keyOf(id))).toBe(stored);
      const me = await raw(app.port, "GET", "/me", `sid=${value}`);
      expect(JSON.parse(me.body)).toMatchObject({ userId: 1, visits: 1, isNew: false, keys: ["userId", "visits"] });
    });

    it("an empty or short secret is refused when the binding is created, never at a request", async () => {
      const bad: unknown[] = ["", "short", "x".repeat(31), [], ["short", SECRET], [SECRET, ""], undefined, 42];
      for (const secret of bad) {
        const options = { store, secret } as unknown as SessionOptions;
        if (framework === "express") expect(() => expressSession(options)).toThrow(SessionConfigError);
        else if (framework === "koa") expect(() => koaSession(options)).toThrow(SessionConfigError);
        else {
          const fastify = Fastify();
          await expect(fastify.register(fastifySession, options).ready()).rejects.toThrow(SessionConfigError);
          await fastify.close();
        }
      }
      // The messages say what is wrong.
      expect(() => expressSession({ store, secret: "short" })).toThrow(/at least 32 characters/);
    });
  });
});
