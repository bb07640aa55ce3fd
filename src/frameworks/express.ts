import { STATUS_CODES, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { createSessionManager, SessionConfigError, StoreUnavailableError, type CommitResult, type SessionManager, type SessionOptions } from "../index.js";
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
      /** The session's id, `req.session.id` (express-session's name); read-only. */
      readonly sessionID: string;
    }
  }
}

/** Options of {@link expressSession}: the core's options, nothing Express-specific. */
export type ExpressSessionOptions<D extends object = SessionData> = SessionOptions<D>;

/** The middleware, carrying the manager it uses (for `listSessions`, `destroyOwnerSessions`, `on`). */
export type ExpressSessionMiddleware<D extends object = SessionData> = RequestHandler & { readonly manager: SessionManager<D> };

type Kind = "writeHead" | "write" | "end" | "flushHeaders";
type Args = unknown[];
type Method = (...args: Args) => unknown;
type Methods = Record<Kind, Method>;
type Held = { readonly kind: Kind; readonly args: Args };

const KINDS: readonly Kind[] = ["writeHead", "write", "end", "flushHeaders"];

/** Nothing sent yet · committing, calls queued · head out, calls pass · the error is with Express · we answered. */
const OPEN = 0;
const HOLDING = 1;
const PASSING = 2;
const REROUTED = 3;
const DISCARDING = 4;
type Phase = typeof OPEN | typeof HOLDING | typeof PASSING | typeof REROUTED | typeof DISCARDING;

/** A session a middleware instance gave the request, and the manager that commits it. */
interface Covered {
  readonly manager: SessionManager<never>;
  readonly session: Session;
}

/** The hold on one response: what the session binding needs when the app sends. */
interface Hold {
  readonly req: Request;
  readonly res: ServerResponse;
  readonly manager: SessionManager<never>;
  readonly session: Session;
  /** Sessions of other, differently configured instances mounted on this request's path, committed with the first. */
  others: Covered[] | undefined;
  /** `socket.destroy()` (Express's final handler, after an error) came while we held the answer: done once it is out. */
  destroyLater: boolean;
  /** The app's `end()` is held: `res.writableEnded` says `true` meanwhile, as it would without us. */
  endHeld: boolean;
  /** Where an intercepted call continues: the prototype under ours, or the functions `res` had. */
  readonly next: Methods;
  phase: Phase;
  readonly queue: Held[];
  waitingForDrain: boolean;
}

/** A response's hold (or `null` while its session loads). */
const HOLD = Symbol.for("shared-session.express.hold");
type Holder = ServerResponse & { [HOLD]?: Hold | null };

/**
 * Node's `_header` while we hold an answer the app completed: Node, Express and its final handler
 * then see `headersSent` as they would without us (a second `res.send()` throws, a `next()` after
 * the answer is no 404). Never written to the socket: the replay puts `null` back first.
 */
const HELD_HEADER = "HTTP/1.1 000 held by shared-session\r\n\r\n";
type Raw = ServerResponse & { _header: string | null; finished: boolean };

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
    let loaded: Session<D> | Promise<Session<D>>;
    try {
      loaded = manager.loadNow(req.headers.cookie, { secure: req.secure === true, header: manager.headerName && req.headers[manager.headerName] });
    } catch (err) {
      loaded = Promise.reject(err);
    }
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
  let loaded: Session<D> | Promise<Session<D>>;
  try {
    loaded = manager.loadNow(req.headers.cookie, { secure: req.secure === true, header: manager.headerName && req.headers[manager.headerName] });
  } catch (err) {
    loaded = Promise.reject(err);
  }
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

/** Request prototypes that have `sessionID`. */
const withSessionID = new WeakSet<object>();

/** express-session's `req.sessionID`: a getter on the app's request prototype, defined once, reading `req.session.id`. */
function defineSessionID(req: Request): void {
  const proto = Object.getPrototypeOf(req) as object | null;
  if (proto === null || withSessionID.has(proto)) return;
  withSessionID.add(proto);
  if (Object.hasOwn(proto, "sessionID")) return;
  Object.defineProperty(proto, "sessionID", {
    get(this: Request): string | undefined {
      return (this.session as Session | null | undefined)?.id;
    },
    configurable: true,
    enumerable: false,
  });
}

