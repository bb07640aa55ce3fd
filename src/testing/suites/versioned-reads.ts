import { beforeAll, describe, expect, it } from "vitest";
import type { SessionStore } from "../../core/store.js";
import { record, type SuiteContext } from "./context.js";

/**
 * The optional `getVersioned()`, and the version it returns handed to `compareAndSet()`. Skipped
 * (once `getVersioned` is seen absent) without it; the second test also needs compare-and-set.
 */
export function versionedReadsSuite<S extends SessionStore>(t: SuiteContext<S>): void {
  const { timeout, newId, expectTtl } = t;

  describe("getVersioned", () => {
    let store: S;
    beforeAll(() => {
      store = t.store();
    });

    it("versioned reads, when the store has them: getVersioned returns what get does", async ({ skip }) => {
      if (typeof store.getVersioned !== "function") {
        expect(store.getVersioned).toBeUndefined();
        return skip("the store has no getVersioned() method");
      }
      const id = newId();
      expect(await store.getVersioned(id)).toBeNull();
      const v1 = record("v1");
      await store.create(id, v1, 60);
      const read = await store.getVersioned(id, store.capabilities.refreshOnGet ? 300 : undefined);
      expect(read?.record).toBe(v1);
      if (store.capabilities.refreshOnGet) await expectTtl(id, 300);
      if (read?.version !== undefined) expect(typeof read.version).toBe("string");
    }, timeout);

    it("versioned compare-and-set: the version getVersioned returns only ever stands for that record", async ({ skip }) => {
      if (typeof store.getVersioned !== "function") return skip("the store has no getVersioned() method");
      if (!store.capabilities.compareAndSet) return skip("the store does not declare capabilities.compareAndSet");
      const id = newId();
      const v1 = record("v1");
      await store.create(id, v1, 60);
      const read = await store.getVersioned(id);

      // The version as read: written, with the new record's version when the store keeps them.
      const v2 = record("v2");
      const first = await store.compareAndSet!(id, v1, v2, 120, read!.version);
      expect(first).toMatchObject({ status: "written" });
      expect(await store.get(id)).toBe(v2);
      await expectTtl(id, 120);
      const v2Version = first.status === "written" ? first.version : undefined;
      if (read!.version !== undefined) expect(v2Version).not.toBe(read!.version);

      // A stale version never writes over another record: a conflict with the record that is there.
      expect(await store.compareAndSet!(id, v1, record("stale"), 60, read!.version)).toMatchObject({ status: "conflict", current: v2 });
      expect(await store.get(id)).toBe(v2);

      // Rewritten with the same bytes by someone else: the version is stale but the record matches, so it writes.
      expect(await store.update(id, v2, 60)).toBe(true);
      const v3 = record("v3");
      expect(await store.compareAndSet!(id, v2, v3, 60, v2Version)).toMatchObject({ status: "written" });
      expect(await store.get(id)).toBe(v3);

      // Something that is no version of this store is ignored, not trusted.
      const v4 = record("v4");
      expect(await store.compareAndSet!(id, v1, v4, 60, "not a version")).toMatchObject({ status: "conflict", current: v3 });
      expect(await store.compareAndSet!(id, v3, v4, 60, "not a version")).toMatchObject({ status: "written" });

      // Destroyed: missing, whatever version comes with it.
      const last = await store.getVersioned(id);
      expect(last?.record).toBe(v4);
      await store.destroy(id);
      expect(await store.compareAndSet!(id, v4, record("resurrect"), 60, last!.version)).toEqual({ status: "missing" });
      expect(await store.get(id)).toBeNull();
    }, timeout);
  });
}
