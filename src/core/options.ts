import { v4 as uuidv4 } from "uuid";
import { resolveCookie, type CookieOptions, type ResolvedCookie } from "./cookie.js";
import { encryptedCodec, RecordCipher, type EncryptionOptions } from "./encryption.js";
import { SessionConfigError } from "./errors.js";
import { expressSessionCodec, nativeCodec, type Codec } from "./codec.js";
import { resolveHeaderCarrier, type HeaderCarrier, type HeaderCarrierOptions } from "./header-carrier.js";
import { checkLimit, revocationGraceMs, type SessionLimit } from "./owners.js";
import { checkPeerOptions } from "./peer-options.js";
import { jsonSerializer, type Serializer } from "./record.js";
import { resolveSecrets } from "./signing.js";
import type { SessionStore } from "./store.js";
import { storeKeys } from "./store-key.js";
import type { SessionData, SessionLogger } from "./types.js";
import { Verifier } from "./verifier.js";

/** Options of {@link createSessionManager}; every binding takes the same ones. */
export interface SessionOptions<D extends object = SessionData> {
  /** Where records live: `RedisStore`, `MemcachedStore`, or any {@link SessionStore}. */
  store: SessionStore;
  /**
   * HMAC secret(s) for the cookie. The first signs and must be at least 32 characters; all verify,
   * so a secret can be rotated by putting the new one first. Cookies signed with an older one are re-signed.
   */
  secret: string | readonly string[];
  /**
   * Cookie name.
   * @default "sid"
   */
  name?: string;
  /** Cookie attributes. */
  cookie?: CookieOptions;
  /**
   * Seconds of inactivity after which a session expires. This is the store TTL, extended on activity.
   * @default 86400
   */
  idleTimeout?: number;
  /**
   * Seconds from creation after which a session expires whatever its activity. Nothing extends it;
   * the store TTL never reaches past it.
   * @default 604800
   */
  absoluteTimeout?: number;
  /**
   * Seconds between refreshes that cost something: rewriting the record on stores that cannot refresh
   * the TTL while reading, and re-sending a persistent cookie (`cookie.maxAge`).
   * @default 60
   */
  touchAfter?: number;
  /**
   * Largest record written, in bytes (data plus about 90 bytes of metadata). Larger writes throw
   * {@link SessionTooLargeError} and write nothing.
   * @default 65536
   */
  maxSize?: number;
  /**
   * Seconds a store call may take before the request is answered with 503. Fractions allowed.
   * @default 2
   */
  storeTimeout?: number;
  /**
   * Seconds sent in `Retry-After` with a 503.
   * @default 5
   */
  retryAfter?: number;
  /**
   * What a store failure does: `"fail"` answers 503; `"continue"` serves the request without a
   * session (no data, nothing written, no cookie sent).
   * @default "fail"
   */
  onStoreError?: "fail" | "continue";
  /** Makes a new session id. Requires `validateId`. @default uuid v4 */
  genid?: () => string;
  /** Says whether a cookie's id has the format `genid` makes; others never reach the store. @default uuid v4 format */
  validateId?: (id: string) => boolean;
  /** How data becomes text. @default JSON with prototype-pollution keys dropped */
  serializer?: Serializer;
  /** Receives log lines (hashed ids only). @default silent */
  logger?: SessionLogger;
  /**
   * The owner of a session (such as the user id), read from its data at every write. Enables
   * {@link SessionManager.listSessions} and {@link SessionManager.destroyOwnerSessions} ("log out
   * everywhere") on stores with an owner index (`RedisStore`), and {@link SessionManager.revokeOwnerSessions}
   * on every store.
   */
  owner?: (data: Readonly<Partial<D>>) => string | number | null | undefined;
  /**
   * At most `limit` live sessions per owner, enforced atomically when a write names an owner (parallel
   * logins cannot overshoot it). Needs `owner` and a store whose owner index can cap (`RedisStore`,
   * `MemoryStore`); refused at construction otherwise (Memcached has no index to count with).
   * @example { limit: 1, onLimit: "evict-least-active" } // one device at a time
   */
  maxSessionsPerOwner?: SessionLimit;
  /** Small metadata about a session shown by `listSessions` (such as a device label the app stored). */
  ownerMetadata?: (data: Readonly<Partial<D>>) => Record<string, string | number | boolean | null> | undefined;
  /**
   * Migration from express-session + connect-redis without logging anyone out.
   * `"express-session"`: read and write exactly their cookie (`s:` + signature, percent-encoded;
   * name `connect.sid` by default) and record (JSON with a `cookie` object), so old and new processes
   * share users during a rolling deploy. `"express-session-read"`: once no old process is left,
   * still accept their cookies and records but write ours, converting each session as it is used.
   * New sessions always get our ids. Needs the JSON serializer.
   */
  compat?: "express-session" | "express-session-read";
  /**
   * Encrypt session data at rest with AES-256-GCM (the metadata line stays readable). The first key
   * encrypts, all decrypt; a record under an older key is rewritten under the first when next read.
   * A record no key opens reads as corrupt: a fresh session and a log line. Not with `compat`.
   */
  encryption?: EncryptionOptions;
  /**
   * Secret of the keyed hash (HMAC-SHA256) that names each record in the store instead of its
   * session id, so the store's keys hold no live credential. Changing it orphans every session.
   * The default, the LAST entry of `secret`, survives the usual rotation (a new secret goes first);
   * before dropping that entry, pass it here. Unused with `compat: "express-session"` (records keyed by
   * the raw id, as connect-redis keys them).
   * @default the last entry of `secret`
   */
  storeKeySecret?: string;
  /**
   * Also carry the session in a request header, for API and mobile clients without a cookie jar:
   * `Authorization: Bearer <signed id>` by default, or a named header. The token is checked exactly
   * like the cookie; it is handed out in a response header (`x-session-token` by default) when a
   * session is created or its id changes. When a request carries the header, the cookie is ignored.
   */
  header?: HeaderCarrierOptions;
  /**
   * What taking the session off the request does (Express `req.session = null` or
   * `delete req.session`, Koa `ctx.session = null`): `"destroy"` destroys it (logout); `"keep"`
   * leaves the stored session as it was and writes nothing for this request (express-session's
   * default meaning).
   * @default "destroy"
   */
  unset?: "destroy" | "keep";
  /** @internal type carrier for `D`. */
  readonly __data?: D;
}


