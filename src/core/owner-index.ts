import type { Engine, State } from "./engine.js";
import { SessionConfigError, UnsupportedOperationError } from "./errors.js";
import { hashId } from "./events.js";
import type { Data } from "./options.js";
import { ownedSince } from "./owners.js";
import type { RecordMeta } from "./record.js";
import { clearData, stateOf } from "./session-object.js";
import type { SessionStore } from "./store.js";
import { write } from "./write.js";

// Sessions per owner, as the manager uses them: which owner a write names, the owner index kept in
// step with the records (entry before record, removal after), revocation checks at load and after a
// login's write, and the public owner operations ("log out everywhere", listings). The store side
// (marks, placeholders, the capped index) is owners.ts.

/** One live session of an owner, as {@link SessionManager.listSessions} reports it. */
export interface OwnerSession {
  /** The session's hash, {@link SessionManager.hashOf} (the id itself is a credential and never leaves the manager). */
  readonly session: string;
  /** Unix ms. */
  readonly createdAt: number;
  /** Unix ms of the last request that used it, to the second where the store reports TTLs, else of the last write. */
  readonly lastActiveAt: number;
  /** Unix ms of the absolute deadline. */
  readonly expiresAt: number;
  /** The session passed as `current`. */
  readonly current: boolean;
  /** What `ownerMetadata` returned for it. */
  readonly metadata: Record<string, string | number | boolean | null> | undefined;
}

/** Longest owner id (characters) the `owner` option may return: stores index by it. */
const MAX_OWNER_LENGTH = 1024;

function noop(): void {}

/** The owner the data names now, as a string, or undefined. */
export function ownerOf(engine: Engine, data: Data): string | undefined {
  const owner = engine.config.owner?.(data);
  if (owner === null || owner === undefined || owner === "") return undefined;
  const key = String(owner);
  if (key.length > MAX_OWNER_LENGTH) {
    throw new RangeError(`[shared-session] the owner option returned an owner id of ${key.length} characters; owner ids are at most ${MAX_OWNER_LENGTH}`);
  }
  return key;
}

/** Index `id` under its new owner before the record names it (an entry without a record is pruned later; the reverse would hide a session from "log out everywhere"). */
export async function indexOwner(engine: Engine, id: string, owner: string | undefined, meta: RecordMeta): Promise<void> {
  if (owner === undefined || !engine.config.indexed) return;
  const expiresAt = engine.owners.score(meta, Date.now());
  const key = engine.keyOf(id);
  const limit = engine.config.limit;
  if (limit !== undefined) return engine.owners.indexCapped(limit, owner, key, expiresAt);
  await engine.call("owners.add", key, () => engine.store.owners!.add(owner, key, expiresAt));
}

/** Drop `id` from a previous owner's index after the record stopped naming it. */
export async function unindexOwner(engine: Engine, id: string, previous: string | undefined, now: string | undefined): Promise<void> {
  if (previous === undefined || previous === now || !engine.config.indexed) return;
  const key = engine.keyOf(id);
  await engine.call("owners.remove", key, () => engine.store.owners!.remove(previous, key));
}

/** Whether a load must read the owner's mark: always on a store without an owner index, while the owner is recent on one with it. */
export function checksMark(engine: Engine, meta: RecordMeta, now: number): boolean {
  const { owner, indexed, revocationGraceMs } = engine.config;
  return owner !== undefined && meta.owner !== undefined && (!indexed || now - ownedSince(meta) < revocationGraceMs);
}

/**
 * After a write that gave the session a new owner landed: read that owner's mark, and if it revokes
 * the session (a "log out everywhere" raced this login), delete it again and continue without it.
 * Returns whether the session is still written.
 */
export async function ownerChecked(session: Data, state: State, previous: string | undefined, wrote: boolean): Promise<boolean> {
  const engine = state.engine;
  if (!wrote || engine.config.owner === undefined || !state.persisted || state.id === null) return wrote;
  const owner = state.meta.owner;
  if (owner === undefined || owner === previous) return wrote;
  if (!(await engine.owners.revokedNow(state.meta, engine.keyOf(state.id)))) return wrote;
  clearData(session);
  engine.continueWithoutRecord(state);
  return false;
}

/** The store's owner index, for an operation that needs it; throws when there is none (or no `owner` option). */
function ownerIndex(engine: Engine, operation: string): NonNullable<SessionStore["owners"]> {
  if (!engine.config.indexed) throw new UnsupportedOperationError(engine.store.name, operation, "an owner index");
  if (engine.config.owner === undefined) throw new SessionConfigError(`cannot ${operation}: the owner option is not set`);
  return engine.store.owners!;
}

