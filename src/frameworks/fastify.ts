import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { createSessionManager, SessionConfigError, StoreUnavailableError, type SessionManager, type SessionOptions } from "../index.js";
import type { Session, SessionData } from "../index.js";

declare module "fastify" {
  interface FastifyRequest {
    /**
     * The request's session (shared-session): data as properties or through `get`/`set`, plus `id`,
     * `regenerate()`, `destroy()`, `save()`, `reload()`, `touch()`. Set by the `fastifySession` plugin.
     */
    session: Session;
  }
  interface FastifyInstance {
    /** The manager behind `request.session` (for `listSessions`, `destroyOwnerSessions`, `on`). */
    sessionManager: SessionManager;
  }
}

/** Options of {@link fastifySession}: the core's options, nothing Fastify-specific. */
export type FastifySessionOptions<D extends object = SessionData> = SessionOptions<D>;

/** Marks a Fastify context that has a registration of the plugin of its own. */
const REGISTERED = Symbol.for("shared-session.fastify.registered");

type Raw = FastifyReply["raw"] & { writableEnded: boolean };

/**
 * While the commit runs, the reply looks sent to Fastify (`reply.sent` reads `raw.writableEnded`),
 * as it would be without an asynchronous onSend hook: a second `reply.send()` is logged as "Reply
 * was already sent", a handler that did not `return reply` or threw after sending leaves it alone.
 */
function lookSent(raw: Raw): void {
  Object.defineProperty(raw, "writableEnded", { value: true, configurable: true, enumerable: false, writable: false });
}

function lookAsIs(raw: Raw): void {
  Reflect.deleteProperty(raw, "writableEnded");
}

