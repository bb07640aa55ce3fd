import { createHash } from "node:crypto";
import { v4 as uuidv4 } from "uuid";
import { bounded } from "./bounded.js";
import { cookieValues, resolveCookie, serializeClearCookie, serializeCookie, type CookieOptions, type ResolvedCookie } from "./cookie.js";
import { SessionConfigError, SessionError, SessionTooLargeError, StoreUnavailableError, UnsupportedOperationError } from "./errors.js";
import { expressSessionCodec, nativeCodec, type Codec, type LoadedRecord } from "./format.js";
import { jsonSerializer, parseData, type RecordMeta, type Serializer } from "./record.js";
import { resolveSecrets, sign } from "./signing.js";
import type { SessionStore, VersionedRecord } from "./store.js";
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
   * everywhere"). Needs a store with an owner index (`RedisStore`); refused at construction otherwise.
   */
  owner?: (data: Readonly<Partial<D>>) => string | number | null | undefined;
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
  /** @internal type carrier for `D`. */
  readonly __data?: D;
}

/** What a binding knows about the request when loading. */
export interface RequestFacts {
  /** The request reached the app over HTTPS, as the framework decides (trust proxy). */
  readonly secure: boolean;
}

/** What a binding must do after commit. */
export interface CommitResult {
  /** Value for one `Set-Cookie` header, or `undefined` for none. */
  readonly setCookie: string | undefined;
}

/** One live session of an owner, as {@link SessionManager.listSessions} reports it. */
export interface OwnerSession {
  /** Hash of the session id (the id itself is a credential and never leaves the manager). */
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
  /** A session was found past its absolute deadline when loaded. */
  expired: { session: string };
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
/** Conflicts one write may meet before giving up: each is another request's write landing first. */
const MERGE_ATTEMPTS = 100;

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
  /** Settles when the session methods the app called and may not have awaited are done: commit waits for it. */
  pending?: Promise<void> | undefined;
  readonly manager: SessionManager<never>;
}

/** Hash of an id for logs and events: never the id itself. */
export function hashId(id: string): string {
  return createHash("sha256").update(id).digest("hex").slice(0, 16);
}

function positiveInt(name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new SessionConfigError(`${name} must be a whole number >= ${min} (seconds or bytes as documented), got ${String(value)}`);
  }
  return value;
}

