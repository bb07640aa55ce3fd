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

/** Outcome of {@link SessionStore.compareAndSet}. */
export type CompareAndSetResult =
  | { readonly status: "written" }
  | { readonly status: "missing" }
  | { readonly status: "conflict"; readonly current: string };

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
}

/**
 * A backend that holds session records. Records are opaque strings produced by the core;
 * TTLs are whole seconds (always >= 1). Every method resolves or rejects; the core bounds each
 * call in time, so a store need not, though a store with a client that can hang should.
 *
 * Prove an implementation with `runStoreConformance` from `shared-session/testing`.
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
   */
  compareAndSet?(id: string, expected: string, record: string, ttl: number): Promise<CompareAndSetResult>;
  /** Seconds of TTL left for `id`, or `null` when absent. Optional; used to report last activity. */
  ttl?(id: string): Promise<number | null>;
  /** Every id this store holds. Required when `capabilities.list`. */
  list?(): AsyncIterable<string>;
  /** Owner index. Required when `capabilities.ownerIndex`. */
  readonly owners?: OwnerIndex;
  /** Release what the store opened itself. A client passed in by the user stays open. */
  close?(): Promise<void>;
}
