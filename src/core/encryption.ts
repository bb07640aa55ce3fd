import { createCipheriv, createDecipheriv, createHash, randomFillSync } from "node:crypto";
import { SessionConfigError } from "./errors.js";
import type { Codec, LoadedRecord } from "./codec.js";
import { decodeRecord, encodeRecord, parseData, type Serializer } from "./record.js";

/**
 * Encryption at rest of session data (`encryption` option). The record's metadata line stays
 * readable (and authenticated); the data after it is AES-256-GCM ciphertext.
 */
export interface EncryptionOptions {
  /**
   * 32-byte keys, each a `Buffer`/`Uint8Array`, 64 hex digits, or base64 / base64url. The first
   * encrypts; every one decrypts, so a key is rotated by putting the new one first. A record read
   * under another key than the first is rewritten under the first by the request that reads it.
   *
   * @example
   * // openssl rand -base64 32
   * encryption: { keys: [process.env.SESSION_KEY!, process.env.SESSION_KEY_OLD!].filter(Boolean) }
   */
  keys: readonly (string | Uint8Array)[];
}

/** What the data line of an encrypted record starts with (not JSON: a reader without the key sees a corrupt record). */
export const SEALED_PREFIX = "enc1:";
const KEY_ID_BYTES = 4;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = KEY_ID_BYTES + IV_BYTES + TAG_BYTES;
/** Random bytes drawn at once for nonces: one `randomFillSync` per 256 records, not one per record. */
const NONCE_POOL = IV_BYTES * 256;

interface Key {
  readonly secret: Buffer;
  /** Names the key inside a record: 4 bytes of a hash of it (says nothing about the key). */
  readonly id: Buffer;
}

function keyBytes(value: unknown, index: number): Buffer {
  if (value instanceof Uint8Array) {
    if (value.length !== 32) throw new SessionConfigError(`encryption.keys[${index}] must be 32 bytes, got ${value.length}`);
    return Buffer.from(value);
  }
  if (typeof value !== "string") throw new SessionConfigError(`encryption.keys[${index}] must be a Buffer or a string (hex or base64), got ${typeof value}`);
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, "hex");
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(value)) {
    const bytes = Buffer.from(value, "base64");
    if (bytes.length === 32) return bytes;
  }
  // The message never repeats the value: it is a secret.
  throw new SessionConfigError(
    `encryption.keys[${index}] must be 32 bytes: 64 hex digits or 43-44 base64 characters (e.g. \`openssl rand -base64 32\`), got a string of ${value.length} characters`,
  );
}

/** AES-256-GCM under a list of keys; text in, base64url text out. */
export class RecordCipher {
  readonly #keys: readonly Key[];
  #pool = Buffer.alloc(0);
  #poolAt = 0;

  constructor(options: EncryptionOptions) {
    if (typeof options !== "object" || options === null || !Array.isArray(options.keys) || options.keys.length === 0) {
      throw new SessionConfigError("encryption needs { keys: [key, ...olderKeys] }, each key 32 bytes");
    }
    const keys = options.keys.map((value, i) => {
      const secret = keyBytes(value, i);
      return { secret, id: createHash("sha256").update("shared-session record key\n").update(secret).digest().subarray(0, KEY_ID_BYTES) };
    });
    const ids = new Set(keys.map((k) => k.id.toString("hex")));
    if (ids.size !== keys.length) throw new SessionConfigError("encryption.keys holds the same key twice");
    this.#keys = keys;
  }

  #nonce(): Buffer {
    if (this.#poolAt + IV_BYTES > this.#pool.length) {
      this.#pool = randomFillSync(Buffer.allocUnsafe(NONCE_POOL));
      this.#poolAt = 0;
    }
    // A copy: the cipher must not see the pool change under it.
    const nonce = Buffer.from(this.#pool.subarray(this.#poolAt, this.#poolAt + IV_BYTES));
    this.#poolAt += IV_BYTES;
    return nonce;
  }

  /** Encrypt `text` under the first key, bound to `aad`. */
  seal(text: string, aad: string): string {
    const key = this.#keys[0]!;
    const iv = this.#nonce();
    const cipher = createCipheriv("aes-256-gcm", key.secret, iv);
    cipher.setAAD(Buffer.from(aad));
    const body = Buffer.concat([cipher.update(text, "utf8"), cipher.final()]);
    return SEALED_PREFIX + Buffer.concat([key.id, iv, cipher.getAuthTag(), body]).toString("base64url");
  }

  /** Decrypt what {@link seal} made with the same `aad`; `null` for anything else. Never throws. */
  open(sealed: string, aad: string): { text: string; stale: boolean } | null {
    if (!sealed.startsWith(SEALED_PREFIX)) return null;
    const bytes = Buffer.from(sealed.slice(SEALED_PREFIX.length), "base64url");
    if (bytes.length < HEADER_BYTES) return null;
    const index = this.#keys.findIndex((k) => k.id.equals(bytes.subarray(0, KEY_ID_BYTES)));
    if (index === -1) return null;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.#keys[index]!.secret, bytes.subarray(KEY_ID_BYTES, KEY_ID_BYTES + IV_BYTES));
      decipher.setAAD(Buffer.from(aad));
      decipher.setAuthTag(bytes.subarray(KEY_ID_BYTES + IV_BYTES, HEADER_BYTES));
      const text = Buffer.concat([decipher.update(bytes.subarray(HEADER_BYTES)), decipher.final()]).toString("utf8");
      return { text, stale: index > 0 };
    } catch {
      return null;
    }
  }
}

/**
 * The native record with its data encrypted: `<metadata line>\nenc1:<base64url>`. The additional
 * authenticated data is the record's store key and its metadata line, so a record copied under
 * another key, or with its deadline edited, does not decrypt (it reads as corrupt).
 */
export function encryptedCodec(native: Codec, cipher: RecordCipher, serializer: Serializer): Codec {
  return {
    readCookie: (value) => native.readCookie(value),
    writeCookie: (id) => native.writeCookie(id),
    decode(raw, _now, key): LoadedRecord | null {
      const decoded = decodeRecord(raw);
      if (decoded === null) return null;
      const opened = cipher.open(decoded.dataText, `${key}\n${raw.slice(0, raw.indexOf("\n"))}`);
      const data = opened && parseData(serializer, opened.text);
      return opened && data ? { meta: decoded.meta, dataText: opened.text, data, legacy: false, reseal: opened.stale } : null;
    },
    encode(meta, dataText, _data, _secure, key) {
      const head = encodeRecord(meta, "");
      return head + cipher.seal(dataText, `${key}\n${head.slice(0, -1)}`);
    },
  };
}
