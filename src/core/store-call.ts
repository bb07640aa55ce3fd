import { bounded } from "./bounded.js";
import { scrubError, SessionError, StoreUnavailableError } from "./errors.js";
import { hashId, type Events } from "./events.js";
import type { Config } from "./options.js";
import { storeChannel, storeOutcome, trace, traced, type StoreTraceContext } from "./tracing.js";

/** A store call about the record at `key` (a store key, never an id; `undefined` for none). */
export type StoreCall = <T>(operation: string, key: string | undefined, run: () => Promise<T>) => Promise<T>;

/**
 * The manager's gate to its store: every call bounded by `storeTimeout`, traced on
 * `shared-session:store` when someone subscribes, and every failure turned into a
 * {@link StoreUnavailableError} (logged and emitted as `storeError`).
 */
export function storeCall(config: Config, events: Events): StoreCall {
  const { store, retryAfter, storeTimeout, storeTimeoutMs, storeBounded } = config;

  const toError = (operation: string, err: unknown): unknown => {
    // A store refusing an argument (an owner id too long, a TTL that is not whole seconds) is a bug to
    // fix, not an outage to retry: it stays what it is (a 500), never a 503.
    if (err instanceof SessionError && err.code.endsWith("_ARGUMENT")) return err;
    // The public message is generic; the store's error (scrubbed of command arguments) is the cause.
    const error = err instanceof StoreUnavailableError ? err : new StoreUnavailableError(store.name, operation, { cause: scrubError(err), retryAfter });
    const detail = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    events.log("error", "store.error", `${error.store} ${error.operation} failed${detail}`, undefined, error);
    events.emit("storeError", { operation, error });
    return error;
  };

  /** One promise and one timer per call (no async function, no Promise.race): this runs on every request. */
  const boundedCall = <T>(operation: string, run: () => Promise<T>): Promise<T> => {
    if (storeBounded) {
      // The store settles every call within its own timeout (<= storeTimeout): no second timer.
      try {
        return run().then(undefined, (err: unknown) => {
          throw toError(operation, err);
        });
      } catch (err) {
        return Promise.reject(toError(operation, err));
      }
    }
    return bounded(
      run,
      storeTimeoutMs,
      () =>
        new StoreUnavailableError(store.name, operation, {
          cause: new SessionError("ERR_SESSION_STORE_TIMEOUT", `${store.name} ${operation} did not answer within ${storeTimeout}s`),
          retryAfter,
        }),
      (err) => toError(operation, err),
    );
  };

  return <T>(operation: string, key: string | undefined, run: () => Promise<T>): Promise<T> => {
    if (!traced(storeChannel)) return boundedCall(operation, run);
    const context: StoreTraceContext = { store: store.name, operation, session: key === undefined ? undefined : hashId(key), outcome: undefined };
    return trace(storeChannel, context, () => boundedCall(operation, run), (c, value) => (c.outcome = storeOutcome(operation, value))) as Promise<T>;
  };
}
