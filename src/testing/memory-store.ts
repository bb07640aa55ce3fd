import type { CompareAndSetResult, OwnerEntry, OwnerIndex, SessionStore, StoreCapabilities, VersionedRecord } from "../core/store.js";

export interface MemoryStoreOptions {
  /**
   * Skip the one-time warning that this store is not for production.
   * @default false
   */
  quiet?: boolean;
}

interface Item {
  value: string;
  /** Unix ms. */
  expiresAt: number;
  /** Changes on every write, as memcached's CAS token does. */
  version: string;
}

let warned = false;

/**
 * A store in this process's memory, **for tests only**: it is exactly the per-process state this
 * library exists to avoid (every process sees different sessions, a restart loses them all).
 * Honours TTLs by `Date.now()`, so it works under fake timers. Warns once per process.
 */
export class MemoryStore implements SessionStore {
  readonly name = "MemoryStore";
  readonly capabilities: StoreCapabilities = { refreshOnGet: true, list: true, compareAndSet: true, ownerIndex: true };
  readonly #items = new Map<string, Item>();
  readonly #owners = new Map<string, Map<string, number>>();
  #writes = 0;

  /** Owner index: owner → (id → deadline in Unix ms: absolute, or of activity under "evict-least-active"). */
  readonly owners: OwnerIndex = {
    add: async (owner, id, expiresAt) => {
      let ids = this.#owners.get(owner);
      if (!ids) this.#owners.set(owner, (ids = new Map()));
      ids.set(id, expiresAt);
    },
    remove: async (owner, id) => {
      const ids = this.#owners.get(owner);
      ids?.delete(id);
      if (ids?.size === 0) this.#owners.delete(owner);
    },
    entries: async (owner) => {
      const ids = this.#owners.get(owner);
      if (!ids) return [];
      const now = Date.now();
      const live: OwnerEntry[] = [];
      for (const [id, expiresAt] of ids) {
        if (expiresAt <= now) ids.delete(id);
        else live.push({ id, expiresAt });
      }
      return live.sort((a, b) => a.expiresAt - b.expiresAt);
    },
    // No await between reading and writing the owner's entries: atomic, as the Redis script is.
    addCapped: async (owner, id, expiresAt, limit, policy) => {
      let ids = this.#owners.get(owner);
      if (!ids) this.#owners.set(owner, (ids = new Map()));
      const now = Date.now();
      for (const [member, deadline] of ids) if (deadline <= now) ids.delete(member);
      const evicted: string[] = [];
      if (!ids.has(id) && ids.size >= limit) {
        if (policy === "refuse") return { added: false, evicted };
        const oldest = [...ids].sort((a, b) => a[1] - b[1]).slice(0, ids.size - limit + 1);
        for (const [member] of oldest) {
          ids.delete(member);
          evicted.push(member);
        }
      }
      ids.set(id, expiresAt);
      return { added: true, evicted };
    },
    touch: async (owner, id, expiresAt) => {
      const ids = this.#owners.get(owner);
      const deadline = ids?.get(id);
      if (deadline !== undefined && deadline < expiresAt) ids!.set(id, expiresAt);
    },
  };

  constructor(options: MemoryStoreOptions = {}) {
    if (!warned && !options.quiet) {
      warned = true;
      process.emitWarning("MemoryStore keeps sessions in one process's memory; it is for tests only, never production.", {
        code: "SHARED_SESSION_MEMORY_STORE",
      });
    }
  }

  #live(id: string): Item | undefined {
    const item = this.#items.get(id);
    if (item !== undefined && item.expiresAt <= Date.now()) {
      this.#items.delete(id);
      return undefined;
    }
    return item;
  }

  async get(id: string, ttl?: number): Promise<string | null> {
    const item = this.#live(id);
    if (item === undefined) return null;
    if (ttl !== undefined) item.expiresAt = Date.now() + ttl * 1000;
    return item.value;
  }

  /** {@link get} with the record's version, which changes on every write of it. */
  async getVersioned(id: string, ttl?: number): Promise<VersionedRecord | null> {
    const item = this.#live(id);
    if (item === undefined) return null;
    if (ttl !== undefined) item.expiresAt = Date.now() + ttl * 1000;
    return { record: item.value, version: item.version };
  }

  #item(value: string, ttl: number): Item {
    return { value, expiresAt: Date.now() + ttl * 1000, version: `w${++this.#writes}` };
  }

  async create(id: string, record: string, ttl: number): Promise<boolean> {
    if (this.#live(id) !== undefined) return false;
    this.#items.set(id, this.#item(record, ttl));
    return true;
  }

  async update(id: string, record: string, ttl: number): Promise<boolean> {
    if (this.#live(id) === undefined) return false;
    this.#items.set(id, this.#item(record, ttl));
    return true;
  }

  async touch(id: string, ttl: number): Promise<boolean> {
    const item = this.#live(id);
    if (item === undefined) return false;
    item.expiresAt = Date.now() + ttl * 1000;
    return true;
  }

  async destroy(id: string): Promise<void> {
    this.#items.delete(id);
  }

  async compareAndSet(id: string, expected: string, record: string, ttl: number, version?: string): Promise<CompareAndSetResult> {
    const item = this.#live(id);
    if (item === undefined) return { status: "missing" };
    // The version as read stands for `expected`; any other (stale or foreign) means: compare the records.
    if (item.version !== version && item.value !== expected) return { status: "conflict", current: item.value, version: item.version };
    const written = this.#item(record, ttl);
    this.#items.set(id, written);
    return { status: "written", version: written.version };
  }

  async *list(): AsyncIterable<string> {
    for (const id of [...this.#items.keys()]) if (this.#live(id) !== undefined) yield id;
  }

  async ttl(id: string): Promise<number | null> {
    return this.ttlOf(id);
  }

  /** Seconds left before `id` expires, rounded up, or `null` when absent. For tests. */
  ttlOf(id: string): number | null {
    const item = this.#live(id);
    return item === undefined ? null : Math.ceil((item.expiresAt - Date.now()) / 1000);
  }

  /** Number of live records. For tests. */
  get size(): number {
    let n = 0;
    for (const id of [...this.#items.keys()]) if (this.#live(id) !== undefined) n++;
    return n;
  }

  async close(): Promise<void> {
    this.#items.clear();
    this.#owners.clear();
  }
}
