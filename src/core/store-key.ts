import { createHmac } from "node:crypto";
import { SessionConfigError } from "./errors.js";

/** Characters of base64url kept from the HMAC: 192 bits. */
const KEY_CHARACTERS = 32;

/**
 * The function from a session id to the key its record is stored under: HMAC-SHA256 of the id,
 * 32 base64url characters (192 bits). Whoever reads the store's keys (`SCAN`, `MONITOR`, the slowlog,
 * a backup) holds no live session id, and cannot test a guessed id without the secret.
 *
 * The HMAC key is derived from `secret` (never used as it is, so the same string can also sign cookies).
 */
export function storeKeys(secret: string): (id: string) => string {
  if (typeof secret !== "string" || secret.length === 0) throw new SessionConfigError("storeKeySecret must be a non-empty string");
  const key = createHmac("sha256", secret).update("shared-session store key").digest();
  // No id → key cache: it would keep live session ids in the heap after their requests (one HMAC per use is cheap; see bench/).
  return (id) => createHmac("sha256", key).update(id).digest("base64url").slice(0, KEY_CHARACTERS);
}
