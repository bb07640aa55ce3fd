// The augmentation target is declared in the package's entry module (src/index.ts), so that the
// published index.d.ts declares it itself: `declare module "shared-session"` then merges with it
// even in a program that imports "shared-session" nowhere else (only a subpath such as /express).
import type { SessionData } from "../index.js";

export type { SessionData };

/** Names that belong to the session API; data can never use them. */
export type ReservedKey =
  | "id"
  | "sessionId"
  | "isNew"
  | "isModified"
  | "regenerate"
  | "destroy"
  | "save"
  | "reload"
  | "touch"
  | "get"
  | "set"
  | "setLifetime"
  | "cookie"
  | "maxAge"
  | "options";

/**
 * `session.cookie` (express-session's and @fastify/session's): the cookie's attributes, read from
 * the options and the request. Writing `maxAge` (milliseconds) or `expires` (a date) sets the
 * session's own lifetime, as {@link SessionApi.setLifetime} does; `null` goes back to the default.
 */
export interface SessionCookieView {
  /** Milliseconds until the cookie expires; `null` for a browser-session cookie. */
  maxAge: number | null;
  /** When the cookie expires; `null` for a browser-session cookie. */
  expires: Date | null;
  /** The lifetime in milliseconds (the session's own, else `cookie.maxAge`); `null` for a browser-session cookie. */
  readonly originalMaxAge: number | null;
  readonly secure: boolean;
  readonly httpOnly: boolean;
  readonly path: string;
  readonly domain: string | undefined;
  readonly sameSite: "lax" | "strict" | "none";
}

/** Node-style callback accepted by every async session method, for express-session style handlers: `null` on success. */
export type SessionCallback = (err?: unknown) => void;

/** Keys of `D` usable as session data. */
export type DataKey<D> = Exclude<keyof D & string, ReservedKey>;

/** Options of `session.regenerate(options)`. */
export interface RegenerateOptions<D extends object = SessionData> {
  /** Data keys carried over to the new id; the rest is dropped. @default [] (nothing is kept) */
  readonly keep?: readonly (keyof D & string)[];
  /**
   * Start a fresh absolute deadline (`absoluteTimeout` from now) instead of inheriting the old
   * session's. Only for a login the app has just verified: otherwise a route that regenerates would
   * let a stolen cookie live forever.
   * @default false
   */
  readonly renewDeadline?: boolean;
}

/** The methods every session has, whatever its data. */
export interface SessionApi<D extends object = SessionData> {
  /** The session id. Changes on `regenerate()` and `destroy()`. */
  readonly id: string;
  /** The same as {@link SessionApi.id} (@fastify/session's name). */
  readonly sessionId: string;
  /** `true` until the session was loaded from the store (a session created in this request stays new). */
  readonly isNew: boolean;
  /**
   * Destroy the stored record now and start a fresh id with **empty** data (call it at login and
   * logout: the fixation defence; nothing planted before a login survives it). The absolute deadline
   * carries over: regenerating never makes a session live longer. On Express and Koa the request gets
   * a new session object (read `req.session` / `ctx.session` again); the old one keeps its data to
   * read, and its methods throw a `SessionError` of code `ERR_SESSION_REPLACED`.
   */
  regenerate(callback?: SessionCallback): Promise<void>;
  /** {@link SessionApi.regenerate}, carrying the listed keys over (@fastify/session's `ignoreFields` form). */
  regenerate(keep: readonly string[], callback?: SessionCallback): Promise<void>;
  /**
   * {@link SessionApi.regenerate} with options: `keep` carries the listed keys over; `renewDeadline: true`
   * starts a fresh absolute deadline, for a login right after the app checked the user's credentials.
   */
  regenerate(options: RegenerateOptions<D>, callback?: SessionCallback): Promise<void>;
  /** Delete the record now, empty the data, and expire the cookie at the end of the request. */
  destroy(callback?: SessionCallback): Promise<void>;
  /** Write now instead of at the end of the request (a new session is stored even when empty). */
  save(callback?: SessionCallback): Promise<void>;
  /**
   * Replace the data with what the store holds now. Rejects (the callback gets the error) with a
   * `SessionError` of code `ERR_SESSION_GONE` when the record is gone (destroyed, regenerated or
   * expired elsewhere); the request then continues without a session, as the peers do.
   */
  reload(callback?: SessionCallback): Promise<void>;
  /** Whether the data changed since the session was loaded (a new session: whether it has data or must be saved). */
  isModified(): boolean;
  /**
   * Give this session its own lifetime ("remember me"), in seconds: the store keeps it that long
   * since its last use (instead of `idleTimeout`) and its cookie gets that `Max-Age` (instead of
   * `cookie.maxAge`), never past the absolute deadline (`absoluteTimeout`: raise it for a long
   * remember-me). Stored with the session, so every process honours it; `null` goes back to the
   * defaults. `regenerate()` starts over with the defaults. Over 400 days is refused.
   */
  setLifetime(seconds: number | null): void;
  /** The cookie's attributes; `cookie.maxAge = ms` / `cookie.expires = date` set the lifetime (express-session, @fastify/session). */
  readonly cookie: SessionCookieView;
  /** koa-session's `ctx.session.maxAge`: the lifetime in milliseconds (`undefined`: the default); setting it sets the lifetime (`"session"`: the default). */
  maxAge: number | "session" | undefined;
  /** @fastify/session's `request.session.options({ maxAge })`: sets the lifetime in milliseconds. */
  options(options: { maxAge?: number | null }): void;
  /** Reset the idle timeout now. */
  touch(callback?: SessionCallback): Promise<void>;
  /** Read a data key. */
  get<K extends DataKey<D>>(key: K): D[K] | undefined;
  /** Set a data key; `undefined` removes it. */
  set<K extends DataKey<D>>(key: K, value: D[K] | undefined): void;
}

/**
 * A session: the API plus the data as optional properties (`session.userId = 1`).
 * `D` defaults to the augmented {@link SessionData}; pass your own type as the escape hatch.
 */
export type Session<D extends object = SessionData> = SessionApi<D> & { [K in DataKey<D>]?: D[K] };

/** One line of the library's log. Session ids never appear: `session` is a short hash. */
export interface SessionLogEntry {
  readonly level: "debug" | "info" | "warn" | "error";
  /** Stable event name, such as `cookie.rejected` or `record.corrupt`. */
  readonly event: string;
  readonly message: string;
  /** Short SHA-256 hash of the session id concerned. */
  readonly session?: string;
  readonly error?: unknown;
}

/** Receives log lines. Silent when not given. */
export type SessionLogger = (entry: SessionLogEntry) => void;
