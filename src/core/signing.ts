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

/** Cookie values verified lately, per secrets list (one list per manager); oldest out first. */
export const VERIFIED_CACHE_SIZE = 4096;
const verifiedCache = new WeakMap<readonly string[], Map<string, Verified>>();

/**
 * Verify a cookie value. The shape and the id format are checked before any HMAC, so garbage costs
 * almost nothing; comparison is constant-time (cookie-signature uses `timingSafeEqual`).
 *
 * A value that verified is remembered (the last {@link VERIFIED_CACHE_SIZE} per secrets list), so a
 * user's next requests cost a map lookup instead of an HMAC (about 4 µs, half of load + commit).
 * Only exact values that passed are kept: a forged or altered value never hits, and failures are
 * never cached, so garbage cannot evict valid entries any faster than valid cookies do.
 */
export function verify(value: string, secrets: readonly string[], validateId: (id: string) => boolean): Verified | null {
  let cache = verifiedCache.get(secrets);
  const hit = cache?.get(value);
  // validateId is the caller's: re-apply it, the HMAC part is all the cache vouches for.
  if (hit !== undefined) return validateId(hit.id) ? hit : null;
  const match = SIGNED.exec(value);
  if (!match) return null;
  const id = match[1]!;
  if (!validateId(id)) return null;
  for (let i = 0; i < secrets.length; i++) {
    if (signature.unsign(value, secrets[i]!) === id) {
      const verified: Verified = { id, secretIndex: i };
      if (cache === undefined) verifiedCache.set(secrets, (cache = new Map()));
      if (cache.size >= VERIFIED_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      cache.set(value, verified);
      return verified;
    }
  }
  return null;
}
