/**
 * examples/websocket.mjs, run as a real process from the built package on a real Redis: the session
 * read on a WebSocket upgrade (`ws`) through `manager.load`. A signed-in cookie (signed in on this
 * process or on another app, examples/express.mjs) gets its user; no cookie, a forged one, a validly
 * signed unknown one and a logged-out one are refused before any socket exists.
 */
import signature from "cookie-signature";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { EXAMPLES_SECRET } from "../helpers/store-keys.js";
import { services } from "../services/index.js";
import { AppProcess, Browser, ensureBuilt } from "../helpers/app-process.js";

/** The first message, the close, or the HTTP status that refused the upgrade. */
interface Opened {
  socket?: WebSocket;
  status?: number;
  first?: unknown;
}

function open(app: AppProcess, cookie?: string, path = "/socket"): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${app.url.replace(/^http/, "ws")}${path}`, { headers: cookie === undefined ? {} : { cookie } });
    socket.once("unexpected-response", (_req, res) => {
      resolve({ status: res.statusCode });
      res.resume();
    });
    socket.once("message", (data) => resolve({ socket, first: JSON.parse(String(data)) }));
    socket.once("error", reject);
  });
}

function next(socket: WebSocket, send: string): Promise<{ message?: unknown; closed?: number }> {
  return new Promise((resolve) => {
    socket.once("message", (data) => resolve({ message: JSON.parse(String(data)) }));
    socket.once("close", (code) => resolve({ closed: code }));
    socket.send(send);
  });
}

describe("examples/websocket.mjs on Redis", () => {
  let app: AppProcess;
  let other: AppProcess;
  const env = () => ({ env: { REDIS_URL: services().redis.url, MEMCACHED_SERVERS: undefined } });

  beforeAll(async () => {
    await ensureBuilt();
    [app, other] = await Promise.all([AppProcess.start("websocket", env()), AppProcess.start("express", env())]);
  }, 300_000);

  afterAll(async () => {
    await Promise.all([app?.kill(), other?.kill()]);
  });

  it("refuses the upgrade with 401 without a cookie, with a forged one and with a validly signed unknown one", async () => {
    expect(await open(app)).toEqual({ status: 401 });
    const forged = `sid=${signature.sign(randomUUID(), "not-the-apps-secret-but-also-32-characters-long")}`;
    expect(await open(app, forged)).toEqual({ status: 401 });
    expect(await open(app, `sid=${signature.sign(randomUUID(), EXAMPLES_SECRET)}`)).toEqual({ status: 401 });
    expect(await open(app, "sid=garbage")).toEqual({ status: 401 });
    expect(app.output).not.toMatch(/Error/);
  });

  it("a cookie signed in over HTTP gets its user on the socket; after a logout the socket closes and the cookie is refused", async () => {
    const browser = new Browser();
    expect((await browser.post(app.url, "/login", { user: "ada" })).status).toBe(303);
    const opened = await open(app, browser.cookieHeader);
    expect(opened.first).toEqual({ hello: "ada" });
    const socket = opened.socket!;
    expect(await next(socket, "hi")).toEqual({ message: { user: "ada", echo: "hi" } });

    const cookie = browser.cookieHeader;
    expect((await browser.post(app.url, "/logout")).status).toBe(303);
    expect(await next(socket, "still there?")).toEqual({ closed: 4401 });
    expect(await open(app, cookie)).toEqual({ status: 401 });
  });

  it("a login on another app process (examples/express.mjs) opens the socket here, and its logout there ends it", async () => {
    const browser = new Browser();
    expect((await browser.post(other.url, "/login", { user: "grace" })).status).toBe(303);
    const opened = await open(app, browser.cookieHeader);
    expect(opened.first).toEqual({ hello: "grace" });
    expect((await browser.post(other.url, "/logout")).status).toBe(303);
    expect(await next(opened.socket!, "hi")).toEqual({ closed: 4401 });
  });

  it("answers 404 to an upgrade on another path, whatever the cookie", async () => {
    const browser = new Browser();
    await browser.post(app.url, "/login", { user: "ada" });
    expect(await open(app, browser.cookieHeader, "/elsewhere")).toEqual({ status: 404 });
  });
});
