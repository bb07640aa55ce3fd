import { serializeClearCookie, serializeCookie, serializeCookieMaxAge } from "./cookie.js";
import type { Engine, State } from "./engine.js";
import { StoreUnavailableError } from "./errors.js";
import type { Data } from "./options.js";
import { currentSession, stateIfSession, stateOf } from "./session-object.js";
import { replacedError } from "./session-swap.js";
import { sign } from "./signing.js";
import { commitChannel, trace, traced, type CommitTraceContext } from "./tracing.js";
import { whyWrite, write } from "./write.js";

/** What a binding must do after commit. */
export interface CommitResult {
  /** Value for one `Set-Cookie` header, or `undefined` for none. */
  readonly setCookie: string | undefined;
  /** With the `header` option: a response header to set, `[name, token]`, when the session got a new token. */
  readonly setHeader?: readonly [name: string, value: string];
}

const NO_COOKIE: CommitResult = Object.freeze({ setCookie: undefined });

/**
 * Commit: write what the request changed ({@link whyWrite}), then say which `Set-Cookie` (or header
 * token) to send. Returns the result itself when there is nothing to write (the common case), a
 * promise when the store is written. Never throws: a failure is a rejected promise.
 */
export function commit(engine: Engine, session: object): CommitResult | Promise<CommitResult> {
  if (!engine.tracingCommit && traced(commitChannel)) return traceCommit(engine, session);
  try {
    const state = stateOf(session);
    if (state.replacedBy !== undefined) throw replacedError("commit");
    // A session method the app did not await still runs: commit what it leaves.
    // (regenerate() may have replaced the object meanwhile: commit the one it left.)
    if (state.pending !== undefined) return state.pending.then(() => commit(engine, currentSession(session)));
    if (state.disabled) return NO_COOKIE;
    const data: Data = { ...session };
    const dataText = engine.config.serializer.stringify(data);
    // Nothing to write: settled without a store call.
    if (whyWrite(state, dataText, { saveCalled: false }) === null) return result(state, false);
    return commitWrite(session as Data, state, data, dataText);
  } catch (err) {
    return Promise.reject(err);
  }
}

async function commitWrite(session: Data, state: State, data: Data, dataText: string): Promise<CommitResult> {
  let wrote: boolean;
  try {
    wrote = await write(session, state, { saveCalled: false }, data, dataText);
    if (state.commitTrace !== undefined) state.commitTrace.outcome = wrote ? "written" : "unchanged";
  } catch (err) {
    if (state.commitTrace !== undefined) state.commitTrace.outcome = "error";
    if (state.engine.config.onStoreError === "continue" && err instanceof StoreUnavailableError) return NO_COOKIE;
    throw err;
  }
  return result(state, wrote);
}

/** What the binding sends: the cookie, and with the `header` option the token of a new or re-signed id. */
function result(state: State, wrote: boolean): CommitResult {
  const { header, secrets } = state.engine.config;
  const token = header !== undefined && state.sendCookie && state.persisted && state.id !== null ? sign(state.id, secrets) : undefined;
  const cookie = cookieFor(state, wrote);
  // A request that came with the header gets its answer there; a cookie would be set for nobody.
  const setCookie = state.viaHeader ? undefined : cookie;
  if (token !== undefined) return { setCookie, setHeader: [header!.response, token] };
  return setCookie === undefined ? NO_COOKIE : { setCookie };
}

/**
 * The `Set-Cookie` value, if one is due: a new or re-signed id, a persistent cookie whose lifetime
 * rolls (on a write, after `touch()`, or once per `touchAfter`), or the clearing of a dead cookie.
 */
function cookieFor(state: State, wrote: boolean): string | undefined {
  const { cookie, codec, touchAfter } = state.engine.config;
  if (!state.persisted || state.id === null) {
    return state.clearCookie ? serializeClearCookie(cookie, state.secure) : undefined;
  }
  const lifetime = state.meta.lifetime;
  const resend =
    state.sendCookie ||
    ((lifetime ?? cookie.maxAge) !== undefined && (wrote || state.lifetimeRolled || Date.now() - state.loadedWrittenAt >= touchAfter * 1000));
  if (!resend) return undefined;
  state.sendCookie = false;
  if (lifetime === undefined) return serializeCookie(cookie, codec.writeCookie(state.id), state.secure);
  // The session's own lifetime, never past its absolute deadline.
  const maxAge = Math.max(1, Math.min(lifetime, Math.ceil((state.meta.expiresAt - Date.now()) / 1000)));
  return serializeCookieMaxAge(cookie, codec.writeCookie(state.id), state.secure, maxAge);
}

function traceCommit(engine: Engine, session: object): CommitResult | Promise<CommitResult> {
  const untraced = (): CommitResult | Promise<CommitResult> => {
    engine.tracingCommit = true;
    try {
      return commit(engine, session);
    } finally {
      engine.tracingCommit = false;
    }
  };
  const state = stateIfSession(session);
  if (state === undefined) return untraced(); // not a session: commit's own error
  const context: CommitTraceContext = { session: undefined, outcome: undefined, conflicts: 0 };
  const persisted = state.persisted;
  state.commitTrace = context;
  return trace(commitChannel, context, untraced, (c) => {
    state.commitTrace = undefined;
    if (state.id !== null && state.persisted) c.session = engine.hash(state.id);
    if (c.outcome === "error") return;
    if (!state.persisted) c.outcome = persisted ? "gone" : "none";
    else if (!persisted) c.outcome = "created";
    else c.outcome ??= "unchanged";
  });
}
