import { SessionConfigError } from "./errors.js";
import type { SessionOptions } from "./options.js";

/**
 * Options of the peers (express-session, @fastify/session, koa-session) and unknown keys: each one
 * either means here what it meant there, or is refused at construction with what to write instead.
 * Nothing an app passes is silently ignored (a typo such as `idleTimout` included).
 */

/** Every key of `SessionOptions`: the type check fails when an option is added to the interface and not here. */
const OPTION_KEYS = {
  store: true,
  secret: true,
  name: true,
  cookie: true,
  idleTimeout: true,
  absoluteTimeout: true,
  touchAfter: true,
  maxSize: true,
  storeTimeout: true,
  retryAfter: true,
  onStoreError: true,
  genid: true,
  validateId: true,
  serializer: true,
  logger: true,
  owner: true,
  ownerMetadata: true,
  compat: true,
  encryption: true,
  storeKeySecret: true,
  header: true,
  unset: true,
  __data: true,
  maxSessionsPerOwner: true,
} satisfies Record<keyof SessionOptions<object>, true>;

/** Every key of `SessionOptions`. Anything else is a peer's option (answered below) or unknown (refused). */
export const SESSION_OPTION_KEYS: ReadonlySet<string> = new Set(Object.keys(OPTION_KEYS));

/** Every key of `CookieOptions`. */
export const COOKIE_OPTION_KEYS: ReadonlySet<string> = new Set(["path", "domain", "sameSite", "secure", "httpOnly", "maxAge", "partitioned", "priority"]);

/** Browsers cap a cookie's lifetime at 400 days; a duration past it was almost surely meant in milliseconds. */
export const MAX_DURATION_SECONDS = 400 * 86_400;

const MS_HINT = "seconds; it looks like milliseconds (more than 400 days, the browsers' cap on a cookie's lifetime): divide by 1000";

/** A peer's option: the values that keep their meaning here, and what to write instead otherwise. */
interface PeerOption {
  readonly accepts?: (value: unknown) => boolean;
  readonly instead: string;
}

const PEER_OPTIONS: Readonly<Record<string, PeerOption>> = {
  resave: {
    accepts: (v) => v === false,
    instead: "resave: true is not supported: an unchanged session is never rewritten (change detection); `touchAfter` says how often the idle timeout is refreshed. Remove the option (resave: false is accepted)",
  },
  saveUninitialized: {
    accepts: (v) => v === false,
    instead: "saveUninitialized: true is not supported: sessions are created lazily, when they get data; call `save()` to store an empty one. Remove the option (saveUninitialized: false is accepted)",
  },
  rolling: {
    instead:
      "rolling is not an option here: the idle timeout (idleTimeout) rolls on the server at every request, and with cookie.maxAge the cookie is re-sent at most once per touchAfter (touchAfter: 0 re-sends it on every request); remove it",
  },
  renew: { instead: "renew is not an option here: the idle timeout rolls on every request (idleTimeout, touchAfter); remove it" },
  proxy: {
    instead: "proxy is not an option here: whether the request came over HTTPS is the framework's decision: Express `app.set(\"trust proxy\", 1)`, Koa `app.proxy = true`, Fastify `Fastify({ trustProxy: true })`",
  },
  cookieName: { instead: "cookieName is spelled `name` here" },
  key: { instead: "the cookie name is `name` here (koa-session's `key`)" },
  cookiePrefix: { instead: "cookiePrefix is not supported: the cookie's value is always the signed id; to prefix the cookie's name (such as `__Host-`), put it in `name`" },
  idGenerator: { instead: "idGenerator is `genid` here, with a matching `validateId(id)` so ids from cookies are checked before they reach the store" },
  maxAge: { instead: "maxAge is `cookie.maxAge` here, in seconds (koa-session's maxAge was milliseconds; leave it unset for a browser-session cookie)" },
  autoCommit: {
    accepts: (v) => v === true,
    instead: "autoCommit: false is not supported: the session is always committed before the response is sent; call `await ctx.session.save()` to write earlier. Remove the option (autoCommit: true is accepted)",
  },
  overwrite: { accepts: (v) => v === true, instead: "overwrite: false is not supported: the session cookie always replaces an earlier one. Remove the option" },
  signed: { accepts: (v) => v === true, instead: "signed: false is not supported: the cookie is always signed with `secret`. Remove the option" },
  httpOnly: { instead: "httpOnly is `cookie.httpOnly` here" },
  secure: { instead: "secure is `cookie.secure` here (true, false or \"auto\")" },
  sameSite: { instead: "sameSite is `cookie.sameSite` here" },
  path: { instead: "path is `cookie.path` here" },
  domain: { instead: "domain is `cookie.domain` here" },
  partitioned: { instead: "partitioned is `cookie.partitioned` here" },
  priority: { instead: "priority is `cookie.priority` here" },
  prefix: { instead: "the store key prefix is the store's option here: `new RedisStore({ client, prefix })`, `new MemcachedStore({ client, prefix })`" },
  valid: { instead: "valid is koaSession's option only (koa-session's hook); elsewhere check the session in your own middleware after the session's, and call `await session.regenerate()` when it fails" },
  beforeSave: { instead: "beforeSave is koaSession's option only (koa-session's hook); elsewhere change the session in your own middleware after the session's, before the answer is sent" },
  externalKey: { instead: "externalKey is not supported: use the `header` option (an `Authorization: Bearer` or named header) for clients without cookies" },
  encode: { instead: "encode/decode are `serializer: { stringify, parse }` here" },
  decode: { instead: "encode/decode are `serializer: { stringify, parse }` here" },
  ContextStore: { instead: "ContextStore is `store` here: a `SessionStore` such as `new RedisStore({ client })`" },
};

