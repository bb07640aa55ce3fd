import type { Context, Middleware, Next } from "koa";
import { createSessionManager, SessionConfigError, StoreUnavailableError, type SessionManager, type SessionOptions } from "../index.js";
import type { DataKey, Session, SessionData } from "../index.js";

/** Data that `ctx.session = { … }` puts in place of the session's current data. */
export type SessionInit<D extends object = SessionData> = { [K in DataKey<D>]?: D[K] };

declare module "koa" {
  interface DefaultContext {
    /**
     * The request's session (shared-session): data as properties, plus `id`, `regenerate()`,
     * `destroy()`, `save()`, `reload()`, `touch()`. Set by `koaSession()`.
     */
    get session(): Session;
    /**
     * `ctx.session = null` destroys the session when the request ends (koa-session's idiom);
     * `ctx.session = { … }` replaces its data.
     */
    set session(value: Session | SessionInit | null);
  }
}

/** The middleware, carrying the manager it uses (for `listSessions`, `destroyOwnerSessions`, `on`). */
export type KoaSessionMiddleware<D extends object = SessionData> = Middleware & { readonly manager: SessionManager<D> };

/** Options of {@link koaSession}: the core's options, plus koa-session's two hooks. */
export interface KoaSessionOptions<D extends object = SessionData> extends SessionOptions<D> {
  /**
   * koa-session's `valid(ctx, data)`: called with a loaded session's data; `false` means the session
   * is not to be used: it is regenerated (its record deleted, a new id, empty data) before the app runs.
   */
  valid?: (ctx: Context, data: Readonly<Partial<D>>) => boolean;
  /**
   * koa-session's `beforeSave(ctx, session)`: called after the app, before the session is committed
   * (not after `ctx.session = null`). May change the session; may return a promise.
   */
  beforeSave?: (ctx: Context, session: Session<D>) => unknown;
}

const STATE = Symbol("shared-session.koa.state");

interface RequestState {
  /** The request's session: `regenerate()` puts a new object here (the core's slot). */
  session: Session;
  /** The cookie of the instance that made it. */
  readonly cookieName: string;
  /** `ctx.session = null` was assigned: destroy when the request ends. */
  destroyAtEnd: boolean;
}

function stateOf(ctx: object): RequestState {
  return (ctx as { [STATE]: RequestState })[STATE];
}

/** `ctx.session`: an own, enumerable accessor on each ctx, the same functions for every request. */
const SESSION_PROPERTY: PropertyDescriptor = {
  configurable: true,
  enumerable: true,
  get(this: object) {
    return stateOf(this).session;
  },
  set(this: object, value: unknown) {
    const state = stateOf(this);
    const session = state.session;
    if (value === session) return;
    if (value === null) {
      clearData(session);
      state.destroyAtEnd = true;
      return;
    }
    if (typeof value !== "object" || Array.isArray(value)) {
      throw new TypeError("[shared-session] ctx.session can only be set to null (destroy) or an object of data");
    }
    clearData(session);
    const target = session as unknown as { set(key: string, value: unknown): void };
    for (const [key, item] of Object.entries(value)) target.set(key, item);
  },
};

/**
 * Koa middleware (Koa 2 and 3) that gives every request `ctx.session`.
 *
 * It loads the session from the `Cookie` header, runs the rest of the app, then writes what changed
 * and sets `Set-Cookie`, all before Koa sends the response, so a client that follows a redirect at
 * once, to any process, sees the data. The write also happens when downstream throws. `Secure`
 * follows `ctx.secure` (set `app.proxy = true` behind a TLS-terminating proxy).
 *
 * A store failure throws a {@link StoreUnavailableError} (`status` 503, `expose`, and `headers` with
 * `Retry-After`, which Koa's error handler sends; the header is also set on `ctx`), unless
 * `onStoreError: "continue"`.
 *
 * @example
 * import Koa from "koa";
 * import { koaSession } from "shared-session/koa";
 *
 * const app = new Koa();
 * app.proxy = true;
 * app.use(koaSession({ store, secret: process.env.SESSION_SECRET! }));
 * app.use(async (ctx) => {
 *   ctx.session.views = (ctx.session.views ?? 0) + 1;
 *   ctx.body = { views: ctx.session.views };
 * });
 */
