import { MemcachedStoreError } from "./errors.js";

/**
 * The pieces of memcached's binary protocol the store speaks (memcached `protocol_binary.h`):
 * opcodes, response statuses, and the expiration field of a request's extras.
 */

/** Request opcodes the store sends. */
export const Opcode = {
  GET: 0x00,
  ADD: 0x02,
  REPLACE: 0x03,
  DELETE: 0x04,
  TOUCH: 0x1c,
  /** Get-and-touch: a read that also resets the TTL (memcached >= 1.4.8). */
  GAT: 0x1d,
} as const;

/** Response statuses the store tells apart. */
export const Status = {
  OK: 0x00,
  NOT_FOUND: 0x01,
  EXISTS: 0x02,
  TOO_LARGE: 0x03,
  UNKNOWN_COMMAND: 0x81,
} as const;

/** Every response status, in words, for error messages. */
export const STATUS_TEXT: Readonly<Record<number, string>> = {
  0x01: "key not found",
  0x02: "key exists",
  0x03: "value too large",
  0x04: "invalid arguments",
  0x05: "item not stored",
  0x06: "incr/decr on a non-numeric value",
  0x07: "the vbucket belongs to another server",
  0x08: "authentication error",
  0x09: "authentication continue",
  0x20: "authentication required or failed",
  0x81: "unknown command",
  0x82: "out of memory",
  0x83: "not supported",
  0x84: "internal error",
  0x85: "busy",
  0x86: "temporary failure",
};

/**
 * The longest TTL memcached reads as "seconds from now" (30 days). A larger expiration is read as
 * an absolute Unix time, so the store sends longer TTLs as `now + ttl`.
 */
export const MEMCACHED_MAX_RELATIVE_TTL = 2_592_000;

/** Extras of a request that carries none (get, delete). */
export const NO_EXTRAS = Buffer.alloc(0);

/**
 * Expiration field for a TTL: memcached reads values up to 30 days as relative seconds and larger
 * ones as absolute Unix time, so a 40-day TTL sent as-is would be a date in 1970, already expired.
 */
export function memcachedExpiration(ttl: number, nowMs: number = Date.now()): number {
  if (!Number.isInteger(ttl) || ttl < 1) {
    throw new MemcachedStoreError("ERR_MEMCACHED_TTL", `TTL must be a whole number of seconds >= 1, got ${String(ttl)} (0 would mean "never expires")`);
  }
  if (ttl <= MEMCACHED_MAX_RELATIVE_TTL) return ttl;
  const absolute = Math.floor(nowMs / 1000) + ttl;
  if (absolute > 0xffff_ffff) throw new MemcachedStoreError("ERR_MEMCACHED_TTL", `TTL of ${ttl}s reaches past what memcached can express (year 2106)`);
  return absolute;
}

/** Extras of `add` and `replace`: flags (always 0), then the expiration. */
export function storageExtras(ttl: number): Buffer {
  const extras = Buffer.alloc(8);
  extras.writeUInt32BE(memcachedExpiration(ttl), 4);
  return extras;
}

/** Extras of `touch` and get-and-touch: the expiration alone. */
export function expirationExtras(ttl: number): Buffer {
  const extras = Buffer.alloc(4);
  extras.writeUInt32BE(memcachedExpiration(ttl), 0);
  return extras;
}
