import { SessionError } from "../../src/core/errors.js";

/** Stable codes of {@link MemcachedStoreError}. */
export type MemcachedStoreErrorCode =
  /** The server did not answer within `timeout`. */
  | "ERR_MEMCACHED_TIMEOUT"
  /** The client could not reach the server (refused, reset, memjs's own timeout). */
  | "ERR_MEMCACHED_CONNECTION"
  /** The server answered with an error status. */
  | "ERR_MEMCACHED_STATUS"
  /** Prefix + id is not a valid memcached key. */
  | "ERR_MEMCACHED_KEY"
  /** A TTL that cannot be sent (not a whole number of seconds >= 1). */
  | "ERR_MEMCACHED_TTL"
  /** `compareAndSet` on a server that hands out no CAS tokens (`memcached -C`). */
  | "ERR_MEMCACHED_NO_CAS";

/**
 * Failure of a {@link MemcachedStore} call. The session manager wraps it in a `StoreUnavailableError` (`cause`).
 * A `SessionError`, as every error of this library; its message starts with `MemcachedStore:`.
 */
export class MemcachedStoreError extends SessionError {
  declare readonly code: MemcachedStoreErrorCode;
  /** `host:port` of the server the key maps to, when known. */
  readonly server: string | undefined;
  /** Binary-protocol status the server answered, for `ERR_MEMCACHED_STATUS`. */
  readonly status: number | undefined;

  constructor(code: MemcachedStoreErrorCode, message: string, options: { server?: string; status?: number; cause?: unknown } = {}) {
    // No `cause` property at all when there is none (`{ cause: undefined }` would make one).
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    // The message this error has always had (SessionError would put "[shared-session] " in front).
    this.message = `MemcachedStore: ${message}`;
    this.name = "MemcachedStoreError";
    this.server = options.server;
    this.status = options.status;
  }
}
