import { scrubError, SessionError } from "../../src/core/errors.js";

/** Codes of {@link RedisStoreError}. */
export type RedisStoreErrorCode =
  /** The operation did not finish within the store's `timeout`. */
  | "ERR_REDIS_TIMEOUT"
  /** The client was not connected (outage, reconnecting) or was closed; nothing was sent. */
  | "ERR_REDIS_NOT_CONNECTED"
  /** The server is older than Redis 6.2 and does not know `GETEX`. */
  | "ERR_REDIS_VERSION"
  /** The server or the client reported an error. */
  | "ERR_REDIS_COMMAND"
  /** The store was called with an invalid argument (such as a TTL that is not a whole number of seconds >= 1). */
  | "ERR_REDIS_ARGUMENT";

/** An operation of {@link RedisStore} failed. The message starts with `RedisStore`; `cause` holds the client's error. */
export class RedisStoreError extends SessionError {
  declare readonly code: RedisStoreErrorCode;
  /**
   * The store operation: `get`, `create`, `update`, `touch`, `destroy`, `ttl`, `compareAndSet`, `list`, `ready`,
   * or one of the owner index's `owners.add`, `owners.remove`, `owners.entries`, `owners.touch`.
   */
  readonly operation: string;

  constructor(code: RedisStoreErrorCode, operation: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.operation = operation;
  }
}

/** The message of whatever was thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Refuse a TTL Redis cannot take (`EX` needs whole seconds >= 1) before anything is sent. */
export function checkTtl(operation: string, ttl: number): void {
  if (!Number.isInteger(ttl) || ttl < 1) {
    throw new RedisStoreError("ERR_REDIS_ARGUMENT", operation, `RedisStore: ${operation} needs a TTL in whole seconds >= 1, got ${String(ttl)}`);
  }
}

/** Error codes Redis answers with that say what went wrong, wherever they appear in the message. */
const REDIS_ERROR_CODE =
  /\b(NOPERM|READONLY|OOM|NOREPLICAS|WRONGTYPE|NOSCRIPT|NOAUTH|WRONGPASS|BUSY|LOADING|MASTERDOWN|CLUSTERDOWN|CROSSSLOT|TRYAGAIN|MISCONF|EXECABORT)\b/;

/**
 * The store's error for a failed command. `lastError` is the client's last `error` event: when the
 * command failed because the connection is down or unauthenticated, it becomes the root of the chain.
 */
export function toStoreError(operation: string, err: unknown, lastError: Error | null = null): RedisStoreError {
  if (err instanceof RedisStoreError) return err;
  // ioredis errors carry the command (`command.args`: the key, hence the session id, and for a
  // script the records): the cause is a scrubbed copy, and the message its first line.
  const cause = scrubError(err);
  const message = cause.message;
  if (lastError !== null && cause.cause === undefined && /^NOAUTH|enableOfflineQueue|Connection is closed|Stream isn't writeable|The client is (offline|closed)|Socket closed unexpectedly/i.test(message)) {
    Object.defineProperty(cause, "cause", { value: lastError, writable: true, configurable: true });
  }
  // Each layer says its part once: the driver's message is the cause's; ours names the operation and,
  // for a server error, its code word (READONLY, OOM, NOPERM…).
  if (/unknown command/i.test(message) && /getex/i.test(message)) {
    return new RedisStoreError("ERR_REDIS_VERSION", operation, "RedisStore needs Redis >= 6.2 (GETEX); the server does not know the command", { cause });
  }
  if (/enableOfflineQueue|Connection is closed|Stream isn't writeable|The client is (offline|closed)|Socket closed unexpectedly/i.test(message)) {
    return new RedisStoreError("ERR_REDIS_NOT_CONNECTED", operation, `RedisStore: ${operation} failed: the Redis connection is down`, { cause });
  }
  if (/command timed out/i.test(message)) {
    return new RedisStoreError("ERR_REDIS_TIMEOUT", operation, `RedisStore: ${operation} failed: the client's commandTimeout passed`, { cause });
  }
  // A script's error wraps the command's ("ERR Error running script …: NOPERM …"): name the inner code.
  const code = REDIS_ERROR_CODE.exec(message)?.[1] ?? /^([A-Z][A-Z_]{1,30})\b/.exec(message)?.[1];
  return new RedisStoreError("ERR_REDIS_COMMAND", operation, `RedisStore: ${operation} failed${code === undefined ? "" : `: ${code}`}`, { cause });
}
