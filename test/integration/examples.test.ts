/**
 * Every example app, run as a real process from the built package (examples import
 * `shared-session/...`, which resolves to dist/), walked through the journey a user takes:
 * login → count → who am I → logout. What the store holds is read from the server itself.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { services } from "../services/index.js";
import { AppProcess, Browser, EXAMPLES, ensureBuilt, type ExampleName } from "../helpers/app-process.js";
import { holdersOf } from "../helpers/memcached-servers.js";
import { EXAMPLES_SECRET, storeKeysFor } from "../helpers/store-keys.js";

/** Store keys of the example apps, which sign with their default secret. */
const keyOf = storeKeysFor(EXAMPLES_SECRET);

/** Where a store holds the session, seen from the server: how many servers hold its key. */
type HeldBy = (id: string) => Promise<number>;

let redis: Redis;

beforeAll(async () => {
  await ensureBuilt();
  redis = new Redis(services().redis.url);
}, 300_000); // a stale dist/ is rebuilt first

afterAll(() => {
  redis?.disconnect();
});

/** The whole journey on one app, with the store checked at each step. */
async function journey(app: AppProcess, heldBy: HeldBy): Promise<void> {
  const browser = new Browser();

  // A first visit reads nothing and stores nothing: no cookie.
  const first = await browser.get(app.url, "/");
  expect(first.status).toBe(200);
  expect(first.text).toContain("Not signed in");
  expect(first.setCookies).toEqual([]);

  const login = await browser.post(app.url, "/login", { user: "ada" });
  expect(login.status, app.output).toBe(303);
  expect(login.location).toBe("/");
  expect(login.setCookies).toHaveLength(1);
  expect(login.setCookies[0]).toMatch(/^sid=[0-9a-f-]{36}\.[A-Za-z0-9+/]{43}; Path=\/; HttpOnly; SameSite=Lax$/);
  const id = browser.sessionId;
  expect(id).toBeDefined();
  expect(await heldBy(id as string)).toBe(1);

  const page = await browser.get(app.url, "/");
  expect(page.text).toContain("Signed in as <b>ada</b>");
  expect(page.setCookies).toEqual([]); // an unchanged session sends no cookie again

  expect((await browser.post(app.url, "/count")).status).toBe(303);
  expect((await browser.post(app.url, "/count")).status).toBe(303);
  expect(await browser.whoami(app.url)).toEqual({ user: "ada", count: 2 });

  const logout = await browser.post(app.url, "/logout");
  expect(logout.status).toBe(303);
  expect(logout.setCookies).toHaveLength(1);
  expect(logout.setCookies[0]).toMatch(/^sid=;.*Max-Age=0/);
  expect(browser.cookies.size).toBe(0);
  expect(await heldBy(id as string)).toBe(0);

  // The old cookie, replayed, is a stranger now; counting needs a login again.
  const replay = new Browser();
  replay.cookies.set("sid", login.setCookies[0]!.split(";")[0]!.slice("sid=".length));
  expect(await replay.whoami(app.url)).toEqual({ user: null, count: 0 });
  expect((await replay.post(app.url, "/count")).status).toBe(401);
  expect((await browser.post(app.url, "/login", {})).status).toBe(400);
}

describe.each(EXAMPLES)("examples/%s.mjs on Redis", (name: ExampleName) => {
  let app: AppProcess;

  beforeAll(async () => {
    app = await AppProcess.start(name, { env: { REDIS_URL: services().redis.url, MEMCACHED_SERVERS: undefined } });
  });

  afterAll(async () => {
    await app?.kill();
  });

  test("login → count → who am I → logout, with the record in Redis exactly while logged in", async () => {
    await journey(app, async (id) => redis.exists(`sess:${keyOf(id)}`));
  });

  test("behind a TLS-terminating proxy (TRUST_PROXY=1, SESSION_COOKIE_NAME=__Host-sid) the cookie is Secure and named as asked", async () => {
    const proxied = await AppProcess.start(name, {
      env: { REDIS_URL: services().redis.url, MEMCACHED_SERVERS: undefined, TRUST_PROXY: "1", SESSION_COOKIE_NAME: "__Host-sid" },
    });
    const plain = await AppProcess.start(name, { env: { REDIS_URL: services().redis.url, MEMCACHED_SERVERS: undefined, TRUST_PROXY: "1" } });
    try {
      const viaProxy = { "x-forwarded-proto": "https", "content-type": "application/x-www-form-urlencoded" };
      const hostCookie = await fetch(`${proxied.url}/login`, { method: "POST", headers: viaProxy, body: "user=ada", redirect: "manual" });
      expect(hostCookie.headers.getSetCookie()).toEqual([expect.stringMatching(/^__Host-sid=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Secure$/)]);

      // The same app decides Secure from X-Forwarded-Proto, because it trusts its proxy.
      const https = await fetch(`${plain.url}/login`, { method: "POST", headers: viaProxy, body: "user=ada", redirect: "manual" });
      expect(https.headers.getSetCookie()).toEqual([expect.stringMatching(/; Secure$/)]);
      const http = await fetch(`${plain.url}/login`, {
        method: "POST",
        headers: { ...viaProxy, "x-forwarded-proto": "http" },
        body: "user=ada",
        redirect: "manual",
      });
      expect(http.headers.getSetCookie()).toEqual([expect.not.stringMatching(/Secure/)]);
    } finally {
      await Promise.all([proxied.kill(), plain.kill()]);
    }
  });

  test("SIGTERM closes the app cleanly (exit code 0)", async () => {
    const own = await AppProcess.start(name, { env: { REDIS_URL: services().redis.url, MEMCACHED_SERVERS: undefined } });
    const browser = new Browser();
    await browser.post(own.url, "/login", { user: "ada" }); // a keep-alive connection and a live store client
    expect(await own.kill("SIGTERM")).toBe(0);
  });
});

describe("examples/express.mjs on Memcached", () => {
  let app: AppProcess;
  let addresses: string[];

  beforeAll(async () => {
    addresses = services().memcached.servers.map((server) => server.address);
    app = await AppProcess.start("express", { env: { MEMCACHED_SERVERS: addresses.join(","), REDIS_URL: undefined } });
  });

  afterAll(async () => {
    await app?.kill();
  });

  test("login → count → who am I → logout, with the record in Memcached exactly while logged in", async () => {
    await journey(app, async (id) => (await holdersOf(addresses, `sess:${keyOf(id)}`)).length);
  });
});
