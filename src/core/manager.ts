import { createHash } from "node:crypto";
import { v4 as uuidv4 } from "uuid";
import { bounded } from "./bounded.js";
import { cookieValues, resolveCookie, serializeClearCookie, serializeCookie, serializeCookieMaxAge, type CookieOptions, type ResolvedCookie } from "./cookie.js";
import { scrubError, SessionConfigError, SessionError, SessionTooLargeError, StoreUnavailableError, UnsupportedOperationError } from "./errors.js";
import { encryptedCodec, RecordCipher, type EncryptionOptions } from "./encryption.js";
import { expressSessionCodec, nativeCodec, type Codec, type LoadedRecord, type ReadCookie } from "./format.js";
import { readinessTimeout, storeReady } from "./readiness.js";
import { jsonSerializer, parseData, type RecordMeta, type Serializer } from "./record.js";
import { checkLifetime, lifetimeFromMs } from "./lifetime.js";
import { SessionCookie } from "./session-cookie.js";
import { handOver, replacedError, type SessionSlot } from "./session-swap.js";
import { checkPeerOptions } from "./peer-options.js";
import { resolveSecrets, sign } from "./signing.js";
import { storeKeys } from "./store-key.js";
import { checkLimit, EVICTED_RECORD, isPlaceholder, OwnerStoreOps, ownedSince, revocationGraceMs, withTouch, type SessionLimit } from "./owners.js";
import { resolveHeaderCarrier, type HeaderCarrier, type HeaderCarrierOptions } from "./header-carrier.js";
import type { SessionStore, VersionedRecord } from "./store.js";
import { commitChannel, loadChannel, storeChannel, storeOutcome, trace, traced, type CommitTraceContext, type LoadTraceContext, type StoreTraceContext } from "./tracing.js";
import type { ReservedKey, Session, SessionCallback, SessionData, SessionLogEntry, SessionLogger } from "./types.js";

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

/** What a binding knows about the request when loading. */
export interface RequestFacts {
  /** The request reached the app over HTTPS, as the framework decides (trust proxy). */
  readonly secure: boolean;
  /** Value of the request header named {@link SessionManager.headerName} (the `header` option), if any. */
  readonly header?: string | readonly string[] | null | undefined;
}

/** What a binding must do after commit. */
export interface CommitResult {
  /** Value for one `Set-Cookie` header, or `undefined` for none. */
  readonly setCookie: string | undefined;
  /** With the `header` option: a response header to set, `[name, token]`, when the session got a new token. */
  readonly setHeader?: readonly [name: string, value: string];
}

/** One live session of an owner, as {@link SessionManager.listSessions} reports it. */
export interface OwnerSession {
  /** The session's hash, {@link SessionManager.hashOf} (the id itself is a credential and never leaves the manager). */
  readonly session: string;
  /** Unix ms. */
  readonly createdAt: number;
  /** Unix ms of the last request that used it, to the second where the store reports TTLs, else of the last write. */
  readonly lastActiveAt: number;
  /** Unix ms of the absolute deadline. */
  readonly expiresAt: number;
  /** The session passed as `current`. */
  readonly current: boolean;
  /** What `ownerMetadata` returned for it. */
  readonly metadata: Record<string, string | number | boolean | null> | undefined;
}

/** Events a manager emits. Ids appear only hashed. */
export interface SessionEvents {
  /** A new session was first written. */
  created: { session: string };
  /** `regenerate()` replaced `from` by a fresh id (the new id is hashed when it is first written). */
  regenerated: { from: string };
  /** A session was destroyed by the app. */
  destroyed: { session: string };
  /**
   * A session ended by expiry, reported when the library learns of it: past its absolute deadline when
   * loaded (`absolute`), or its record gone from the store while the owner index still names it, found
   * by `listSessions` and the owner calls (`idle`). `owner` when the record named one.
   */
  expired: { session: string; owner?: string; reason?: "absolute" | "idle" };
  /** A session was destroyed to make room for a newer one of its owner (`maxSessionsPerOwner`, `"evict-least-active"`). */
  evicted: { session: string; owner: string };
  /** A session was refused because its owner's sessions were revoked after it was issued ({@link SessionManager.revokeOwnerSessions}). */
  revoked: { session: string; owner: string };
  /** A cookie failed the signature or id check, or named a session the store does not know. */
  rejected: { reason: "signature" | "unknown" | "corrupt" };
  /** A store call failed or timed out. */
  storeError: { operation: string; error: StoreUnavailableError };
}

export type SessionEventName = keyof SessionEvents;

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const COOKIE_SAFE_ID = /^[!#$%&'()*+\-/0-9:<=>?@A-Z[\]^_`a-z{|}~]{1,200}$/;
const RESERVED: ReadonlySet<string> = new Set<ReservedKey | "__proto__" | "constructor" | "prototype">([
  "id",
  "sessionId",
  "isModified",
  "setLifetime",
  "cookie",
  "maxAge",
  "options",
  "isNew",
  "regenerate",
  "destroy",
  "save",
  "reload",
  "touch",
  "get",
  "set",
  "__proto__",
  "constructor",
  "prototype",
]);
const NO_COOKIE: CommitResult = Object.freeze({ setCookie: undefined });
const CREATE_ATTEMPTS = 3;
/**
 * Values of the session cookie's name read from one `Cookie` header; later ones are ignored. Browsers
 * send one per matching path and domain; more than a few is an attack (item 7 of #16).
 */
export const MAX_COOKIE_VALUES = 4;
/** Longest owner id (characters) the `owner` option may return: stores index by it. */
const MAX_OWNER_LENGTH = 1024;
/** Conflicts one write may meet before giving up: each is another request's write landing first. */
const MERGE_ATTEMPTS = 100;
/** Longest pause between two compare-and-set attempts after conflicts, in ms (full jitter below it). */
const MAX_BACKOFF_MS = 64;

/** A record as a write of this process left it in the store, with the store's version. */
interface Written {
  readonly record: string;
  readonly version: string | undefined;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Per-request state of a session, kept off the data object. */
interface State {
  id: string | null;
  isNew: boolean;
  /** A record exists under `id` (loaded, or written in this request). */
  persisted: boolean;
  meta: RecordMeta;
  /** `writtenAt` as loaded, for the cookie re-send throttle. */
  loadedWrittenAt: number;
  /** Data text as the store holds it: change detection compares against it. */
  loadedText: string | null;
  /** The whole record as the store holds it: the expected value of compare-and-set. */
  loadedRecord: string | null;
  /** The store's version of `loadedRecord` (`getVersioned`), handed back to compare-and-set. */
  loadedVersion: string | undefined;
  secure: boolean;
  /** Send the cookie for `id` (new id written, or re-sign after rotation). */
  sendCookie: boolean;
  /** Expire the client's cookie unless a session gets written. */
  clearCookie: boolean;
  /** Rewrite to refresh the TTL (stores without refresh-on-read, once per `touchAfter`). */
  refresh: boolean;
  /** Write a new session even when its data is empty. */
  forceSave: boolean;
  /** The store failed at load under `onStoreError: "continue"`: never write. */
  disabled: boolean;
  /** The request carried the session in the `header` option's header: answer there, not in a cookie. */
  viaHeader?: boolean;
  /** The trace of a commit in progress, when someone subscribes to `shared-session:commit`. */
  commitTrace?: CommitTraceContext | undefined;
  /** `setLifetime` changed the lifetime in this request: a write keeps this request's, even over a concurrent one. */
  lifetimeChanged?: boolean;
  /** Settles when the session methods the app called and may not have awaited are done: commit waits for it. */
  pending?: Promise<void> | undefined;
  /** The binding's slot: `regenerate()` puts a new session object there (see session-swap.ts). */
  slot?: SessionSlot | undefined;
  /** This is the detached snapshot of an object `regenerate()` replaced by this one: operations refuse. */
  replacedBy?: object | undefined;
  readonly manager: SessionManager<never>;
}

/**
 * 16 hex digits of SHA-256 of `value`: never the value itself. The manager's logs, events, traces and
 * listings show `hashId(storeKey)`, which {@link SessionManager.hashOf} computes from an id.
 */
export function hashId(id: string): string {
  return createHash("sha256").update(id).digest("hex").slice(0, 16);
}

function positiveInt(name: string, value: unknown, fallback: number, unit: "seconds" | "bytes", min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new SessionConfigError(`${name} must be a whole number of ${unit} >= ${min}, got ${typeof value === "string" ? JSON.stringify(value) : String(value)}`);
  }
  return value;
}

function withCallback(promise: Promise<void>, callback: SessionCallback | undefined): Promise<void> {
  if (typeof callback !== "function") return promise;
  // With a callback the caller may ignore the promise: it must not reject unobserved.
  // `null` on success, as the peers and Node's callbacks pass it.
  return promise.then(
    () => callback(null),
    (err: unknown) => callback(err),
  );
}

/** What `regenerate()` keeps. */
interface RegenerateRequest {
  readonly keep?: readonly string[];
  readonly renewDeadline?: boolean;
}

/**
 * The argument forms of `regenerate()`: `(cb?)`, `(keys[], cb?)` (@fastify/session's `ignoreFields`)
 * and `({ keep, renewDeadline }, cb?)`. Anything else is a synchronous TypeError, never a callback
 * that is silently not called.
 */
function regenerateArguments(first: unknown, second: unknown): [RegenerateRequest, SessionCallback | undefined] {
  const usage = "regenerate() takes (callback?), (keys: string[], callback?) or ({ keep?: string[], renewDeadline?: boolean }, callback?)";
  if (typeof first === "function") {
    if (second !== undefined) throw new TypeError(`[shared-session] ${usage}`);
    return [{}, first as SessionCallback];
  }
  if (second !== undefined && typeof second !== "function") throw new TypeError(`[shared-session] ${usage}; the callback is not a function`);
  const cb = second as SessionCallback | undefined;
  if (first === undefined) return [{}, cb];
  const keys = (value: unknown): readonly string[] => {
    if (!Array.isArray(value) || !value.every((k) => typeof k === "string")) throw new TypeError(`[shared-session] ${usage}; keys must be strings`);
    return value as string[];
  };
  if (Array.isArray(first)) return [{ keep: keys(first) }, cb];
  if (typeof first === "object" && first !== null) {
    const { keep, renewDeadline, ...rest } = first as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) throw new TypeError(`[shared-session] ${usage}; unknown option ${JSON.stringify(unknown[0])}`);
    if (renewDeadline !== undefined && typeof renewDeadline !== "boolean") throw new TypeError(`[shared-session] ${usage}; renewDeadline must be a boolean`);
    return [{ keep: keep === undefined ? undefined : keys(keep), renewDeadline }, cb];
  }
  throw new TypeError(`[shared-session] ${usage}`);
}

