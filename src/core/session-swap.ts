import { SessionError } from "./errors.js";

/**
 * Where a binding keeps the request's session (Koa's per-request state, Express's `req`). A binding
 * that registers one (`SessionManager.replaceOnRegenerate`) gets express-session's `regenerate()`:
 * the slot receives a NEW session object, and the one the app held before is left as a detached
 * snapshot. Passport's `keepSessionInfo` needs exactly that: it keeps `req.session` from before
 * `regenerate()` and merges it into the new one afterwards. Without a slot (the core API, Fastify)
 * `regenerate()` empties the same object in place.
 */
export interface SessionSlot {
  session: unknown;
}

/**
 * What a session operation on a replaced object throws. Writing through it would either write the
 * pre-regenerate data under the new id or bring the deleted record back (express-session's stale
 * `save()` does the latter), so it refuses and says where the live session is.
 */
export function replacedError(operation = "a session method"): SessionError {
  return new SessionError(
    "ERR_SESSION_REPLACED",
    `${operation === "a session method" ? operation : `${operation}()`} called on a session object that regenerate() replaced: its data stay readable, but it is no longer the request's session; read req.session / ctx.session again after regenerate()`,
  );
}

/**
 * Hand `slot` the new object `next` in place of `old`, carrying over the keys `keep` names. `old`
 * keeps all its data (plain own properties, readable and enumerable as before). A slot the app has
 * pointed elsewhere since (`req.session = null`) is left as the app set it.
 */
export function handOver(slot: SessionSlot, old: object, next: object, keep: readonly string[] | undefined): void {
  if (keep !== undefined) {
    const from = old as Record<string, unknown>;
    const to = next as Record<string, unknown>;
    for (const key of keep) if (Object.hasOwn(from, key)) to[key] = from[key];
  }
  if (slot.session === old) slot.session = next;
}
