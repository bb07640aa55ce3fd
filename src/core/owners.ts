import { createHash } from "node:crypto";
import { SessionError } from "./errors.js";
import type { RecordMeta } from "./record.js";

/**
 * Revocation of an owner's sessions by a mark, and the pieces of the owner index protocol that keep
 * "log out everywhere" from being escaped (#19).
 *
 * The mark is one small record per owner, `revoked:<sha256(owner)>`, holding a time T (Unix ms):
 * every session whose owner was set before T is revoked. It lives in the session store itself,
 * through the ordinary store calls, so every store has it (Memcached included). It expires
 * `absoluteTimeout` after T: by then every session it could revoke is past its absolute deadline.
 */

/** Prefix of the text of a revocation mark. */
const MARK_PREFIX = "shared-session:revoked-before:";

/**
 * Value written in place of a missing record by the owner index's pruning, so that a login whose
 * record is still on its way (it indexed its id one round trip before writing) cannot land it after
 * its index entry is gone: its create-if-absent fails, and it draws another id. Never a valid record.
 */
export const PRUNED_RECORD = "shared-session:pruned\n";

/** {@link PRUNED_RECORD} for a session evicted by `maxSessionsPerOwner`: a login still writing it gives up instead of drawing another id. */
export const EVICTED_RECORD = "shared-session:evicted\n";

/** A placeholder, not a session. */
export function isPlaceholder(raw: string): boolean {
  return raw === PRUNED_RECORD || raw === EVICTED_RECORD;
}

/** The store key of `owner`'s revocation mark. Owner ids are not credentials: a plain hash keeps the key short and printable. */
export function revocationKey(owner: string): string {
  return `revoked:${createHash("sha256").update(owner).digest("base64url").slice(0, 32)}`;
}

/** The text of a mark revoking sessions owned before `before`. */
export function encodeMark(before: number): string {
  return `${MARK_PREFIX}${before}`;
}

/** The time a mark holds, or `null` for no mark (or text that is not one). */
export function decodeMark(raw: string | null): number | null {
  if (raw === null || !raw.startsWith(MARK_PREFIX)) return null;
  const t = Number(raw.slice(MARK_PREFIX.length));
  return Number.isSafeInteger(t) && t >= 0 ? t : null;
}

/** When the record's current owner was set (records written before `ownedAt` existed: their creation). */
export function ownedSince(meta: RecordMeta): number {
  return meta.ownedAt ?? meta.createdAt;
}

/** Whether a mark revokes the session `meta` describes. */
export function revokedBy(meta: RecordMeta, mark: number | null): boolean {
  return mark !== null && meta.owner !== undefined && ownedSince(meta) < mark;
}

/**
 * How long after its owner was set a session's loads check the owner's revocation mark on a store with
 * an owner index (ms). There "log out everywhere" deletes every indexed record and the login's own
 * write checks the mark once it landed, so only a write still in flight can escape the index: it is
 * caught by this check while it is young. At least 30 s, and ten store timeouts.
 */
export function revocationGraceMs(storeTimeoutMs: number): number {
  return Math.max(30_000, 10 * storeTimeoutMs);
}

/** What `maxSessionsPerOwner` does when a login would give an owner one session too many. */
export interface SessionLimit {
  /** Live sessions an owner may have, at least 1. */
  readonly limit: number;
  /**
   * `"evict-oldest"`: destroy the owner's sessions with the earliest absolute deadline (the oldest
   * logins) to make room. `"refuse"`: fail the write with {@link SessionLimitError}.
   */
  readonly onLimit: "evict-oldest" | "refuse";
}

/**
 * A write would give an owner more sessions than `maxSessionsPerOwner` allows (`onLimit: "refuse"`).
 * Nothing was written. Call `session.save()` in the login route to catch it there and answer with a page.
 */
export class SessionLimitError extends SessionError {
  readonly limit: number;
  constructor(limit: number) {
    super("ERR_SESSION_LIMIT", `the owner already has ${limit} live session${limit === 1 ? "" : "s"} (maxSessionsPerOwner with onLimit "refuse")`);
    this.limit = limit;
  }
}