function start(req: Request, res: Holder, manager: SessionManager<never>, session: Session, next: NextFunction): void {
  req.session = session;
  // regenerate() puts a new object in req.session, as express-session does (Passport's keepSessionInfo reads the old one).
  manager.replaceOnRegenerate(session, req);
  defineSessionID(req);
  const own = res as unknown as Methods;
  const installed = interceptorsFor(res);
  if (installed !== undefined && own.end === installed.methods.end && own.write === installed.methods.write && own.writeHead === installed.methods.writeHead && own.flushHeaders === installed.methods.flushHeaders) {
    res[HOLD] = newHold(req, res, manager, session, installed.base);
  } else {
    // Something replaced them on this response (or this is not an Express response we know): wrap its own.
    const hold = newHold(req, res, manager, session, { writeHead: own.writeHead, write: own.write, end: own.end, flushHeaders: own.flushHeaders });
    res[HOLD] = hold;
    for (const kind of KINDS) {
      own[kind] = { [kind]: (...args: Args): unknown => intercept(hold, kind, args) }[kind]!;
    }
  }
  next();
}

function newHold(req: Request, res: ServerResponse, manager: SessionManager<never>, session: Session, next: Methods): Hold {
  return { req, res, manager, session, others: undefined, destroyLater: false, endHeld: false, next, phase: OPEN, queue: [], waitingForDrain: false };
}

interface Installed {
  /** The functions we defined on the prototype. */
  readonly methods: Methods;
  /** The prototype under it, where they continue. */
  readonly base: Methods;
}

/** Express response prototypes we looked at: what we installed on each (`undefined`: not one we install on). */
const installations = new WeakMap<object, Installed | undefined>();

/**
 * Our methods on the Express response prototype of `res`: `res` → the app's `app.response` (own
 * `app`) → Express's `response` (own `send`) → `http.ServerResponse.prototype`. Installed on Express's
 * `response`, shared by every app and sub-app of that Express, so a response that moves between apps
 * (a mounted app that falls through) stays held.
 */
function interceptorsFor(res: object): Installed | undefined {
  const appResponse = Object.getPrototypeOf(res) as object | null;
  if (appResponse === null || !Object.hasOwn(appResponse, "app")) return undefined;
  const target = Object.getPrototypeOf(appResponse) as Record<string, unknown> | null;
  if (target === null) return undefined;
  if (installations.has(target)) return installations.get(target);
  const base = Object.getPrototypeOf(target) as Methods | null;
  const installable =
    base !== null &&
    typeof target.send === "function" &&
    Object.hasOwn(target, "send") &&
    KINDS.every((kind) => !Object.hasOwn(target, kind) && !Object.hasOwn(appResponse, kind) && typeof base[kind] === "function");
  const installed = installable ? install(target, base) : undefined;
  installations.set(target, installed);
  return installed;
}

function install(target: object, base: Methods): Installed {
  const methods = {} as Methods;
  for (const kind of KINDS) {
    const method = {
      [kind](this: Holder, ...args: Args): unknown {
        const hold = this[HOLD];
        // Only a hold made for the prototype path: a response whose own methods we wrapped is held there.
        return hold != null && hold.next === base ? intercept(hold, kind, args) : Reflect.apply(base[kind], this, args);
      },
    }[kind]!;
    Object.defineProperty(target, kind, { value: method, writable: true, configurable: true, enumerable: false });
    methods[kind] = method;
  }
  return { methods, base };
}

function pass(hold: Hold, kind: Kind, args: Args): unknown {
  return Reflect.apply(hold.next[kind], hold.res, args);
}

