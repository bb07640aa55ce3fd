import type { SessionLogger } from "./types.js";

/**
 * What a store says it can do. The core asks, and degrades cleanly where a capability is absent;
 * a store never fakes one.
 */
export interface StoreCapabilities {
  /** `get(id, ttl)` reads and resets the TTL in one round trip (Redis `GETEX`, memcached `gat`). */
  readonly refreshOnGet: boolean;
  /** `list()` enumerates the ids this store holds. */
  readonly list: boolean;
  /** `compareAndSet()` is implemented: an atomic write conditioned on the current record. */
  readonly compareAndSet: boolean;
  /** `owners` is implemented: an index from an owner id to that owner's sessions. */
  readonly ownerIndex: boolean;
}

/**
 * Outcome of {@link SessionStore.compareAndSet}. A store that versions its records (see
 * {@link SessionStore.getVersioned}) may add the `version` of the record now stored (`written`) or of
 * `current` (`conflict`), so that the next compare-and-set of this request can use it.
 */
export type CompareAndSetResult =
  | { readonly status: "written"; readonly version?: string }
  | { readonly status: "missing" }
  | { readonly status: "conflict"; readonly current: string; readonly version?: string };

/** A record with the version the store gave it, from {@link SessionStore.getVersioned}. */
export interface VersionedRecord {
  readonly record: string;
  /** Changes whenever the record is written (memcached's CAS token); absent when the server keeps none. */
  readonly version?: string;
}

/** One session of an owner, as an owner index keeps it. */
export interface OwnerEntry {
  readonly id: string;
  /** Unix time in milliseconds after which the entry is stale. */
  readonly expiresAt: number;
}

/** Index from an owner id (such as a user id) to the ids of that owner's sessions. */
export interface OwnerIndex {
  /** Record that `id` belongs to `owner` until `expiresAt` (Unix ms). */
  add(owner: string, id: string, expiresAt: number): Promise<void>;
  /** Forget `id` under `owner`. */
  remove(owner: string, id: string): Promise<void>;
  /** The live entries of `owner`; stale entries are pruned, not returned. */
  entries(owner: string): Promise<OwnerEntry[]>;
  /**
   * Optional: {@link add}, atomically capped at `limit` live entries (needed by the manager's
   * `maxSessionsPerOwner`). When adding `id` would make more than `limit`, `"refuse"` adds nothing and
   * resolves `added: false`; `"evict-least-active"` first removes the entries with the earliest deadlines
   * (the manager keeps activity deadlines in the index under this policy: see {@link touch}) and names
   * them in `evicted`. An `id` already present is re-scored, never refused. No interleaving of calls may
   * leave more than `limit` live entries.
   */
  addCapped?(owner: string, id: string, expiresAt: number, limit: number, policy: "refuse" | "evict-least-active"): Promise<OwnerAddResult>;
  /**
   * Optional: move the deadline of `id`'s entry under `owner` to `expiresAt` when that is later; an
   * absent entry is not added, a later deadline never lowered. The index must not expire before its
   * latest deadline. Needed by `maxSessionsPerOwner` with `"evict-least-active"`, which re-scores a
   * session's entry when it refreshes the session (at most once per `touchAfter`), so that the earliest
   * deadlines are the least recently active sessions.
   */
  touch?(owner: string, id: string, expiresAt: number): Promise<void>;
}

/** Outcome of {@link OwnerIndex.addCapped}. */
export interface OwnerAddResult {
  readonly added: boolean;
  /** Entries removed to make room (`"evict-least-active"`). */
  readonly evicted: readonly string[];
}

/**
 * A backend that holds session records. Records are opaque strings produced by the core;
 * TTLs are whole seconds (always >= 1). Every method resolves or rejects; the core bounds each
 * call in time, so a store need not, though a store with a client that can hang should.
 *
 * Prove an implementation with `runStoreConformance` from `shared-session/testing/conformance`.
 */
export interface SessionStore {
  /** Name used in errors and logs, such as `RedisStore`. */
  readonly name: string;
  readonly capabilities: StoreCapabilities;
  /**
   * Seconds within which every call of this store settles (resolves or rejects) whatever its server
   * does, when the store bounds its own calls (RedisStore and MemcachedStore do). When it is set and
   * not above the manager's `storeTimeout`, the manager relies on it and arms no timer of its own:
   * one timer and one promise less per store call. Leave it unset unless every call is bounded.
   */
  readonly timeout?: number;
  /**
   * The record stored under `id`, or `null`. With `ttl` (only passed when `capabilities.refreshOnGet`),
   * the record's TTL is reset to `ttl` seconds in the same operation.
   */
  get(id: string, ttl?: number): Promise<string | null>;
  /**
   * Optional: {@link get} that also returns the record's version, a token the store changes on
   * every write of the record (memcached's CAS token). The core then reads through this method and
   * hands the version back to {@link compareAndSet} with the record it came with, which lets a
   * store write conditionally in one round trip instead of reading the record again first.
   */
  getVersioned?(id: string, ttl?: number): Promise<VersionedRecord | null>;
  /** Store `record` under `id` only if `id` is absent. Resolves `false` (and writes nothing) if it exists. */
  create(id: string, record: string, ttl: number): Promise<boolean>;
  /** Replace the record under `id` only if `id` exists. Resolves `false` (and writes nothing) if it does not. */
  update(id: string, record: string, ttl: number): Promise<boolean>;
  /** Reset the TTL of `id`. Resolves `false` if `id` does not exist. */
  touch(id: string, ttl: number): Promise<boolean>;
  /** Remove `id`. Removing an absent id is not an error. */
  destroy(id: string): Promise<void>;
  /**
   * Write `record` only if the stored record is exactly `expected`; otherwise report the current
   * record (`conflict`) or its absence (`missing`). Required when `capabilities.compareAndSet`.
   * `version`, when given, is the version {@link getVersioned} (or an earlier result of this
   * method) returned together with `expected`: if the record still has that version it is still
   * `expected`, so the store may write on that condition alone. A stale version must not fail the
   * call: the store then compares records as it would without one.
   */
  compareAndSet?(id: string, expected: string, record: string, ttl: number, version?: string): Promise<CompareAndSetResult>;
  /** Seconds of TTL left for `id`, or `null` when absent. Optional; used to report last activity. */
  ttl?(id: string): Promise<number | null>;
  /** Every id this store holds. Required when `capabilities.list`. */
  list?(): AsyncIterable<string>;
  /** Owner index. Required when `capabilities.ownerIndex`. */
  readonly owners?: OwnerIndex;
  /** Release what the store opened itself. A client passed in by the user stays open. */
  close?(): Promise<void>;
  /**
   * Optional: resolve once the backing service answers a round trip (every server or master of it),
   * waiting meanwhile for a client that is still connecting; reject with the reason (the client's last
   * error: refused, wrong password...) when it does not within `timeout` seconds. Reads and writes no
   * session. Used by the manager's `ready()` (fail fast at boot) and `isReady()` (readiness probes);
   * without it the manager reads an id that cannot exist instead.
   */
  ready?(timeout: number): Promise<void>;
  /**
   * Optional: the manager hands its `logger` over at construction, so that what the store sees outside
   * any call (such as a client's connection errors while it reconnects) reaches the app's log.
   */
  attachLogger?(logger: SessionLogger): void;
}