const PEER_COOKIE_OPTIONS: Readonly<Record<string, PeerOption>> = {
  expires: {
    instead: "cookie.expires is not an option: `cookie.maxAge` in seconds for every session; for one session set `req.session.cookie.expires = date` (or `session.setLifetime(seconds)`) in the request",
  },
  signed: { accepts: (v) => v === true, instead: "cookie.signed: false is not supported: the cookie is always signed. Remove the option" },
  overwrite: { accepts: (v) => v === true, instead: "cookie.overwrite: false is not supported. Remove the option" },
  originalMaxAge: { instead: "cookie.originalMaxAge is not an option: use `cookie.maxAge` in seconds" },
};

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

function unknownKey(where: string, key: string, known: ReadonlySet<string>): SessionConfigError {
  let best: string | undefined;
  let bestDistance = 4;
  for (const candidate of known) {
    if (candidate.startsWith("__")) continue;
    const d = distance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const hint = best === undefined ? "" : `; did you mean ${JSON.stringify(best)}?`;
  const list = [...known].filter((k) => !k.startsWith("__")).join(", ");
  return new SessionConfigError(`unknown ${where} ${JSON.stringify(key)}${hint} (known: ${list})`);
}

function checkKeys(options: object, where: string, known: ReadonlySet<string>, peers: Readonly<Record<string, PeerOption>>): void {
  for (const key of Object.keys(options)) {
    if (known.has(key)) continue;
    const value = (options as Record<string, unknown>)[key];
    if (value === undefined) continue;
    const peer = Object.hasOwn(peers, key) ? peers[key] : undefined;
    if (peer !== undefined) {
      if (peer.accepts?.(value) === true) continue;
      throw new SessionConfigError(`${where} ${JSON.stringify(key)}: ${peer.instead}`);
    }
    throw unknownKey(where, key, known);
  }
}

function checkDuration(name: string, value: unknown): void {
  if (typeof value === "number" && value > MAX_DURATION_SECONDS) {
    throw new SessionConfigError(`${name} is ${value} ${MS_HINT} (the most accepted is ${MAX_DURATION_SECONDS})`);
  }
}

/**
 * Refuse, at construction, every option that would not mean here what the app meant: unknown keys
 * (with the nearest known name), the peers' options that have no equivalent (with what to write
 * instead), and durations that look like milliseconds.
 */
export function checkPeerOptions(options: object): void {
  checkKeys(options, "option", SESSION_OPTION_KEYS, PEER_OPTIONS);
  const o = options as Record<string, unknown>;
  const cookie = o.cookie;
  if (typeof cookie === "function") {
    throw new SessionConfigError(
      "cookie must be an object here, not a function of the request (express-session 1.19): one set of attributes for every session; for a per-session lifetime set `req.session.cookie.maxAge` (ms) or call `session.setLifetime(seconds)` in the request",
    );
  }
  if (cookie !== undefined && (typeof cookie !== "object" || cookie === null)) throw new SessionConfigError(`cookie must be an object, got ${String(cookie)}`);
  if (cookie !== undefined) {
    checkKeys(cookie, "cookie option", COOKIE_OPTION_KEYS, PEER_COOKIE_OPTIONS);
    checkDuration("cookie.maxAge", (cookie as Record<string, unknown>).maxAge);
  }
  for (const name of ["idleTimeout", "absoluteTimeout", "touchAfter"]) checkDuration(name, o[name]);
  const unset = o.unset;
  if (unset !== undefined && unset !== "destroy" && unset !== "keep") {
    throw new SessionConfigError(`unset must be "destroy" or "keep", got ${JSON.stringify(unset)}`);
  }
}
