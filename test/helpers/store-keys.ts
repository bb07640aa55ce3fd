import { createSessionManager } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";

/**
 * The function from a session id to the key a manager configured with `secret` stores its record
 * under (records are keyed by a keyed hash of the id; the HMAC key comes from the last secret).
 */
export function storeKeysFor(secret: string | readonly string[]): (id: string) => string {
  const manager = createSessionManager({ store: new MemoryStore({ quiet: true }), secret });
  return (id) => manager.storeKeyOf(id);
}

/** The secret the example apps sign with when `SESSION_SECRET` is unset (examples/shared.mjs). */
export const EXAMPLES_SECRET = "example-secret-change-me-it-must-be-32+chars";
