import { createSessionManager } from "../../src/index.js";
import type { CompareAndSetResult, OwnerIndex, SessionStore, StoreCapabilities, VersionedRecord } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";

export const SECRET = "a-test-secret-that-is-at-least-32-chars";
export const OLD_SECRET = "an-older-secret-that-is-also-32-chars!!";

export type Call = { op: string; id: string; version?: string | undefined };

/** A MemoryStore that records every call made to it, so tests can count store round trips. */
export class CountingStore implements SessionStore {
  readonly name = "CountingStore";
  readonly capabilities: StoreCapabilities;
  readonly inner = new MemoryStore({ quiet: true });
  readonly calls: Call[] = [];
  compareAndSet?: (id: string, expected: string, record: string, ttl: number, version?: string) => Promise<CompareAndSetResult>;
  readonly owners: OwnerIndex | undefined;

  constructor(capabilities: Partial<StoreCapabilities> = {}) {
    this.capabilities = { ...this.inner.capabilities, list: true, ...capabilities };
    const inner = this.inner.owners;
    this.owners = this.capabilities.ownerIndex
      ? {
          add: (owner, id, expiresAt) => (this.calls.push({ op: "owners.add", id }), inner.add(owner, id, expiresAt)),
          remove: (owner, id) => (this.calls.push({ op: "owners.remove", id }), inner.remove(owner, id)),
          entries: (owner) => inner.entries(owner),
        }
      : undefined;
    if (this.capabilities.compareAndSet) {
      // The version (from a versioned read, see VersionedCountingStore) is recorded and passed on.
      this.compareAndSet = (id, expected, record, ttl, version) => {
        this.calls.push({ op: "compareAndSet", id, version });
        return this.inner.compareAndSet(id, expected, record, ttl, version);
      };
    }
  }

  count(op?: string): number {
    return op === undefined ? this.calls.length : this.calls.filter((c) => c.op === op).length;
  }

  writes(): number {
    return this.calls.filter((c) => c.op === "create" || c.op === "update" || c.op === "compareAndSet").length;
  }

  reset(): void {
    this.calls.length = 0;
  }

  get(id: string, ttl?: number) {
    this.calls.push({ op: "get", id });
    return this.inner.get(id, this.capabilities.refreshOnGet ? ttl : undefined);
  }
  create(id: string, record: string, ttl: number) {
    this.calls.push({ op: "create", id });
    return this.inner.create(id, record, ttl);
  }
  update(id: string, record: string, ttl: number) {
    this.calls.push({ op: "update", id });
    return this.inner.update(id, record, ttl);
  }
  touch(id: string, ttl: number) {
    this.calls.push({ op: "touch", id });
    return this.inner.touch(id, ttl);
  }
  destroy(id: string) {
    this.calls.push({ op: "destroy", id });
    return this.inner.destroy(id);
  }
  list() {
    return this.inner.list();
  }
  ttl(id: string) {
    return this.inner.ttl(id);
  }
}

/**
 * A {@link CountingStore} whose records have versions (`getVersioned`, as MemcachedStore's CAS
 * tokens), so that the core hands them to compare-and-set.
 */
export class VersionedCountingStore extends CountingStore {
  getVersioned(id: string, ttl?: number): Promise<VersionedRecord | null> {
    this.calls.push({ op: "getVersioned", id });
    return this.inner.getVersioned(id, this.capabilities.refreshOnGet ? ttl : undefined);
  }

  /** The versions the compare-and-set calls were given, in order. */
  casVersions(): (string | undefined)[] {
    return this.calls.filter((c) => c.op === "compareAndSet").map((c) => c.version);
  }
}

/** The `name=value` part of a Set-Cookie header, ready to send back as a Cookie header. */
export function cookiePair(setCookie: string | undefined): string {
  if (!setCookie) throw new Error("expected a Set-Cookie value");
  return setCookie.split(";")[0]!;
}

/**
 * The key a manager whose last secret is `secret` stores session `id` under (records are keyed by a
 * keyed hash of the id, not the id).
 */
export function storeKey(id: string, secret: string = SECRET): string {
  return createSessionManager({ store: new MemoryStore({ quiet: true }), secret }).storeKeyOf(id);
}
