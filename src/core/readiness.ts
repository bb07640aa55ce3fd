import { bounded } from "./bounded.js";
import { SessionConfigError, StoreUnavailableError } from "./errors.js";
import type { SessionStore } from "./store.js";

/** Id read by the probe of a store without `ready()`: cookie ids never contain a space, so it names no session. */
const PROBE_ID = "shared-session readiness probe";
/** Extra milliseconds the outer bound gives a store's own `ready()`, so that its message (with the reason) wins. */
const GRACE_MS = 250;

/** `timeout` (seconds) of `ready()` / `isReady()`, checked; `fallback` when absent. */
export function readinessTimeout(options: { timeout?: number } | undefined, fallback: number): number {
  const timeout = options?.timeout ?? fallback;
  if (typeof timeout !== "number" || !(timeout > 0) || !Number.isFinite(timeout)) {
    throw new SessionConfigError(`ready: timeout must be a number of seconds > 0, got ${String(timeout)}`);
  }
  return timeout;
}

/**
 * Resolves once `store` answers within `timeout` seconds (its `ready()`, else a read of an id no
 * session has); otherwise rejects with a {@link StoreUnavailableError} whose message and `cause` say why.
 */
export function storeReady(store: SessionStore, timeout: number, retryAfter: number): Promise<void> {
  return bounded(
    () => (typeof store.ready === "function" ? store.ready(timeout) : store.get(PROBE_ID).then(() => undefined)),
    Math.ceil(timeout * 1000) + GRACE_MS,
    () => new StoreUnavailableError(store.name, `not ready: no answer within ${timeout}s`, { retryAfter }),
    (err) =>
      err instanceof StoreUnavailableError
        ? err
        : new StoreUnavailableError(store.name, `not ready: ${withoutPrefix(err instanceof Error ? err.message : String(err), store.name)}`, {
            cause: err,
            retryAfter,
          }),
    true,
  );
}

/** The store's message without the prefixes the wrapping error adds again. */
function withoutPrefix(message: string, store: string): string {
  const bare = message.replace(/^\[shared-session\] /, "");
  return bare.startsWith(`${store}: `) ? bare.slice(store.length + 2) : bare;
}