/** One call of the app to a method that sends. */
function intercept(hold: Hold, kind: Kind, args: Args): unknown {
  switch (hold.phase) {
    case PASSING:
      // The head is out (the app streamed); write what changed since, then end.
      if (kind === "end" && !hold.res.writableEnded) return endAfterHead(hold, args);
      return pass(hold, kind, args);
    case REROUTED:
      return pass(hold, kind, args);
    case DISCARDING:
      return discarded(hold.res, kind, args);
    case HOLDING:
      checkCall(hold.res, kind, args);
      return queue(hold, kind, args);
    case OPEN:
      return begin(hold, kind, args);
  }
}

/** The first call that would send: commit now when nothing needs the store, or hold. */
function begin(hold: Hold, kind: Kind, args: Args): unknown {
  const { res } = hold;
  checkCall(res, kind, args);
  const committed = commitAll(hold);
  if (committed instanceof Promise) {
    hold.phase = HOLDING;
    const result = queue(hold, kind, args);
    // From the app's side the head is out now, as it would be without us.
    (res as Raw)._header = HELD_HEADER;
    deferSocketDestroy(hold);
    committed.then(
      ({ setCookie, setHeader }) => release(hold, setCookie, setHeader),
      (err: unknown) => fail(hold, err),
    ).catch((err: unknown) => abort(hold, err));
    return result;
  }
  hold.phase = PASSING;
  if (committed.setHeader !== undefined && !res.headersSent) res.setHeader(...committed.setHeader);
  const cookie = committed.setCookie;
  if (cookie === undefined || res.headersSent) return pass(hold, kind, args);
  const head = kind === "writeHead" ? takeHead(res, args) : args;
  appendSetCookie(res, cookie);
  return pass(hold, kind, head);
}

/** What the request's sessions add to the head once committed: `Set-Cookie` values, and the `header` option's header. */
interface Committed {
  readonly setCookie: SetCookie;
  readonly setHeader?: readonly [name: string, value: string];
}

/** Every session on the request committed: what to add to the head, now or once written. */
function commitAll(hold: Hold): Committed | Promise<Committed> {
  // `req.session = null` / `delete req.session` unsets the session the request had last (the `unset` option).
  const unset = hold.req.session == null ? (hold.others?.[hold.others.length - 1] ?? hold) : undefined;
  const commit = (c: Covered): CommitResult | Promise<CommitResult> => (c === unset ? commitUnset(c) : c.manager.commitNow(c.manager.currentSession(c.session) as never));
  const first = commit(hold);
  if (hold.others === undefined) return first;
  const all = [first, ...hold.others.map(commit)];
  const merged = (results: readonly CommitResult[]): Committed => {
    const values = results.flatMap((r) => (r.setCookie === undefined ? [] : [r.setCookie]));
    return { setCookie: values.length === 0 ? undefined : values, setHeader: results.find((r) => r.setHeader !== undefined)?.setHeader };
  };
  return all.some((r) => r instanceof Promise) ? Promise.all(all).then(merged) : merged(all as CommitResult[]);
}

/** A session the app took off the request: destroyed (`unset: "destroy"`), or left as stored and nothing sent (`"keep"`). */
function commitUnset(c: Covered): CommitResult | Promise<CommitResult> {
  if (c.manager.unset === "keep") return { setCookie: undefined };
  // The object regenerate() left on the request last, not the one loaded.
  const session = c.manager.currentSession(c.session);
  return session.destroy().then(() => c.manager.commitNow(session as never));
}

/**
 * Express's final handler destroys the socket when an error comes after the answer: without us
 * the answer is already written by then. While we hold it, that destroy waits for the replay.
 */
function deferSocketDestroy(hold: Hold): void {
  const socket = hold.res.socket as (Socket & { destroy: Socket["destroy"] }) | null;
  if (socket === null || Object.hasOwn(socket, "destroy")) return;
  const destroy = function destroy(this: Socket, ...args: Parameters<Socket["destroy"]>): Socket {
    if (hold.phase === HOLDING && args[0] === undefined) {
      hold.destroyLater = true;
      return this;
    }
    Reflect.deleteProperty(socket, "destroy");
    return socket.destroy(...args);
  };
  deferredDestroys.add(destroy);
  socket.destroy = destroy;
}

