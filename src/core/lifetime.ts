import { MAX_DURATION_SECONDS } from "./peer-options.js";

/**
 * A session's own lifetime ("remember me"), in seconds: it replaces `idleTimeout` as the store TTL
 * and `cookie.maxAge` as the cookie's `Max-Age` for that session, always within the absolute deadline.
 * Stored in the record's metadata (`"lifetime"`), so every process honours it.
 */

/** Check a lifetime in seconds given to `setLifetime`; `null`/`undefined` is "back to the defaults". */
export function checkLifetime(seconds: unknown): number | undefined {
  if (seconds === null || seconds === undefined) return undefined;
  if (typeof seconds !== "number" || !Number.isInteger(seconds) || seconds < 1) {
    throw new TypeError(`[shared-session] a session's lifetime is a whole number of seconds >= 1, or null for the defaults; got ${String(seconds)}`);
  }
  if (seconds > MAX_DURATION_SECONDS) {
    throw new RangeError(
      `[shared-session] a session's lifetime of ${seconds} seconds looks like milliseconds (more than 400 days, the browsers' cap on a cookie's lifetime): setLifetime takes seconds`,
    );
  }
  return seconds;
}

/**
 * A lifetime from the peers' milliseconds (`cookie.maxAge = ms`, koa-session's `maxAge = ms`),
 * rounded up to whole seconds. `null`/`undefined` (and koa-session's `"session"`) is the default.
 */
export function lifetimeFromMs(ms: unknown, name: string): number | undefined {
  if (ms === null || ms === undefined || ms === "session") return undefined;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0) {
    throw new TypeError(`[shared-session] ${name} is a number of milliseconds > 0, or null for the defaults; got ${String(ms)}`);
  }
  return checkLifetime(Math.ceil(ms / 1000));
}

/** Whether a metadata value is a valid stored lifetime. */
export function isLifetime(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= MAX_DURATION_SECONDS;
}
