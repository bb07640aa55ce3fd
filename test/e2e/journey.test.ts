/**
 * The examples' login journey in a real browser, over HTTP: two processes of one example behind a
 * round-robin proxy (one origin), a real Redis, and Chromium doing what browsers do with cookies
 * (HttpOnly, SameSite=Lax, browser-session lifetime).
 */
import { mkdirSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { services } from "../services/index.js";
import { closeSharedBrowser, newContext, onlyCookie, sharedBrowser } from "./support/browser.js";
import { E2E_SECRET, EXAMPLES, startExamples, type ExampleName, type RunningExample } from "./support/example.js";
import { documentCookie, logIn, parseSetCookie, sessionIdOf, submit, view, writeDocumentCookies, type View } from "./support/page.js";
import { startProxy, type RunningProxy } from "./support/proxy.js";
import { storeKeysFor } from "../helpers/store-keys.js";

/** The README's screenshots are replaced only when asked (UPDATE_SCREENSHOTS=1); otherwise they go to a scratch folder. */
const SCREENSHOTS =
  process.env.UPDATE_SCREENSHOTS === "1" ? fileURLToPath(new URL("../../docs/screenshots/", import.meta.url)) : join(tmpdir(), "shared-session-screenshots") + "/";
const names = Object.keys(EXAMPLES) as ExampleName[];

let redis: Redis;

beforeAll(() => {
  redis = new Redis(services().redis.url);
});

afterAll(async () => {
  await closeSharedBrowser();
  redis?.disconnect();
});

describe.each(names)("examples/%s.mjs in Chromium over HTTP", (name) => {
  let processes: RunningExample[] = [];
  let proxy: RunningProxy;
  let context: BrowserContext | undefined;

  beforeAll(async () => {
    processes = await startExamples(name, { redisUrl: services().redis.url }, 2);
    proxy = await startProxy(processes.map((app) => app.url));
  });

  afterAll(async () => {
    await context?.close();
    await proxy?.close();
    await Promise.all(processes.map((app) => app.stop()));
  });

  async function freshPage(): Promise<Page> {
    await context?.close();
    context = await newContext(await sharedBrowser());
    return context.newPage();
  }

  test("log in, reload, count on two processes behind one origin, log out", async () => {
    const page = await freshPage();
    const views: View[] = [];
    const pids = new Set(processes.map((app) => app.pid));

    // Anonymous: the page is served, no session is made, no cookie is sent (lazy sessions).
    await page.goto(`${proxy.url}/`);
    views.push(await view(page));
    expect(views.at(-1)).toMatchObject({ who: "Not signed in", count: undefined });
    expect(await context!.cookies()).toEqual([]);
    expect(proxy.exchanges.at(-1)?.setCookie).toEqual([]);

    // Log in through the form.
    views.push(await logIn(page, "ada"));
    expect(views.at(-1)).toMatchObject({ who: "Signed in as ada", count: 0 });

    // One cookie, as the app sent it: HttpOnly, SameSite=Lax, Path=/, no Secure over HTTP, no lifetime.
    const loginExchange = proxy.exchanges.find((exchange) => exchange.method === "POST" && exchange.path === "/login");
    expect(loginExchange?.status).toBe(303);
    expect(loginExchange?.setCookie).toHaveLength(1);
    const sent = parseSetCookie(loginExchange!.setCookie[0]!);
    expect(sent.name).toBe("sid");
    expect([...sent.attributes.keys()].sort()).toEqual(["httponly", "path", "samesite"]);
    expect(sent.attributes.get("path")).toBe("/");
    expect(sent.attributes.get("samesite")?.toLowerCase()).toBe("lax");

    // ... and as the browser stored it: a browser-session cookie (expires -1) it keeps from scripts.
    const cookie = await onlyCookie(context!, "sid");
    expect(cookie).toMatchObject({ value: sent.value, domain: "127.0.0.1", path: "/", httpOnly: true, secure: false, sameSite: "Lax", expires: -1 });
    expect(await context!.cookies()).toHaveLength(1);

    // The session is in Redis under the keyed hash of the id the cookie carries, with a TTL.
    const key = `sess:${storeKeysFor(E2E_SECRET)(sessionIdOf(cookie.value))}`;
    expect(await redis.exists(key)).toBe(1);
    expect(await redis.ttl(key)).toBeGreaterThan(0);

    // HttpOnly: document.cookie neither shows the session cookie nor can replace it;
    // a script's own cookie is visible and sent along.
    expect(await documentCookie(page)).toBe("");
    const afterScript = await writeDocumentCookies(page, ["sid=forged-by-script; path=/", "theme=dark; path=/"]);
    expect(afterScript).toBe("theme=dark");
    expect((await onlyCookie(context!, "sid")).value).toBe(cookie.value);

    // Reload: still signed in, the browser sends both cookies.
    await page.reload();
    views.push(await view(page));
    expect(views.at(-1)).toMatchObject({ who: "Signed in as ada", count: 0 });
    const reloadCookies = proxy.exchanges.at(-1)?.cookie ?? "";
    expect(reloadCookies).toContain(`sid=${cookie.value}`);
    expect(reloadCookies).toContain("theme=dark");

    // Count three times: each POST and the page its redirect leads to go to different processes.
    const before = proxy.exchanges.length;
    for (const expected of [1, 2, 3]) {
      views.push(await submit(page, "#increment"));
      expect(views.at(-1)).toMatchObject({ who: "Signed in as ada", count: expected });
    }
    const counting = proxy.exchanges.slice(before);
    expect(counting.map((exchange) => `${exchange.method} ${exchange.path} ${exchange.status}`)).toEqual([
      ...["POST /count 303", "GET / 200"],
      ...["POST /count 303", "GET / 200"],
      ...["POST /count 303", "GET / 200"],
    ]);
    for (let i = 0; i < counting.length; i += 2) expect(counting[i]!.backend).not.toBe(counting[i + 1]!.backend);

    // Both processes served pages of this one session, and the count carried on between them.
    const seen = new Set(views.map((shown) => shown.pid));
    expect(seen).toEqual(pids);
    expect(views.map((shown) => shown.count)).toEqual([undefined, 0, 0, 1, 2, 3]);

    // The page after login, for the README.
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: `${SCREENSHOTS}${name}.png` });

    // GET /me from the other process agrees.
    await page.goto(`${proxy.url}/me`);
    expect(JSON.parse((await page.textContent("body")) ?? "")).toEqual({ user: "ada", count: 3 });
    await page.goto(`${proxy.url}/`);

    // Log out: the browser drops the session cookie, Redis drops the record; the script's cookie stays.
    views.push(await submit(page, "#logout"));
    expect(views.at(-1)).toMatchObject({ who: "Not signed in", count: undefined });
    expect((await context!.cookies()).map((stored) => stored.name)).toEqual(["theme"]);
    expect(await redis.exists(key)).toBe(0);

    // The old cookie, put back by hand, does not bring the session back; the app clears it again.
    await context!.addCookies([{ ...cookie, sameSite: "Lax" }]);
    await page.goto(`${proxy.url}/`);
    expect(await view(page)).toMatchObject({ who: "Not signed in", count: undefined });
    expect(await redis.exists(key)).toBe(0);
    expect((await context!.cookies()).map((stored) => stored.name)).toEqual(["theme"]);
  });

  test("SameSite=Lax: a cross-site form post arrives without the cookie, a cross-site link with it", async () => {
    const page = await freshPage();
    await page.goto(`${proxy.url}/`);
    expect(await logIn(page, "grace")).toMatchObject({ who: "Signed in as grace", count: 0 });
    const cookie = await onlyCookie(context!, "sid");

    // Another site: `localhost` is not the same site as `127.0.0.1`.
    const attacker = http.createServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "text/html" }).end(
        `<!doctype html><form method="post" action="${proxy.url}/count"><button id="post">post</button></form>` +
          `<a id="link" href="${proxy.url}/">open the app</a>`,
      );
    });
    await new Promise<void>((resolve) => attacker.listen(0, "127.0.0.1", () => resolve()));
    try {
      const attackerUrl = `http://localhost:${(attacker.address() as AddressInfo).port}/`;

      await page.goto(attackerUrl);
      const loaded = page.waitForEvent("load");
      await page.click("#post");
      await loaded;
      const crossPost = proxy.exchanges.at(-1)!;
      expect(crossPost).toMatchObject({ method: "POST", path: "/count", status: 401 });
      expect(crossPost.origin).toBe(new URL(attackerUrl).origin);
      // Without an explicit SameSite attribute this post WOULD carry the cookie: Chromium's default
      // ("Lax, allowing unsafe top-level POSTs for 2 minutes after the cookie was set") lets it through,
      // as a run with the attribute stripped showed here. So this checks that the app sends SameSite=Lax.
      expect(crossPost.cookie ?? "").not.toContain("sid=");
      await page.goto(`${proxy.url}/`);
      expect(await view(page)).toMatchObject({ who: "Signed in as grace", count: 0 });

      await page.goto(attackerUrl);
      const followed = page.waitForEvent("load");
      await page.click("#link");
      await followed;
      expect(await view(page)).toMatchObject({ who: "Signed in as grace", count: 0 });
      expect(proxy.exchanges.at(-1)?.cookie).toContain(`sid=${cookie.value}`);
      expect(await submit(page, "#logout")).toMatchObject({ who: "Not signed in" });
    } finally {
      await new Promise<void>((resolve) => attacker.close(() => resolve()));
    }
  });
});
