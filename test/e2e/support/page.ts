/**
 * Reading and driving the examples' page (examples/shared.mjs `page()`): `#who`, `#count`,
 * `#user` + `#login`, `#increment`, `#logout`, and "Served by process <pid>".
 */
import type { Page } from "playwright-core";

/** What one page view shows. */
export interface View {
  /** The `#who` line: "Signed in as <user>" or "Not signed in". */
  who: string;
  /** The counter, when signed in. */
  count: number | undefined;
  /** The pid in "Served by process <pid>". */
  pid: number;
}

/** Reads the page the browser shows now. */
export async function view(page: Page): Promise<View> {
  const who = ((await page.textContent("#who")) ?? "").trim();
  const countText = (await page.locator("#count").count()) > 0 ? await page.textContent("#count") : null;
  const served = /Served by process (\d+)/.exec((await page.textContent("body")) ?? "");
  if (!served) throw new Error(`the page shows no "Served by process": ${await page.content()}`);
  return { who, count: countText === null ? undefined : Number(countText), pid: Number(served[1]) };
}

/**
 * Clicks a button that submits a form and waits for the page the redirect leads to.
 * The current document has fired `load` already, so the next `load` event belongs to the new one.
 */
export async function submit(page: Page, selector: string): Promise<View> {
  const loaded = page.waitForEvent("load");
  await page.click(selector);
  await loaded;
  return view(page);
}

/** Fills the login form and submits it. */
export async function logIn(page: Page, user: string): Promise<View> {
  await page.fill("#user", user);
  return submit(page, "#login");
}

/** A `Set-Cookie` header taken apart: attribute names lower-cased, in the order sent. */
export interface SetCookie {
  name: string;
  value: string;
  attributes: Map<string, string>;
}

export function parseSetCookie(header: string): SetCookie {
  const [pair = "", ...rest] = header.split(";").map((part) => part.trim());
  const eq = pair.indexOf("=");
  const attributes = new Map<string, string>();
  for (const part of rest) {
    const at = part.indexOf("=");
    attributes.set((at === -1 ? part : part.slice(0, at)).toLowerCase(), at === -1 ? "" : part.slice(at + 1));
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attributes };
}

/** The session id inside a signed cookie value (`<id>.<signature>`). */
export function sessionIdOf(cookieValue: string): string {
  return decodeURIComponent(cookieValue).split(".")[0]!;
}

/** The slice of the page's globals these tests touch (the project's TypeScript has no DOM types). */
interface PageGlobals {
  document: { cookie: string };
}

/** `document.cookie` as the page's own scripts see it. */
export function documentCookie(page: Page): Promise<string> {
  return page.evaluate(() => (globalThis as unknown as PageGlobals).document.cookie);
}

/** Assigns each of `cookies` to `document.cookie` in the page, then reads `document.cookie` back. */
export function writeDocumentCookies(page: Page, cookies: string[]): Promise<string> {
  return page.evaluate((assignments) => {
    const { document } = globalThis as unknown as PageGlobals;
    for (const assignment of assignments) document.cookie = assignment;
    return document.cookie;
  }, cookies);
}
