import { bounded } from "./bounded.js";
import { scrubError, StoreUnavailableError } from "./errors.js";
import { seconds } from "./options.js";
import type { SessionStore } from "./store.js";

/** Id read by the probe of a store without `ready()`: cookie ids never contain a space, so it names no session. */
const PROBE_ID = "shared-session readiness probe";
/** Extra milliseconds the outer bound gives a store's own `ready()`, so that its message (with the reason) wins. */
const GRACE_MS = 250;

/** `timeout` (seconds) of `ready()` / `isReady()`, checked; `fallback` when absent. */
export function readinessTimeout(options: { timeout?: number } | undefined, fallback: number): number {
  return seconds("ready: timeout", options?.timeout ?? undefined, fallback, { fractions: true });
}

/**
 * Resolves once `store` answers within `timeout` seconds (its `ready()`, else a read of an id no
 * session has); otherwise rejects with a {@link StoreUnavailableError} (operation `ready`) whose
 * `cause` says why: the store's error, or that nothing answered in time.
 */
export function storeReady(store: SessionStore, timeout: number, retryAfter: number): Promise<void> {
  return bounded(
    () => (typeof store.ready === "function" ? store.ready(timeout) : store.get(PROBE_ID).then(() => undefined)),
    Math.ceil(timeout * 1000) + GRACE_MS,
    () => new StoreUnavailableError(store.name, "ready", { cause: new Error(`${store.name}: no answer within ${timeout}s`), retryAfter }),
    (err) => (err instanceof StoreUnavailableError ? err : new StoreUnavailableError(store.name, "ready", { cause: scrubError(err), retryAfter })),
    true,
  );
}