/** The `destroy` functions we put on sockets, so that we only ever take back our own. */
const deferredDestroys = new WeakSet<object>();

/** The answer is out (or replaced): the socket's own `destroy` back, and a destroy that waited done now. */
function restoreSocket(hold: Hold): void {
  const socket = hold.res.socket;
  if (socket !== null && Object.hasOwn(socket, "destroy") && deferredDestroys.has(socket.destroy)) Reflect.deleteProperty(socket, "destroy");
  if (hold.destroyLater) {
    hold.destroyLater = false;
    socket?.destroy();
  }
}

/** Before the replay (or an error answer) the head is ours to send again, and `end()` Node's to take. */
function unmarkHead(hold: Hold): void {
  const res = hold.res as Raw;
  if (res._header === HELD_HEADER) res._header = null;
  if (hold.endHeld) {
    hold.endHeld = false;
    res.finished = false;
  }
}

/** Queue a call while the commit runs; answer as the method would. */
function queue(hold: Hold, kind: Kind, args: Args): unknown {
  if (kind === "writeHead" && (hold.res as Raw)._header === HELD_HEADER) {
    // Node refuses a second head; so do we, in the app's own call.
    throw Object.assign(new Error("[shared-session] Cannot write headers after they are sent to the client"), { code: "ERR_HTTP_HEADERS_SENT" });
  }
  hold.queue.push({ kind, args: kind === "writeHead" ? takeHead(hold.res, args) : args });
  if (kind === "end" && !hold.endHeld) {
    hold.endHeld = true;
    (hold.res as Raw).finished = true;
  }
  if (kind === "write") {
    hold.waitingForDrain = true;
    return false;
  }
  return kind === "flushHeaders" ? undefined : hold.res;
}

/** `end` after the head went out: the cookie can no longer change, but the data must be written first. */
function endAfterHead(hold: Hold, args: Args): unknown {
  const committed = commitAll(hold);
  if (!(committed instanceof Promise)) return pass(hold, "end", args);
  hold.phase = HOLDING;
  hold.queue.push({ kind: "end", args });
  deferSocketDestroy(hold);
  // Failing now, the client must not take a complete-looking response: cut it.
  committed.then(
    () => release(hold, undefined),
    (err: unknown) => abort(hold, err),
  );
  return hold.res;
}

/** Node's checks the app's call would have met, so a bad status still throws in the app's own call. */
function checkCall(res: ServerResponse, kind: Kind, args: Args): void {
  if (kind === "writeHead") checkStatus(args[0]);
  else if (!res.headersSent) checkStatus(res.statusCode);
}

/** Statuses Node accepts in `writeHead`. */
function checkStatus(code: unknown): void {
  const n = Number(code);
  if (!Number.isInteger(n) || n < 100 || n > 999) {
    throw new RangeError(`[shared-session] invalid status code: ${String(code)}`);
  }
}

/** Take `writeHead`'s status, reason and headers now (as Node would), so our Set-Cookie is added after them; returns the call to make later. */
function takeHead(res: ServerResponse, args: Args): Args {
  const hasReason = typeof args[1] === "string";
  applyHeadArgument(res, hasReason ? args[2] : args[1]);
  res.statusCode = Number(args[0]);
  if (hasReason) res.statusMessage = args[1] as string;
  return hasReason ? [args[0], args[1]] : [args[0]];
}

/** A call made after we answered the request ourselves: it goes nowhere. */
function discarded(res: ServerResponse, kind: Kind, args: Args): unknown {
  if (kind === "write") {
    const cb = args.find((a): a is (e?: unknown) => void => typeof a === "function");
    if (cb !== undefined) process.nextTick(cb, new Error("[shared-session] response was replaced by an error"));
    return false;
  }
  return kind === "flushHeaders" ? undefined : res;
}

