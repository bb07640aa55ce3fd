import { SessionError, StoreUnavailableError } from "./errors.js";
import { Events, hashId } from "./events.js";
import type { Config } from "./options.js";
import { OwnerStoreOps } from "./owners.js";
import type { RecordMeta } from "./record.js";
import { replacedError, type SessionSlot } from "./session-swap.js";
import { storeCall, type StoreCall } from "./store-call.js";
import type { SessionStore } from "./store.js";
import type { CommitTraceContext } from "./tracing.js";

/** A record as the store holds it (loaded, or written by this request): one value, as it changes together. */
export interface Stored {
  /** The data text: change detection compares against it. */
  readonly text: string;
  /** The whole record: the expected value of compare-and-set. */
  readonly record: string;
  /** The store's version of `record` (`getVersioned`), handed back to compare-and-set. */
  readonly version: string | undefined;
}

/** Compare-and-set writes in flight for one session id, and the record the last one left. */
export interface WriteQueue {
  tail: Promise<void>;
  latest: Pick<Stored, "record" | "version"> | null;
}

/** How a new state starts. */
export interface StateStart {
  /** Cookies of this request get `Secure`. */
  readonly secure: boolean;
  /** Expire the client's cookie unless a session gets written (its cookie named no usable session). */
  readonly clearCookie?: boolean;
  /** The store failed at load under `onStoreError: "continue"`: never write. */
  readonly disabled?: boolean;
}

/** Per-request state of a session, kept off the data object. */
export class State {
  // Fields are `declare`d and assigned in the constructor and in restart() (or by the load), always in
  // this order: one object shape for every state, no field defined twice.
  declare readonly engine: Engine;
  declare readonly secure: boolean;
  declare readonly disabled: boolean;
  /** Expire the client's cookie unless a session gets written. */
  declare clearCookie: boolean;
  /** The request carried the session in the `header` option's header: answer there, not in a cookie. */
  declare viaHeader: boolean;
  /** `setLifetime` changed the lifetime in this request: a write keeps this request's, even over a concurrent one. */
  declare lifetimeChanged: boolean;
  /** The trace of a commit in progress, when someone subscribes to `shared-session:commit`. */
  declare commitTrace: CommitTraceContext | undefined;
  /** Settles when the session methods the app called and may not have awaited are done: commit waits for it. */
  declare pending: Promise<void> | undefined;
  /** The binding's slot: `regenerate()` puts a new session object there (see session-swap.ts). */
  declare slot: SessionSlot | undefined;
  /** This is the detached snapshot of an object `regenerate()` replaced by this one: operations refuse. */
  declare replacedBy: object | undefined;
  declare id: string | null;
  declare isNew: boolean;
  /** The metadata the next write stores. */
  declare meta: RecordMeta;
  /** What the store holds under `id`; `null` while nothing is stored. */
  declare stored: Stored | null;
  /** `writtenAt` as loaded, for the cookie re-send throttle. */
  declare loadedWrittenAt: number;
  /** `touch()` rolled the session's lifetime: re-send a persistent cookie whatever the throttle says. */
  declare lifetimeRolled: boolean;
  /** Send the cookie for `id` (new id written, or re-sign after rotation). */
  declare sendCookie: boolean;
  /**
   * Write even with unchanged data: a touch is due (stores that cannot touch on read, once per
   * `touchAfter`), or the record's metadata or form changed (lifetime, owner time, conversion, key).
   */
  declare rewrite: boolean;
  /** Write a new session even when its data is empty. */
  declare forceSave: boolean;

  /** The fields every state starts with; the rest is set by {@link restart} (a new session) or by the load that read it. */
  constructor(engine: Engine, start: StateStart) {
    this.engine = engine;
    this.secure = start.secure;
    this.clearCookie = start.clearCookie === true;
    this.disabled = start.disabled === true;
    this.viaHeader = false;
    this.lifetimeChanged = false;
    this.commitTrace = undefined;
    this.pending = undefined;
    this.slot = undefined;
    this.replacedBy = undefined;
  }

  /** A new session, not yet stored. */
  static fresh(engine: Engine, start: StateStart): State {
    const state = new State(engine, start);
    state.restart();
    return state;
  }

  /** A record exists under `id` (loaded, or written in this request). */
  get persisted(): boolean {
    return this.stored !== null;
  }

