import { SessionConfigError } from "../../src/core/errors.js";
import { MemcachedStoreError } from "./errors.js";

/** Longest key memcached accepts, in bytes. */
export const MEMCACHED_MAX_KEY_BYTES = 250;

/** Control characters and space: memcached keys cannot hold them. */
// eslint-disable-next-line no-control-regex -- these are exactly the bytes memcached refuses in keys
const FORBIDDEN_KEY_CHAR = /[\u0000-\u0020\u007f]/;

/** Check a key prefix at construction; returns its length in bytes. */
export function checkKeyPrefix(prefix: unknown): number {
  if (typeof prefix !== "string" || FORBIDDEN_KEY_CHAR.test(prefix)) {
    throw new SessionConfigError(`MemcachedStore: prefix must be a string without spaces or control characters, got ${JSON.stringify(prefix)}`);
  }
  const bytes = Buffer.byteLength(prefix);
  if (bytes >= MEMCACHED_MAX_KEY_BYTES) {
    throw new SessionConfigError(`MemcachedStore: prefix is ${bytes} bytes; memcached keys (prefix + id) hold at most ${MEMCACHED_MAX_KEY_BYTES}`);
  }
  return bytes;
}

/** The key of session `id` under a prefix already checked by {@link checkKeyPrefix}; throws, sending nothing, when memcached would refuse it. */
export function sessionKey(prefix: string, prefixBytes: number, id: string): string {
  if (typeof id !== "string" || id.length === 0) throw new MemcachedStoreError("ERR_MEMCACHED_KEY", "session id must be a non-empty string");
  const key = prefix + id;
  // UTF-8 takes at most 3 bytes per UTF-16 unit: skip counting when it cannot be over.
  if (key.length * 3 > MEMCACHED_MAX_KEY_BYTES) {
    const bytes = Buffer.byteLength(key);
    if (bytes > MEMCACHED_MAX_KEY_BYTES) {
      throw new MemcachedStoreError(
        "ERR_MEMCACHED_KEY",
        `key of ${bytes} bytes (prefix ${prefixBytes} + id ${bytes - prefixBytes}) exceeds memcached's limit of ${MEMCACHED_MAX_KEY_BYTES} bytes; use a shorter prefix or shorter ids`,
      );
    }
  }
  if (FORBIDDEN_KEY_CHAR.test(id)) throw new MemcachedStoreError("ERR_MEMCACHED_KEY", "session id holds a space or control character, which memcached keys cannot hold");
  return key;
}