/** Set or drop `meta.lifetime`. */
function setLifetimeOf(meta: RecordMeta, lifetime: number | undefined): void {
  if (lifetime === undefined) delete meta.lifetime;
  else meta.lifetime = lifetime;
}

/** The cookie's configured attributes. */
interface CookieAttributes {
  readonly path: string;
  readonly domain: string | undefined;
  readonly httpOnly: boolean;
  readonly sameSite: "lax" | "strict" | "none";
}

/** @internal What a session's `cookie` object reads: attributes, and its lifetime (seconds) with the expiry it gives now. */
export interface SessionCookieFacts extends CookieAttributes {
  readonly secure: boolean;
  /** Seconds: the session's own lifetime, else `cookie.maxAge`; `undefined` for a browser-session cookie. */
  readonly lifetime: number | undefined;
  /** The lifetime is the session's own (`setLifetime`), not `cookie.maxAge`. */
  readonly own: boolean;
  /** Unix ms the cookie would expire if sent now (never past the absolute deadline). */
  readonly expiresAt: number | undefined;
}

function clearData(session: object): void {
  for (const key of Object.keys(session)) delete (session as Record<string, unknown>)[key];
}

function noop(): void {}

/**
 * Record a session method's operation on the state, so that commit waits for it even when the app
 * did not (koa-session's `save()` is synchronous; `save(cb)` is often not awaited). Returns the
 * operation's outcome once the record is cleared.
 */
function tracked(session: object, operation: Promise<void>): Promise<void> {
  const state = SessionImpl.of(session);
  if (state === undefined) return operation;
  const all: Promise<unknown> = state.pending === undefined ? operation : Promise.allSettled([state.pending, operation]);
  const settled: Promise<void> = all.then(
    () => {
      if (state.pending === settled) state.pending = undefined;
    },
    () => {
      if (state.pending === settled) state.pending = undefined;
    },
  );
  state.pending = settled;
  const outcome = settled.then(() => operation);
  // Not awaited, a failure is not the process's to crash on: the commit meets the store itself.
  outcome.catch(noop);
  return outcome;
}

/**
 * The framework-agnostic engine. Bindings call {@link SessionManager.load} with the `Cookie` header
 * and {@link SessionManager.commit} before the response goes out; nothing else is needed to bind a
 * framework.
 */
export class SessionManager<D extends object = SessionData> {
  readonly store: SessionStore;
  readonly cookieName: string;
  readonly idleTimeout: number;
  readonly absoluteTimeout: number;
  readonly touchAfter: number;
  readonly maxSize: number;
  readonly storeTimeout: number;
  readonly retryAfter: number;
  readonly onStoreError: "fail" | "continue";
  /** The `unset` option: what taking the session off the request does. */
  readonly unset: "destroy" | "keep";

  readonly #secrets: readonly string[];
  readonly #cookie: ResolvedCookie;
  /** The cookie's attributes as configured, for `session.cookie`. */
  readonly #cookieAttributes: CookieAttributes;
  readonly #genid: () => string;
  readonly #validateId: (id: string) => boolean;
  readonly #serializer: Serializer;
  readonly #emptyText: string;
  readonly #logger: SessionLogger | undefined;
  readonly #refreshOnGet: boolean;
  /** Reads go through `store.getVersioned`, whose versions let compare-and-set skip a read. */
  readonly #versioned: boolean;
  readonly #timeoutMs: number;
  /** The store bounds its own calls within `storeTimeout`: no timer of ours around them. */
  readonly #storeBounded: boolean;
  readonly #listeners = new Map<SessionEventName, Set<(payload: never) => void>>();
  readonly #owner: ((data: Readonly<Partial<D>>) => string | number | null | undefined) | undefined;
  readonly #ownerMetadata: SessionOptions<D>["ownerMetadata"];
  /** The store keeps an owner index: "log out everywhere" deletes the records, and loads check the owner's revocation mark only while a session's owner is recent. */
  readonly #indexed: boolean;
  /** How long after its owner was set a session's loads still check its owner's revocation mark on an indexed store (ms). */
  readonly #revocationGraceMs: number;
  readonly #limit: SessionLimit | undefined;
  /** Revocation marks, placeholders and the capped index: the store side of sessions per owner (owners.ts). */
  readonly #owners: OwnerStoreOps;
  readonly #codec: Codec;
  /** Convert legacy cookies and records to ours as they are used. */
  readonly #convertLegacy: boolean;
  /** Compare-and-set writes in flight per session id, and the record the last one left (see #afterOtherWrites). */
  readonly #writes = new Map<string, { tail: Promise<void>; latest: Written | null }>();
  readonly #header: HeaderCarrier | undefined;
  /** Request header the bindings pass to `load` as `facts.header` (lower case), when the `header` option is set. */
  readonly headerName: string | undefined;
  /** `commitNow` is running inside its own trace (it traces itself when subscribed). */
  #tracingCommit = false;

