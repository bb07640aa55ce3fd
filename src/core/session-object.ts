import { cookieOf, isModified, setLifetime, sessionCookie } from "./compat/express-session.js";
import { State, type Engine, type StateStart } from "./engine.js";
import { lifetimeFromMs } from "./lifetime.js";
import type { Data } from "./options.js";
import { reload } from "./read.js";
import { RESERVED } from "./reserved.js";
import type { SessionCallback } from "./types.js";
import { destroy, regenerate, save, touch, type RegenerateRequest } from "./lifecycle.js";

/**
 * Holds a session's per-request state in a private field. A WeakMap from session to state cost an
 * entry to add and, worse, ephemeron work for the garbage collector on every request.
 */
class SessionObject {
  #state: State;

  constructor(state: State) {
    this.#state = state;
  }

  /** Detach a session object replaced by `regenerate()`: from now on it answers from `snapshot`. */
  static rebind(session: object, snapshot: State): void {
    (session as SessionObject).#state = snapshot;
  }

  static current<S extends object>(session: S): S {
    let current: object = session;
    while (#state in current && current.#state.replacedBy !== undefined) current = current.#state.replacedBy;
    return current as S;
  }

  static of(session: object): State | undefined {
    return typeof session === "object" && session !== null && #state in session ? (session as SessionObject).#state : undefined;
  }
}

/** The state of a session of this library, or `undefined` for any other value. */
export const stateIfSession: (session: object) => State | undefined = SessionObject.of;

/** The object that is `session` now: itself, or what `regenerate()` replaced it by. */
export const currentSession: <S extends object>(session: S) => S = SessionObject.current;

/** Detach `session`, replaced by `regenerate()`: it answers from `snapshot` from now on. */
export const rebindSession: (session: object, snapshot: State) => void = SessionObject.rebind;

export function stateOf(session: object): State {
  const state = SessionObject.of(session);
  if (state === undefined) throw new TypeError("[shared-session] not a session of this library");
  return state;
}

/** A session object for `state`: its data are its own enumerable properties. */
export function sessionFor(state: State): Data {
  // The instance has no own properties: the app's data object, as the engine sees it.
  return new SessionObject(state) as object as Data;
}

/** A new session, not yet stored. */
export function freshSession(engine: Engine, start: StateStart): Data {
  return sessionFor(State.fresh(engine, start));
}

/** Copy stored data onto a session, skipping reserved names (a log line each). */
export function assignData(engine: Engine, session: Data, data: Data, id: string): void {
  for (const key of Object.keys(data)) {
    if (RESERVED.has(key)) {
      engine.events.log("warn", "record.reserved-key", `stored data key ${JSON.stringify(key)} is reserved and was ignored`, id);
      continue;
    }
    session[key] = data[key];
  }
}

export function clearData(session: Data): void {
  for (const key of Object.keys(session)) delete session[key];
}

function noop(): void {}

/**
 * Record a session method's operation on the state, so that commit waits for it even when the app
 * did not (koa-session's `save()` is synchronous; `save(cb)` is often not awaited). Returns the
 * operation's outcome once the record is cleared.
 */
function tracked(state: State, operation: Promise<void>): Promise<void> {
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

/** Run a session method's operation, tracked, and hand its outcome to `callback` when one is given. */
function run(session: object, operation: (session: Data, state: State) => Promise<void>, callback?: SessionCallback): Promise<void> {
  const state = stateOf(session);
  const promise = tracked(state, operation(session as Data, state));
  if (typeof callback !== "function") return promise;
  // With a callback the caller may ignore the promise: it must not reject unobserved.
  // `null` on success, as the peers and Node's callbacks pass it.
  return promise.then(
    () => callback(null),
    (err: unknown) => callback(err),
  );
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

/**
 * The session's methods: they and `id`/`isNew` live on a prototype that cannot be overwritten
 * (assignment throws in strict code), so data can never shadow them; the data are the instance's
 * own enumerable properties. `Object.prototype` is behind it, so the session behaves as a plain
 * object (`String(session)`, `session.hasOwnProperty(k)`), but its `__proto__` setter is shadowed:
 * data named `__proto__` (`Object.assign(session, JSON.parse(body))`) can never swap the prototype.
 */
const METHODS: Record<string, PropertyDescriptor> = {
  id: {
    get(this: object) {
      const state = stateOf(this);
      return state.engine.idOf(state);
    },
  },
  isNew: {
    get(this: object) {
      return stateOf(this).isNew;
    },
  },
  sessionId: {
    get(this: object) {
      const state = stateOf(this);
      return state.engine.idOf(state);
    },
  },
  isModified: {
    value: function (this: object) {
      return isModified(this as Data, stateOf(this));
    },
  },
  setLifetime: {
    value: function (this: object, seconds: number | null) {
      setLifetime(stateOf(this), seconds);
    },
  },
  cookie: {
    get(this: object) {
      return sessionCookie(stateOf(this));
    },
  },
  // koa-session's `ctx.session.maxAge = ms` ("session": the default).
  maxAge: {
    get(this: object) {
      const { lifetime } = cookieOf(stateOf(this));
      return lifetime === undefined ? undefined : lifetime * 1000;
    },
    set(this: object, ms: unknown) {
      setLifetime(stateOf(this), lifetimeFromMs(ms, "session.maxAge") ?? null);
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
      setLifetime(stateOf(this), lifetimeFromMs(maxAge, "options({ maxAge })") ?? null);
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
    value: function (this: object, first?: unknown, second?: unknown) {
      const [options, cb] = regenerateArguments(first, second);
      return run(this, (session, state) => regenerate(session, state, options), cb);
    },
  },
  destroy: { value: function (this: object, cb?: SessionCallback) { return run(this, destroy, cb); } },
  save: { value: function (this: object, cb?: SessionCallback) { return run(this, save, cb); } },
  reload: { value: function (this: object, cb?: SessionCallback) { return run(this, reload, cb); } },
  touch: { value: function (this: object, cb?: SessionCallback) { return run(this, touch, cb); } },
  get: {
    value: function (this: Data, key: string) {
      return RESERVED.has(key) ? undefined : Object.hasOwn(this, key) ? this[key] : undefined;
    },
  },
  set: {
    value: function (this: Data, key: string, value: unknown) {
      if (RESERVED.has(key)) throw new TypeError(`[shared-session] ${JSON.stringify(key)} is reserved and cannot be session data`);
      if (value === undefined) delete this[key];
      else this[key] = value;
    },
  },
};

for (const descriptor of Object.values(METHODS)) {
  descriptor.enumerable = false;
  descriptor.configurable = false;
  if ("value" in descriptor) descriptor.writable = false;
}
// The class's own prototype: no constructor of its own (`constructor` is reserved), Object.prototype behind it.
Reflect.deleteProperty(SessionObject.prototype, "constructor");
Object.defineProperties(SessionObject.prototype, METHODS);
