import { beforeAll, describe, expect, it } from "vitest";
import type { SessionStore } from "../../core/store.js";
import { record, type SuiteContext } from "./context.js";

/** What every store does, whatever it declares: create-if-absent, update-if-present, touch, destroy, expiry. */
export function recordsSuite<S extends SessionStore>(t: SuiteContext<S>): void {
  const { options, sleep, timeout, newId, expectTtl } = t;

  describe("records", () => {
    let store: S;
    beforeAll(() => {
      store = t.store();
    });

    it("declares its name and capabilities", () => {
      expect(typeof store.name).toBe("string");
      expect(store.name.length).toBeGreaterThan(0);
      for (const key of ["refreshOnGet", "list", "compareAndSet", "ownerIndex"] as const) {
        expect(typeof store.capabilities[key], `capabilities.${key}`).toBe("boolean");
      }
      expect(typeof store.list === "function").toBe(store.capabilities.list);
      expect(typeof store.compareAndSet === "function").toBe(store.capabilities.compareAndSet);
      expect(store.owners !== undefined).toBe(store.capabilities.ownerIndex);
    });

    it("returns null for an id it never stored", async () => {
      expect(await store.get(newId())).toBeNull();
      if (store.capabilities.refreshOnGet) expect(await store.get(newId(), 60)).toBeNull();
    }, timeout);

    it("round-trips a record and holds the TTL it was given", async () => {
      const id = newId();
      const value = record("round-trip");
      expect(await store.create(id, value, 120)).toBe(true);
      expect(await store.get(id)).toBe(value);
      await expectTtl(id, 120);
    }, timeout);

    it("create refuses an existing id and leaves it unchanged", async () => {
      const id = newId();
      const first = record("first");
      expect(await store.create(id, first, 120)).toBe(true);
      expect(await store.create(id, record("second"), 300)).toBe(false);
      expect(await store.get(id)).toBe(first);
      await expectTtl(id, 120);
    }, timeout);

    it("update replaces an existing record and sets its TTL", async () => {
      const id = newId();
      await store.create(id, record("before"), 60);
      const after = record("after");
      expect(await store.update(id, after, 200)).toBe(true);
      expect(await store.get(id)).toBe(after);
      await expectTtl(id, 200);
    }, timeout);

    it("update refuses a missing id and never creates it", async () => {
      const id = newId();
      expect(await store.update(id, record("ghost"), 60)).toBe(false);
      expect(await store.get(id)).toBeNull();
    }, timeout);

    it("update after destroy does not bring the session back", async () => {
      const id = newId();
      await store.create(id, record("alive"), 60);
      await store.destroy(id);
      expect(await store.update(id, record("resurrected"), 60)).toBe(false);
      expect(await store.get(id)).toBeNull();
    }, timeout);

    it("destroy removes a record, and destroying an absent id is not an error", async () => {
      const id = newId();
      await store.create(id, record("doomed"), 60);
      await store.destroy(id);
      expect(await store.get(id)).toBeNull();
      await expect(store.destroy(id)).resolves.toBeUndefined();
      await expect(store.destroy(newId())).resolves.toBeUndefined();
      if (options.ttlOf) expect(await options.ttlOf(store, id)).toBeNull();
    }, timeout);

    it("touch resets the TTL of an existing record and reports a missing one", async () => {
      const id = newId();
      await store.create(id, record("touch"), 30);
      expect(await store.touch(id, 400)).toBe(true);
      await expectTtl(id, 400);
      expect(await store.touch(newId(), 400)).toBe(false);
    }, timeout);

    // Both ways are checked: a store without refreshOnGet must leave the TTL alone on a read.
    it("get with a TTL refreshes it in the same call when the store declares refreshOnGet", async () => {
      const id = newId();
      const value = record("refresh");
      await store.create(id, value, 30);
      if (store.capabilities.refreshOnGet) {
        expect(await store.get(id, 500)).toBe(value);
        await expectTtl(id, 500);
      }
      expect(await store.get(id)).toBe(value);
      await expectTtl(id, store.capabilities.refreshOnGet ? 500 : 30);
    }, timeout);

    it("lets a record expire when its TTL runs out", async () => {
      const id = newId();
      const keep = newId();
      await store.create(id, record("short"), 1);
      await store.create(keep, record("long"), 120);
      await sleep(2.5);
      expect(await store.get(id)).toBeNull();
      expect(await store.update(id, record("late"), 60)).toBe(false);
      expect(await store.get(keep)).not.toBeNull();
    }, timeout);

    it("stores large and unicode values byte for byte", async () => {
      const unicode = `{"v":1}\n${JSON.stringify({ s: "héllo ✓ 🎉 日本語 עברית \u0000 \r\n \"quoted\" \\ \u2028", n: Number.MAX_SAFE_INTEGER })}`;
      const large = `{"v":1}\n${"x".repeat(256 * 1024)}${"é".repeat(1024)}`;
      for (const value of [unicode, large]) {
        const id = newId();
        expect(await store.create(id, value, 60)).toBe(true);
        expect(await store.get(id)).toBe(value);
      }
    }, timeout);

    it("handles concurrent calls: distinct creates all land, a contested create has one winner", async () => {
      const ids = Array.from({ length: 50 }, newId);
      const results = await Promise.all(ids.map((id) => store.create(id, record(id), 60)));
      expect(results.every(Boolean)).toBe(true);
      const values = await Promise.all(ids.map((id) => store.get(id)));
      values.forEach((value, i) => expect(value).toContain(`"label":"${ids[i]}"`));

      const contested = newId();
      const candidates = Array.from({ length: 20 }, (_, i) => record(`candidate-${i}`));
      const wins = await Promise.all(candidates.map((value) => store.create(contested, value, 60)));
      expect(wins.filter(Boolean)).toHaveLength(1);
      expect(await store.get(contested)).toBe(candidates[wins.indexOf(true)]);

      const updates = Array.from({ length: 20 }, (_, i) => record(`update-${i}`));
      await Promise.all(updates.map((value) => store.update(contested, value, 60)));
      expect(updates).toContain(await store.get(contested));
    }, timeout);
  });
}
