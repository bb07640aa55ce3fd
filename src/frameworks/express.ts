import { STATUS_CODES, type ServerResponse } from "node:http";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { createSessionManager, StoreUnavailableError, type SessionManager, type SessionOptions } from "../index.js";
import type { Session, SessionData } from "../index.js";

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /**
       * The request's session (shared-session): data as properties, plus `id`, `regenerate()`,
       * `destroy()`, `save()`, `reload()`, `touch()` (promises, or node-style callbacks).
       * Set by `expressSession()`; absent on routes it does not cover.
       */
      session: Session;
    }
  }
}

/** Options of {@link expressSession}: the core's options, nothing Express-specific. */
export type ExpressSessionOptions<D extends object = SessionData> = SessionOptions<D>;

/** The middleware, carrying the manager it uses (for `listSessions`, `destroyOwnerSessions`, `on`). */
export type ExpressSessionMiddleware<D extends object = SessionData> = RequestHandler & { readonly manager: SessionManager<D> };

/** Marks a request whose session is already loaded, so a second mount is a no-op. */
const LOADED = Symbol.for("shared-session.express.loaded");

type Args = unknown[];
type Method = (...args: Args) => unknown;
type Held = { readonly kind: "writeHead" | "write" | "end" | "flushHeaders"; readonly args: Args };

/**
 * Express middleware (Express 4 and 5) that gives every request `req.session`.
 *
 * The session loads from the `Cookie` header (one store read, and only when the request carries a
 * validly signed cookie). Changes are written **before the response head is sent**: the binding holds
 * `res.writeHead`/`res.write`/`res.end`/`res.flushHeaders` until the write is in the store, so a client
 * that follows a redirect at once, to any process, sees the data. `Secure` follows `req.secure`
 * (set `app.set("trust proxy", …)` behind a TLS-terminating proxy).
 *
 * A store failure goes to `next(err)` as a {@link StoreUnavailableError} (`status` 503, `headers`
 * carrying `Retry-After`, which is also set on the response), at load and at the end of the request
 * alike, unless `onStoreError: "continue"`.
 *
 * @example
 * import express from "express";
 * import { expressSession } from "shared-session/express";
 *
 * const app = express();
 * app.set("trust proxy", 1);
 * app.use(expressSession({ store, secret: process.env.SESSION_SECRET! }));
 * app.post("/login", async (req, res) => {
 *   await req.session.regenerate();
 *   req.session.userId = 42;
 *   res.redirect(303, "/");
 * });
 */
export function expressSession<D extends object = SessionData>(options: ExpressSessionOptions<D>): ExpressSessionMiddleware<D> {
  const manager = createSessionManager<D>(options);
  return Object.assign(sharedSession, { manager });

  function sharedSession(req: Request, res: Response, next: NextFunction): void {
    const marked = req as Request & { [LOADED]?: true };
    if (marked[LOADED]) {
      next();
      return;
    }
    marked[LOADED] = true;
    manager.load(req.headers.cookie, { secure: req.secure === true }).then(
      (session) => {
        req.session = session as unknown as Session;
        holdResponse(req, res, async () => (await manager.commit(session)).setCookie);
        next();
      },
      (err: unknown) => {
        if (err instanceof StoreUnavailableError && !res.headersSent) res.setHeader("Retry-After", String(err.retryAfter));
        next(err);
      },
    );
  }
}

/** Statuses Node accepts in `writeHead`; checked when the app asks, so a bad one throws in the app's call as before. */
function checkStatus(code: unknown): void {
  const n = Number(code);
  if (!Number.isInteger(n) || n < 100 || n > 999) {
    throw new RangeError(`[shared-session] invalid status code: ${String(code)}`);
  }
}

/** Representation headers of a response that is being replaced by an error: they describe the discarded body. */
const BODY_HEADERS = ["content-type", "content-length", "content-encoding", "content-language", "content-range", "content-disposition", "etag", "last-modified", "location", "transfer-encoding"];

function appendSetCookie(res: ServerResponse, value: string): void {
  const current = res.getHeader("Set-Cookie");
  if (current === undefined) res.setHeader("Set-Cookie", value);
  else res.setHeader("Set-Cookie", [...(Array.isArray(current) ? current : [String(current)]), value]);
}

/** Apply the headers argument of `writeHead` now, as Node would, so ours can be added after them. */
function applyHeadArgument(res: ServerResponse, headers: unknown): void {
  if (Array.isArray(headers)) {
    if (headers.length % 2 !== 0) throw new TypeError("[shared-session] writeHead: the raw headers array must have an even length");
    for (let i = 0; i < headers.length; i += 2) res.removeHeader(String(headers[i]));
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i]) res.appendHeader(String(headers[i]), headers[i + 1] as string | string[]);
    }
  } else if (headers !== null && typeof headers === "object") {
    for (const [name, value] of Object.entries(headers)) {
      if (name && value !== undefined) res.setHeader(name, value as string | number | readonly string[]);
    }
  }
}

/**
 * Hold the response until the session is committed. The first call that would send the head starts
 * the commit; it and every call after it are queued and replayed, in order, once the write is in the
 * store and `Set-Cookie` is set. A failed commit discards the app's response and goes to `next(err)`
 * (through `req.next`, the way Express routes errors of `res.sendFile`), or, when the app was still
 * streaming, answers the error itself. When the app streamed and changed the session after the head
 * went out, `end` writes once more before ending (the cookie can no longer change then).
 */