/** {@link SessionManager.listSessions}. */
export async function listSessions(engine: Engine, owner: string | number, current: object | undefined): Promise<OwnerSession[]> {
  const index = ownerIndex(engine, "list an owner's sessions");
  const { store, call, config } = engine;
  const key = String(owner);
  const currentId = current !== undefined ? stateOf(current).id : null;
  const entries = await call("owners.entries", undefined, () => index.entries(key));
  const now = Date.now();
  const found = await Promise.all(
    entries.map(async ({ id, expiresAt }) => {
      const [raw, ttl] = await Promise.all([call("get", id, () => store.get(id)), store.ttl ? call("ttl", id, () => store.ttl!(id)) : Promise.resolve(null)]);
      const decoded = engine.owners.live(raw, now, id);
      if (decoded === null) {
        await engine.owners.pruneEntry(key, id, raw, expiresAt).catch(noop);
        return null;
      }
      // Owned by no one or someone else: perhaps a write claiming it for `key` is on its way, and that
      // writer fixes the index itself. Not listed, not pruned.
      if (decoded.meta.owner !== key) return null;
      const inferred = ttl === null ? 0 : now - (config.idleTimeout - ttl) * 1000;
      const session: OwnerSession = {
        session: hashId(id),
        createdAt: decoded.meta.createdAt,
        lastActiveAt: Math.min(now, Math.max(decoded.meta.writtenAt, inferred)),
        expiresAt: decoded.meta.expiresAt,
        current: currentId !== null && id === engine.keyOf(currentId),
        metadata: config.ownerMetadata?.(decoded.data),
      };
      return session;
    }),
  );
  return found.filter((s): s is OwnerSession => s !== null).sort((a, b) => a.createdAt - b.createdAt);
}

/** {@link SessionManager.destroyOwnerSessions}. */
export function destroyOwnerSessions(engine: Engine, owner: string | number, except: object | undefined): Promise<number> {
  ownerIndex(engine, "destroy an owner's sessions");
  // +1: a session owned in this very millisecond is revoked too.
  return revoke(engine, String(owner), { before: Date.now() + 1, except, readEach: false });
}

/** {@link SessionManager.revokeOwnerSessions}. */
export function revokeOwnerSessions(engine: Engine, owner: string | number, given: number | undefined, except: object | undefined): Promise<number> {
  if (engine.config.owner === undefined) throw new SessionConfigError("cannot revoke an owner's sessions: the owner option is not set");
  const before = given ?? Date.now() + 1;
  if (!Number.isSafeInteger(before) || before < 0) throw new RangeError(`[shared-session] before must be a Unix time in milliseconds, got ${String(before)}`);
  // Up to now: every indexed session is owned before; an earlier time: each record is read to compare.
  return revoke(engine, String(owner), { before, except, readEach: given !== undefined });
}

/** {@link SessionManager.destroyOwnerSession}. */
export async function destroyOwnerSession(engine: Engine, owner: string | number, sessionHash: string): Promise<boolean> {
  const index = ownerIndex(engine, "destroy an owner's session");
  const { store, call } = engine;
  const key = String(owner);
  const entries = await call("owners.entries", undefined, () => index.entries(key));
  const entry = entries.find(({ id }) => hashId(id) === sessionHash);
  if (entry === undefined) return false;
  await call("destroy", entry.id, () => store.destroy(entry.id));
  await call("owners.remove", entry.id, () => index.remove(key, entry.id));
  engine.events.emit("destroyed", { session: sessionHash });
  return true;
}

/**
 * The order that makes revocation hold under any interleaving: (1) move `except` past `before`,
 * (2) set the mark, (3) only then read the index and destroy. A login's record either landed before
 * (3) read the index (its entry is written before its record: destroyed here), or its own write
 * reads the mark after landing (see ownerChecked) and finds (2).
 */
async function revoke(engine: Engine, owner: string, { before, except, readEach }: { before: number; except: object | undefined; readEach: boolean }): Promise<number> {
  const { store, call } = engine;
  const keep = except === undefined ? null : stateOf(except);
  if (keep !== null && keep.persisted && keep.id !== null && keep.meta.owner === owner) {
    keep.meta = { ...keep.meta, ownedAt: Math.max(before, ownedSince(keep.meta)) };
    keep.rewrite = true;
    await write(except as Data, keep, { saveCalled: true });
  }
  await engine.owners.setMark(owner, before);
  if (!engine.config.indexed) return 0;
  const index = store.owners!;
  const keepKey = keep === null || keep.id === null ? null : engine.keyOf(keep.id);
  const entries = await call("owners.entries", undefined, () => index.entries(owner));
  let destroyed = 0;
  await Promise.all(
    entries
      .filter(({ id }) => id !== keepKey)
      .map(async ({ id }) => {
        if (readEach) {
          // Only the sessions owned before `before`: read each.
          const raw = await call("get", id, () => store.get(id));
          const decoded = engine.owners.live(raw, Date.now(), id);
          if (decoded === null || decoded.meta.owner !== owner || ownedSince(decoded.meta) >= before) return;
        }
        await call("destroy", id, () => store.destroy(id));
        await call("owners.remove", id, () => index.remove(owner, id));
        engine.events.emit("destroyed", { session: hashId(id) });
        destroyed++;
      }),
  );
  return destroyed;
}
