/** Base class of every error this library throws. `code` is stable; messages are for people. */
export class SessionError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(`[shared-session] ${message}`, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Options that cannot work. Thrown when the manager or a store is constructed, never at a request. */
export class SessionConfigError extends SessionError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_SESSION_CONFIG", message, options);
  }
}

/**
 * The store failed or did not answer in time. Carries the HTTP answer bindings give:
 * 503 with a `Retry-After` of `retryAfter` seconds. `cause` holds the client's own error.
 */
export class StoreUnavailableError extends SessionError {
  readonly status = 503;
  readonly statusCode = 503;
  /** Koa and http-errors show the message of an `expose`d error to the client. */
  readonly expose = true;
  /** Seconds the client should wait before retrying. */
  readonly retryAfter: number;
  /** Name of the store that failed, such as `RedisStore`. */
  readonly store: string;
  /**
   * Response headers for the 503, by the http-errors convention that Koa's `ctx.onerror`, Express's
   * final handler and Fastify's default error handler apply: `{ "Retry-After": "<retryAfter>" }`.
   */
  readonly headers: Readonly<Record<"Retry-After", string>>;

  constructor(store: string, message: string, options: { cause?: unknown; retryAfter: number }) {
    super("ERR_SESSION_STORE_UNAVAILABLE", `${store}: ${message}`, { cause: options.cause });
    this.store = store;
    this.retryAfter = options.retryAfter;
    this.headers = Object.freeze({ "Retry-After": String(options.retryAfter) });
  }
}

/** A session record is larger than `maxSize` bytes. The app stored too much; nothing was written. */
export class SessionTooLargeError extends SessionError {
  readonly status = 500;
  readonly statusCode = 500;
  readonly expose = false;
  /** Size in bytes of the record that was refused. */
  readonly size: number;
  /** The configured `maxSize` in bytes. */
  readonly limit: number;

  constructor(size: number, limit: number) {
    super("ERR_SESSION_TOO_LARGE", `session record of ${size} bytes exceeds maxSize of ${limit} bytes; nothing was written`);
    this.size = size;
    this.limit = limit;
  }
}

/** The operation needs a capability the configured store declares it does not have. */
export class UnsupportedOperationError extends SessionError {
  constructor(store: string, operation: string, capability: string) {
    super("ERR_SESSION_UNSUPPORTED", `${store} cannot ${operation}: it does not support ${capability}`);
  }
}