function holdResponse(req: Request, res: Response, commit: () => Promise<string | undefined>): void {
  const raw = res as unknown as Record<"writeHead" | "write" | "end" | "flushHeaders", Method>;
  const original = { writeHead: raw.writeHead, write: raw.write, end: raw.end, flushHeaders: raw.flushHeaders };
  const call = (method: Method, args: Args): unknown => Reflect.apply(method, res, args);
  /** open: nothing sent yet; holding: committing; passing: head out; rerouted: the error is with Express; discarding: we answered. */
  let phase: "open" | "holding" | "passing" | "rerouted" | "discarding" = "open";
  const queue: Held[] = [];
  let waitingForDrain = false;

  const hold = (held: Held): void => {
    queue.push(held);
    if (phase !== "open") return;
    phase = "holding";
    commit().then(release, fail).catch(abort);
  };

  /** Last resort for a bug in the replay itself: never an unhandled rejection, never a hung response. */
  function abort(err: unknown): void {
    phase = "discarding";
    res.destroy(err instanceof Error ? err : new Error(String(err)));
  }

  function release(setCookie: string | undefined): void {
    phase = "passing";
    let cookie = setCookie;
    const addCookie = (): void => {
      if (cookie !== undefined && !res.headersSent) appendSetCookie(res, cookie);
      cookie = undefined;
    };
    let lastWrite = true;
    try {
      for (const { kind, args } of queue.splice(0)) {
        addCookie();
        if (kind === "write") lastWrite = call(original.write, args) !== false;
        else call(original[kind], args);
      }
    } catch (err) {
      // Node refused a replayed call the app made (it would have thrown in the app's own call).
      res.destroy(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (waitingForDrain && lastWrite && !res.writableEnded) {
      waitingForDrain = false;
      res.emit("drain");
    }
  }

  function fail(err: unknown): void {
    const ended = queue.some((held) => held.kind === "end");
    const callbacks = queue.splice(0).flatMap(({ args }) => args.filter((a): a is (e?: unknown) => void => typeof a === "function"));
    for (const cb of callbacks) process.nextTick(cb, err);
    if (res.headersSent) {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    for (const name of BODY_HEADERS) res.removeHeader(name);
    res.setHeader("Cache-Control", "no-store");
    if (err instanceof StoreUnavailableError) res.setHeader("Retry-After", String(err.retryAfter));
    const status = errorStatus(err);
    res.statusCode = status;
    if (ended) {
      // The app finished its answer: route the error as if it had called next(err) instead.
      phase = "rerouted";
      const route = typeof req.next === "function" ? req.next : undefined;
      if (route !== undefined) {
        route(err);
        return;
      }
    }
    // The app is still streaming: its writes go nowhere from now on, and we answer.
    phase = "discarding";
    const body = `${status} ${STATUS_CODES[status] ?? "Error"}\n`;
    res.setHeader("Content-Type", "text/plain; charset=utf-8");
    res.setHeader("Content-Length", Buffer.byteLength(body));
    call(original.writeHead, [status]);
    call(original.end, [body]);
  }

  raw.writeHead = function writeHead(...args: Args): unknown {
    if (phase === "passing" || phase === "rerouted") return call(original.writeHead, args);
    if (phase === "discarding") return res;
    checkStatus(args[0]);
    // Take the headers argument now (as Node would), so our Set-Cookie is added after, not overwritten.
    const hasReason = typeof args[1] === "string";
    applyHeadArgument(res, hasReason ? args[2] : args[1]);
    res.statusCode = Number(args[0]);
    if (hasReason) res.statusMessage = args[1] as string;
    hold({ kind: "writeHead", args: hasReason ? [args[0], args[1]] : [args[0]] });
    return res;
  };

  raw.flushHeaders = function flushHeaders(...args: Args): unknown {
    if (phase === "passing" || phase === "rerouted") return call(original.flushHeaders, args);
    if (phase === "discarding") return undefined;
    if (!res.headersSent) checkStatus(res.statusCode);
    hold({ kind: "flushHeaders", args });
    return undefined;
  };

  raw.write = function write(...args: Args): unknown {
    if (phase === "passing" || phase === "rerouted") return call(original.write, args);
    if (phase === "discarding") {
      const cb = args.find((a): a is (e?: unknown) => void => typeof a === "function");
      if (cb !== undefined) process.nextTick(cb, new Error("[shared-session] response was replaced by an error"));
      return false;
    }
    if (!res.headersSent) checkStatus(res.statusCode);
    hold({ kind: "write", args });
    waitingForDrain = true;
    return false;
  };

  raw.end = function end(...args: Args): unknown {
    if (phase === "rerouted") return call(original.end, args);
    if (phase === "discarding") return res;
    if (phase === "passing") {
      // The head is out (the app streamed); write what changed since, then end.
      if (res.writableEnded) return call(original.end, args);
      phase = "holding";
      queue.push({ kind: "end", args });
      // Failing now, the client must not take a complete-looking response: cut it.
      commit().then(() => release(undefined), abort);
      return res;
    }
    if (!res.headersSent) checkStatus(res.statusCode);
    hold({ kind: "end", args });
    return res;
  };
}

function errorStatus(err: unknown): number {
  if (err instanceof StoreUnavailableError) return 503;
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === "number" && status >= 400 && status <= 599 ? status : 500;
}
