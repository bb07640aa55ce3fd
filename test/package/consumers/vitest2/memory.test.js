import { afterAll, beforeAll, vi } from "vitest";
import { MemoryStore } from "shared-session/testing";
import { runStoreConformance } from "shared-session/testing/conformance";

// MemoryStore expires by Date.now(): fake only Date so the suite's waits cost no real time.
beforeAll(() => vi.useFakeTimers({ toFake: ["Date"] }));
afterAll(() => vi.useRealTimers());

runStoreConformance({
  name: "MemoryStore on vitest 2",
  createStore: () => new MemoryStore({ quiet: true }),
  ttlOf: async (store, id) => store.ttlOf(id),
  sleep: async (seconds) => void vi.setSystemTime(Date.now() + seconds * 1000),
});
