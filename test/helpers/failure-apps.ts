/**
 * Support of the failure tests (hostile input, outages): one small app written for Express, Koa and
 * Fastify with the routes those tests need, a raw-socket HTTP client that sends bytes as given,
 * and a fetch-based client that fails a test when an answer never comes.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import net from "node:net";
import express from "express";
import Fastify from "fastify";
import Koa from "koa";
import { expect } from "vitest";
import { expressSession } from "../../src/frameworks/express/index.js";
import { fastifySession } from "../../src/frameworks/fastify.js";
import { koaSession } from "../../src/frameworks/koa.js";
import type { Session, SessionLogEntry, SessionOptions } from "../../src/index.js";

export type Data = Record<string, unknown>;
export type FrameworkName = "express" | "koa" | "fastify";
export const FRAMEWORKS: readonly FrameworkName[] = ["express", "koa", "fastify"];

/** Size of the record `POST /big` tries to write. */
export const BIG = 3 * 1024 * 1024;

/** A point where `POST /gated-visit` waits after the session loaded and before it changes it. */
export interface Gate {
  /** Resolves when a request reached the gate. */
  readonly reached: Promise<void>;
  /** Lets the waiting request go on. */
  release(): void;
}

export interface App {
  readonly framework: FrameworkName;
  readonly port: number;
  readonly url: string;
  readonly logs: SessionLogEntry[];
  /** Errors that reached the app's error handling. */
  readonly errors: unknown[];
  /** Make the next `POST /gated-visit` wait at a gate. */
  gate(): Gate;
  close(): Promise<void>;
}

/** `current()` reads the request's session again: after `regenerate()` Express and Koa have a new object there. */
type Route = (s: Session<Data>, app: AppState, current: () => Session<Data>) => Promise<unknown> | unknown;
interface AppState {
  pending: { reached: () => void; released: Promise<void> } | null;
}

/** What every framework's app does with the session, written once. */
const ROUTES: Record<string, Route> = {
  "GET /noop": () => ({ ok: true }),
  "GET /me": (s) => ({
    userId: s.userId ?? null,
    visits: s.visits ?? null,
    isNew: s.isNew,
    keys: Object.keys(s),
    polluted: (({}) as Data).polluted ?? null,
  }),
  "POST /visit": (s) => {
    s.visits = (Number(s.visits) || 0) + 1;
    return { visits: s.visits };
  },
  "POST /gated-visit": async (s, app) => {
    const pending = app.pending;
    app.pending = null;
    if (pending !== null) {
      pending.reached();
      await pending.released;
    }
    s.visits = (Number(s.visits) || 0) + 1;
    return { visits: s.visits };
  },
  "POST /login": async (s, _app, current) => {
    await s.regenerate(); // the fixation defence the README tells apps to use
    const live = current(); // a new object on Express and Koa
    live.userId = 1;
    live.visits = 1;
    return { ok: true };
  },
  "POST /logout": async (s) => {
    await s.destroy();
    return { ok: true };
  },
  "POST /big": (s) => {
    s.blob = "x".repeat(BIG);
    return { ok: true };
  },
};

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** Start the app of `framework` on 127.0.0.1 with these session options (its `logger` is replaced by a capture). */
export async function startApp(framework: FrameworkName, options: SessionOptions): Promise<App> {
  const logs: SessionLogEntry[] = [];
  const errors: unknown[] = [];
  const state: AppState = { pending: null };
  const opts: SessionOptions = { ...options, logger: (entry) => logs.push(entry) };
  const gate = (): Gate => {
    let reached!: () => void;
    let release!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    state.pending = { reached, released };
    return { reached: reachedPromise, release };
  };
  const made = (port: number, close: () => Promise<void>): App => ({ framework, port, url: `http://127.0.0.1:${port}`, logs, errors, gate, close });

  if (framework === "express") {
    const app = express();
    app.set("env", "test"); // the final handler answers errors without printing them
    app.use(expressSession(opts));
    for (const [key, route] of Object.entries(ROUTES)) {
      const [method, path] = key.split(" ") as [string, string];
      app[method === "GET" ? "get" : "post"](path, async (req, res) => {
        res.json(await route(req.session as unknown as Session<Data>, state, () => req.session as unknown as Session<Data>));
      });
    }
    app.use((err: unknown, _req: express.Request, _res: express.Response, next: express.NextFunction) => {
      errors.push(err);
      next(err);
    });
    const server = createServer(app);
    const port = await listen(server);
    return made(port, () => closeServer(server));
  }
  if (framework === "koa") {
    const app = new Koa();
    app.silent = true;
    app.on("error", (err: unknown) => errors.push(err));
    app.use(koaSession(opts));
    app.use(async (ctx) => {
      const route = ROUTES[`${ctx.method} ${ctx.path}`];
      if (route === undefined) return;
      ctx.body = await route(ctx.session as unknown as Session<Data>, state, () => ctx.session as unknown as Session<Data>);
    });
    const server = createServer(app.callback());
    const port = await listen(server);
    return made(port, () => closeServer(server));
  }
  const app = Fastify();
  app.addHook("onError", async (_request, _reply, err) => {
    errors.push(err);
  });
  await app.register(fastifySession, opts);
  for (const [key, route] of Object.entries(ROUTES)) {
    const [method, url] = key.split(" ") as ["GET" | "POST", string];
    app.route({ method, url, handler: async (request) => route(request.session as unknown as Session<Data>, state, () => request.session as unknown as Session<Data>) });
  }
  await app.listen({ port: 0, host: "127.0.0.1" });
  return made((app.server.address() as AddressInfo).port, () => app.close());
}

