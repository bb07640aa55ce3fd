import { beforeAll, describe, expect, it } from "vitest";
import type { SessionStore } from "../../core/store.js";
import { record, type SuiteContext } from "./context.js";

/** `capabilities.list`: `list()` enumerates the ids held. Skipped (once `list` is seen absent) without it. */
export function listSuite<S extends SessionStore>(t: SuiteContext<S>): void {
  const { timeout, newId } = t;

  describe("list", () => {
    let store: S;
    beforeAll(() => {
      store = t.store();
    });

    it("lists the ids it holds when it declares listing, and nothing it destroyed", async ({ skip }) => {
      if (!store.capabilities.list) {
        expect(store.list).toBeUndefined();
        return skip("the store does not declare capabilities.list");
      }
      const ids = [newId(), newId(), `${newId()}*?[x]\\`];
      for (const id of ids) await store.create(id, record("listed"), 60);
      const gone = newId();
      await store.create(gone, record("gone"), 60);
      await store.destroy(gone);
      const listed = new Set<string>();
      for await (const id of store.list!()) listed.add(id);
      for (const id of ids) expect(listed.has(id), `list contains ${id}`).toBe(true);
      expect(listed.has(gone)).toBe(false);
    }, timeout);
  });
}