/** Representation headers of a response that is being replaced by an error: they describe the discarded body. */
const BODY_HEADERS = ["content-type", "content-length", "content-encoding", "content-language", "content-range", "content-disposition", "etag", "last-modified", "location", "transfer-encoding"];

/** One `Set-Cookie` value, several (two session middlewares on one request), or none. */
type SetCookie = string | string[] | undefined;

function appendSetCookie(res: ServerResponse, value: string | string[]): void {
  const current = res.getHeader("Set-Cookie");
  if (current === undefined) res.setHeader("Set-Cookie", value);
  else res.setHeader("Set-Cookie", [...(Array.isArray(current) ? current : [String(current)]), ...(Array.isArray(value) ? value : [value])]);
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

/** Last resort for a bug in the replay itself: never an unhandled rejection, never a hung response. */
function abort(hold: Hold, err: unknown): void {
  hold.phase = DISCARDING;
  unmarkHead(hold);
  restoreSocket(hold);
  hold.res.destroy(err instanceof Error ? err : new Error(String(err)));
}

/**
 * The write is in the store: replay the queued calls, in order, with `Set-Cookie` added before the
 * head goes out.
 */
function release(hold: Hold, setCookie: SetCookie, setHeader?: readonly [string, string]): void {
  const { res } = hold;
  hold.phase = PASSING;
  unmarkHead(hold);
  if (setHeader !== undefined && !res.headersSent) res.setHeader(...setHeader);
  let cookie = setCookie;
  let lastWrite = true;
  try {
    for (const { kind, args } of hold.queue.splice(0)) {
      if (cookie !== undefined && !res.headersSent) appendSetCookie(res, cookie);
      cookie = undefined;
      if (kind === "write") lastWrite = pass(hold, kind, args) !== false;
      else pass(hold, kind, args);
    }
  } catch (err) {
    // Node refused a replayed call the app made (it would have thrown in the app's own call).
    restoreSocket(hold);
    res.destroy(err instanceof Error ? err : new Error(String(err)));
    return;
  }
  restoreSocket(hold);
  if (hold.waitingForDrain && lastWrite && !res.writableEnded) {
    hold.waitingForDrain = false;
    res.emit("drain");
  }
}

/**
 * The write failed: discard the app's response and go to `next(err)` (through `req.next`, the way
 * Express routes errors of `res.sendFile`), or, when the app was still streaming, answer the error
 * ourselves.
 */
function fail(hold: Hold, err: unknown): void {
  // Express may still have a step queued for this request (a next() after the answer reaches its
  // final handler on a later turn): let it see the answer as sent, as it would without us.
  setImmediate(failNow, hold, err);
}

function failNow(hold: Hold, err: unknown): void {
  const { req, res } = hold;
  unmarkHead(hold);
  // Express already gave up on this response (its final handler closed it after an error): we answer, then close.
  const ended = !hold.destroyLater && hold.queue.some((held) => held.kind === "end");
  const callbacks = hold.queue.splice(0).flatMap(({ args }) => args.filter((a): a is (e?: unknown) => void => typeof a === "function"));
  for (const cb of callbacks) process.nextTick(cb, err);
  if (res.headersSent) {
    restoreSocket(hold);
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
    hold.phase = REROUTED;
    restoreSocket(hold);
    const route = typeof req.next === "function" ? req.next : undefined;
    if (route !== undefined) {
      route(err);
      return;
    }
  }
  // The app is still streaming: its writes go nowhere from now on, and we answer.
  hold.phase = DISCARDING;
  const body = `${status} ${STATUS_CODES[status] ?? "Error"}\n`;
  res.setHeader("Content-Type", "text/plain; charset=utf-8");
  res.setHeader("Content-Length", Buffer.byteLength(body));
  pass(hold, "writeHead", [status]);
  pass(hold, "end", [body]);
  restoreSocket(hold);
}

function errorStatus(err: unknown): number {
  if (err instanceof StoreUnavailableError) return 503;
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === "number" && status >= 400 && status <= 599 ? status : 500;
}