export interface RawResponse {
  status: number;
  /** Header lines as received, names lower-cased. */
  headers: [string, string][];
  setCookies: string[];
  body: string;
}

/**
 * One request over a raw socket: the Cookie header's bytes go out exactly as given (latin1, so
 * every code below 256 is one byte). Rejects (failing the test) when no complete answer comes
 * within `boundMs`.
 */
export function raw(port: number, method: string, path: string, cookie: string | undefined, boundMs = 10_000): Promise<RawResponse> {
  const head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${cookie === undefined ? "" : `Cookie: ${cookie}\r\n`}Content-Length: 0\r\nConnection: close\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer to ${method} ${path} within ${boundMs} ms`));
    }, boundMs);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      const split = text.indexOf("\r\n\r\n");
      const [statusLine = "", ...lines] = text.slice(0, split === -1 ? text.length : split).split("\r\n");
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0);
      if (status === 0) {
        reject(new Error(`not an HTTP answer: ${JSON.stringify(text.slice(0, 200))}`));
        return;
      }
      const headers = lines.map((line): [string, string] => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]);
      let body = split === -1 ? "" : Buffer.from(text.slice(split + 4), "latin1").toString("utf8");
      if (headers.some(([n, v]) => n === "transfer-encoding" && v === "chunked")) body = unchunk(body);
      resolve({ status, headers, setCookies: headers.filter(([n]) => n === "set-cookie").map(([, v]) => v), body });
    });
    // Not end(): a half-closed request socket is dropped by Node's server before it answers.
    socket.write(Buffer.from(head, "latin1"));
  });
}

function unchunk(body: string): string {
  let out = "";
  let rest = body;
  for (;;) {
    const nl = rest.indexOf("\r\n");
    const size = parseInt(rest.slice(0, nl), 16);
    if (!(size > 0)) return out;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
}

/** The value of a header (the first one), or undefined. */
export function header(response: RawResponse, name: string): string | undefined {
  return response.headers.find(([n]) => n === name)?.[1];
}

/** The sid cookie a response set: its value, or "" for a clearing one; undefined when none. */
export function sid(response: RawResponse): string | undefined {
  const cookies = response.setCookies.filter((c) => c.startsWith("sid="));
  expect(cookies.length).toBeLessThanOrEqual(1);
  const cookie = cookies[0];
  if (cookie === undefined) return undefined;
  return cookie.slice(4, cookie.indexOf(";"));
}

/** The session id a signed cookie value carries. */
export function idOfValue(value: string): string {
  return value.slice(0, value.lastIndexOf("."));
}
