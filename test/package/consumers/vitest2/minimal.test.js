import { afterAll, beforeAll, vi } from "vitest";
import { MemoryStore } from "shared-session/testing";
import { runStoreConformance } from "shared-session/testing/conformance";

// A store with only the required methods and no capability: on vitest 2 too, the suite must report
// what the store cannot do as skipped (check.mjs counts them), never fail on it or pass it.
class MinimalStore {
  name = "MinimalStore";
  capabilities = Object.freeze({ refreshOnGet: false, list: false, compareAndSet: false, ownerIndex: false });
  inner = new MemoryStore({ quiet: true });
  get(id) {
    return this.inner.get(id);
  }
  create(id, record, ttl) {
    return this.inner.create(id, record, ttl);
  }
  update(id, record, ttl) {
    return this.inner.update(id, record, ttl);
  }
  touch(id, ttl) {
    return this.inner.touch(id, ttl);
  }
  destroy(id) {
    return this.inner.destroy(id);
  }
}

beforeAll(() => vi.useFakeTimers({ toFake: ["Date"] }));
afterAll(() => vi.useRealTimers());

runStoreConformance({
  name: "a store without optional capabilities, on vitest 2",
  createStore: () => new MinimalStore(),
  ttlOf: async (store, id) => store.inner.ttlOf(id),
  sleep: async (seconds) => void vi.setSystemTime(Date.now() + seconds * 1000),
});
