import { beforeAll, describe, expect, it } from "vitest";
import type { SessionStore } from "../../core/store.js";
import { record, type SuiteContext } from "./context.js";

/**
 * `capabilities.compareAndSet`: a write conditioned on the current record. Skipped (once
 * `compareAndSet` is seen absent) without it.
 */
export function compareAndSetSuite<S extends SessionStore>(t: SuiteContext<S>): void {
  const { timeout, newId, expectTtl } = t;

  describe("compareAndSet", () => {
    let store: S;
    beforeAll(() => {
      store = t.store();
    });

    it("compare-and-set writes on a match and reports a conflict or a missing record", async ({ skip }) => {
      if (!store.capabilities.compareAndSet) {
        expect(store.compareAndSet).toBeUndefined();
        return skip("the store does not declare capabilities.compareAndSet");
      }
      const id = newId();
      const v1 = record("v1");
      const v2 = record("v2");
      await store.create(id, v1, 60);
      // A store that versions its records may add the version: only the status and record are checked here.
      expect(await store.compareAndSet!(id, v1, v2, 300)).toMatchObject({ status: "written" });
      expect(await store.get(id)).toBe(v2);
      await expectTtl(id, 300);
      expect(await store.compareAndSet!(id, v1, record("stale"), 60)).toMatchObject({ status: "conflict", current: v2 });
      expect(await store.get(id)).toBe(v2);
      await store.destroy(id);
      expect(await store.compareAndSet!(id, v2, record("resurrect"), 60)).toEqual({ status: "missing" });
      expect(await store.get(id)).toBeNull();
    }, timeout);

    it("compare-and-set under contention lets exactly one writer win each round", async ({ skip }) => {
      if (!store.capabilities.compareAndSet) return skip("the store does not declare capabilities.compareAndSet");
      const id = newId();
      const base = record("base");
      await store.create(id, base, 60);
      const attempts = Array.from({ length: 10 }, (_, i) => record(`racer-${i}`));
      const results = await Promise.all(attempts.map((value) => store.compareAndSet!(id, base, value, 60)));
      const winners = results.filter((r) => r.status === "written");
      expect(winners).toHaveLength(1);
      const stored = await store.get(id);
      expect(attempts).toContain(stored);
      for (const r of results) if (r.status === "conflict") expect(r.current).toBe(stored);
    }, timeout);
  });
}
