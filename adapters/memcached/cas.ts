/**
 * CAS tokens as record versions. memcached hands out an 8-byte CAS token with every item; the store
 * passes it to the core as the record's version (16 hex digits) and, on a compare-and-set, back to
 * the server in the `replace` request's header. A zero token means "none": a `replace` carrying it
 * would be unconditional, so it is never a version.
 */

/**
 * Rounds of get + CAS-replace one `compareAndSet` call makes when the item's CAS token changed but its
 * value still equals `expected` (someone rewrote the same bytes in between). After that the call
 * reports a conflict and the session manager's own bounded retry takes over.
 */
export const CAS_ROUNDS = 10;

/** Byte offset of the CAS token in a request header (bytes 16-23; memjs leaves them zero). */
export const CAS_TOKEN_OFFSET = 16;

const CAS_VERSION = /^[0-9a-f]{16}$/;
const ZERO_CAS_VERSION = /^0{16}$/;

/** A CAS token from a response header as a record version: 16 hex digits, or none for a zero or missing token. */
export function casVersion(token: Buffer | undefined): string | undefined {
  return token !== undefined && token.length === 8 && !token.every((byte) => byte === 0) ? token.toString("hex") : undefined;
}

/** A version back to the CAS token it came from; `undefined` for anything that is not one. */
export function casToken(version: string): Buffer | undefined {
  return CAS_VERSION.test(version) && !ZERO_CAS_VERSION.test(version) ? Buffer.from(version, "hex") : undefined;
}
