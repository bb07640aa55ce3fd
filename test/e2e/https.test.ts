/**
 * The examples behind a TLS-terminating proxy (a self-signed certificate made by the test; the
 * proxy speaks HTTP to the app and says `X-Forwarded-Proto: https`). Each framework's trust-proxy
 * setting decides whether the app sees HTTPS, hence `Secure`; Chromium decides what it keeps.
 */
import type { BrowserContext } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { services } from "../services/index.js";
import { closeSharedBrowser, newContext, onlyCookie, sharedBrowser } from "./support/browser.js";
import { selfSignedCertificate } from "./support/certificate.js";
import { EXAMPLES, startExample, type ExampleName, type RunningExample } from "./support/example.js";
import { documentCookie, logIn, parseSetCookie, submit, view } from "./support/page.js";
import { startProxy, type ProxyOptions, type RunningProxy } from "./support/proxy.js";

const names = Object.keys(EXAMPLES) as ExampleName[];

interface Case {
  title: string;
  trustProxy: boolean;
  cookieName: "sid" | "__Host-sid";
  /** Whether the app marks the cookie Secure. */
  secure: boolean;
}

const cases: Case[] = [
  { title: "trust proxy on, __Host-sid: Secure, and the prefixed name works", trustProxy: true, cookieName: "__Host-sid", secure: true },
  { title: "trust proxy on, sid: Secure because the app believes X-Forwarded-Proto", trustProxy: true, cookieName: "sid", secure: true },
  { title: "trust proxy off, sid: not Secure, the app cannot tell the browser used HTTPS", trustProxy: false, cookieName: "sid", secure: false },
  { title: "trust proxy off, __Host-sid: Secure all the same, the library forces it for the prefix", trustProxy: false, cookieName: "__Host-sid", secure: true },
];

let tls: { key: string; cert: string };
let context: BrowserContext | undefined;
let app: RunningExample | undefined;
let proxy: RunningProxy | undefined;

beforeAll(() => {
  tls = selfSignedCertificate();
});

afterEach(async () => {
  await context?.close();
  await proxy?.close();
  await app?.stop();
  context = undefined;
  proxy = undefined;
  app = undefined;
});

afterAll(async () => {
  await closeSharedBrowser();
});

/** One example process behind the TLS proxy, and a fresh browser context that ignores the self-signed certificate. */
async function setUp(name: ExampleName, settings: { trustProxy: boolean; cookieName: string }, proxyOptions: ProxyOptions = {}) {
  const browser = await sharedBrowser();
  app = await startExample(name, { redisUrl: services().redis.url, trustProxy: settings.trustProxy, cookieName: settings.cookieName });
  proxy = await startProxy([app.url], { ...proxyOptions, tls });
  context = await newContext(browser, { https: true });
  return { app, proxy, context, page: await context.newPage() };
}

describe.each(names)("examples/%s.mjs in Chromium over HTTPS behind a TLS-terminating proxy", (name) => {
  for (const { title, trustProxy, cookieName, secure } of cases) test(title, async () => {
    const { proxy, context, page } = await setUp(name, { trustProxy, cookieName });
    expect(proxy.url).toMatch(/^https:/);

    await page.goto(`${proxy.url}/`);
    expect(await view(page)).toMatchObject({ who: "Not signed in" });
    expect(await logIn(page, "ada")).toMatchObject({ who: "Signed in as ada", count: 0 });

    // What the app sent ...
    const login = proxy.exchanges.find((exchange) => exchange.method === "POST" && exchange.path === "/login");
    expect(login?.setCookie).toHaveLength(1);
    const sent = parseSetCookie(login!.setCookie[0]!);
    expect(sent.name).toBe(cookieName);
    expect(sent.attributes.has("secure")).toBe(secure);
    expect(sent.attributes.has("httponly")).toBe(true);
    expect(sent.attributes.has("expires") || sent.attributes.has("max-age")).toBe(false);

    // ... and what the browser stored and sends back.
    const cookie = await onlyCookie(context, cookieName);
    expect(cookie).toMatchObject({ value: sent.value, path: "/", secure, httpOnly: true, sameSite: "Lax", expires: -1 });
    expect(await documentCookie(page)).toBe("");

    await page.reload();
    expect(await view(page)).toMatchObject({ who: "Signed in as ada", count: 0 });
    expect(proxy.exchanges.at(-1)?.cookie).toBe(`${cookieName}=${cookie.value}`);
    expect(await submit(page, "#increment")).toMatchObject({ who: "Signed in as ada", count: 1 });

    expect(await submit(page, "#logout")).toMatchObject({ who: "Not signed in" });
    expect(await context.cookies()).toEqual([]);
  });
});

describe("what Chromium enforces", () => {
  test("a __Host- cookie without Secure is rejected: the login does not stick", async () => {
    // Our library never sends this (it forces Secure for __Host- names, see above), so the proxy
    // strips Secure from the app's cookie to show what the browser does with such a cookie.
    const { proxy, context, page } = await setUp(
      "node-http",
      { trustProxy: false, cookieName: "__Host-sid" },
      { rewriteSetCookie: (value) => value.replace(/;\s*Secure/i, "") },
    );
    await page.goto(`${proxy.url}/`);
    expect(await logIn(page, "ada")).toMatchObject({ who: "Not signed in" });

    const login = proxy.exchanges.find((exchange) => exchange.method === "POST" && exchange.path === "/login");
    expect(login?.status).toBe(303);
    expect(parseSetCookie(login!.setCookie[0]!)).toMatchObject({ name: "__Host-sid" });
    expect(await context.cookies()).toEqual([]);
    // The page after the redirect was asked for without any cookie.
    expect(proxy.exchanges.at(-1)).toMatchObject({ method: "GET", path: "/", cookie: undefined });
  });

  test("the same cookie with Secure, over the same HTTPS origin, is kept (control)", async () => {
    const { proxy, context, page } = await setUp("node-http", { trustProxy: false, cookieName: "__Host-sid" });
    await page.goto(`${proxy.url}/`);
    expect(await logIn(page, "ada")).toMatchObject({ who: "Signed in as ada" });
    expect((await onlyCookie(context, "__Host-sid")).secure).toBe(true);
  });
});
