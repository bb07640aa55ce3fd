import signature from "cookie-signature";
import { SessionConfigError } from "./errors.js";

/** HMAC-SHA256, base64 without padding: always 43 characters. */
const SIGNED = /^(.+)\.[A-Za-z0-9+/]{43}$/;

/** Minimum length of the signing secret (the first one). */
export const MIN_SECRET_LENGTH = 32;

export function resolveSecrets(secret: unknown): readonly string[] {
  const list = typeof secret === "string" ? [secret] : Array.isArray(secret) ? [...(secret as unknown[])] : undefined;
  if (!list || list.length === 0) throw new SessionConfigError("secret is required: a string of at least 32 characters, or an array whose first entry is");
  for (const [i, s] of list.entries()) {
    if (typeof s !== "string" || s.length === 0) throw new SessionConfigError(`secret[${i}] must be a non-empty string`);
  }
  const first = list[0] as string;
  if (first.length < MIN_SECRET_LENGTH) {
    throw new SessionConfigError(`the signing secret must be at least ${MIN_SECRET_LENGTH} characters, got ${first.length}; use e.g. 32 random bytes as hex`);
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

/**
 * Verify a cookie value. The shape and the id format are checked before any HMAC, so garbage costs
 * almost nothing; comparison is constant-time (cookie-signature uses `timingSafeEqual`).
 */
export function verify(value: string, secrets: readonly string[], validateId: (id: string) => boolean): Verified | null {
  const match = SIGNED.exec(value);
  if (!match) return null;
  const id = match[1]!;
  if (!validateId(id)) return null;
  for (let i = 0; i < secrets.length; i++) {
    if (signature.unsign(value, secrets[i]!) === id) return { id, secretIndex: i };
  }
  return null;
}
