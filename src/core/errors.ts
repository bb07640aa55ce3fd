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

/** The public message of every {@link StoreUnavailableError}: what a client may read, nothing more. */
export const STORE_UNAVAILABLE_MESSAGE = "session store unavailable";

/**
 * The store failed or did not answer in time. Carries the HTTP answer bindings give:
 * 503 with a `Retry-After` of `retryAfter` seconds.
 *
 * The message is always `[shared-session] session store unavailable`, because frameworks show it to
 * clients (Koa and Fastify send an exposed error's message). What failed and why is in `store`,
 * `operation` and `cause`: the store's own error, whose `cause` chain reaches the driver's error
 * (with command arguments, keys and records stripped), and in the log line.
 */
export class StoreUnavailableError extends SessionError {
  readonly status = 503;
  readonly statusCode = 503;
  /** Koa and http-errors show the message of an `expose`d error to the client: it is generic. */
  readonly expose = true;
  /** Seconds the client should wait before retrying. */
  readonly retryAfter: number;
  /** Name of the store that failed, such as `RedisStore`. */
  readonly store: string;
  /** The store call that failed, such as `get`, `create` or `compareAndSet`. */
  readonly operation: string;
  /**
   * Response headers for the 503, by the http-errors convention that Koa's `ctx.onerror`, Express's
   * final handler and Fastify's default error handler apply: `{ "Retry-After": "<retryAfter>" }`.
   */
  readonly headers: Readonly<Record<"Retry-After", string>>;

  constructor(store: string, operation: string, options: { cause?: unknown; retryAfter: number }) {
    super("ERR_SESSION_STORE_UNAVAILABLE", STORE_UNAVAILABLE_MESSAGE, { cause: options.cause });
    this.store = store;
    this.operation = operation;
    this.retryAfter = options.retryAfter;
    this.headers = Object.freeze({ "Retry-After": String(options.retryAfter) });
  }
}

/** Own properties of a driver error worth keeping: they say what failed, never with what data. */
const SAFE_PROPERTIES = ["code", "errno", "syscall", "address", "port", "status", "server", "operation", "store"] as const;
/** How deep a cause chain is followed. */
const MAX_CAUSE_DEPTH = 8;

/**
 * Strip what a driver error carries beyond its message before it goes anywhere (a log, an event, a
 * `cause`): ioredis puts the command in `err.command.args` (the key `sess:<id>`, and for a script the
 * records it compares and writes), and Redis quotes the arguments of a command it does not know.
 *
 * Returns a copy with the same prototype (`instanceof` still works) and only the message (Redis's
 * quoted arguments cut), `name`, and the plain values of `code`, `errno`, `syscall`, `address`, `port`,
 * `status`, `server`, `operation`, `store`; a stack of frames only; `cause` / `errors` copied the same
 * way. A {@link SessionError} is returned as it is: this library builds them from scrubbed parts. Non-errors become an `Error` with their type only.
 */
export function scrubError(err: unknown, depth = 0): Error {
  if (err instanceof SessionError) return err;
  if (!(err instanceof Error)) return new Error(`non-error thrown (${err === null ? "null" : typeof err})`);
  if (depth >= MAX_CAUSE_DEPTH) return new Error(`${err.name}: (cause chain cut)`);
  const copy = Object.create(Object.getPrototypeOf(err) as object) as Error & Record<string, unknown>;
  const source = err as Error & Record<string, unknown>;
  const message = scrubMessage(String(err.message));
  Object.defineProperty(copy, "message", { value: message, writable: true, configurable: true });
  if (Object.hasOwn(err, "name") && typeof err.name === "string") Object.defineProperty(copy, "name", { value: err.name, writable: true, configurable: true });
  for (const key of SAFE_PROPERTIES) {
    const value = source[key];
    if (Object.hasOwn(err, key) && (typeof value === "string" || typeof value === "number")) copy[key] = value;
  }
  const frames = typeof err.stack === "string" ? err.stack.split("\n").filter((line) => /^\s+at /.test(line)) : [];
  Object.defineProperty(copy, "stack", { value: [`${err.name}: ${message}`, ...frames].join("\n"), writable: true, configurable: true });
  // ioredis's ClusterAllFailedError keeps the node's error as `lastNodeError`: it is the cause.
  const cause = err.cause ?? (source.lastNodeError instanceof Error ? source.lastNodeError : undefined);
  if (cause !== undefined) Object.defineProperty(copy, "cause", { value: scrubError(cause, depth + 1), writable: true, configurable: true });
  const errors = source.errors;
  if (Array.isArray(errors)) {
    Object.defineProperty(copy, "errors", { value: errors.slice(0, 8).map((e) => scrubError(e, depth + 1)), writable: true, configurable: true });
  }
  return copy;
}

/** A driver's message, first line only, without the arguments Redis quotes back. */
function scrubMessage(message: string): string {
  const line = message.split("\n", 1)[0]!.replace(/, with args beginning with:.*$/, "");
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
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
