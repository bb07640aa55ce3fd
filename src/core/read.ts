import { cookieValues } from "./cookie.js";
import { moveLegacy } from "./compat/express-session.js";
import { State, type Engine } from "./engine.js";
import { SessionError, StoreUnavailableError } from "./errors.js";
import { hashId } from "./events.js";
import type { LoadedRecord, ReadCookie } from "./codec.js";
import { checksMark } from "./owner-index.js";
import type { Data } from "./options.js";
import { isPlaceholder } from "./owners.js";
import { assignData, clearData, freshSession, sessionFor, stateOf } from "./session-object.js";
import type { VersionedRecord } from "./store.js";
import { loadChannel, trace, traced, type LoadTraceContext } from "./tracing.js";

/**
 * Values of the session cookie's name read from one `Cookie` header; later ones are ignored. Browsers
 * send one per matching path and domain; more than a few is an attack (item 7 of #16).
 */
export const MAX_COOKIE_VALUES = 4;

/** What a binding knows about the request when loading. */
export interface RequestFacts {
  /** The request reached the app over HTTPS, as the framework decides (trust proxy). */
  readonly secure: boolean;
  /** Value of the request header named {@link SessionManager.headerName} (the `header` option), if any. */
  readonly header?: string | readonly string[] | null | undefined;
}

/** A load in progress: the request's cookie values of our name, and the trace when someone subscribes. */
interface Load {
  readonly secure: boolean;
  readonly trace: LoadTraceContext | undefined;
  /** Verified values still to try after the current one (`undefined` for a header token: one only). */
  readonly values?: readonly string[];
}

/**
 * Load: the request's cookie (or `header` token) -> a verified id -> the store's record -> decoded
 * data -> a session. Returns the session itself when no store read is needed (no session cookie, or
 * one that fails the signature or id check), a promise otherwise.
 */
export function load(engine: Engine, cookieHeader: string | null | undefined, facts: RequestFacts): Data | Promise<Data> {
  if (!traced(loadChannel)) return loadFrom(engine, cookieHeader, facts, undefined);
  const context: LoadTraceContext = { session: undefined, outcome: undefined };
  return trace(loadChannel, context, () => loadFrom(engine, cookieHeader, facts, context), (c, session) => {
    const state = stateOf(session);
    c.outcome ??= !state.isNew ? "hit" : state.clearCookie ? "rejected" : "none";
  });
}

function loadFrom(engine: Engine, cookieHeader: string | null | undefined, facts: RequestFacts, trace: LoadTraceContext | undefined): Data | Promise<Data> {
  const { config, events } = engine;
  const secure = config.cookie.secure ?? facts.secure === true;
  if (config.header !== undefined) {
    const token = config.header.read(facts.header);
    if (token !== undefined) return loadToken(engine, token, { secure, trace });
  }
  // At most MAX_COOKIE_VALUES values of our name are looked at: a header stuffed with forged ones
  // costs no more HMACs than that.
  const values = cookieValues(cookieHeader, config.cookieName, MAX_COOKIE_VALUES);
  if (values.length === 0) return freshSession(engine, { secure });
  const next = verifiedFrom(engine, values, 0, null);
  if (next === null) {
    if (trace !== undefined) trace.outcome = "rejected";
    events.log("debug", "cookie.rejected", "cookie failed the signature or id format check; starting a fresh session");
    events.emit("rejected", { reason: "signature" });
    return freshSession(engine, { secure, clearCookie: true });
  }
  return read(engine, next.cookie, { secure, trace, values }, next.index + 1);
}

