import signature from "cookie-signature";
import { SessionConfigError } from "./errors.js";
import { Verifier, type Verified } from "./verifier.js";

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

export type { Verified } from "./verifier.js";

/** Verify one cookie value against `secrets`, without a cache (the manager keeps a {@link Verifier} of its own). */
export function verify(value: string, secrets: readonly string[], validateId: (id: string) => boolean): Verified | null {
  return new Verifier(secrets).verify(value, validateId);
}
