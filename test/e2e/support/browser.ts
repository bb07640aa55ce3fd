/**
 * Debian's Chromium driven by playwright-core. No browser is ever downloaded: the binary comes
 * from the `chromium` package (scripts/provision.sh installs it), and a missing one fails the run.
 */
import { accessSync, constants } from "node:fs";
import { chromium, type Browser, type BrowserContext, type Cookie } from "playwright-core";

/**
 * Where Debian installs Chromium. `SHARED_SESSION_CHROMIUM` points elsewhere (another distribution).
 * @default "/usr/bin/chromium"
 */
export const CHROMIUM_PATH = process.env.SHARED_SESSION_CHROMIUM ?? "/usr/bin/chromium";

/** Throws, never skips, when the browser is not installed. */
export function assertChromiumInstalled(path: string = CHROMIUM_PATH): void {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(
      `[e2e] no Chromium at ${path}. The browser tests drive Debian's Chromium and never download one: ` +
        "install it with `apt-get install chromium` (scripts/provision.sh does), " +
        "or point SHARED_SESSION_CHROMIUM at a Chromium binary.",
    );
  }
}

/** Headless Chromium with nothing running in the background (no sync, updates, QUIC or GPU). */
export async function launchChromium(): Promise<Browser> {
  assertChromiumInstalled();
  const args = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ];
  // Chromium refuses to start as root with its sandbox on.
  if (process.getuid?.() === 0) args.unshift("--no-sandbox");
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args });
}

let shared: Promise<Browser> | undefined;

/**
 * One browser per test file, launched by the first test that asks. Each test awaits it, so a
 * missing Chromium fails every test with the install hint instead of leaving them skipped.
 */
export function sharedBrowser(): Promise<Browser> {
  shared ??= launchChromium();
  return shared;
}

/** Closes the browser {@link sharedBrowser} launched, if it did. */
export async function closeSharedBrowser(): Promise<void> {
  const launched = shared;
  shared = undefined;
  await launched?.then(
    (browser) => browser.close(),
    () => undefined,
  );
}

/**
 * A fresh context (its own cookie jar) with a fixed viewport, so screenshots look alike everywhere.
 * `ignoreHTTPSErrors` accepts the test's self-signed certificate.
 */
export function newContext(browser: Browser, options: { https?: boolean } = {}): Promise<BrowserContext> {
  return browser.newContext({
    viewport: { width: 640, height: 360 },
    deviceScaleFactor: 1,
    ignoreHTTPSErrors: options.https === true,
    locale: "en-US",
  });
}

/** The one cookie named `name` the context holds (throws when there is none or several). */
export async function onlyCookie(context: BrowserContext, name: string): Promise<Cookie> {
  const cookies = await context.cookies();
  const named = cookies.filter((cookie) => cookie.name === name);
  if (named.length !== 1) {
    throw new Error(`expected exactly one ${name} cookie, the browser holds ${JSON.stringify(cookies)}`);
  }
  return named[0]!;
}
