import { beforeAll, describe, expect, it } from "vitest";
import type { SessionStore } from "../../core/store.js";
import { record, type SuiteContext } from "./context.js";

/** The optional `ttl(id)` method (used to report last activity). Skipped when the store has none. */
export function ttlSuite<S extends SessionStore>(t: SuiteContext<S>): void {
  const { timeout, newId } = t;

  describe("ttl", () => {
    let store: S;
    beforeAll(() => {
      store = t.store();
    });

    it("reports the TTL it holds through ttl() when it implements it", async ({ skip }) => {
      if (typeof store.ttl !== "function") return skip("the store has no ttl() method");
      const id = newId();
      expect(await store.ttl(id)).toBeNull();
      await store.create(id, record("ttl"), 300);
      const ttl = await store.ttl(id);
      expect(ttl).toBeGreaterThan(295);
      expect(ttl).toBeLessThanOrEqual(300);
    }, timeout);
  });
}