export function koaSession<D extends object = SessionData>(options: KoaSessionOptions<D>): KoaSessionMiddleware<D> {
  const { valid, beforeSave, ...core } = (options ?? {}) as KoaSessionOptions<D>;
  if (valid !== undefined && typeof valid !== "function") throw new SessionConfigError("valid must be a function (ctx, data) => boolean");
  if (beforeSave !== undefined && typeof beforeSave !== "function") throw new SessionConfigError("beforeSave must be a function (ctx, session)");
  const manager = createSessionManager<D>(options === null || typeof options !== "object" ? options : core);
  // This instance's mark: mounted twice it loads once; another instance does its own job.
  const loadedHere = Symbol("shared-session.koa.loaded");
  return Object.assign(sharedSession, { manager });

  async function sharedSession(ctx: Context, next: Next): Promise<void> {
    const marked = ctx as Context & { [loadedHere]?: true; [STATE]?: RequestState };
    if (marked[loadedHere]) return next();
    marked[loadedHere] = true;
    // An outer instance's session, back in `ctx.session` once this (inner) one is done.
    const outer = marked[STATE];
    if (outer !== undefined && outer.cookieName === manager.cookieName) {
      throw new SessionConfigError(
        `koaSession: two different instances with the cookie name "${manager.cookieName}" cover this request; give the inner one its own \`name\`, or mount one instance`,
      );
    }

    let session: Session;
    try {
      // No promise to wait for when the request needs no store read (no cookie, or a rejected one).
      const loaded = manager.loadNow(ctx.get("Cookie"), { secure: ctx.secure, header: manager.headerName && ctx.get(manager.headerName) });
      session = (loaded instanceof Promise ? await loaded : loaded) as unknown as Session;
      // koa-session's `valid`: a loaded session it refuses is not used.
      if (valid !== undefined && !session.isNew && valid(ctx, { ...session } as unknown as Partial<D>) === false) await session.regenerate();
    } catch (err) {
      if (err instanceof StoreUnavailableError) ctx.set("Retry-After", String(err.retryAfter));
      throw err;
    }
    // The accessor pair is shared by every request (per-request state sits under a symbol): fresh
    // getter/setter closures on each ctx gave every ctx its own hidden class, which slowed every
    // later property access on ctx in Koa and the app.
    const state: RequestState = { session, destroyAtEnd: false, cookieName: manager.cookieName };
    (ctx as Context & { [STATE]?: RequestState })[STATE] = state;
    // regenerate() hands `ctx.session` a new object (koa-passport's keepSessionInfo reads the old one).
    manager.replaceOnRegenerate(session, state);
    Object.defineProperty(ctx, "session", SESSION_PROPERTY);

    let threw = false;
    let downstreamError: unknown;
    try {
      await next();
    } catch (err) {
      threw = true;
      downstreamError = err;
    }
    try {
      if (beforeSave !== undefined && !state.destroyAtEnd) await beforeSave(ctx, state.session as unknown as Session<D>);
      // The object regenerate() left last (in the app or in beforeSave), not the one loaded.
      session = state.session;
      if (state.destroyAtEnd && manager.unset === "keep") {
        // `unset: "keep"`: the stored session stays as it was; nothing is written for this request.
      } else if (state.destroyAtEnd) {
        // What the app put in after `= null` becomes a new session under a new id.
        const after = { ...session };
        await session.destroy();
        Object.assign(session, after);
      }
      const committed = state.destroyAtEnd && manager.unset === "keep" ? { setCookie: undefined } : manager.commitNow(session as never);
      const { setCookie, setHeader } = committed instanceof Promise ? await committed : committed;
      if (setCookie !== undefined && !ctx.headerSent) {
        ctx.append("Set-Cookie", setCookie);
        // Koa's error answer drops every header but the error's own: the cookie of what was written goes with the error.
        if (threw) carryCookie(downstreamError, setCookie);
      }
      if (setHeader !== undefined && !ctx.headerSent) ctx.set(...setHeader);
    } catch (err) {
      // Downstream's own error wins; the core has already logged a store failure.
      if (!threw) {
        if (err instanceof StoreUnavailableError && !ctx.headerSent) ctx.set("Retry-After", String(err.retryAfter));
        throw err;
      }
    } finally {
      if (outer !== undefined) marked[STATE] = outer;
    }
    if (threw) throw downstreamError;
  }
}

/** Add `Set-Cookie` to an error's `headers`, which Koa's error answer sends (a non-object error carries nothing). */
function carryCookie(err: unknown, setCookie: string): void {
  if (typeof err !== "object" || err === null || !Object.isExtensible(err)) return;
  const target = err as { headers?: Record<string, unknown> };
  const headers: Record<string, unknown> = typeof target.headers === "object" && target.headers !== null ? { ...target.headers } : {};
  const name = Object.keys(headers).find((key) => key.toLowerCase() === "set-cookie") ?? "Set-Cookie";
  const current = headers[name];
  headers[name] = current === undefined ? [setCookie] : [...(Array.isArray(current) ? (current as string[]) : [String(current)]), setCookie];
  try {
    target.headers = headers;
  } catch {
    // A read-only `headers`: the cookie stays on ctx, for an app's own error handler.
  }
}

function clearData(session: object): void {
  for (const key of Object.keys(session)) delete (session as Record<string, unknown>)[key];
}