function withCallback(promise: Promise<void>, callback: SessionCallback | undefined): Promise<void> {
  if (typeof callback !== "function") return promise;
  // With a callback the caller may ignore the promise: it must not reject unobserved.
  return promise.then(
    () => callback(),
    (err: unknown) => callback(err),
  );
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

  readonly #secrets: readonly string[];
  readonly #cookie: ResolvedCookie;
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
  readonly #codec: Codec;
  /** Convert legacy cookies and records to ours as they are used. */
  readonly #convertLegacy: boolean;

  constructor(options: SessionOptions<D>) {
    if (typeof options !== "object" || options === null) throw new SessionConfigError("options are required: { store, secret }");
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
    this.idleTimeout = positiveInt("idleTimeout", options.idleTimeout, 86_400);
    this.absoluteTimeout = positiveInt("absoluteTimeout", options.absoluteTimeout, 604_800);
    this.touchAfter = positiveInt("touchAfter", options.touchAfter, 60, 0);
    this.maxSize = positiveInt("maxSize", options.maxSize, 65_536, 256);
    this.retryAfter = positiveInt("retryAfter", options.retryAfter, 5);
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
    this.#refreshOnGet = store.capabilities.refreshOnGet === true;
    this.#versioned = store.capabilities.compareAndSet === true && typeof store.getVersioned === "function";
    if (options.owner !== undefined) {
      if (typeof options.owner !== "function") throw new SessionConfigError("owner must be a function from session data to an owner id");
      if (!store.capabilities.ownerIndex || store.owners === undefined) {
        throw new SessionConfigError(`${store.name} has no owner index, so the owner option cannot work; use a store that declares ownerIndex (RedisStore)`);
      }
    }
    this.#owner = options.owner;
    this.#ownerMetadata = options.ownerMetadata;
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
    this.#codec = compat === undefined ? nativeCodec(context) : expressSessionCodec(context, compat === "express-session");
    this.#convertLegacy = compat === "express-session-read";
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
    const secure = this.#cookie.secure ?? facts.secure === true;
    const values = cookieValues(cookieHeader, this.cookieName);
    if (values.length === 0) return this.#fresh(secure, false, false);
    let verified = null;
    for (const value of values) {
      verified = this.#codec.readCookie(value);
      if (verified) break;
    }
    if (verified === null) {
      this.#log("debug", "cookie.rejected", "cookie failed the signature or id format check; starting a fresh session");
      this.#emit("rejected", { reason: "signature" });
      return this.#fresh(secure, true, false);
    }
    return this.#read(verified.id, verified.secretIndex > 0 || (this.#convertLegacy && verified.legacy), secure);
  }

  /**
   * Read the record of `id` for a request that may write it back: with its version when the store
   * keeps versions (`getVersioned`, only useful with compare-and-set), else the record alone.
   */
  #get(id: string, ttl: number | undefined): Promise<string | VersionedRecord | null> {
    return this.#versioned ? this.#call("get", () => this.store.getVersioned!(id, ttl)) : this.#call("get", () => this.store.get(id, ttl));
  }

  /** The store half of {@link loadNow}: read the record of a verified id. */
  async #read(id: string, resign: boolean, secure: boolean): Promise<Session<D>> {
    let found: string | VersionedRecord | null;
    try {
      found = await this.#get(id, this.#refreshOnGet ? this.idleTimeout : undefined);
    } catch (err) {
      if (this.onStoreError === "continue" && err instanceof StoreUnavailableError) return this.#fresh(secure, false, true);
      throw err;
    }
    if (found === null) {
      this.#log("debug", "cookie.unknown", "signed id is not in the store (expired or destroyed); starting a fresh session", id);
      this.#emit("rejected", { reason: "unknown" });
      return this.#fresh(secure, true, false);
    }
    const raw = typeof found === "string" ? found : found.record;
    const now = Date.now();
    const decoded = this.#codec.decode(raw, now);
    if (!decoded) {
      this.#log("warn", "record.corrupt", "stored record is not a valid session record; treated as missing", id);
      this.#emit("rejected", { reason: "corrupt" });
      return this.#fresh(secure, true, false);
    }
    const remainingMs = decoded.meta.expiresAt - now;
    if (remainingMs <= 0) {
      this.#log("debug", "session.expired", "session is past its absolute deadline", id);
      this.#emit("expired", { session: hashId(id) });
      await this.#call("destroy", () => this.store.destroy(id)).catch((err: unknown) => {
        this.#log("warn", "store.error", "could not delete an expired record; its TTL will remove it", id, err);
      });
      return this.#fresh(secure, true, false);
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
      refresh: this.#convertLegacy && decoded.legacy,
      forceSave: false,
      disabled: false,
      manager: this as SessionManager<never>,
    };
    const session = new SessionImpl(state) as unknown as Session<D>;
    this.#assignData(session, decoded.data, id);
    if (this.#refreshOnGet) {
      // The read reset the TTL to idleTimeout; in the last idleTimeout of its life that is past the deadline.
      if (remainingMs < this.idleTimeout * 1000) {
        try {
          await this.#call("touch", () => this.store.touch(id, Math.ceil(remainingMs / 1000)));
        } catch (err) {
          if (this.onStoreError === "continue" && err instanceof StoreUnavailableError) return this.#fresh(secure, false, true);
          throw err;
        }
      }
    } else if (now - decoded.meta.writtenAt >= this.touchAfter * 1000) {
      state.refresh = true;
    }
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
    try {
      const state = stateOf(session);
      // A session method the app did not await still runs: commit what it leaves.
      if (state.pending !== undefined) return state.pending.then(() => this.commitNow(session));
      if (state.disabled) return NO_COOKIE;
      const data = { ...(session as object) } as Record<string, unknown>;
      const dataText = this.#serializer.stringify(data);
      // Nothing to write: settled without a store call. The conditions are those under which
      // #write returns false at once.
      if (state.persisted ? dataText === state.loadedText && !state.refresh : dataText === this.#emptyText && !state.forceSave) {
        const setCookie = this.#cookieFor(state, false);
        return setCookie === undefined ? NO_COOKIE : { setCookie };
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
    } catch (err) {
      if (this.onStoreError === "continue" && err instanceof StoreUnavailableError) return NO_COOKIE;
      throw err;
    }
    return { setCookie: this.#cookieFor(state, wrote) };
  }

  /** Sign a session id as the cookie carries it. */
  signId(id: string): string {
    return sign(id, this.#secrets);
  }

  /** Subscribe to an event; returns the function that unsubscribes. */
  on<E extends SessionEventName>(event: E, listener: (payload: SessionEvents[E]) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => set.delete(listener as (payload: never) => void);
  }

  /** Every id the store holds. Throws {@link UnsupportedOperationError} when the store cannot list. */
  async *listIds(): AsyncIterable<string> {
    if (!this.store.capabilities.list || typeof this.store.list !== "function") {
      throw new UnsupportedOperationError(this.store.name, "list sessions", "listing");
    }
    yield* this.store.list();
  }

  /**
   * The live sessions of `owner`, oldest first. Stale index entries (expired, destroyed, or now
   * owned by someone else) are pruned on the way.
   */
  async listSessions(owner: string | number, options: { current?: object } = {}): Promise<OwnerSession[]> {
    const index = this.#ownerIndex("list an owner's sessions");
    const key = String(owner);
    const currentId = options.current !== undefined ? stateOf(options.current).id : null;
    const entries = await this.#call("owners.entries", () => index.entries(key));
    const now = Date.now();
    const found = await Promise.all(
      entries.map(async ({ id }) => {
        const [raw, ttl] = await Promise.all([
          this.#call("get", () => this.store.get(id)),
          this.store.ttl ? this.#call("ttl", () => this.store.ttl!(id)) : Promise.resolve(null),
        ]);
        const decoded = raw === null ? null : this.#codec.decode(raw, now);
        if (!decoded || decoded.meta.owner !== key || decoded.meta.expiresAt <= now) {
          await this.#call("owners.remove", () => index.remove(key, id)).catch(noop);
          return null;
        }
        const inferred = ttl === null ? 0 : now - (this.idleTimeout - ttl) * 1000;
        const session: OwnerSession = {
          session: hashId(id),
          createdAt: decoded.meta.createdAt,
          lastActiveAt: Math.min(now, Math.max(decoded.meta.writtenAt, inferred)),
          expiresAt: decoded.meta.expiresAt,
          current: id === currentId,
          metadata: this.#ownerMetadata?.(decoded.data as Partial<D>),
        };
        return session;
      }),
    );
    return found.filter((s): s is OwnerSession => s !== null).sort((a, b) => a.createdAt - b.createdAt);
  }

  /**
   * Destroy every session of `owner` ("log out everywhere"), except `except` when given (the
   * current request's session). Each is dead on its next request in every process. Returns how many.
   */
  async destroyOwnerSessions(owner: string | number, options: { except?: object } = {}): Promise<number> {
    const index = this.#ownerIndex("destroy an owner's sessions");
    const key = String(owner);
    const keep = options.except !== undefined ? stateOf(options.except).id : null;
    const entries = await this.#call("owners.entries", () => index.entries(key));
    let destroyed = 0;
    await Promise.all(
      entries
        .filter(({ id }) => id !== keep)
        .map(async ({ id }) => {
          await this.#call("destroy", () => this.store.destroy(id));
          await this.#call("owners.remove", () => index.remove(key, id));
          this.#emit("destroyed", { session: hashId(id) });
          destroyed++;
        }),
    );
    return destroyed;
  }

  /** Destroy one session of `owner` named by its hash (as `listSessions` reports it). Returns whether it existed. */
  async destroyOwnerSession(owner: string | number, sessionHash: string): Promise<boolean> {
    const index = this.#ownerIndex("destroy an owner's session");
    const key = String(owner);
    const entries = await this.#call("owners.entries", () => index.entries(key));
    const entry = entries.find(({ id }) => hashId(id) === sessionHash);
    if (entry === undefined) return false;
    await this.#call("destroy", () => this.store.destroy(entry.id));
    await this.#call("owners.remove", () => index.remove(key, entry.id));
    this.#emit("destroyed", { session: sessionHash });
    return true;
  }

  #ownerIndex(operation: string): NonNullable<SessionStore["owners"]> {
    if (!this.store.capabilities.ownerIndex || this.store.owners === undefined) {
      throw new UnsupportedOperationError(this.store.name, operation, "an owner index");
    }
    if (this.#owner === undefined) throw new SessionConfigError(`cannot ${operation}: the owner option is not set`);
    return this.store.owners;
  }

  /** The owner the data names now, as a string, or undefined. */
  #ownerOf(data: Record<string, unknown>): string | undefined {
    if (this.#owner === undefined) return undefined;
    const owner = this.#owner(data as Partial<D>);
    return owner === null || owner === undefined || owner === "" ? undefined : String(owner);
  }

  /** Index `id` under its new owner before the record names it (an entry without a record is pruned later; the reverse would hide a session from "log out everywhere"). */
  async #indexOwner(id: string, owner: string | undefined, expiresAt: number): Promise<void> {
    if (owner !== undefined) await this.#call("owners.add", () => this.store.owners!.add(owner, id, expiresAt));
  }

  /** Drop `id` from a previous owner's index after the record stopped naming it. */
  async #unindexOwner(id: string, previous: string | undefined, now: string | undefined): Promise<void> {
    if (previous !== undefined && previous !== now) await this.#call("owners.remove", () => this.store.owners!.remove(previous, id));
  }

  // ---- session methods (called through the session object) ----

  /** @internal */
  regenerateSession(session: object): Promise<void> {
    return tracked(session, this.#regenerateSession(session as Session<D>));
  }

  async #regenerateSession(session: Session<D>): Promise<void> {
    const state = this.#usable(stateOf(session));
    const old = state.id;
    if (state.persisted && old !== null) {
      await this.#call("destroy", () => this.store.destroy(old));
      await this.#unindexOwner(old, state.meta.owner, undefined);
    }
    this.#reset(state);
    state.forceSave = true;
    state.clearCookie = true;
    if (old !== null) this.#emit("regenerated", { from: hashId(old) });
  }

  /** @internal */
  destroySession(session: object): Promise<void> {
    return tracked(session, this.#destroySession(session as Session<D>));
  }

  async #destroySession(session: Session<D>): Promise<void> {
    const state = this.#usable(stateOf(session));
    const old = state.id;
    if (state.persisted && old !== null) {
      await this.#call("destroy", () => this.store.destroy(old));
      await this.#unindexOwner(old, state.meta.owner, undefined);
      this.#emit("destroyed", { session: hashId(old) });
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
    const found = await this.#get(id, undefined);
    const raw = found === null || typeof found === "string" ? found : found.record;
    const now = Date.now();
    const decoded: LoadedRecord | null = raw === null ? null : this.#codec.decode(raw, now);
    clearData(session);
    if (!decoded || decoded.meta.expiresAt <= now) {
      this.#gone(state);
      return;
    }
    this.#assignData(session, decoded.data, id);
    state.meta = decoded.meta;
    state.loadedText = decoded.dataText;
    state.loadedRecord = raw;
    state.loadedVersion = found === null || typeof found === "string" ? undefined : found.version;
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
    const ok = ttl > 0 && (await this.#call("touch", () => this.store.touch(id, ttl)));
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
    if (state.disabled) {
      throw new StoreUnavailableError(this.store.name, "the store was unavailable when this request loaded its session", { retryAfter: this.retryAfter });
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
    return Math.min(this.idleTimeout, Math.ceil((meta.expiresAt - now) / 1000));
  }

  #encode(meta: RecordMeta, dataText: string, data: Record<string, unknown>, secure: boolean): string {
    const record = this.#codec.encode(meta, dataText, data, secure);
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
      return this.#create(state, dataText, data);
    }
    if (dataText === state.loadedText && !state.refresh) return false;
    const now = Date.now();
    const ttl = this.#ttl(state.meta, now);
    const id = state.id!;
    if (ttl <= 0) {
      // The absolute deadline passed during the request.
      await this.#call("destroy", () => this.store.destroy(id));
      clearData(session);
      this.#gone(state);
      return false;
    }
    const previousOwner = state.meta.owner;
    const meta = this.#meta(state.meta, now, this.#ownerOf(data));
    const record = this.#encode(meta, dataText, data, state.secure);
    if (meta.owner !== previousOwner) await this.#indexOwner(id, meta.owner, meta.expiresAt);
    if (this.store.capabilities.compareAndSet && state.loadedRecord !== null) {
      const wrote = await this.#compareAndSet(session, state, dataText, record, meta);
      if (state.persisted) await this.#unindexOwner(id, previousOwner, state.meta.owner);
      return wrote;
    }
    const ok = await this.#call("update", () => this.store.update(id, record, ttl));
    if (!ok) {
      clearData(session);
      this.#gone(state);
      return false;
    }
    this.#written(state, meta, dataText, record, undefined);
    await this.#unindexOwner(id, previousOwner, meta.owner);
    return true;
  }

  /** Metadata for a write at `now`, naming `owner` (or none). */
  #meta(base: RecordMeta, now: number, owner: string | undefined): RecordMeta {
    const meta: RecordMeta = { createdAt: base.createdAt, expiresAt: base.expiresAt, writtenAt: now };
    if (owner !== undefined) meta.owner = owner;
    return meta;
  }

  async #create(state: State, dataText: string, data: Record<string, unknown>): Promise<boolean> {
    const now = Date.now();
    const owner = this.#ownerOf(data);
    const meta = this.#meta(state.meta, now, owner);
    const ttl = this.#ttl(meta, now);
    const record = this.#encode(meta, dataText, data, state.secure);
    for (let attempt = 0; attempt < CREATE_ATTEMPTS; attempt++) {
      const id = this.#idOf(state);
      await this.#indexOwner(id, owner, meta.expiresAt);
      if (await this.#call("create", () => this.store.create(id, record, ttl))) {
        this.#written(state, meta, dataText, record, undefined);
        state.sendCookie = true;
        state.clearCookie = false;
        state.forceSave = false;
        this.#emit("created", { session: hashId(id) });
        return true;
      }
      this.#log("warn", "session.id-collision", "a new id already existed in the store; drawing another", id);
      state.id = null;
    }
    throw new SessionError("ERR_SESSION_ID_COLLISION", `${CREATE_ATTEMPTS} new ids in a row already existed in ${this.store.name}; is genid random?`);
  }

  /**
   * Compare-and-set against the record this request loaded. On conflict another request wrote in
   * between: re-apply the top-level keys this request changed onto the current record and retry.
   */
  async #compareAndSet(session: Session<D>, state: State, dataText: string, record: string, meta: RecordMeta): Promise<boolean> {
    const id = state.id!;
    const cas = this.store.compareAndSet!.bind(this.store);
    let expected = state.loadedRecord!;
    // The store's version of `expected`, when it keeps them: lets it write without reading first.
    let version = state.loadedVersion;
    let changes: Map<string, unknown> | null = null;
    let attempt = 0;
    for (; attempt < MERGE_ATTEMPTS; attempt++) {
      const ttl = this.#ttl(meta, Date.now());
      const result = await this.#call("compareAndSet", () =>
        version === undefined ? cas(id, expected, record, ttl) : cas(id, expected, record, ttl, version),
      );
      if (result.status === "written") {
        this.#written(state, meta, dataText, record, result.version);
        return true;
      }
      if (result.status === "missing") break;
      const current = this.#codec.decode(result.current, Date.now());
      if (!current) break;
      changes ??= this.#changes(session, state.loadedText!);
      const merged: Record<string, unknown> = { ...current.data };
      for (const [key, value] of changes) {
        if (value === undefined) delete merged[key];
        else merged[key] = value;
      }
      expected = result.current;
      version = result.version;
      dataText = this.#serializer.stringify(merged);
      const owner = this.#ownerOf(merged);
      if (owner !== meta.owner && owner !== current.meta.owner) await this.#indexOwner(id, owner, current.meta.expiresAt);
      meta = this.#meta(current.meta, Date.now(), owner);
      record = this.#encode(meta, dataText, merged, state.secure);
      clearData(session);
      this.#assignData(session, merged, id);
      if (dataText === current.dataText) {
        this.#written(state, current.meta, dataText, result.current, result.version);
        return false;
      }
    }
    if (attempt === MERGE_ATTEMPTS) {
      // Contention this heavy is not a missing session: fail retryably rather than drop the changes.
      throw new StoreUnavailableError(this.store.name, `gave up after ${MERGE_ATTEMPTS} conflicting concurrent writes to one session`, {
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
    const resend =
      state.sendCookie ||
      (this.#cookie.maxAge !== undefined && (wrote || Date.now() - state.loadedWrittenAt >= this.touchAfter * 1000));
    if (!resend) return undefined;
    state.sendCookie = false;
    return serializeCookie(this.#cookie, this.#codec.writeCookie(state.id), state.secure);
  }

  /**
   * Run a store call bounded by `storeTimeout`; every failure becomes a {@link StoreUnavailableError}.
   * One promise and one timer per call (no async function, no Promise.race): this runs on every request.
   */
  #call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    const toError = (err: unknown): StoreUnavailableError => {
      const error =
        err instanceof StoreUnavailableError
          ? err
          : new StoreUnavailableError(this.store.name, `${operation} failed: ${err instanceof Error ? err.message : String(err)}`, {
              cause: err,
              retryAfter: this.retryAfter,
            });
      this.#log("error", "store.error", error.message, undefined, error);
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
      () => new StoreUnavailableError(this.store.name, `${operation} did not answer within ${this.storeTimeout}s`, { retryAfter: this.retryAfter }),
      toError,
    );
  }

  #log(level: SessionLogEntry["level"], event: string, message: string, id?: string, error?: unknown): void {
    if (this.#logger === undefined) return;
    const entry: { -readonly [K in keyof SessionLogEntry]: SessionLogEntry[K] } = { level, event, message };
    if (id !== undefined) entry.session = hashId(id);
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
  readonly #state: State;

  constructor(state: State) {
    this.#state = state;
  }

  static of(session: object): State | undefined {
    return typeof session === "object" && session !== null && #state in session ? (session as SessionImpl).#state : undefined;
  }
}

function stateOf(session: object): State {
  const state = SessionImpl.of(session);
  if (state === undefined) throw new TypeError("[shared-session] not a session of this library");
  return state;
}

/**
 * The session class: methods and `id`/`isNew` live on a prototype with no `Object.prototype` behind
 * it and cannot be overwritten (assignment throws in strict code), so data can never shadow them;
 * the data are the instance's own enumerable properties.
 */
defineSessionMethods();

function defineSessionMethods(): void {
  type D = Record<string, unknown>;
  // The class's own prototype, emptied: no constructor, nothing from Object.prototype behind it.
  const proto = SessionImpl.prototype as unknown as Record<string, unknown>;
  Reflect.deleteProperty(proto, "constructor");
  Object.setPrototypeOf(proto, null);
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
    regenerate: { value: function (this: Session<D>, cb?: SessionCallback) { return withCallback(m(this).regenerateSession(this), cb); } },
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