/** Session data as the engine sees it: the session's own enumerable properties. */
export type Data = Record<string, unknown>;

/** The cookie's configured attributes (one place for their defaults). */
export interface CookieAttributes {
  readonly path: string;
  readonly domain: string | undefined;
  readonly httpOnly: boolean;
  readonly sameSite: "lax" | "strict" | "none";
}

/** {@link SessionOptions} checked and defaulted, once, at construction: what the engine reads. */
export interface Config {
  readonly store: SessionStore;
  readonly secrets: readonly string[];
  readonly cookieName: string;
  readonly cookie: ResolvedCookie;
  readonly cookieAttributes: CookieAttributes;
  /** Seconds. */
  readonly idleTimeout: number;
  readonly absoluteTimeout: number;
  readonly touchAfter: number;
  readonly retryAfter: number;
  readonly storeTimeout: number;
  /** `storeTimeout` in whole milliseconds. */
  readonly storeTimeoutMs: number;
  /** Bytes. */
  readonly maxSize: number;
  /** The store bounds its own calls within `storeTimeout`: no timer of ours around them. */
  readonly storeBounded: boolean;
  readonly onStoreError: "fail" | "continue";
  readonly unset: "destroy" | "keep";
  readonly genid: () => string;
  readonly validateId: (id: string) => boolean;
  readonly serializer: Serializer;
  /** What the serializer makes of no data: a new session with this text has nothing to write. */
  readonly emptyText: string;
  readonly logger: SessionLogger | undefined;
  /** The store touches a record (resets its TTL) when it reads it (`refreshOnGet`): loads need no rewrite to stay alive. */
  readonly touchOnRead: boolean;
  /** Reads go through `store.getVersioned`, whose versions let compare-and-set skip a read. */
  readonly versioned: boolean;
  readonly owner: ((data: Readonly<Data>) => string | number | null | undefined) | undefined;
  readonly ownerMetadata: ((data: Readonly<Data>) => Record<string, string | number | boolean | null> | undefined) | undefined;
  /** The store keeps an owner index: "log out everywhere" deletes the records, and loads check the owner's revocation mark only while a session's owner is recent. */
  readonly indexed: boolean;
  /** How long after its owner was set a session's loads still check its owner's revocation mark on an indexed store (ms). */
  readonly revocationGraceMs: number;
  readonly limit: SessionLimit | undefined;
  readonly codec: Codec;
  /** `"express-session-read"`: convert legacy cookies and records to ours as they are used. */
  readonly convertLegacy: boolean;
  readonly header: HeaderCarrier | undefined;
  /** The store key of a session id: a keyed hash of it, or the id itself with `compat: "express-session"`. */
  readonly keyOf: (id: string) => string;
}

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const COOKIE_SAFE_ID = /^[!#$%&'()*+\-/0-9:<=>?@A-Z[\]^_`a-z{|}~]{1,200}$/;

/**
 * The one check of a duration option in seconds: a whole number >= `min` (the default), or with
 * `fractions` any finite number > 0. `fallback` when absent.
 */
export function seconds(name: string, value: unknown, fallback: number, { min = 1, fractions = false }: { min?: number; fractions?: boolean } = {}): number {
  if (value === undefined) return fallback;
  if (fractions) {
    if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) throw new SessionConfigError(`${name} must be a number of seconds > 0, got ${String(value)}`);
    return value;
  }
  return wholeNumber(name, value, fallback, "seconds", min);
}