  constructor(options: SessionOptions<D>) {
    if (typeof options !== "object" || options === null) throw new SessionConfigError("options are required: { store, secret }");
    checkPeerOptions(options);
    this.unset = options.unset ?? "destroy";
    const store = options.store;
    const methods = ["get", "create", "update", "touch", "destroy"] as const;
    if (typeof store !== "object" || store === null || methods.some((m) => typeof store[m] !== "function") || typeof store.capabilities !== "object") {
      throw new SessionConfigError("store must implement SessionStore (get, create, update, touch, destroy, capabilities)");
    }
    if (store.capabilities.compareAndSet && typeof store.compareAndSet !== "function") {
      throw new SessionConfigError(`${store.name} declares compareAndSet but does not implement it`);
    }
    this.store = store;
    this.#secrets = resolveSecrets(options.secret);
    const compat = options.compat;
    if (compat !== undefined && compat !== "express-session" && compat !== "express-session-read") {
      throw new SessionConfigError(`compat must be "express-session" or "express-session-read", got ${JSON.stringify(compat)}`);
    }
    if (compat !== undefined && options.serializer !== undefined && options.serializer !== jsonSerializer) {
      throw new SessionConfigError("compat mode reads and writes express-session's JSON records: leave serializer unset");
    }
    this.cookieName = options.name ?? (compat ? "connect.sid" : "sid");
    this.#cookie = resolveCookie(this.cookieName, options.cookie);
    this.idleTimeout = positiveInt("idleTimeout", options.idleTimeout, 86_400, "seconds");
    this.absoluteTimeout = positiveInt("absoluteTimeout", options.absoluteTimeout, 604_800, "seconds");
    this.touchAfter = positiveInt("touchAfter", options.touchAfter, 60, "seconds", 0);
    this.maxSize = positiveInt("maxSize", options.maxSize, 65_536, "bytes", 256);
    this.retryAfter = positiveInt("retryAfter", options.retryAfter, 5, "seconds");
    const storeTimeout = options.storeTimeout ?? 2;
    if (typeof storeTimeout !== "number" || !(storeTimeout > 0) || !Number.isFinite(storeTimeout)) {
      throw new SessionConfigError(`storeTimeout must be a number of seconds > 0, got ${String(storeTimeout)}`);
    }
    this.storeTimeout = storeTimeout;
    this.#timeoutMs = Math.ceil(storeTimeout * 1000);
    const ownTimeout = (store as { timeout?: unknown }).timeout;
    this.#storeBounded = typeof ownTimeout === "number" && ownTimeout > 0 && ownTimeout <= storeTimeout;
    const onStoreError = options.onStoreError ?? "fail";
    if (onStoreError !== "fail" && onStoreError !== "continue") {
      throw new SessionConfigError(`onStoreError must be "fail" or "continue", got ${JSON.stringify(onStoreError)}`);
    }
    this.onStoreError = onStoreError;

    if (options.genid !== undefined) {
      if (typeof options.genid !== "function" || typeof options.validateId !== "function") {
        throw new SessionConfigError("genid needs a matching validateId, so ids from cookies can be checked before they reach the store");
      }
      const sample = options.genid();
      if (typeof sample !== "string" || !COOKIE_SAFE_ID.test(sample) || !options.validateId(sample)) {
        throw new SessionConfigError(
          `genid made ${JSON.stringify(sample)}, which ${typeof sample === "string" && COOKIE_SAFE_ID.test(sample) ? "validateId refuses" : "is not 1-200 cookie-safe characters"}`,
        );
      }
    } else if (options.validateId !== undefined && typeof options.validateId !== "function") {
      throw new SessionConfigError("validateId must be a function");
    }
    this.#genid = options.genid ?? uuidv4;
    this.#validateId = options.validateId ?? ((id) => UUID_V4.test(id));
    const serializer = options.serializer ?? jsonSerializer;
    if (typeof serializer?.stringify !== "function" || typeof serializer.parse !== "function") {
      throw new SessionConfigError("serializer must have stringify(data) and parse(text)");
    }
    this.#serializer = serializer;
    this.#emptyText = serializer.stringify({});
    if (options.logger !== undefined && typeof options.logger !== "function") throw new SessionConfigError("logger must be a function");
    this.#logger = options.logger;
    // Errors the store sees outside any call (a client reconnecting) go to the same log.
    if (this.#logger !== undefined) store.attachLogger?.((entry) => this.#log(entry.level, entry.event, entry.message, undefined, entry.error));
    this.#refreshOnGet = store.capabilities.refreshOnGet === true;
    this.#versioned = store.capabilities.compareAndSet === true && typeof store.getVersioned === "function";
    if (options.owner !== undefined) {
      if (typeof options.owner !== "function") throw new SessionConfigError("owner must be a function from session data to an owner id");
    }
    this.#owner = options.owner;
    this.#ownerMetadata = options.ownerMetadata;
    this.#indexed = store.capabilities.ownerIndex && store.owners !== undefined;
    this.#revocationGraceMs = revocationGraceMs(this.#timeoutMs);
    this.#limit = checkLimit(options.maxSessionsPerOwner, options.owner !== undefined, store);
    this.#owners = new OwnerStoreOps({
      store,
      call: (operation, key, run) => this.#store(operation, key, run),
      emit: (event, payload) => this.#emit(event, payload as never),
      log: (message) => this.#log("debug", "session.revoked", message),
      hash: hashId,
      decode: (raw, now, key) => this.#codec.decode(raw, now, key),
      absoluteTimeout: this.absoluteTimeout,
      retryAfter: this.retryAfter,
      idleTimeout: this.idleTimeout,
      touchAfter: this.touchAfter,
      storeTimeoutMs: this.#timeoutMs,
      limit: this.#limit,
    });
    this.#cookieAttributes = {
      path: options.cookie?.path ?? "/",
      domain: options.cookie?.domain,
      httpOnly: options.cookie?.httpOnly !== false,
      sameSite: options.cookie?.sameSite ?? "lax",
    };
    const context = {
      secrets: this.#secrets,
      validateId: this.#validateId,
      serializer,
      cookie: this.#cookie,
      cookieOptions: {
        path: options.cookie?.path ?? "/",
        domain: options.cookie?.domain,
        httpOnly: options.cookie?.httpOnly !== false,
        sameSite: options.cookie?.sameSite ?? "lax",
      },
      absoluteTimeout: this.absoluteTimeout,
    };
    if (options.encryption !== undefined && compat !== undefined) {
      throw new SessionConfigError("encryption cannot be used with compat: express-session reads and writes plaintext records");
    }
    this.#codec = compat === undefined ? nativeCodec(context) : expressSessionCodec(context, compat === "express-session");
    if (options.encryption !== undefined) this.#codec = encryptedCodec(this.#codec, new RecordCipher(options.encryption), serializer);
    this.#convertLegacy = compat === "express-session-read";
    this.#header = resolveHeaderCarrier(options.header);
    this.headerName = this.#header?.request;
    // Shared with express-session processes, records stay under the raw id, as connect-redis keys them;
    // "express-session-read" moves each to its hashed key as it is used (see #moveLegacy).
    if (compat !== "express-session") this.#keyOf = storeKeys(options.storeKeySecret ?? this.#secrets[this.#secrets.length - 1]!);
  }

  /**
   * Turn the request's `Cookie` header into a session. Touches the store only when the header carries
   * a validly signed id of the right format. Throws {@link StoreUnavailableError} when the store fails
   * (unless `onStoreError: "continue"`).
   */
  load(cookieHeader: string | null | undefined, facts: RequestFacts): Promise<Session<D>> {
    try {
      const loaded = this.loadNow(cookieHeader, facts);
      return loaded instanceof Promise ? loaded : Promise.resolve(loaded);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * {@link load} for bindings that avoid a promise where none is needed: returns the session itself
   * when the header needs no store read (no session cookie, or one that fails the signature or id
   * check), and load's promise otherwise. Skipping the promise and the microtask on every anonymous
   * request is measurable in a fast framework.
   */
  loadNow(cookieHeader: string | null | undefined, facts: RequestFacts): Session<D> | Promise<Session<D>> {
    if (traced(loadChannel)) return this.#traceLoad(cookieHeader, facts);
    return this.#loadNow(cookieHeader, facts, undefined);
  }

  #loadNow(cookieHeader: string | null | undefined, facts: RequestFacts, trace: LoadTraceContext | undefined): Session<D> | Promise<Session<D>> {
    const secure = this.#cookie.secure ?? facts.secure === true;
    if (this.#header !== undefined) {
      const token = this.#header.read(facts.header);
      if (token !== undefined) return this.#loadToken(token, secure, trace);
    }
    // At most MAX_COOKIE_VALUES values of our name are looked at: a header stuffed with forged ones
    // costs no more HMACs than that.
    const values = cookieValues(cookieHeader, this.cookieName, MAX_COOKIE_VALUES);
    if (values.length === 0) return this.#fresh(secure, false, false);
    const next = this.#verifiedFrom(values, 0, null);
    if (next === null) {
      if (trace !== undefined) trace.outcome = "rejected";
      this.#log("debug", "cookie.rejected", "cookie failed the signature or id format check; starting a fresh session");
      this.#emit("rejected", { reason: "signature" });
      return this.#fresh(secure, true, false);
    }
    return this.#read(next.cookie.id, next.cookie.secretIndex > 0 || (this.#convertLegacy && next.cookie.legacy), secure, trace, values, next.index + 1);
  }

  /** The first value from `values[from]` on that verifies and names another id than `skip`, with its index. */
  #verifiedFrom(values: readonly string[], from: number, skip: string | null): { cookie: ReadCookie; index: number } | null {
    for (let i = from; i < values.length; i++) {
      const cookie = this.#codec.readCookie(values[i]!);
      if (cookie !== null && cookie.id !== skip) return { cookie, index: i };
    }
    return null;
  }

  /**
   * The store has no usable session for the verified id just tried. Another value of our cookie name
   * may hold the live one (a validly signed but dead cookie "tossed" from a sibling subdomain is sent
   * first, having the longer path or the older creation): try the next, within MAX_COOKIE_VALUES.
   * Nothing found: a fresh session that expires the client's cookie.
   */
  #readNext(id: string, secure: boolean, trace: LoadTraceContext | undefined, values: readonly string[] | undefined, from: number): Session<D> | Promise<Session<D>> {
    const next = values === undefined ? null : this.#verifiedFrom(values, from, id);
    if (next === null) return this.#fresh(secure, true, false);
    return this.#read(next.cookie.id, next.cookie.secretIndex > 0 || (this.#convertLegacy && next.cookie.legacy), secure, trace, values, next.index + 1);
  }

  /** {@link loadNow} for a token from the `header` option's header: the cookie is not looked at. */
  #loadToken(token: string | null, secure: boolean, trace: LoadTraceContext | undefined): Session<D> | Promise<Session<D>> {
    const verified = token === null ? null : this.#codec.readCookie(token);
    if (verified === null) {
      if (trace !== undefined) trace.outcome = "rejected";
      this.#log("debug", "header.rejected", "session header failed the signature or id format check; starting a fresh session");
      this.#emit("rejected", { reason: "signature" });
      const session = this.#fresh(secure, false, false);
      stateOf(session).viaHeader = true;
      return session;
    }
    return this.#read(verified.id, verified.secretIndex > 0, secure, trace).then((session) => {
      stateOf(session).viaHeader = true;
      return session;
    });
  }

  /**
   * Read the record at store `key` for a request that may write it back: with its version when the
   * store keeps versions (`getVersioned`, only useful with compare-and-set), else the record alone.
   */
  #get(key: string, ttl: number | undefined): Promise<string | VersionedRecord | null> {
    return this.#versioned ? this.#store("get", key, () => this.store.getVersioned!(key, ttl)) : this.#store("get", key, () => this.store.get(key, ttl));
  }

  /**
   * `"express-session-read"`: a record still under its raw id (connect-redis's layout, written by
   * express-session or in step 1) moves to its hashed key, with its owner index entry, and is read
   * from there. Costs one more read for an id found under neither, during the migration only.
   */
  async #moveLegacy(id: string, key: string): Promise<string | null> {
    const raw = await this.#store("get", id, () => this.store.get(id));
    if (raw === null) return null;
    const now = Date.now();
    const decoded = this.#codec.decode(raw, now, key);
    const ttl = decoded === null ? 0 : this.#ttl(decoded.meta, now);
    // Corrupt or past its deadline: #read says so, and the record's TTL removes it.
    if (decoded === null || ttl <= 0) return raw;
    const owner = this.#owner === undefined ? undefined : decoded.meta.owner;
    await this.#indexOwner(id, owner, decoded.meta);
    const moved = await this.#store("create", key, () => this.store.create(key, raw, ttl));
    await this.#store("destroy", id, () => this.store.destroy(id));
    if (owner !== undefined && this.#indexed) await this.#store("owners.remove", id, () => this.store.owners!.remove(owner, id));
    if (moved) return raw;
    // Another request moved it first.
    const current = await this.#get(key, undefined);
    return current === null || typeof current === "string" ? current : current.record;
  }

  /** The store half of {@link loadNow}: read the record of a verified id. */
  async #read(id: string, resign: boolean, secure: boolean, trace: LoadTraceContext | undefined, values?: readonly string[], from = 0): Promise<Session<D>> {
    let found: string | VersionedRecord | null;
    const key = this.#keyOf(id);
    if (trace !== undefined) trace.session = hashId(key);
    try {
      found = await this.#get(key, this.#refreshOnGet ? this.idleTimeout : undefined);
      if (found === null && this.#convertLegacy) found = await this.#moveLegacy(id, key);
      if (found !== null && isPlaceholder(typeof found === "string" ? found : found.record)) found = null;
    } catch (err) {
      if (trace !== undefined) trace.outcome = "error";
      if (this.onStoreError === "continue" && err instanceof StoreUnavailableError) return this.#fresh(secure, false, true);
      throw err;
    }
    if (found === null) {
      if (trace !== undefined) trace.outcome = "miss";
      this.#log("debug", "cookie.unknown", "signed id is not in the store (expired or destroyed); starting a fresh session", id);
      this.#emit("rejected", { reason: "unknown" });
      return this.#readNext(id, secure, trace, values, from);
    }
    const raw = typeof found === "string" ? found : found.record;
    const now = Date.now();
    const decoded = this.#codec.decode(raw, now, key);
    if (!decoded) {
      if (trace !== undefined) trace.outcome = "corrupt";
      this.#log("warn", "record.corrupt", "stored record is not a valid session record; treated as missing", id);
      this.#emit("rejected", { reason: "corrupt" });
      return this.#readNext(id, secure, trace, values, from);
    }
    const remainingMs = decoded.meta.expiresAt - now;
    if (remainingMs <= 0) {
      if (trace !== undefined) trace.outcome = "expired";
      this.#log("debug", "session.expired", "session is past its absolute deadline", id);
      this.#emit("expired", decoded.meta.owner === undefined ? { session: this.#hash(id), reason: "absolute" } : { session: this.#hash(id), owner: decoded.meta.owner, reason: "absolute" });
      await this.#store("destroy", key, () => this.store.destroy(key)).catch((err: unknown) => {
        this.#log("warn", "store.error", "could not delete an expired record; its TTL will remove it", id, err);
      });
      return this.#readNext(id, secure, trace, values, from);
    }
    if (this.#checksMark(decoded.meta, now)) {
      let revoked: boolean;
      try {
        revoked = await this.#owners.revokedNow(decoded.meta, key);
      } catch (err) {
        if (trace !== undefined) trace.outcome = "error";
        if (this.onStoreError === "continue" && err instanceof StoreUnavailableError) return this.#fresh(secure, false, true);
        throw err;
      }
      if (revoked) {
        if (trace !== undefined) trace.outcome = "miss";
        return this.#readNext(id, secure, trace, values, from);
      }
    }
    const state: State = {
      id,
      isNew: false,
      persisted: true,
      meta: decoded.meta,
      loadedWrittenAt: decoded.meta.writtenAt,
      loadedText: decoded.dataText,
      loadedRecord: raw,
      loadedVersion: typeof found === "string" ? undefined : found.version,
      secure,
      sendCookie: resign,
      clearCookie: false,
      // A record an express-session process made has no deadline of ours: write the one just given to it.
      // A record sealed under an older encryption key: rewrite it under the first.
      refresh: (this.#convertLegacy && decoded.legacy) || decoded.deadlineAssigned === true || decoded.reseal === true,
      forceSave: false,
      disabled: false,
      manager: this as SessionManager<never>,
    };
    const session = new SessionImpl(state) as unknown as Session<D>;
    this.#assignData(session, decoded.data, id);
    if (this.#refreshOnGet) {
      // The read reset the TTL to idleTimeout; in the last idleTimeout of its life that is past the deadline.
      // A session with its own lifetime gets that back (or what is left before the deadline).
      const lifetime = decoded.meta.lifetime;
      if (lifetime === undefined ? remainingMs < this.idleTimeout * 1000 : this.#ttl(decoded.meta, now) !== this.idleTimeout) {
        try {
          await this.#store("touch", key, () => this.store.touch(key, this.#ttl(decoded.meta, now)));
        } catch (err) {
          if (trace !== undefined) trace.outcome = "error";
          if (this.onStoreError === "continue" && err instanceof StoreUnavailableError) return this.#fresh(secure, false, true);
          throw err;
        }
      }
    } else if (now - decoded.meta.writtenAt >= this.touchAfter * 1000) {
      state.refresh = true;
    }
    // "evict-least-active": an owned session's index entry follows its activity, re-scored by a rewrite once per touchAfter.
    if (this.#refreshOnGet && this.#owners.refreshDue(decoded.meta, now)) state.refresh = true;
    return session;
  }

  /**
   * Write what the request changed and say which `Set-Cookie` to send. Call it before the response
   * is sent, so a client that follows a redirect at once finds the data. Writes nothing for an
   * unchanged or unused session.
   */
  commit(session: Session<D>): Promise<CommitResult> {
    const committed = this.commitNow(session);
    return committed instanceof Promise ? committed : Promise.resolve(committed);
  }

  /**
   * {@link commit} for bindings that avoid a promise where none is needed: returns the result itself
   * when there is nothing to write (an unchanged or unused session, the common case), and commit's
   * promise when the store must be written. Never throws: a failure is a rejected promise.
   */
  commitNow(session: Session<D>): CommitResult | Promise<CommitResult> {
    if (!this.#tracingCommit && traced(commitChannel)) return this.#traceCommit(session);
    try {
      const state = stateOf(session);
      if (state.replacedBy !== undefined) throw replacedError("commit");
      // A session method the app did not await still runs: commit what it leaves.
      // (regenerate() may have replaced the object meanwhile: commit the one it left.)
      if (state.pending !== undefined) return state.pending.then(() => this.commitNow(SessionImpl.current(session)));
      if (state.disabled) return NO_COOKIE;
      const data = { ...(session as object) } as Record<string, unknown>;
      const dataText = this.#serializer.stringify(data);
      // Nothing to write: settled without a store call. The conditions are those under which
      // #write returns false at once.
      if (state.persisted ? dataText === state.loadedText && !state.refresh : dataText === this.#emptyText && !state.forceSave) {
        return this.#result(state, false);
      }
      return this.#commitWrite(session, state, data, dataText);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async #commitWrite(session: Session<D>, state: State, data: Record<string, unknown>, dataText: string): Promise<CommitResult> {
    let wrote: boolean;
    try {
      wrote = await this.#write(session, state, false, data, dataText);
      if (state.commitTrace !== undefined) state.commitTrace.outcome = wrote ? "written" : "unchanged";
    } catch (err) {
      if (state.commitTrace !== undefined) state.commitTrace.outcome = "error";
      if (this.onStoreError === "continue" && err instanceof StoreUnavailableError) return NO_COOKIE;
      throw err;
    }
    return this.#result(state, wrote);
  }

  /** What the binding sends: the cookie, and with the `header` option the token of a new or re-signed id. */
  #result(state: State, wrote: boolean): CommitResult {
    const token = this.#header !== undefined && state.sendCookie && state.persisted && state.id !== null ? this.signId(state.id) : undefined;
    const cookie = this.#cookieFor(state, wrote);
    // A request that came with the header gets its answer there; a cookie would be set for nobody.
    const setCookie = state.viaHeader === true ? undefined : cookie;
    if (token !== undefined) return { setCookie, setHeader: [this.#header!.response, token] };
    return setCookie === undefined ? NO_COOKIE : { setCookie };
  }

  /** Sign a session id as the cookie carries it. */
  signId(id: string): string {
    return sign(id, this.#secrets);
  }

  /**
   * Resolves once the store answers (a client still connecting is waited for); rejects with a
   * {@link StoreUnavailableError} saying why (refused, wrong password, no master...) when it does not
   * within `timeout` seconds. Await it at boot to fail fast instead of serving 503s.
   * @example await sessions.manager.ready({ timeout: 10 }); app.listen(3000);
   */
  async ready(options?: { /** Seconds. @default 10 */ timeout?: number }): Promise<void> {
    const timeout = readinessTimeout(options, 10);
    try {
      await storeReady(this.store, timeout, this.retryAfter);
    } catch (err) {
      this.#log("error", "store.notReady", err instanceof Error ? err.message : String(err), undefined, err);
      throw err;
    }
  }

  /**
   * For a readiness probe: `true` when the store answers within `timeout` seconds, else `false`
   * (the reason goes to the logger). Rejects only for an invalid `timeout`.
   */
  async isReady(options?: { /** Seconds. @default storeTimeout */ timeout?: number }): Promise<boolean> {
    const timeout = readinessTimeout(options, this.storeTimeout);
    try {
      await this.ready({ timeout });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The hash of a session id as this manager's logs, events, traces and `listSessions` show it (the
   * id itself is a credential and never appears there).
   */
  hashOf(id: string): string {
    return this.#hash(id);
  }

  /** The key under which the store holds the record of session `id` (before the store's own prefix). */
  storeKeyOf(id: string): string {
    return this.#keyOf(id);
  }

  /** Subscribe to an event; returns the function that unsubscribes. */
  on<E extends SessionEventName>(event: E, listener: (payload: SessionEvents[E]) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => set.delete(listener as (payload: never) => void);
  }

  /**
   * Every session the store holds, by store key (a keyed hash of its id, see {@link storeKeyOf}; the
   * id itself for records in connect-redis's layout). Throws {@link UnsupportedOperationError} when the store cannot list.
   */
  async *listIds(): AsyncIterable<string> {
    if (!this.store.capabilities.list || typeof this.store.list !== "function") {
      throw new UnsupportedOperationError(this.store.name, "list sessions", "listing");
    }
    yield* this.store.list();
  }

  /**
   * The live sessions of `owner`, oldest first. Stale index entries (expired or destroyed) are pruned
   * on the way; an entry whose record is missing is pruned only after a placeholder took the record's
   * key, so that a login still writing it cannot land a session the index no longer names.
   */
  async listSessions(owner: string | number, options: { current?: object } = {}): Promise<OwnerSession[]> {
    const index = this.#ownerIndex("list an owner's sessions");
    const key = String(owner);
    const currentId = options.current !== undefined ? stateOf(options.current).id : null;
    const entries = await this.#store("owners.entries", undefined, () => index.entries(key));
    const now = Date.now();
    const found = await Promise.all(
      entries.map(async ({ id, expiresAt }) => {
        const [raw, ttl] = await Promise.all([
          this.#store("get", id, () => this.store.get(id)),
          this.store.ttl ? this.#store("ttl", id, () => this.store.ttl!(id)) : Promise.resolve(null),
        ]);
        const decoded = this.#owners.live(raw, now, id);
        if (decoded === null) {
          await this.#owners.pruneEntry(key, id, raw, expiresAt).catch(noop);
          return null;
        }
        // Owned by no one or someone else: perhaps a write claiming it for `key` is on its way, and that
        // writer fixes the index itself. Not listed, not pruned.
        if (decoded.meta.owner !== key) return null;
        const inferred = ttl === null ? 0 : now - (this.idleTimeout - ttl) * 1000;
        const session: OwnerSession = {
          session: hashId(id),
          createdAt: decoded.meta.createdAt,
          lastActiveAt: Math.min(now, Math.max(decoded.meta.writtenAt, inferred)),
          expiresAt: decoded.meta.expiresAt,
          current: currentId !== null && id === this.#keyOf(currentId),
          metadata: this.#ownerMetadata?.(decoded.data as Partial<D>),
        };
        return session;
      }),
    );
    return found.filter((s): s is OwnerSession => s !== null).sort((a, b) => a.createdAt - b.createdAt);
  }

  /**
   * Destroy every session of `owner` ("log out everywhere"), except `except` when given (the
   * current request's session). Each is dead on its next request in every process, and so is any
   * login of `owner` still in flight when this is called, whatever the interleaving: the owner's
   * revocation mark is set before the index is read (see {@link revokeOwnerSessions}). Returns how
   * many indexed sessions were destroyed. Needs a store with an owner index.
   */
  async destroyOwnerSessions(owner: string | number, options: { except?: object } = {}): Promise<number> {
    this.#ownerIndex("destroy an owner's sessions");
    // +1: a session owned in this very millisecond is revoked too.
    return this.#revoke(String(owner), Date.now() + 1, options.except, true);
  }

  /**
   * Revoke every session of `owner` whose owner was set before `before` (Unix ms; default: now, this
   * millisecond included), on any store:
   * what a password change needs. Writes the owner's revocation mark, which loads compare with; on a
   * store with an owner index, also destroys the indexed sessions it revokes at once. `except` keeps
   * the current request's session (its owner time is moved to `before`). Returns how many indexed
   * sessions were destroyed (always 0 on a store without an owner index).
   * @example await sessions.manager.revokeOwnerSessions(user.id, { except: req.session });
   */
  async revokeOwnerSessions(owner: string | number, options: { before?: number; except?: object } = {}): Promise<number> {
    if (this.#owner === undefined) throw new SessionConfigError("cannot revoke an owner's sessions: the owner option is not set");
    const before = options.before ?? Date.now() + 1;
    if (!Number.isSafeInteger(before) || before < 0) throw new RangeError(`[shared-session] before must be a Unix time in milliseconds, got ${String(before)}`);
    return this.#revoke(String(owner), before, options.except, options.before === undefined);
  }

  /** Destroy one session of `owner` named by its hash (as `listSessions` reports it). Returns whether it existed. */
  async destroyOwnerSession(owner: string | number, sessionHash: string): Promise<boolean> {
    const index = this.#ownerIndex("destroy an owner's session");
    const key = String(owner);
    const entries = await this.#store("owners.entries", undefined, () => index.entries(key));
    const entry = entries.find(({ id }) => hashId(id) === sessionHash);
    if (entry === undefined) return false;
    await this.#store("destroy", entry.id, () => this.store.destroy(entry.id));
    await this.#store("owners.remove", entry.id, () => index.remove(key, entry.id));
    this.#emit("destroyed", { session: sessionHash });
    return true;
  }

  #ownerIndex(operation: string): NonNullable<SessionStore["owners"]> {
    if (!this.#indexed) {
      throw new UnsupportedOperationError(this.store.name, operation, "an owner index");
    }
    if (this.#owner === undefined) throw new SessionConfigError(`cannot ${operation}: the owner option is not set`);
    return this.store.owners!;
  }

  /**
   * The order that makes revocation hold under any interleaving: (1) move `except` past `before`,
   * (2) set the mark, (3) only then read the index and destroy. A login's record either landed before
   * (3) read the index (its entry is written before its record: destroyed here), or its own write
   * reads the mark after landing (see #ownerChecked) and finds (2).
   */
  async #revoke(owner: string, before: number, except: object | undefined, all: boolean): Promise<number> {
    const keep = except === undefined ? null : stateOf(except);
    if (keep !== null && keep.persisted && keep.id !== null && keep.meta.owner === owner) {
      keep.meta = { ...keep.meta, ownedAt: Math.max(before, ownedSince(keep.meta)) };
      keep.refresh = true;
      await this.#write(except as Session<D>, keep, true);
    }
    await this.#owners.setMark(owner, before);
    if (!this.#indexed) return 0;
    const index = this.store.owners!;
    const keepKey = keep === null || keep.id === null ? null : this.#keyOf(keep.id);
    const entries = await this.#store("owners.entries", undefined, () => index.entries(owner));
    let destroyed = 0;
    await Promise.all(
      entries
        .filter(({ id }) => id !== keepKey)
        .map(async ({ id }) => {
          if (!all) {
            // Only the sessions owned before `before`: read each.
            const raw = await this.#store("get", id, () => this.store.get(id));
            const decoded = this.#owners.live(raw, Date.now(), id);
            if (decoded === null || decoded.meta.owner !== owner || ownedSince(decoded.meta) >= before) return;
          }
          await this.#store("destroy", id, () => this.store.destroy(id));
          await this.#store("owners.remove", id, () => index.remove(owner, id));
          this.#emit("destroyed", { session: hashId(id) });
          destroyed++;
        }),
    );
    return destroyed;
  }

  /** Whether a load must read the owner's mark: always on a store without an owner index, while the owner is recent on one with it. */
  #checksMark(meta: RecordMeta, now: number): boolean {
    return this.#owner !== undefined && meta.owner !== undefined && (!this.#indexed || now - ownedSince(meta) < this.#revocationGraceMs);
  }

  /**
   * After a write that gave the session a new owner landed: read that owner's mark, and if it revokes
   * the session (a "log out everywhere" raced this login), delete it again and continue without it.
   * Returns whether the session is still written.
   */
  async #ownerChecked(session: Session<D>, state: State, previous: string | undefined, wrote: boolean): Promise<boolean> {
    if (!wrote || this.#owner === undefined || !state.persisted || state.id === null) return wrote;
    const owner = state.meta.owner;
    if (owner === undefined || owner === previous) return wrote;
    const key = this.#keyOf(state.id);
    if (!(await this.#owners.revokedNow(state.meta, key))) return wrote;
    clearData(session);
    this.#gone(state);
    return false;
  }

  /** The owner the data names now, as a string, or undefined. */
  #ownerOf(data: Record<string, unknown>): string | undefined {
    if (this.#owner === undefined) return undefined;
    const owner = this.#owner(data as Partial<D>);
    if (owner === null || owner === undefined || owner === "") return undefined;
    const key = String(owner);
    if (key.length > MAX_OWNER_LENGTH) {
      throw new RangeError(`[shared-session] the owner option returned an owner id of ${key.length} characters; owner ids are at most ${MAX_OWNER_LENGTH}`);
    }
    return key;
  }

  /** Index `id` under its new owner before the record names it (an entry without a record is pruned later; the reverse would hide a session from "log out everywhere"). */
  async #indexOwner(id: string, owner: string | undefined, meta: RecordMeta): Promise<void> {
    if (owner === undefined || !this.#indexed) return;
    const expiresAt = this.#owners.score(meta, Date.now());
    const key = this.#keyOf(id);
    if (this.#limit !== undefined) return this.#owners.indexCapped(this.#limit, owner, key, expiresAt);
    await this.#store("owners.add", key, () => this.store.owners!.add(owner, key, expiresAt));
  }

  /** Drop `id` from a previous owner's index after the record stopped naming it. */
  async #unindexOwner(id: string, previous: string | undefined, now: string | undefined): Promise<void> {
    if (previous === undefined || previous === now || !this.#indexed) return;
    const key = this.#keyOf(id);
    await this.#store("owners.remove", key, () => this.store.owners!.remove(previous, key));
  }

  // ---- session methods (called through the session object) ----

  /** @internal */
  regenerateSession(session: object, options: RegenerateRequest = {}): Promise<void> {
    return tracked(session, this.#regenerateSession(session as Session<D>, options));
  }

  /**
   * A fresh id and, unless `keep` names keys, empty data (what express-session, Passport and
   * @fastify/session expect: nothing an attacker planted before a login survives it). The absolute
   * deadline carries over unless `renewDeadline`: regenerating never makes a session live longer.
   */
  async #regenerateSession(session: Session<D>, options: RegenerateRequest): Promise<void> {
    const state = this.#usable(stateOf(session));
    const old = state.id;
    const { createdAt, expiresAt } = state.meta;
    if (state.persisted && old !== null) {
      const key = this.#keyOf(old);
      await this.#store("destroy", key, () => this.store.destroy(key));
      await this.#unindexOwner(old, state.meta.owner, undefined);
    }
    const keep = options.keep;
    // With a binding's slot (Express, Koa), the old object keeps its data as a detached snapshot.
    const slot = state.slot;
    const snapshot: State | undefined = slot === undefined ? undefined : { ...state, pending: undefined, slot: undefined, commitTrace: undefined };
    if (slot === undefined) for (const key of Object.keys(session)) if (keep === undefined || !keep.includes(key)) delete (session as Record<string, unknown>)[key];
    this.#reset(state);
    if (options.renewDeadline !== true) {
      state.meta.createdAt = createdAt;
      state.meta.expiresAt = expiresAt;
    }
    state.forceSave = true;
    state.clearCookie = true;
    if (slot !== undefined) {
      const next = new SessionImpl(state);
      snapshot!.replacedBy = next;
      SessionImpl.rebind(session, snapshot!);
      handOver(slot, session, next, keep);
    }
    if (old !== null) this.#emit("regenerated", { from: this.#hash(old) });
  }

  /** @internal */
  destroySession(session: object): Promise<void> {
    return tracked(session, this.#destroySession(session as Session<D>));
  }

  async #destroySession(session: Session<D>): Promise<void> {
    const state = this.#usable(stateOf(session));
    const old = state.id;
    if (state.persisted && old !== null) {
      const key = this.#keyOf(old);
      await this.#store("destroy", key, () => this.store.destroy(key));
      await this.#unindexOwner(old, state.meta.owner, undefined);
      this.#emit("destroyed", { session: this.#hash(old) });
    }
    clearData(session);
    this.#reset(state);
    state.clearCookie = true;
  }

  /** @internal */
  saveSession(session: object): Promise<void> {
    return tracked(session, this.#saveSession(session as Session<D>));
  }

  async #saveSession(session: Session<D>): Promise<void> {
    await this.#write(session, this.#usable(stateOf(session)), true);
  }

  /** @internal */
  reloadSession(session: object): Promise<void> {
    return tracked(session, this.#reloadSession(session as Session<D>));
  }

  async #reloadSession(session: Session<D>): Promise<void> {
    const state = this.#usable(stateOf(session));
    if (!state.persisted || state.id === null) return;
    const id = state.id;
    const key = this.#keyOf(id);
    const found = await this.#get(key, undefined);
    const raw = found === null || typeof found === "string" ? found : found.record;
    const now = Date.now();
    const decoded: LoadedRecord | null = raw === null ? null : this.#codec.decode(raw, now, key);
    clearData(session);
    if (!decoded || decoded.meta.expiresAt <= now) {
      this.#gone(state);
      // As the peers: the app learns that the session it holds no longer exists.
      throw new SessionError("ERR_SESSION_GONE", "failed to load session: its record is gone (destroyed, regenerated or expired elsewhere); the request continues without it");
    }
    this.#assignData(session, decoded.data, id);
    state.meta = decoded.meta;
    state.loadedText = decoded.dataText;
    state.loadedRecord = raw;
    state.loadedVersion = found === null || typeof found === "string" ? undefined : found.version;
  }

  /** @internal {@link SessionApi.setLifetime}. */
  setLifetimeSession(session: object, seconds: unknown): void {
    const lifetime = checkLifetime(seconds);
    const state = stateOf(session);
    if (state.replacedBy !== undefined) throw replacedError("setLifetime");
    if (state.meta.lifetime === lifetime) return;
    setLifetimeOf(state.meta, lifetime);
    state.lifetimeChanged = true;
    // Stored (and the cookie re-sent) at the end of the request; a new session only once it has data.
    if (state.persisted) {
      state.refresh = true;
      state.sendCookie = true;
    }
  }

  /** @internal What `session.cookie` shows: the cookie's attributes and this session's lifetime. */
  cookieOf(session: object): SessionCookieFacts {
    const state = stateOf(session);
    const lifetime = state.meta.lifetime ?? this.#cookie.maxAge;
    return {
      ...this.#cookieAttributes,
      secure: state.secure,
      lifetime,
      own: state.meta.lifetime !== undefined,
      expiresAt: lifetime === undefined ? undefined : Math.min(Date.now() + lifetime * 1000, state.meta.expiresAt),
    };
  }

  /** @internal Whether `commit` would write the session's data (changed since loaded, or new with data). */
  isModifiedSession(session: object): boolean {
    const state = stateOf(session);
    if (state.disabled) return false;
    const dataText = this.#serializer.stringify({ ...session } as Record<string, unknown>);
    return state.persisted ? dataText !== state.loadedText : dataText !== this.#emptyText || state.forceSave;
  }

  /** @internal */
  touchSession(session: object): Promise<void> {
    return tracked(session, this.#touchSession(session as Session<D>));
  }

  async #touchSession(session: Session<D>): Promise<void> {
    const state = this.#usable(stateOf(session));
    if (!state.persisted || state.id === null) return;
    const id = state.id;
    const ttl = this.#ttl(state.meta, Date.now());
    const key = this.#keyOf(id);
    const ok = ttl > 0 && (await this.#store("touch", key, () => this.store.touch(key, ttl)));
    if (!ok) {
      clearData(session);
      this.#gone(state);
      return;
    }
    state.loadedWrittenAt = -Infinity; // re-send a persistent cookie: its lifetime rolled
  }

  // ---- internals ----

  #fresh(secure: boolean, clearCookie: boolean, disabled: boolean): Session<D> {
    const now = Date.now();
    const state: State = {
      id: null,
      isNew: true,
      persisted: false,
      meta: { createdAt: now, expiresAt: now + this.absoluteTimeout * 1000, writtenAt: now },
      loadedWrittenAt: now,
      loadedText: null,
      loadedRecord: null,
      loadedVersion: undefined,
      secure,
      sendCookie: false,
      clearCookie,
      refresh: false,
      forceSave: false,
      disabled,
      manager: this as SessionManager<never>,
    };
    return new SessionImpl(state) as unknown as Session<D>;
  }

  /** @internal From now on `regenerate()` hands `slot` a new session object instead of emptying this one (see session-swap.ts). */
  replaceOnRegenerate(session: object, slot: SessionSlot): void {
    stateOf(session).slot = slot;
  }

  /** @internal The object that is `session` now: itself, or what `regenerate()` replaced it by. */
  currentSession<S extends object>(session: S): S {
    return SessionImpl.current(session);
  }

  /** @internal The id of a session, made on first use: an anonymous request that never asks costs no random bytes. */
  sessionId(session: object): string {
    return this.#idOf(stateOf(session));
  }

  #idOf(state: State): string {
    return (state.id ??= this.#genid());
  }

  #reset(state: State): void {
    const now = Date.now();
    state.id = null;
    state.isNew = true;
    state.persisted = false;
    state.meta = { createdAt: now, expiresAt: now + this.absoluteTimeout * 1000, writtenAt: now };
    state.loadedWrittenAt = now;
    state.loadedText = null;
    state.loadedRecord = null;
    state.loadedVersion = undefined;
    state.sendCookie = false;
    state.refresh = false;
    state.forceSave = false;
  }

  /** The record vanished under us (destroyed, regenerated or expired elsewhere): never write it back. */
  #gone(state: State): void {
    this.#log("debug", "session.gone", "session no longer exists in the store; the request continues without it", state.id ?? undefined);
    this.#reset(state);
    state.clearCookie = true;
  }

  #usable(state: State): State {
    if (state.replacedBy !== undefined) throw replacedError();
    if (state.disabled) {
      throw new StoreUnavailableError(this.store.name, "load", {
        cause: new SessionError("ERR_SESSION_STORE_DISABLED", "the store was unavailable when this request loaded its session"),
        retryAfter: this.retryAfter,
      });
    }
    return state;
  }

  #assignData(session: Session<D>, data: Record<string, unknown>, id: string): void {
    const target = session as unknown as Record<string, unknown>;
    for (const key of Object.keys(data)) {
      if (RESERVED.has(key)) {
        this.#log("warn", "record.reserved-key", `stored data key ${JSON.stringify(key)} is reserved and was ignored`, id);
        continue;
      }
      target[key] = data[key];
    }
  }

  #ttl(meta: RecordMeta, now: number): number {
    return Math.min(meta.lifetime ?? this.idleTimeout, Math.ceil((meta.expiresAt - now) / 1000));
  }

  #encode(meta: RecordMeta, dataText: string, data: Record<string, unknown>, secure: boolean, key: string): string {
    const record = this.#codec.encode(meta, dataText, data, secure, key);
    // UTF-8 takes at most 3 bytes per UTF-16 unit: skip counting when it cannot be over.
    if (record.length * 3 > this.maxSize) {
      const size = Buffer.byteLength(record);
      if (size > this.maxSize) throw new SessionTooLargeError(size, this.maxSize);
    }
    return record;
  }

  /** Write the session if it needs it; returns whether a write happened. */
  async #write(
    session: Session<D>,
    state: State,
    explicit: boolean,
    data: Record<string, unknown> = { ...(session as object) },
    dataText: string = this.#serializer.stringify(data),
  ): Promise<boolean> {
    if (!state.persisted) {
      if (dataText === this.#emptyText && !state.forceSave && !explicit) return false;
      return this.#ownerChecked(session, state, undefined, await this.#create(state, dataText, data));
    }
    if (dataText === state.loadedText && !state.refresh) return false;
    const now = Date.now();
    const ttl = this.#ttl(state.meta, now);
    const id = state.id!;
    const key = this.#keyOf(id);
    if (ttl <= 0) {
      // The absolute deadline passed during the request.
      await this.#store("destroy", key, () => this.store.destroy(key));
      clearData(session);
      this.#gone(state);
      return false;
    }
    const previousOwner = state.meta.owner;
    const meta = this.#meta(state.meta, now, this.#ownerOf(data));
    const record = this.#encode(meta, dataText, data, state.secure, key);
    if (meta.owner !== previousOwner) await this.#indexOwner(id, meta.owner, meta);
    // Same owner: re-score its index entry with the write ("evict-least-active"), in the same round trip.
    const touched = meta.owner === previousOwner ? this.#owners.touchEntry(meta, key, now) : undefined;
    if (this.store.capabilities.compareAndSet && state.loadedRecord !== null) {
      const wrote = await withTouch(this.#afterOtherWrites(id, state, (latest) => this.#compareAndSet(session, state, key, dataText, record, meta, latest)), touched);
      if (wrote) await this.#owners.touchLater(state.meta, key, now);
      if (state.persisted) await this.#unindexOwner(id, previousOwner, state.meta.owner);
      return this.#ownerChecked(session, state, previousOwner, wrote);
    }
    const ok = await withTouch(this.#store("update", key, () => this.store.update(key, record, ttl)), touched);
    if (!ok) {
      clearData(session);
      this.#gone(state);
      return false;
    }
    this.#written(state, meta, dataText, record, undefined);
    await this.#owners.touchLater(meta, key, now);
    await this.#unindexOwner(id, previousOwner, meta.owner);
    return this.#ownerChecked(session, state, previousOwner, true);
  }

  /** Metadata for a write at `now`, naming `owner` (or none). */
  #meta(base: RecordMeta, now: number, owner: string | undefined): RecordMeta {
    const meta: RecordMeta = { createdAt: base.createdAt, expiresAt: base.expiresAt, writtenAt: now };
    if (owner !== undefined) {
      meta.owner = owner;
      // When the owner was set: a revocation mark ("owned before T") compares with it.
      const ownedAt = owner === base.owner ? base.ownedAt : now;
      if (ownedAt !== undefined) meta.ownedAt = ownedAt;
    }
    if (base.lifetime !== undefined) meta.lifetime = base.lifetime;
    return meta;
  }

  async #create(state: State, dataText: string, data: Record<string, unknown>): Promise<boolean> {
    const now = Date.now();
    const owner = this.#ownerOf(data);
    const meta = this.#meta(state.meta, now, owner);
    const ttl = this.#ttl(meta, now);
    for (let attempt = 0; attempt < CREATE_ATTEMPTS; attempt++) {
      const id = this.#idOf(state);
      const key = this.#keyOf(id);
      // Encrypted records are bound to their key: encoded per id drawn.
      const record = this.#encode(meta, dataText, data, state.secure, key);
      await this.#indexOwner(id, owner, meta);
      if (await this.#store("create", key, () => this.store.create(key, record, ttl))) {
        this.#written(state, meta, dataText, record, undefined);
        state.sendCookie = true;
        state.clearCookie = false;
        state.forceSave = false;
        this.#emit("created", { session: this.#hash(id) });
        return true;
      }
      // Evicted by a newer login of its owner before its record landed (maxSessionsPerOwner): it lost.
      if (this.#limit?.onLimit === "evict-least-active" && (await this.#store("get", key, () => this.store.get(key))) === EVICTED_RECORD) {
        this.#gone(state);
        return false;
      }
      this.#log("warn", "session.id-collision", "a new id already existed in the store; drawing another", id);
      state.id = null;
    }
    throw new SessionError("ERR_SESSION_ID_COLLISION", `${CREATE_ATTEMPTS} new ids in a row already existed in ${this.store.name}; is genid random?`);
  }

  /**
   * Run a compare-and-set write after any other of the same session in this process, handing it the
   * record the last one wrote. Parallel requests of one user would otherwise all conflict with each
   * other, each conflict costing a round trip and a whole record of traffic (#16 item 6). The entry
   * lives only while writes of that session are in flight.
   */
  #afterOtherWrites(id: string, state: State, run: (latest: Written | null) => Promise<boolean>): Promise<boolean> {
    let queue = this.#writes.get(id);
    if (queue === undefined) this.#writes.set(id, (queue = { tail: Promise.resolve(), latest: null }));
    const q = queue;
    const result = q.tail.then(() => run(q.latest));
    const tail = result.then(
      () => {
        q.latest = state.persisted && state.loadedRecord !== null ? { record: state.loadedRecord, version: state.loadedVersion } : null;
      },
      noop,
    );
    q.tail = tail;
    void tail.then(() => {
      if (q.tail === tail && this.#writes.get(id) === q) this.#writes.delete(id);
    });
    return result;
  }

  /**
   * Compare-and-set against the record this request loaded (or the one a write of this process made
   * since, `latest`). On conflict another request wrote in between: re-apply the top-level keys this
   * request changed onto the current record and retry, after a random pause that grows with each
   * conflict (full jitter), so that writers in several processes stop colliding.
   */
  async #compareAndSet(session: Session<D>, state: State, key: string, dataText: string, record: string, meta: RecordMeta, latest: Written | null = null): Promise<boolean> {
    const id = state.id!;
    const cas = this.store.compareAndSet!.bind(this.store);
    let expected = state.loadedRecord!;
    // The store's version of `expected`, when it keeps them: lets it write without reading first.
    let version = state.loadedVersion;
    let changes: Map<string, unknown> | null = null;
    // A write of this process landed after this request loaded: merge onto it without asking the store.
    let conflict: Written | null = latest !== null && latest.record !== expected ? latest : null;
    let conflicts = 0;
    let attempt = 0;
    for (; attempt < MERGE_ATTEMPTS; attempt++) {
      if (conflict !== null) {
        const current = this.#codec.decode(conflict.record, Date.now(), key);
        if (!current) break;
        changes ??= this.#changes(session, state.loadedText!);
        const merged: Record<string, unknown> = { ...current.data };
        for (const [key, value] of changes) {
          if (value === undefined) delete merged[key];
          else merged[key] = value;
        }
        expected = conflict.record;
        version = conflict.version;
        dataText = this.#serializer.stringify(merged);
        const owner = this.#ownerOf(merged);
        if (owner !== meta.owner && owner !== current.meta.owner) await this.#indexOwner(id, owner, current.meta);
        meta = this.#meta(current.meta, Date.now(), owner);
        if (state.lifetimeChanged === true) setLifetimeOf(meta, state.meta.lifetime);
        record = this.#encode(meta, dataText, merged, state.secure, key);
        clearData(session);
        this.#assignData(session, merged, id);
        if (dataText === current.dataText && (state.lifetimeChanged !== true || current.meta.lifetime === meta.lifetime)) {
          this.#written(state, current.meta, dataText, conflict.record, conflict.version);
          return false;
        }
        if (conflicts > 0) await pause(Math.random() * Math.min(MAX_BACKOFF_MS, 2 ** conflicts));
      }
      const ttl = this.#ttl(meta, Date.now());
      const result = await this.#store("compareAndSet", key, () =>
        version === undefined ? cas(key, expected, record, ttl) : cas(key, expected, record, ttl, version),
      );
      if (result.status === "written") {
        this.#written(state, meta, dataText, record, result.version);
        return true;
      }
      if (result.status === "missing") break;
      conflict = { record: result.current, version: result.version };
      conflicts++;
      if (state.commitTrace !== undefined) state.commitTrace.conflicts++;
    }
    if (attempt === MERGE_ATTEMPTS) {
      // Contention this heavy is not a missing session: fail retryably rather than drop the changes.
      throw new StoreUnavailableError(this.store.name, "compareAndSet", {
        cause: new SessionError("ERR_SESSION_CONTENTION", `gave up after ${MERGE_ATTEMPTS} conflicting concurrent writes to one session`),
        retryAfter: this.retryAfter,
      });
    }
    clearData(session);
    this.#gone(state);
    return false;
  }

  /** Top-level keys whose value differs from what was loaded; `undefined` marks a deletion. */
  #changes(session: Session<D>, loadedText: string): Map<string, unknown> {
    const before = parseData(this.#serializer, loadedText) ?? {};
    const after = { ...(session as object) } as Record<string, unknown>;
    const changes = new Map<string, unknown>();
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    for (const key of keys) {
      if (RESERVED.has(key)) continue; // never data: dropped on load, and `__proto__` must not be assigned
      const a = key in before ? this.#serializer.stringify({ [key]: before[key] }) : undefined;
      const b = key in after && after[key] !== undefined ? this.#serializer.stringify({ [key]: after[key] }) : undefined;
      if (a !== b) changes.set(key, b === undefined ? undefined : after[key]);
    }
    return changes;
  }

  #written(state: State, meta: RecordMeta, dataText: string, record: string, version: string | undefined): void {
    state.persisted = true;
    state.meta = meta;
    state.loadedText = dataText;
    state.loadedRecord = record;
    state.loadedVersion = version;
    state.refresh = false;
  }

  #cookieFor(state: State, wrote: boolean): string | undefined {
    if (!state.persisted || state.id === null) {
      return state.clearCookie ? serializeClearCookie(this.#cookie, state.secure) : undefined;
    }
    const lifetime = state.meta.lifetime;
    const resend =
      state.sendCookie ||
      ((lifetime ?? this.#cookie.maxAge) !== undefined && (wrote || Date.now() - state.loadedWrittenAt >= this.touchAfter * 1000));
    if (!resend) return undefined;
    state.sendCookie = false;
    if (lifetime === undefined) return serializeCookie(this.#cookie, this.#codec.writeCookie(state.id), state.secure);
    // The session's own lifetime, never past its absolute deadline.
    const maxAge = Math.max(1, Math.min(lifetime, Math.ceil((state.meta.expiresAt - Date.now()) / 1000)));
    return serializeCookieMaxAge(this.#cookie, this.#codec.writeCookie(state.id), state.secure, maxAge);
  }

  /** The store key of a session id: a keyed hash of it, or the id itself with `compat: "express-session"`. */
  readonly #keyOf: (id: string) => string = (id) => id;

  /** The hash of a session that logs, events, traces and listings show: of its store key, never of the id alone. */
  #hash(id: string): string {
    return hashId(this.#keyOf(id));
  }

  /** A store call about the record at `key` (a store key, never an id), traced on `shared-session:store`. */
  #store<T>(operation: string, key: string | undefined, run: () => Promise<T>): Promise<T> {
    if (!traced(storeChannel)) return this.#call(operation, run);
    const context: StoreTraceContext = { store: this.store.name, operation, session: key === undefined ? undefined : hashId(key), outcome: undefined };
    return trace(storeChannel, context, () => this.#call(operation, run), (c, value) => (c.outcome = storeOutcome(operation, value))) as Promise<T>;
  }

  #traceLoad(cookieHeader: string | null | undefined, facts: RequestFacts): Session<D> | Promise<Session<D>> {
    const context: LoadTraceContext = { session: undefined, outcome: undefined };
    return trace(loadChannel, context, () => this.#loadNow(cookieHeader, facts, context), (c, session) => {
      const state = stateOf(session);
      c.outcome ??= !state.isNew ? "hit" : state.clearCookie ? "rejected" : "none";
    });
  }

  #traceCommit(session: Session<D>): CommitResult | Promise<CommitResult> {
    const untraced = (): CommitResult | Promise<CommitResult> => {
      this.#tracingCommit = true;
      try {
        return this.commitNow(session);
      } finally {
        this.#tracingCommit = false;
      }
    };
    const state = SessionImpl.of(session);
    if (state === undefined) return untraced(); // not a session: commitNow's own error
    const context: CommitTraceContext = { session: undefined, outcome: undefined, conflicts: 0 };
    const persisted = state.persisted;
    state.commitTrace = context;
    return trace(
      commitChannel,
      context,
      untraced,
      (c) => {
        state.commitTrace = undefined;
        if (state.id !== null && state.persisted) c.session = this.#hash(state.id);
        if (c.outcome === "error") return;
        if (!state.persisted) c.outcome = persisted ? "gone" : "none";
        else if (!persisted) c.outcome = "created";
        else c.outcome ??= "unchanged";
      },
    );
  }

  /**
   * Run a store call bounded by `storeTimeout`; every failure becomes a {@link StoreUnavailableError}.
   * One promise and one timer per call (no async function, no Promise.race): this runs on every request.
   */
  #call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    const toError = (err: unknown): unknown => {
      // A store refusing an argument (an owner id too long, a TTL that is not whole seconds) is a bug to
      // fix, not an outage to retry: it stays what it is (a 500), never a 503.
      if (err instanceof SessionError && err.code.endsWith("_ARGUMENT")) return err;
      // The public message is generic; the store's error (scrubbed of command arguments) is the cause.
      const error = err instanceof StoreUnavailableError ? err : new StoreUnavailableError(this.store.name, operation, { cause: scrubError(err), retryAfter: this.retryAfter });
      const detail = error.cause instanceof Error ? `: ${error.cause.message}` : "";
      this.#log("error", "store.error", `${error.store} ${error.operation} failed${detail}`, undefined, error);
      this.#emit("storeError", { operation, error });
      return error;
    };
    if (this.#storeBounded) {
      // The store settles every call within its own timeout (<= storeTimeout): no second timer.
      try {
        return run().then(undefined, (err: unknown) => {
          throw toError(err);
        });
      } catch (err) {
        return Promise.reject(toError(err));
      }
    }
    return bounded(
      run,
      this.#timeoutMs,
      () =>
        new StoreUnavailableError(this.store.name, operation, {
          cause: new SessionError("ERR_SESSION_STORE_TIMEOUT", `${this.store.name} ${operation} did not answer within ${this.storeTimeout}s`),
          retryAfter: this.retryAfter,
        }),
      toError,
    );
  }

  #log(level: SessionLogEntry["level"], event: string, message: string, id?: string, error?: unknown): void {
    if (this.#logger === undefined) return;
    const entry: { -readonly [K in keyof SessionLogEntry]: SessionLogEntry[K] } = { level, event, message };
    if (id !== undefined) entry.session = this.#hash(id);
    if (error !== undefined) entry.error = error;
    try {
      this.#logger(entry);
    } catch {
      // a broken logger must not break requests
    }
  }

  #emit<E extends SessionEventName>(event: E, payload: SessionEvents[E]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        (listener as (p: SessionEvents[E]) => void)(payload);
      } catch (err) {
        this.#log("error", "listener.error", `a ${event} listener threw`, undefined, err);
      }
    }
  }
}

