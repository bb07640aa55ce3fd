import { randomFillSync } from "node:crypto";
import { TAG_LENGTH } from "./lua.js";

/**
 * Version tags of RedisStore: a record in shared-session's own format is stored as
 * `<tag><record>`, where the tag is `~` and 11 base64url characters (64 random bits), drawn anew on
 * every write. A compare-and-set then compares the tag the request read with the one stored (12
 * bytes) instead of sending and comparing the whole record it expects.
 *
 * Records in any other layout (express-session's JSON, which connect-redis must be able to read
 * during a migration) are stored exactly as given and compared whole. Reads accept both: a value is
 * tagged when it starts with a well-formed tag, which no record does (records start with `{`).
 */

const TAG = /^~[A-Za-z0-9_-]{11}$/;
/** 64 random bits per tag, drawn in batches: one `randomFillSync` per 512 writes. */
const BATCH = 512;
const pool = Buffer.alloc(8 * BATCH);
let next = BATCH;

/** A fresh version tag. */
export function newTag(): string {
  if (next === BATCH) {
    randomFillSync(pool);
    next = 0;
  }
  const start = 8 * next++;
  return `~${pool.toString("base64url", start, start + 8)}`;
}

/** Whether `version` is a tag this store could have made (anything else is ignored, never trusted). */
export function isTag(version: unknown): version is string {
  return typeof version === "string" && version.length === TAG_LENGTH && TAG.test(version);
}

/**
 * Whether a record is in shared-session's own format (`{"v":…}` metadata line first): only those
 * are tagged, so that records written for express-session keep connect-redis's exact layout.
 */
export function isTaggable(record: string): boolean {
  return record.startsWith('{"v":');
}

/** The tag a stored value starts with, or `undefined` for an untagged value. */
export function tagOf(value: string): string | undefined {
  if (value.charCodeAt(0) !== 126 /* ~ */ || value.length < TAG_LENGTH) return undefined;
  const tag = value.slice(0, TAG_LENGTH);
  return TAG.test(tag) ? tag : undefined;
}

/** A stored value without its tag: the record as the core wrote it. */
export function untagged(value: string): string {
  return tagOf(value) === undefined ? value : value.slice(TAG_LENGTH);
}
