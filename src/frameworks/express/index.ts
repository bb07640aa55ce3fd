import type { NextFunction, Request, RequestHandler, Response } from "express";
import { createSessionManager, SessionConfigError, StoreUnavailableError, type SessionManager, type SessionOptions } from "../../index.js";
import type { Session, SessionData } from "../../index.js";
import { HOLD, type Hold, type Holder } from "./hold.js";
import { holdResponse } from "./install.js";
import { defineSessionID } from "./session-id.js";

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
      /** The session's id, `req.session.id` (express-session's name); read-only. */
      readonly sessionID: string;
    }
  }
}

/** Options of {@link expressSession}: the core's options, nothing Express-specific. */
export type ExpressSessionOptions<D extends object = SessionData> = SessionOptions<D>;

/** The middleware, carrying the manager it uses (for `listSessions`, `destroyOwnerSessions`, `on`). */
export type ExpressSessionMiddleware<D extends object = SessionData> = RequestHandler & { readonly manager: SessionManager<D> };

/**
 * Express middleware (Express 4 and 5) that gives every request `req.session`.
 *
 * The session loads from the `Cookie` header (one store read, and only when the request carries a
 * validly signed cookie). Changes are written **before the response head is sent**: the binding holds
 * `res.writeHead`/`res.write`/`res.end`/`res.flushHeaders` until the write is in the store, so a client
 * that follows a redirect at once, to any process, sees the data. A request that changed nothing is
 * not held at all. `Secure` follows `req.secure` (set `app.set("trust proxy", …)` behind a
 * TLS-terminating proxy).
 *
 * A store failure goes to `next(err)` as a {@link StoreUnavailableError} (`status` 503, `headers`
 * carrying `Retry-After`, which is also set on the response), at load and at the end of the request
 * alike, unless `onStoreError: "continue"`.
 *
 * How the hold is made: on first use the binding defines those four methods on Express's response
 * prototype (`express.response`, the object Express documents for extending `res`), as calls that
 * pass straight through for every response without a session. That costs a property lookup per call,
 * where wrapping four methods on every `res` object cost about a tenth of Express's throughput.
 * When `res` already carries its own versions (a middleware that wraps them ran first), the binding
 * wraps that response's methods instead.
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
  const core = manager as unknown as SessionManager<never>;
  return Object.assign(sharedSession, { manager });

  function sharedSession(req: Request, res: Response, next: NextFunction): void {
    const holder = res as unknown as Holder;
    const current = holder[HOLD];
    if (current !== undefined) {
      // The same instance again: nothing to do. Another instance: its own session, committed with the first.
      if (current === null || current.manager === core || current.others?.some((o) => o.manager === core) === true) next();
      else cover(req, current, core, manager, next);
      return;
    }
    holder[HOLD] = null;
    const loaded = load(manager, req);
    if (loaded instanceof Promise) {
      loaded.then(
        (session) => start(req, holder, core, session as unknown as Session, next),
        (err: unknown) => {
          if (err instanceof StoreUnavailableError && !res.headersSent) res.setHeader("Retry-After", String(err.retryAfter));
          next(err);
        },
      );
    } else {
      start(req, holder, core, loaded as unknown as Session, next);
    }
  }
}

/** The request's session from its cookie (or the `header` option's header); a throw comes back as a rejection. */
function load<D extends object>(manager: SessionManager<D>, req: Request): Session<D> | Promise<Session<D>> {
  try {
    return manager.loadNow(req.headers.cookie, { secure: req.secure === true, header: manager.headerName && req.headers[manager.headerName] });
  } catch (err) {
    return Promise.reject(err);
  }
}

/** A second, differently configured instance on a held request: `req.session` is its session from here on. */
function cover<D extends object>(req: Request, hold: Hold, core: SessionManager<never>, manager: SessionManager<D>, next: NextFunction): void {
  if (hold.manager.cookieName === manager.cookieName || hold.others?.some((o) => o.manager.cookieName === manager.cookieName) === true) {
    // Two sessions under one cookie name would overwrite each other's cookie: refuse, loudly.
    next(
      new SessionConfigError(
        `expressSession: two different instances with the cookie name "${manager.cookieName}" cover this request; give the inner one its own \`name\`, or mount one instance`,
      ),
    );
    return;
  }
  const loaded = load(manager, req);
  const adopt = (session: Session<D>): void => {
    (hold.others ??= []).push({ manager: core, session: session as unknown as Session });
    req.session = session as unknown as Session;
    manager.replaceOnRegenerate(session, req);
    next();
  };
  if (loaded instanceof Promise) {
    loaded.then(adopt, (err: unknown) => {
      if (err instanceof StoreUnavailableError && !hold.res.headersSent) hold.res.setHeader("Retry-After", String(err.retryAfter));
      next(err);
    });
  } else {
    adopt(loaded);
  }
}

/** The session is loaded: on the request, and the response held until it is committed. */
function start(req: Request, res: Holder, manager: SessionManager<never>, session: Session, next: NextFunction): void {
  req.session = session;
  // regenerate() puts a new object in req.session, as express-session does (Passport's keepSessionInfo reads the old one).
  manager.replaceOnRegenerate(session, req);
  defineSessionID(req);
  holdResponse(req, res, manager, session);
  next();
}