/**
 * Holds a session's per-request state in a private field. A WeakMap from session to state cost an
 * entry to add and, worse, ephemeron work for the garbage collector on every request.
 */
class SessionImpl {
  #state: State;

  constructor(state: State) {
    this.#state = state;
  }

  /** Detach a session object replaced by `regenerate()`: from now on it answers from `snapshot`. */
  static rebind(session: object, snapshot: State): void {
    (session as SessionImpl).#state = snapshot;
  }

  static current<S extends object>(session: S): S {
    let current: object = session;
    while (#state in current && current.#state.replacedBy !== undefined) current = current.#state.replacedBy;
    return current as S;
  }

  static of(session: object): State | undefined {
    return typeof session === "object" && session !== null && #state in session ? (session as SessionImpl).#state : undefined;
  }
}

/** `session.cookie`: a view on the session's cookie facts and lifetime. */
function sessionCookie(session: object): SessionCookie {
  const manager = stateOf(session).manager;
  return new SessionCookie({ facts: () => manager.cookieOf(session), setLifetime: (seconds) => manager.setLifetimeSession(session, seconds ?? null) });
}

function stateOf(session: object): State {
  const state = SessionImpl.of(session);
  if (state === undefined) throw new TypeError("[shared-session] not a session of this library");
  return state;
}

/**
 * The session class: methods and `id`/`isNew` live on a prototype that cannot be overwritten
 * (assignment throws in strict code), so data can never shadow them; the data are the instance's
 * own enumerable properties. `Object.prototype` is behind it, so the session behaves as a plain
 * object (`String(session)`, `session.hasOwnProperty(k)`), but its `__proto__` setter is shadowed:
 * data named `__proto__` (`Object.assign(session, JSON.parse(body))`) can never swap the prototype.
 */
defineSessionMethods();

function defineSessionMethods(): void {
  type D = Record<string, unknown>;
  // The class's own prototype: no constructor of its own (`constructor` is reserved), Object.prototype behind it.
  const proto = SessionImpl.prototype as unknown as Record<string, unknown>;
  Reflect.deleteProperty(proto, "constructor");
  const m = (self: object) => stateOf(self).manager as unknown as SessionManager<D>;
  const methods: Record<string, PropertyDescriptor> = {
    id: {
      get(this: object) {
        return m(this).sessionId(this);
      },
    },
    isNew: {
      get(this: object) {
        return stateOf(this).isNew;
      },
    },
    sessionId: {
      get(this: object) {
        return m(this).sessionId(this);
      },
    },
    isModified: {
      value: function (this: object) {
        return m(this).isModifiedSession(this);
      },
    },
    setLifetime: {
      value: function (this: object, seconds: number | null) {
        m(this).setLifetimeSession(this, seconds);
      },
    },
    cookie: {
      get(this: object) {
        return sessionCookie(this);
      },
    },
    // koa-session's `ctx.session.maxAge = ms` ("session": the default).
    maxAge: {
      get(this: object) {
        const { lifetime } = m(this).cookieOf(this);
        return lifetime === undefined ? undefined : lifetime * 1000;
      },
      set(this: object, ms: unknown) {
        m(this).setLifetimeSession(this, lifetimeFromMs(ms, "session.maxAge") ?? null);
      },
    },
    // @fastify/session's `request.session.options({ maxAge })` (milliseconds).
    options: {
      value: function (this: object, opts: unknown) {
        if (typeof opts !== "object" || opts === null) throw new TypeError("[shared-session] session.options() takes { maxAge } (milliseconds)");
        const { maxAge, ...rest } = opts as Record<string, unknown>;
        const other = Object.keys(rest);
        if (other.length > 0) {
          throw new TypeError(`[shared-session] session.options() sets only maxAge (the session's lifetime); ${JSON.stringify(other[0])} is a cookie option for every session`);
        }
        m(this).setLifetimeSession(this, lifetimeFromMs(maxAge, "options({ maxAge })") ?? null);
      },
    },
    ["__proto__"]: {
      get(this: object) {
        return Object.getPrototypeOf(this) as unknown;
      },
      set() {
        throw new TypeError("[shared-session] \"__proto__\" is reserved and cannot be session data");
      },
    },
    regenerate: {
      value: function (this: Session<D>, first?: unknown, second?: unknown) {
        const [options, cb] = regenerateArguments(first, second);
        return withCallback(m(this).regenerateSession(this, options), cb);
      },
    },
    destroy: { value: function (this: Session<D>, cb?: SessionCallback) { return withCallback(m(this).destroySession(this), cb); } },
    save: { value: function (this: Session<D>, cb?: SessionCallback) { return withCallback(m(this).saveSession(this), cb); } },
    reload: { value: function (this: Session<D>, cb?: SessionCallback) { return withCallback(m(this).reloadSession(this), cb); } },
    touch: { value: function (this: Session<D>, cb?: SessionCallback) { return withCallback(m(this).touchSession(this), cb); } },
    get: {
      value: function (this: Record<string, unknown>, key: string) {
        return RESERVED.has(key) ? undefined : Object.hasOwn(this, key) ? this[key] : undefined;
      },
    },
    set: {
      value: function (this: Record<string, unknown>, key: string, value: unknown) {
        if (RESERVED.has(key)) throw new TypeError(`[shared-session] ${JSON.stringify(key)} is reserved and cannot be session data`);
        if (value === undefined) delete this[key];
        else this[key] = value;
      },
    },
  };
  for (const descriptor of Object.values(methods)) {
    descriptor.enumerable = false;
    descriptor.configurable = false;
    if ("value" in descriptor) descriptor.writable = false;
  }
  Object.defineProperties(proto, methods);
}

/**
 * Create the framework-agnostic session engine. Options are checked here, once: a configuration
 * error throws now, never at the first request.
 *
 * @example
 * const sessions = createSessionManager({ store, secret: process.env.SESSION_SECRET! });
 * const session = await sessions.load(req.headers.cookie, { secure: false });
 * session.userId = 42;
 * const { setCookie } = await sessions.commit(session);
 * if (setCookie) res.setHeader("Set-Cookie", setCookie);
 */
export function createSessionManager<D extends object = SessionData>(options: SessionOptions<D>): SessionManager<D> {
  return new SessionManager<D>(options);
}

