import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { MemoryStore } from "../../src/testing/index.js";
import { runStoreConformance } from "../../src/testing/conformance.js";

// Fake only Date: MemoryStore expires by Date.now(), so the suite's waits cost no real time.
beforeAll(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
});
afterAll(() => {
  vi.useRealTimers();
});

runStoreConformance({
  name: "MemoryStore",
  createStore: () => new MemoryStore({ quiet: true }),
  ttlOf: async (store, id) => store.ttlOf(id),
  sleep: async (seconds) => {
    vi.setSystemTime(Date.now() + seconds * 1000);
  },
});

it("MemoryStore warns once per process that it is for tests only, unless quiet", async () => {
  const warnings: string[] = [];
  const spy = vi.spyOn(process, "emitWarning").mockImplementation((w: string | Error) => void warnings.push(String(w)));
  try {
    vi.resetModules();
    const fresh = await import("../../src/testing/memory-store.js");
    new fresh.MemoryStore({ quiet: true });
    expect(warnings).toEqual([]);
    new fresh.MemoryStore();
    new fresh.MemoryStore();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/tests only, never production/);
  } finally {
    spy.mockRestore();
  }
});