/** The first value from `values[from]` on that verifies and names another id than `skip`, with its index. */
function verifiedFrom(engine: Engine, values: readonly string[], from: number, skip: string | null): { cookie: ReadCookie; index: number } | null {
  for (let i = from; i < values.length; i++) {
    const cookie = engine.config.codec.readCookie(values[i]!);
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
function readNext(engine: Engine, id: string, load: Load, from: number): Data | Promise<Data> {
  const next = load.values === undefined ? null : verifiedFrom(engine, load.values, from, id);
  if (next === null) return freshSession(engine, { secure: load.secure, clearCookie: true });
  return read(engine, next.cookie, load, next.index + 1);
}

/** A token from the `header` option's header: the cookie is not looked at. */
function loadToken(engine: Engine, token: string | null, load: Load): Data | Promise<Data> {
  const verified = token === null ? null : engine.config.codec.readCookie(token);
  if (verified === null) {
    if (load.trace !== undefined) load.trace.outcome = "rejected";
    engine.events.log("debug", "header.rejected", "session header failed the signature or id format check; starting a fresh session");
    engine.events.emit("rejected", { reason: "signature" });
    const session = freshSession(engine, { secure: load.secure });
    stateOf(session).viaHeader = true;
    return session;
  }
  // Re-sent only after a secret rotation: a header token is never converted to another form.
  return read(engine, { id: verified.id, secretIndex: verified.secretIndex, legacy: false }, load, 0).then((session) => {
    stateOf(session).viaHeader = true;
    return session;
  });
}

/**
 * Read the record at store `key` for a request that may write it back: with its version when the
 * store keeps versions (`getVersioned`, only useful with compare-and-set), else the record alone.
 */
export function getRecord(engine: Engine, key: string, ttl: number | undefined): Promise<string | VersionedRecord | null> {
  const store = engine.store;
  return engine.config.versioned ? engine.call("get", key, () => store.getVersioned!(key, ttl)) : engine.call("get", key, () => store.get(key, ttl));
}

/** Under `onStoreError: "continue"`, a store failure serves the request without a session. */
function unavailable(engine: Engine, err: unknown, load: Load): Data {
  if (load.trace !== undefined) load.trace.outcome = "error";
  if (engine.config.onStoreError === "continue" && err instanceof StoreUnavailableError) return freshSession(engine, { secure: load.secure, disabled: true });
  throw err;
}

/** The store half of a load: read and check the record of a verified id. */
async function read(engine: Engine, cookie: ReadCookie, load: Load, from: number): Promise<Data> {
  const { config, events, store, call } = engine;
  const { id } = cookie;
  const trace = load.trace;
  let found: string | VersionedRecord | null;
  const key = engine.keyOf(id);
  if (trace !== undefined) trace.session = hashId(key);
  try {
    found = await getRecord(engine, key, config.touchOnRead ? config.idleTimeout : undefined);
    if (found === null && config.convertLegacy) found = await moveLegacy(engine, id, key);
    if (found !== null && isPlaceholder(typeof found === "string" ? found : found.record)) found = null;
  } catch (err) {
    return unavailable(engine, err, load);
  }
  if (found === null) {
    if (trace !== undefined) trace.outcome = "miss";
    events.log("debug", "cookie.unknown", "signed id is not in the store (expired or destroyed); starting a fresh session", id);
    events.emit("rejected", { reason: "unknown" });
    return readNext(engine, id, load, from);
  }
  const raw = typeof found === "string" ? found : found.record;
  const now = Date.now();
  const decoded = config.codec.decode(raw, now, key);
  if (!decoded) {
    if (trace !== undefined) trace.outcome = "corrupt";
    events.log("warn", "record.corrupt", "stored record is not a valid session record; treated as missing", id);
    events.emit("rejected", { reason: "corrupt" });
    return readNext(engine, id, load, from);
  }
  const remainingMs = decoded.meta.expiresAt - now;
  if (remainingMs <= 0) {
    if (trace !== undefined) trace.outcome = "expired";
    events.log("debug", "session.expired", "session is past its absolute deadline", id);
    const session = engine.hash(id);
    events.emit("expired", decoded.meta.owner === undefined ? { session, reason: "absolute" } : { session, owner: decoded.meta.owner, reason: "absolute" });
    await call("destroy", key, () => store.destroy(key)).catch((err: unknown) => {
      events.log("warn", "store.error", "could not delete an expired record; its TTL will remove it", id, err);
    });
    return readNext(engine, id, load, from);
  }
  if (checksMark(engine, decoded.meta, now)) {
    let revoked: boolean;
    try {
      revoked = await engine.owners.revokedNow(decoded.meta, key);
    } catch (err) {
      return unavailable(engine, err, load);
    }
    if (revoked) {
      if (trace !== undefined) trace.outcome = "miss";
      return readNext(engine, id, load, from);
    }
  }
  const state = loadedState(engine, cookie, load.secure, decoded, raw, typeof found === "string" ? undefined : found.version);
  const session = sessionFor(state);
  assignData(engine, session, decoded.data, id);
  if (config.touchOnRead) {
    // The read reset the TTL to idleTimeout; in the last idleTimeout of its life that is past the deadline.
    // A session with its own lifetime gets that back (or what is left before the deadline).
    const lifetime = decoded.meta.lifetime;
    if (lifetime === undefined ? remainingMs < config.idleTimeout * 1000 : engine.ttl(decoded.meta, now) !== config.idleTimeout) {
      try {
        await call("touch", key, () => store.touch(key, engine.ttl(decoded.meta, now)));
      } catch (err) {
        return unavailable(engine, err, load);
      }
    }
  } else if (now - decoded.meta.writtenAt >= config.touchAfter * 1000) {
    state.rewrite = true;
  }
  // "evict-least-active": an owned session's index entry follows its activity, re-scored by a rewrite once per touchAfter.
  if (config.touchOnRead && engine.owners.refreshDue(decoded.meta, now)) state.rewrite = true;
  return session;
}

/** The state of a session read from the store. */
function loadedState(engine: Engine, cookie: ReadCookie, secure: boolean, decoded: LoadedRecord, raw: string, version: string | undefined): State {
  const state = new State(engine, { secure });
  state.id = cookie.id;
  state.isNew = false;
  state.meta = decoded.meta;
  state.stored = { text: decoded.dataText, record: raw, version };
  state.loadedWrittenAt = decoded.meta.writtenAt;
  state.lifetimeRolled = false;
  // Signed with an older secret, or in express-session's form under "express-session-read": re-send it.
  state.sendCookie = cookie.secretIndex > 0 || (engine.config.convertLegacy && cookie.legacy);
  // A record an express-session process made has no deadline of ours: write the one just given to it.
  // A record sealed under an older encryption key: rewrite it under the first.
  state.rewrite = (engine.config.convertLegacy && decoded.legacy) || decoded.deadlineAssigned === true || decoded.reseal === true;
  state.forceSave = false;
  return state;
}

/** `session.reload()`: the stored data replace the session's; gone from the store, an error. */
export async function reload(session: Data, state: State): Promise<void> {
  const engine = state.engine;
  engine.refuseIfUnusable(state);
  if (state.stored === null || state.id === null) return;
  const id = state.id;
  const key = engine.keyOf(id);
  const found = await getRecord(engine, key, undefined);
  const raw = found === null || typeof found === "string" ? found : found.record;
  const now = Date.now();
  const decoded: LoadedRecord | null = raw === null ? null : engine.config.codec.decode(raw, now, key);
  clearData(session);
  if (!decoded || decoded.meta.expiresAt <= now) {
    engine.continueWithoutRecord(state);
    // As the peers: the app learns that the session it holds no longer exists.
    throw new SessionError("ERR_SESSION_GONE", "failed to load session: its record is gone (destroyed, regenerated or expired elsewhere); the request continues without it");
  }
  assignData(engine, session, decoded.data, id);
  state.meta = decoded.meta;
  state.stored = { text: decoded.dataText, record: raw!, version: found === null || typeof found === "string" ? undefined : found.version };
}