function wholeNumber(name: string, value: unknown, fallback: number, unit: "seconds" | "bytes", min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new SessionConfigError(`${name} must be a whole number of ${unit} >= ${min}, got ${typeof value === "string" ? JSON.stringify(value) : String(value)}`);
  }
  return value;
}

function checkStore(store: unknown): SessionStore {
  const s = store as SessionStore;
  const methods = ["get", "create", "update", "touch", "destroy"] as const;
  if (typeof s !== "object" || s === null || methods.some((m) => typeof s[m] !== "function") || typeof s.capabilities !== "object") {
    throw new SessionConfigError("store must implement SessionStore (get, create, update, touch, destroy, capabilities)");
  }
  if (s.capabilities.compareAndSet && typeof s.compareAndSet !== "function") {
    throw new SessionConfigError(`${s.name} declares compareAndSet but does not implement it`);
  }
  return s;
}

function checkIds(genid: unknown, validateId: unknown): Pick<Config, "genid" | "validateId"> {
  if (genid !== undefined) {
    if (typeof genid !== "function" || typeof validateId !== "function") {
      throw new SessionConfigError("genid needs a matching validateId, so ids from cookies can be checked before they reach the store");
    }
    const sample: unknown = genid();
    if (typeof sample !== "string" || !COOKIE_SAFE_ID.test(sample) || !validateId(sample)) {
      throw new SessionConfigError(
        `genid made ${JSON.stringify(sample)}, which ${typeof sample === "string" && COOKIE_SAFE_ID.test(sample) ? "validateId refuses" : "is not 1-200 cookie-safe characters"}`,
      );
    }
  } else if (validateId !== undefined && typeof validateId !== "function") {
    throw new SessionConfigError("validateId must be a function");
  }
  return {
    genid: (genid as (() => string) | undefined) ?? uuidv4,
    validateId: (validateId as ((id: string) => boolean) | undefined) ?? ((id) => UUID_V4.test(id)),
  };
}

/**
 * Check every option and fill in the defaults, in one pass: a configuration error throws here, at
 * construction, never at the first request.
 */
