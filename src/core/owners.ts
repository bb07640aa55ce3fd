import { createHash } from "node:crypto";
import { SessionConfigError, SessionError, StoreUnavailableError } from "./errors.js";
import type { SessionEvents } from "./events.js";
import type { LoadedRecord } from "./codec.js";
import type { RecordMeta } from "./record.js";
import type { SessionStore } from "./store.js";

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
   * `"evict-least-active"`: destroy the owner's least recently active sessions to make room (activity
   * known to within `touchAfter`: see {@link activityDeadline}). `"refuse"`: fail the write with
   * {@link SessionLimitError}.
   */
  readonly onLimit: "evict-least-active" | "refuse";
}

/**
 * The owner index score of a session under `"evict-least-active"`: the latest its record can expire
 * unless it is refreshed again. A refresh (a write, at most once per `touchAfter` for an unchanged
 * session) sets it; reads in between extend the record's TTL (Redis's `GETEX`) but not the score, by at
 * most `touchAfter`, hence that margin, plus `slackMs` for the write itself landing after `now` (the
 * store timeout). Never past the absolute deadline. Sessions of one lifetime rank by their last
 * refresh: the lowest score is the least recently active, to within `touchAfter`. Times in Unix ms,
 * durations in seconds.
 */
export function activityDeadline(meta: RecordMeta, now: number, idleTimeout: number, touchAfter: number, slackMs = 0): number {
  return Math.min(meta.expiresAt, now + (Math.max(meta.lifetime ?? 0, idleTimeout) + touchAfter) * 1000 + slackMs);
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

/** What {@link OwnerStoreOps} needs of the manager. */
export interface OwnerStoreContext {
  readonly store: SessionStore;
  /** The manager's store call: bounded in time, traced, errors turned into `StoreUnavailableError`. */
  call<T>(operation: string, key: string | undefined, run: () => Promise<T>): Promise<T>;
  emit<E extends "expired" | "revoked" | "evicted">(event: E, payload: SessionEvents[E]): void;
  log(message: string): void;
  /** The hash of a store key, as events show it. */
  hash(key: string): string;
  decode(raw: string, now: number, key: string): LoadedRecord | null;
  /** Seconds. */
  readonly absoluteTimeout: number;
  readonly retryAfter: number;
  /** Seconds (the manager's options): the `"evict-least-active"` index score. */
  readonly idleTimeout: number;
  readonly touchAfter: number;
  /** The manager's store timeout (ms): how long after it was sent a write may still land. */
  readonly storeTimeoutMs: number;
  /** The manager's checked `maxSessionsPerOwner`. */
  readonly limit: SessionLimit | undefined;
}

/** Writes of one revocation mark that may conflict before giving up. */
const MARK_ATTEMPTS = 100;
/** Placeholder writes per evicted session (update, then create, again if the record came and went). */
const EVICT_ATTEMPTS = 3;

/**
 * The store side of sessions per owner, through the manager's store calls: revocation marks, pruning
 * behind placeholders, and the capped index. The manager decides when; this says how.
 */
export class OwnerStoreOps {
  readonly #c: OwnerStoreContext;

  constructor(context: OwnerStoreContext) {
    this.#c = context;
  }

  /** Raise `owner`'s revocation mark to `before` (never lower it), for `absoluteTimeout` past it. */
  async setMark(owner: string, before: number): Promise<void> {
    const { store, call } = this.#c;
    const key = revocationKey(owner);
    const text = encodeMark(before);
    const ttl = Math.max(1, Math.ceil((before - Date.now()) / 1000) + this.#c.absoluteTimeout);
    for (let attempt = 0; attempt < MARK_ATTEMPTS; attempt++) {
      if (await call("create", key, () => store.create(key, text, ttl))) return;
      const current = await call("get", key, () => store.get(key));
      if (current === null) continue;
      const mark = decodeMark(current);
      if (mark !== null && mark >= before) return;
      if (store.capabilities.compareAndSet) {
        const result = await call("compareAndSet", key, () => store.compareAndSet!(key, current, text, ttl));
        if (result.status === "written") return;
      } else if (await call("update", key, () => store.update(key, text, ttl))) {
        // Without compare-and-set two revocations racing may leave the earlier mark: each still revoked what it named at its own read.
        return;
      }
    }
    throw new StoreUnavailableError(store.name, "revoke", {
      cause: new SessionError("ERR_SESSION_CONTENTION", `gave up after ${MARK_ATTEMPTS} conflicting writes of one revocation mark`),
      retryAfter: this.#c.retryAfter,
    });
  }

  /** The owner's revocation mark, or `null`. */
  async markOf(owner: string): Promise<number | null> {
    const key = revocationKey(owner);
    return decodeMark(await this.#c.call("get", key, () => this.#c.store.get(key)));
  }

  /** Read the mark of the record's owner; when it revokes the record, delete the record and report it. */
  async revokedNow(meta: RecordMeta, key: string): Promise<boolean> {
    const owner = meta.owner;
    if (owner === undefined || !revokedBy(meta, await this.markOf(owner))) return false;
    const { store, call } = this.#c;
    await call("destroy", key, () => store.destroy(key)).catch(() => undefined);
    if (store.owners !== undefined && store.capabilities.ownerIndex) await call("owners.remove", key, () => store.owners!.remove(owner, key)).catch(() => undefined);
    this.#c.log("session's owner had its sessions revoked after it was issued; starting a fresh session");
    this.#c.emit("revoked", { session: this.#c.hash(key), owner });
    return true;
  }

  /** Whether the index orders an owner's sessions by activity (`"evict-least-active"`): scores move on refresh. */
  get activityScored(): boolean {
    return this.#c.limit?.onLimit === "evict-least-active";
  }

  /** The owner index score of a session written at `now`: its activity deadline when scores follow activity, else its absolute deadline. */
  score(meta: RecordMeta, now: number): number {
    return this.activityScored ? activityDeadline(meta, now, this.#c.idleTimeout, this.#c.touchAfter, this.#c.storeTimeoutMs) : meta.expiresAt;
  }

  /**
   * Whether a read of an owned session on a store that refreshes TTLs on read must still rewrite it,
   * so that its index score follows its activity: once per `touchAfter`, only with `"evict-least-active"`.
   */
  refreshDue(meta: RecordMeta, now: number): boolean {
    return this.activityScored && meta.owner !== undefined && now - meta.writtenAt >= this.#c.touchAfter * 1000;
  }

  /**
   * Re-score the index entry of a session being rewritten (same owner) to its activity deadline, sent
   * together with the record's write; `undefined` when scores do not follow activity (nothing sent).
   * Never adds an entry: a session evicted or destroyed meanwhile stays out.
   */
  touchEntry(meta: RecordMeta, key: string, now: number): Promise<void> | undefined {
    const owner = meta.owner;
    const index = this.#c.store.owners;
    if (!this.activityScored || owner === undefined || index?.touch === undefined) return undefined;
    const score = this.score(meta, now);
    return this.#c.call("owners.touch", key, () => index.touch!(owner, key, score));
  }

  /**
   * After a write whose re-score was computed at `sentAt` landed: when it merged with another write
   * (so wrote a later `writtenAt`) or took longer than the score's slack (queued behind other writes of
   * the session), re-score from now, so that the entry's deadline stays at or after the latest the
   * record can expire. Rare: nothing is sent otherwise.
   */
  touchLater(meta: RecordMeta, key: string, sentAt: number): Promise<void> | undefined {
    if (!this.activityScored) return undefined;
    const now = Date.now();
    return meta.writtenAt > sentAt || now - sentAt > this.#c.storeTimeoutMs ? this.touchEntry(meta, key, now) : undefined;
  }

  /** A decoded record that is a live session, or `null` (missing, placeholder, corrupt, past its deadline). */
  live(raw: string | null, now: number, key: string): LoadedRecord | null {
    if (raw === null || isPlaceholder(raw)) return null;
    const decoded = this.#c.decode(raw, now, key);
    return decoded === null || decoded.meta.expiresAt <= now ? null : decoded;
  }

  /**
   * Remove the index entry of a session that is no longer live. When its record is missing, first take
   * its key with a placeholder until the entry's deadline: a login that indexed it and is still writing
   * the record then fails its create-if-absent (and draws another id) instead of landing unindexed.
   */
  async pruneEntry(owner: string, key: string, raw: string | null, expiresAt: number): Promise<void> {
    const { store, call } = this.#c;
    const now = Date.now();
    if (raw === null) {
      const ttl = Math.ceil((expiresAt - now) / 1000);
      if (ttl > 0 && !(await call("create", key, () => store.create(key, PRUNED_RECORD, ttl)))) return; // it landed: keep the entry
      // Audit: its idle TTL ran out (the store removed it; a destroy would have removed the entry too).
      this.#c.emit("expired", { session: this.#c.hash(key), owner, reason: ttl > 0 ? "idle" : "absolute" });
    } else if (!isPlaceholder(raw)) {
      const decoded = this.#c.decode(raw, now, key);
      if (decoded !== null && decoded.meta.expiresAt <= now) this.#c.emit("expired", { session: this.#c.hash(key), owner, reason: "absolute" });
    }
    await call("owners.remove", key, () => store.owners!.remove(owner, key));
  }

  /**
   * `maxSessionsPerOwner`: one atomic capped add on the owner's index. Refused: prune the owner's dead
   * entries (an idle-expired session still counts until pruned) and try once more. Evicted entries:
   * their records are replaced by a placeholder, which also stops a login still writing one of them.
   */
  async indexCapped(limit: SessionLimit, owner: string, key: string, expiresAt: number): Promise<void> {
    const { store, call } = this.#c;
    const index = store.owners!;
    const add = () => call("owners.add", key, () => index.addCapped!(owner, key, expiresAt, limit.limit, limit.onLimit));
    let result = await add();
    if (!result.added) {
      const entries = await call("owners.entries", undefined, () => index.entries(owner));
      const now = Date.now();
      await Promise.all(
        entries.map(async (entry) => {
          const raw = await call("get", entry.id, () => store.get(entry.id));
          if (this.live(raw, now, entry.id) === null) await this.pruneEntry(owner, entry.id, raw, entry.expiresAt);
        }),
      );
      result = await add();
      if (!result.added) throw new SessionLimitError(limit.limit);
    }
    const ttl = Math.max(1, this.#c.absoluteTimeout);
    for (const evicted of result.evicted) {
      for (let attempt = 0; attempt < EVICT_ATTEMPTS; attempt++) {
        if (await call("update", evicted, () => store.update(evicted, EVICTED_RECORD, ttl))) break;
        if (await call("create", evicted, () => store.create(evicted, EVICTED_RECORD, ttl))) break;
      }
      this.#c.emit("evicted", { session: this.#c.hash(evicted), owner });
    }
  }
}

/** `maxSessionsPerOwner`, checked at construction. */
export function checkLimit(limit: SessionLimit | undefined, hasOwner: boolean, store: SessionStore): SessionLimit | undefined {
  if (limit === undefined) return undefined;
  if (typeof limit !== "object" || limit === null || !Number.isSafeInteger(limit.limit) || limit.limit < 1) {
    throw new SessionConfigError('maxSessionsPerOwner must be { limit: a whole number >= 1, onLimit: "evict-least-active" | "refuse" }');
  }
  if ((limit.onLimit as string) === "evict-oldest") {
    throw new SessionConfigError('maxSessionsPerOwner.onLimit "evict-oldest" is now "evict-least-active": it evicts the least recently active sessions, not the oldest logins');
  }
  if (limit.onLimit !== "evict-least-active" && limit.onLimit !== "refuse") {
    throw new SessionConfigError(`maxSessionsPerOwner.onLimit must be "evict-least-active" or "refuse", got ${JSON.stringify(limit.onLimit)}`);
  }
  if (!hasOwner) throw new SessionConfigError("maxSessionsPerOwner needs the owner option (which owner a session belongs to)");
  if (!store.capabilities.ownerIndex || typeof store.owners?.addCapped !== "function") {
    throw new SessionConfigError(
      `${store.name} cannot count an owner's sessions atomically (no owner index with addCapped), so maxSessionsPerOwner cannot be enforced; use RedisStore`,
    );
  }
  if (limit.onLimit === "evict-least-active" && typeof store.owners?.touch !== "function") {
    throw new SessionConfigError(`${store.name} cannot re-score an owner's index entries (no owners.touch), so "evict-least-active" cannot know activity; use "refuse" or RedisStore`);
  }
  return { limit: limit.limit, onLimit: limit.onLimit };
}

/** `write`'s result once `touched` (the index re-score sent with it, when any) settled too; either failing rejects. */
export function withTouch<T>(write: Promise<T>, touched: Promise<void> | undefined): Promise<T> {
  return touched === undefined ? write : Promise.all([write, touched]).then(([result]) => result);
}
