import { commit, type CommitResult } from "./commit.js";
import { Engine } from "./engine.js";
import { UnsupportedOperationError } from "./errors.js";
import type { SessionEventName, SessionEvents } from "./events.js";
import { resolveOptions, type Data, type SessionOptions } from "./options.js";
import { destroyOwnerSession, destroyOwnerSessions, listSessions, revokeOwnerSessions, type OwnerSession } from "./owner-index.js";
import { load, type RequestFacts } from "./read.js";
import { readinessTimeout, storeReady } from "./readiness.js";
import { currentSession, stateOf } from "./session-object.js";
import type { SessionSlot } from "./session-swap.js";
import { sign } from "./signing.js";
import type { SessionStore } from "./store.js";
import type { Session, SessionData } from "./types.js";

export type { SessionCookieFacts } from "./compat/express-session.js";
export type { CommitResult } from "./commit.js";
export { hashId } from "./events.js";
export type { SessionEventName, SessionEvents } from "./events.js";
export type { SessionOptions } from "./options.js";
export type { OwnerSession } from "./owner-index.js";
export { MAX_COOKIE_VALUES } from "./read.js";
export type { RequestFacts } from "./read.js";

/** The engine works on plain data objects; the app sees them as its `Session<D>`. */
function asSession<D extends object>(loaded: Data | Promise<Data>): Session<D> | Promise<Session<D>> {
  return loaded as unknown as Session<D> | Promise<Session<D>>;
}

// A request: `load` (read.ts: cookie -> verified id -> store read -> decoded data -> session), the app
// reads and changes the session (its methods: session-object.ts, lifecycle.ts), `commit` (commit.ts:
// why write -> write.ts, with merge.ts on a concurrent change -> Set-Cookie). See docs/ARCHITECTURE.md.

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
  /** Request header the bindings pass to `load` as `facts.header` (lower case), when the `header` option is set. */
  readonly headerName: string | undefined;
  readonly #engine: Engine;

  constructor(options: SessionOptions<D>) {
    const config = resolveOptions(options);
    this.#engine = new Engine(config);
    this.store = config.store;
    this.cookieName = config.cookieName;
    this.idleTimeout = config.idleTimeout;
    this.absoluteTimeout = config.absoluteTimeout;
    this.touchAfter = config.touchAfter;
    this.maxSize = config.maxSize;
    this.storeTimeout = config.storeTimeout;
    this.retryAfter = config.retryAfter;
    this.onStoreError = config.onStoreError;
    this.unset = config.unset;
    this.headerName = config.header?.request;
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
    return asSession<D>(load(this.#engine, cookieHeader, facts));
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
    return commit(this.#engine, session);
  }

  /**
   * @internal For bindings: from now on `regenerate()` hands `slot` a new session object instead of
   * emptying this one (see session-swap.ts).
   */
  replaceOnRegenerate(session: object, slot: SessionSlot): void {
    stateOf(session).slot = slot;
  }

  /** @internal For bindings: the object that is `session` now: itself, or what `regenerate()` replaced it by. */
  currentSession<S extends object>(session: S): S {
    return currentSession(session);
  }

  /** Sign a session id as the cookie carries it. */
  signId(id: string): string {
    return sign(id, this.#engine.config.secrets);
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
      this.#engine.events.log("error", "store.notReady", err instanceof Error ? err.message : String(err), undefined, err);
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
    return this.#engine.hash(id);
  }

  /** The key under which the store holds the record of session `id` (before the store's own prefix). */
  storeKeyOf(id: string): string {
    return this.#engine.keyOf(id);
  }

  /** Subscribe to an event; returns the function that unsubscribes. */
  on<E extends SessionEventName>(event: E, listener: (payload: SessionEvents[E]) => void): () => void {
    return this.#engine.events.on(event, listener);
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
    return listSessions(this.#engine, owner, options.current);
  }

  /**
   * Destroy every session of `owner` ("log out everywhere"), except `except` when given (the
   * current request's session). Each is dead on its next request in every process, and so is any
   * login of `owner` still in flight when this is called, whatever the interleaving: the owner's
   * revocation mark is set before the index is read (see {@link revokeOwnerSessions}). Returns how
   * many indexed sessions were destroyed. Needs a store with an owner index.
   */
  async destroyOwnerSessions(owner: string | number, options: { except?: object } = {}): Promise<number> {
    return destroyOwnerSessions(this.#engine, owner, options.except);
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
    return revokeOwnerSessions(this.#engine, owner, options.before, options.except);
  }

  /** Destroy one session of `owner` named by its hash (as `listSessions` reports it). Returns whether it existed. */
  async destroyOwnerSession(owner: string | number, sessionHash: string): Promise<boolean> {
    return destroyOwnerSession(this.#engine, owner, sessionHash);
  }
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
