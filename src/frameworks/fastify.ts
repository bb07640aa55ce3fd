import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { createSessionManager, StoreUnavailableError, type SessionManager, type SessionOptions } from "../index.js";
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

/** Set once a commit failed, so the error reply that follows does not try again. */
const COMMIT_FAILED = Symbol.for("shared-session.fastify.commitFailed");

type Marked = FastifyRequest & { [COMMIT_FAILED]?: true };

function sessionPlugin(fastify: Parameters<FastifyPluginCallback<FastifySessionOptions>>[0], options: FastifySessionOptions, done: (err?: Error) => void): void {
  let manager: SessionManager;
  try {
    manager = createSessionManager(options);
  } catch (err) {
    done(err as Error);
    return;
  }
  fastify.decorateRequest("session", null as unknown as Session);
  fastify.decorate("sessionManager", manager);

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
          request.session = session;
          next();
        },
        (err: unknown) => loadFailed(reply, next, err),
      );
    } else {
      request.session = loaded;
      next();
    }
  });

  // onSend runs before the head goes out, for every reply (error replies too): write, then add the cookie.
  fastify.addHook("onSend", (request: FastifyRequest, reply: FastifyReply, payload: unknown, next: (err: Error | null, payload?: unknown) => void) => {
    const session = request.session as Session | null;
    if (session === null || (request as Marked)[COMMIT_FAILED]) {
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
    committed.then(
      ({ setCookie, setHeader }) => {
        if (setCookie !== undefined) reply.header("set-cookie", setCookie);
        if (setHeader !== undefined) reply.header(...setHeader);
        next(null, payload);
      },
      (err: unknown) => {
        // Fastify turns this into an error reply (our 503), whose own onSend then skips the commit.
        (request as Marked)[COMMIT_FAILED] = true;
        if (err instanceof StoreUnavailableError) reply.header("Retry-After", String(err.retryAfter));
        next(err as Error);
      },
    );
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