export function resolveOptions<D extends object>(options: SessionOptions<D>): Config {
  if (typeof options !== "object" || options === null) throw new SessionConfigError("options are required: { store, secret }");
  checkPeerOptions(options);
  const store = checkStore(options.store);
  const secrets = resolveSecrets(options.secret);
  const compat = options.compat;
  if (compat !== undefined && compat !== "express-session" && compat !== "express-session-read") {
    throw new SessionConfigError(`compat must be "express-session" or "express-session-read", got ${JSON.stringify(compat)}`);
  }
  if (compat !== undefined && options.serializer !== undefined && options.serializer !== jsonSerializer) {
    throw new SessionConfigError("compat mode reads and writes express-session's JSON records: leave serializer unset");
  }
  const cookieName = options.name ?? (compat ? "connect.sid" : "sid");
  const cookie = resolveCookie(cookieName, options.cookie);
  const idleTimeout = seconds("idleTimeout", options.idleTimeout, 86_400);
  const absoluteTimeout = seconds("absoluteTimeout", options.absoluteTimeout, 604_800);
  const touchAfter = seconds("touchAfter", options.touchAfter, 60, { min: 0 });
  const maxSize = wholeNumber("maxSize", options.maxSize, 65_536, "bytes", 256);
  const retryAfter = seconds("retryAfter", options.retryAfter, 5);
  const storeTimeout = seconds("storeTimeout", options.storeTimeout ?? undefined, 2, { fractions: true });
  const storeTimeoutMs = Math.ceil(storeTimeout * 1000);
  const ownTimeout = (store as { timeout?: unknown }).timeout;
  const onStoreError = options.onStoreError ?? "fail";
  if (onStoreError !== "fail" && onStoreError !== "continue") {
    throw new SessionConfigError(`onStoreError must be "fail" or "continue", got ${JSON.stringify(onStoreError)}`);
  }
  const { genid, validateId } = checkIds(options.genid, options.validateId);
  const serializer = options.serializer ?? jsonSerializer;
  if (typeof serializer?.stringify !== "function" || typeof serializer.parse !== "function") {
    throw new SessionConfigError("serializer must have stringify(data) and parse(text)");
  }
  if (options.logger !== undefined && typeof options.logger !== "function") throw new SessionConfigError("logger must be a function");
  if (options.owner !== undefined && typeof options.owner !== "function") throw new SessionConfigError("owner must be a function from session data to an owner id");
  const limit = checkLimit(options.maxSessionsPerOwner, options.owner !== undefined, store);
  const cookieAttributes: CookieAttributes = {
    path: options.cookie?.path ?? "/",
    domain: options.cookie?.domain,
    httpOnly: options.cookie?.httpOnly !== false,
    sameSite: options.cookie?.sameSite ?? "lax",
  };
  if (options.encryption !== undefined && compat !== undefined) {
    throw new SessionConfigError("encryption cannot be used with compat: express-session reads and writes plaintext records");
  }
  const context = { secrets, verifier: new Verifier(secrets), validateId, serializer, cookie, cookieOptions: cookieAttributes, absoluteTimeout };
  let codec = compat === undefined ? nativeCodec(context) : expressSessionCodec(context, compat === "express-session");
  if (options.encryption !== undefined) codec = encryptedCodec(codec, new RecordCipher(options.encryption), serializer);
  const header = resolveHeaderCarrier(options.header);
  // Shared with express-session processes, records stay under the raw id, as connect-redis keys them;
  // "express-session-read" moves each to its hashed key as it is used (see compat/express-session.ts).
  const keyOf = compat === "express-session" ? (id: string) => id : storeKeys(options.storeKeySecret ?? secrets[secrets.length - 1]!);
  return {
    store,
    secrets,
    cookieName,
    cookie,
    cookieAttributes,
    idleTimeout,
    absoluteTimeout,
    touchAfter,
    retryAfter,
    storeTimeout,
    storeTimeoutMs,
    maxSize,
    storeBounded: typeof ownTimeout === "number" && ownTimeout > 0 && ownTimeout <= storeTimeout,
    onStoreError,
    unset: options.unset ?? "destroy",
    genid,
    validateId,
    serializer,
    emptyText: serializer.stringify({}),
    logger: options.logger,
    touchOnRead: store.capabilities.refreshOnGet === true,
    versioned: store.capabilities.compareAndSet === true && typeof store.getVersioned === "function",
    // The engine holds data as a plain record; `D` is the app's view of the same object.
    owner: options.owner as Config["owner"],
    ownerMetadata: options.ownerMetadata as Config["ownerMetadata"],
    indexed: store.capabilities.ownerIndex && store.owners !== undefined,
    revocationGraceMs: revocationGraceMs(storeTimeoutMs),
    limit,
    codec,
    convertLegacy: compat === "express-session-read",
    header,
    keyOf,
  };
}
