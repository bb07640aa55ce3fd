import * as crypto from "node:crypto";
import { createHash, createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from "node:crypto";

/** HMAC-SHA256, base64 without padding: always 43 characters. */
const SIGNED = /^(.+)\.[A-Za-z0-9+/]{43}$/;

export interface Verified {
  readonly id: string;
  /** Index of the secret that verified; > 0 means the cookie should be re-signed. */
  readonly secretIndex: number;
}

/** Values a verifier remembers, oldest out first. @internal */
export const VERIFIED_CACHE_SIZE = 4096;
/** Random per process: a cache key cannot be computed (nor turned back) without it. */
const SALT = randomBytes(16).toString("hex");
/** One-shot `crypto.hash` (Node >= 20.12): cheaper than a Hash object. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: "base64") => string }).hash;

function cacheKey(value: string): string {
  return oneShotHash !== undefined ? oneShotHash("sha256", SALT + value, "base64") : createHash("sha256").update(SALT).update(value).digest("base64");
}

/**
 * Verifies signed cookie values against one list of secrets: one per manager, holding its HMAC keys
 * (made once) and its cache of values that verified. Nothing is shared between managers.
 *
 * The cache is keyed by a salted SHA-256 of the value and holds only the index of the secret: a heap
 * snapshot finds neither a cookie value nor a session id in it, and a key cannot be turned back into
 * a cookie to replay. A user's next requests cost a SHA-256 instead of an HMAC per secret. Failures
 * are never cached, so garbage cannot evict valid entries faster than valid cookies do.
 */
export class Verifier {
  readonly #keys: readonly KeyObject[];
  readonly #cache = new Map<string, number>();

  constructor(secrets: readonly string[]) {
    this.#keys = secrets.map((s) => createSecretKey(Buffer.from(s, "utf8")));
  }

  /**
   * Verify a cookie value. The shape and the id format are checked before any HMAC, so garbage costs
   * almost nothing; comparison is constant-time (`timingSafeEqual` over the canonical base64 text, as
   * cookie-signature signs it).
   */
  verify(value: string, validateId: (id: string) => boolean): Verified | null {
    const match = SIGNED.exec(value);
    if (!match) return null;
    const id = match[1]!;
    if (!validateId(id)) return null;
    const cache = this.#cache;
    const key = cacheKey(value);
    const hit = cache.get(key);
    if (hit !== undefined) return { id, secretIndex: hit };
    const given = Buffer.from(value.slice(id.length + 1), "latin1");
    const keys = this.#keys;
    for (let i = 0; i < keys.length; i++) {
      // 32 bytes are 44 base64 characters, the last one "=": cookie-signature drops it.
      const expected = Buffer.from(createHmac("sha256", keys[i]!).update(id).digest("base64").slice(0, 43), "latin1");
      if (timingSafeEqual(expected, given)) {
        if (cache.size >= VERIFIED_CACHE_SIZE) cache.delete(cache.keys().next().value!);
        cache.set(key, i);
        return { id, secretIndex: i };
      }
    }
    return null;
  }
}
