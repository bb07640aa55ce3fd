import * as crypto from "node:crypto";
import { createHash, createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from "node:crypto";
import signature from "cookie-signature";
import { SessionConfigError } from "./errors.js";

/** HMAC-SHA256, base64 without padding: always 43 characters. */
const SIGNED = /^(.+)\.[A-Za-z0-9+/]{43}$/;

/** Minimum length of the signing secret (the first one). */
export const MIN_SECRET_LENGTH = 32;

export function resolveSecrets(secret: unknown): readonly string[] {
  const list = typeof secret === "string" ? [secret] : Array.isArray(secret) ? [...(secret as unknown[])] : undefined;
  if (!list || list.length === 0) {
    throw new SessionConfigError(
      `secret is required: a string of at least ${MIN_SECRET_LENGTH} characters, or an array of such strings (the first signs, all verify); generate one with: node -e "console.log(require('crypto').randomBytes(32).toString('hex'))"`,
    );
  }
  for (const [i, s] of list.entries()) {
    const name = list.length === 1 && typeof secret === "string" ? "the signing secret" : `secret[${i}]`;
    if (typeof s !== "string") throw new SessionConfigError(`${name} must be a string, got ${typeof s}`);
    // Every secret verifies cookies, so a short old one is as forgeable as a short first one.
    if (s.length < MIN_SECRET_LENGTH) {
      throw new SessionConfigError(`${name} must be at least ${MIN_SECRET_LENGTH} characters, got ${s.length}; use e.g. 32 random bytes as hex`);
    }
  }
  return list as string[];
}

export function sign(id: string, secrets: readonly string[]): string {
  return signature.sign(id, secrets[0]!);
}

export interface Verified {
  readonly id: string;
  /** Index of the secret that verified; > 0 means the cookie should be re-signed. */
  readonly secretIndex: number;
}

/** HMAC keys made once per secrets list (one list per manager): secrets, never cookie values. */
const hmacKeys = new WeakMap<readonly string[], readonly KeyObject[]>();

function keysOf(secrets: readonly string[]): readonly KeyObject[] {
  let keys = hmacKeys.get(secrets);
  if (keys === undefined) hmacKeys.set(secrets, (keys = secrets.map((s) => createSecretKey(Buffer.from(s, "utf8")))));
  return keys;
}

/** Values verified lately, per secrets list, oldest out first. @internal */
export const VERIFIED_CACHE_SIZE = 4096;
/**
 * Cache of values that verified, keyed by a salted SHA-256 of the value (the salt is random per
 * process) and holding only the index of the secret: a heap snapshot finds neither a cookie value
 * nor a session id in it, and a key cannot be turned back into a cookie to replay.
 */
const verifiedCache = new WeakMap<readonly string[], Map<string, number>>();
const SALT = randomBytes(16).toString("hex");
/** One-shot `crypto.hash` (Node >= 20.12) costs a third of a Hash object. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: "base64") => string }).hash;

function cacheKey(value: string): string {
  return oneShotHash !== undefined ? oneShotHash("sha256", SALT + value, "base64") : createHash("sha256").update(SALT).update(value).digest("base64");
}

/**
 * Verify a cookie value. The shape and the id format are checked before any HMAC, so garbage costs
 * almost nothing; comparison is constant-time (`timingSafeEqual` over the canonical base64 text, as
 * cookie-signature signs it).
 *
 * A value that verified is remembered by a salted hash of it (see `verifiedCache`), so a user's next
 * requests cost a SHA-256 instead of an HMAC per secret. An earlier version kept the values
 * themselves, which left replayable cookies of every recent user in the heap of an idle process.
 * Failures are never cached, so garbage cannot evict valid entries faster than valid cookies do.
 */
export function verify(value: string, secrets: readonly string[], validateId: (id: string) => boolean): Verified | null {
  const match = SIGNED.exec(value);
  if (!match) return null;
  const id = match[1]!;
  if (!validateId(id)) return null;
  let cache = verifiedCache.get(secrets);
  const key = cacheKey(value);
  const hit = cache?.get(key);
  if (hit !== undefined) return { id, secretIndex: hit };
  const given = Buffer.from(value.slice(id.length + 1), "latin1");
  const keys = keysOf(secrets);
  for (let i = 0; i < keys.length; i++) {
    // 32 bytes are 44 base64 characters, the last one "=": cookie-signature drops it.
    const expected = Buffer.from(createHmac("sha256", keys[i]!).update(id).digest("base64").slice(0, 43), "latin1");
    if (timingSafeEqual(expected, given)) {
      if (cache === undefined) verifiedCache.set(secrets, (cache = new Map()));
      if (cache.size >= VERIFIED_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      cache.set(key, i);
      return { id, secretIndex: i };
    }
  }
  return null;
}