function sessionPlugin(fastify: Parameters<FastifyPluginCallback<FastifySessionOptions>>[0], options: FastifySessionOptions, done: (err?: Error) => void): void {
  if (Object.hasOwn(fastify, REGISTERED)) {
    done(
      new SessionConfigError(
        "fastifySession is registered twice in one Fastify context; register the second one inside its own app.register(…) (an encapsulated context) with its own cookie `name`",
      ),
    );
    return;
  }
  let manager: SessionManager;
  try {
    manager = createSessionManager(options);
  } catch (err) {
    done(err as Error);
    return;
  }
  // This registration's session on each request: `request.session` is the innermost registration's,
  // while each registration commits its own.
  const own = Symbol("shared-session.fastify.session");
  const failed = Symbol("shared-session.fastify.commitFailed");
  const answered = Symbol("shared-session.fastify.answered");
  type Marked = FastifyRequest & { [own]: Session | null; [failed]?: true; [answered]?: true };
  Object.defineProperty(fastify, REGISTERED, { value: true });
  if (!fastify.hasRequestDecorator("session")) fastify.decorateRequest("session", null as unknown as Session);
  fastify.decorateRequest(own as unknown as string, null);
  if (!fastify.hasDecorator("sessionManager")) fastify.decorate("sessionManager", manager);
  else Object.defineProperty(fastify, "sessionManager", { value: manager, configurable: true, writable: true });

  // Callback hooks, not async ones: a request that needs no store call (no cookie, or nothing to
  // write) passes both hooks without a promise or a microtask.
  fastify.addHook("onRequest", (request: FastifyRequest, reply: FastifyReply, next: (err?: Error) => void) => {
    let loaded: Session | Promise<Session>;
    try {
      loaded = manager.loadNow(request.headers.cookie, { secure: request.protocol === "https", header: manager.headerName && request.headers[manager.headerName] });
    } catch (err) {
      loadFailed(reply, next, err);
      return;
    }
    if (loaded instanceof Promise) {
      loaded.then(
        (session) => {
          (request as Marked)[own] = session;
          request.session = session;
          next();
        },
        (err: unknown) => loadFailed(reply, next, err),
      );
    } else {
      (request as Marked)[own] = loaded;
      request.session = loaded;
      next();
    }
  });

  // onSend runs before the head goes out, for every reply (error replies too): write, then add the cookie.
  fastify.addHook("onSend", (request: FastifyRequest, reply: FastifyReply, payload: unknown, next: (err: Error | null, payload?: unknown) => void) => {
    const session = (request as Marked)[own];
    if (payload === undefined && (request as Marked)[answered]) {
      // The empty send Fastify makes for an async handler whose `return reply` resolved while the
      // reply looked sent (during our commit); without us it would have waited for the answer to
      // finish and not sent at all. The first answer is on its way; this one goes nowhere. (Any
      // other later send, such as the error reply of a failing onSend hook, goes on as without us.)
      reply.log.warn(`Reply was already sent, did you forget to "return reply" in the "${request.raw.url ?? ""}" (${request.raw.method ?? ""}) route?`);
      return;
    }
    if (session === null || (request as Marked)[failed]) {
      next(null, payload);
      return;
    }
    const committed = manager.commitNow(session);
    if (!(committed instanceof Promise)) {
      if (committed.setCookie !== undefined) reply.header("set-cookie", committed.setCookie);
      if (committed.setHeader !== undefined) reply.header(...committed.setHeader);
      next(null, payload);
      return;
    }
    const raw = reply.raw as Raw;
    lookSent(raw);
    committed.then(
      ({ setCookie, setHeader }) => {
        lookAsIs(raw);
        (request as Marked)[answered] = true;
        if (setCookie !== undefined) reply.header("set-cookie", setCookie);
        if (setHeader !== undefined) reply.header(...setHeader);
        next(null, payload);
      },
      (err: unknown) => {
        lookAsIs(raw);
        if (reply.statusCode >= 500) {
          // The app's own server error (a thrown handler, say) stands; the session is not saved (the core logged why).
          (request as Marked)[answered] = true;
          next(null, payload);
          return;
        }
        // Fastify turns this into an error reply (our 503), whose own onSend then skips the commit.
        (request as Marked)[failed] = true;
        if (err instanceof StoreUnavailableError) reply.header("Retry-After", String(err.retryAfter));
        next(err as Error);
      },
    ).catch((err: unknown) => {
      // What Fastify threw while sending: it would have thrown in the app's call; log it, never crash.
      reply.log.error({ err }, "shared-session: sending the reply failed after the session was committed");
    });
  });

  done();
}

/** A failed load: Fastify answers the error (our 503 carries `Retry-After`). */
function loadFailed(reply: FastifyReply, next: (err?: Error) => void, err: unknown): void {
  if (err instanceof StoreUnavailableError) reply.header("Retry-After", String(err.retryAfter));
  next(err as Error);
}

/**
 * Fastify 5 plugin that gives every request `request.session`.
 *
 * An `onRequest` hook loads the session from the raw `Cookie` header (no `@fastify/cookie` needed,
 * and it can be registered too); an `onSend` hook writes what changed and adds `Set-Cookie` before
 * the head is sent, so a client that follows a redirect at once, to any instance, sees the data.
 * `Secure` follows `request.protocol` (set `trustProxy` behind a TLS-terminating proxy).
 *
 * A store failure becomes a Fastify error reply: a {@link StoreUnavailableError} with `statusCode`
 * 503 and a `Retry-After` header, at load and at commit alike, unless `onStoreError: "continue"`.
 *
 * @example
 * import Fastify from "fastify";
 * import { fastifySession } from "shared-session/fastify";
 *
 * const app = Fastify({ trustProxy: true });
 * await app.register(fastifySession, { store, secret: process.env.SESSION_SECRET! });
 * app.post("/login", async (request) => {
 *   await request.session.regenerate();
 *   request.session.set("userId", 42);
 *   return { ok: true };
 * });
 */
export const fastifySession: FastifyPluginCallback<FastifySessionOptions> = fp(sessionPlugin, {
  fastify: "5.x",
  name: "shared-session",
});