  /** A copy of this state, as it is now, for the object `regenerate()` is about to replace (see lifecycle.ts). */
  snapshot(): State {
    const copy = Object.assign(Object.create(State.prototype) as State, this);
    copy.pending = undefined;
    copy.slot = undefined;
    copy.commitTrace = undefined;
    return copy;
  }

  /** Back to a new, unsaved session with a deadline from now (regenerate, destroy, a record gone). */
  restart(): void {
    const now = Date.now();
    this.id = null;
    this.isNew = true;
    this.meta = { createdAt: now, expiresAt: now + this.engine.config.absoluteTimeout * 1000, writtenAt: now };
    this.stored = null;
    this.loadedWrittenAt = now;
    this.lifetimeRolled = false;
    this.sendCookie = false;
    this.rewrite = false;
    this.forceSave = false;
  }
}

/**
 * The manager's engine, without the app's data type: its configuration and the services every step
 * of the protocol uses (store calls, events, owner operations). The steps themselves are functions of
 * it in read.ts, write.ts, owner-index.ts and session-object.ts.
 */
export class Engine {
  readonly config: Config;
  readonly store: SessionStore;
  readonly events: Events;
  readonly call: StoreCall;
  /** Revocation marks, placeholders and the capped index: the store side of sessions per owner (owners.ts). */
  readonly owners: OwnerStoreOps;
  /** The store key of a session id. */
  readonly keyOf: (id: string) => string;
  /** Compare-and-set writes in flight per session id (see write.ts `afterOtherWrites`). */
  readonly writes = new Map<string, WriteQueue>();
  /** `commitNow` is running inside its own trace (it traces itself when subscribed). */
  tracingCommit = false;

  constructor(config: Config) {
    this.config = config;
    this.store = config.store;
    this.keyOf = config.keyOf;
    this.events = new Events(config.logger, (id) => this.hash(id));
    // Errors the store sees outside any call (a client reconnecting) go to the same log.
    if (config.logger !== undefined) config.store.attachLogger?.((entry) => this.events.log(entry.level, entry.event, entry.message, undefined, entry.error));
    this.call = storeCall(config, this.events);
    this.owners = new OwnerStoreOps({
      store: config.store,
      call: this.call,
      emit: (event, payload) => this.events.emit(event, payload),
      log: (message) => this.events.log("debug", "session.revoked", message),
      hash: hashId,
      decode: (raw, now, key) => config.codec.decode(raw, now, key),
      absoluteTimeout: config.absoluteTimeout,
      retryAfter: config.retryAfter,
      idleTimeout: config.idleTimeout,
      touchAfter: config.touchAfter,
      storeTimeoutMs: config.storeTimeoutMs,
      limit: config.limit,
    });
  }

  /** The hash of a session that logs, events, traces and listings show: of its store key, never of the id alone. */
  hash(id: string): string {
    return hashId(this.keyOf(id));
  }

  /** The store TTL (seconds) a write at `now` gives: the session's lifetime or `idleTimeout`, never past its deadline. */
  ttl(meta: RecordMeta, now: number): number {
    return Math.min(meta.lifetime ?? this.config.idleTimeout, Math.ceil((meta.expiresAt - now) / 1000));
  }

  /** The id of a session, made on first use: an anonymous request that never asks costs no random bytes. */
  idOf(state: State): string {
    return (state.id ??= this.config.genid());
  }

  /** The record vanished under us (destroyed, regenerated or expired elsewhere): never write it back. */
  continueWithoutRecord(state: State): void {
    this.events.log("debug", "session.gone", "session no longer exists in the store; the request continues without it", state.id ?? undefined);
    state.restart();
    state.clearCookie = true;
  }

  /**
   * The state, for a session method that needs the store; throws when the object was replaced by
   * `regenerate()`, or when the store was down at load.
   */
  refuseIfUnusable(state: State): State {
    if (state.replacedBy !== undefined) throw replacedError();
    if (state.disabled) {
      throw new StoreUnavailableError(this.store.name, "load", {
        cause: new SessionError("ERR_SESSION_STORE_DISABLED", "the store was unavailable when this request loaded its session"),
        retryAfter: this.config.retryAfter,
      });
    }
    return state;
  }
}
