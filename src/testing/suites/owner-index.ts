import { beforeAll, describe, expect, it } from "vitest";
import type { SessionStore } from "../../core/store.js";
import type { SuiteContext } from "./context.js";

/**
 * `capabilities.ownerIndex`: `owners` maps an owner to its sessions; `owners.addCapped` and
 * `owners.touch` are optional within it. Each test is skipped when the store lacks what it checks.
 */
export function ownerIndexSuite<S extends SessionStore>(t: SuiteContext<S>): void {
  const { timeout, newId } = t;

  describe("ownerIndex", () => {
    let store: S;
    beforeAll(() => {
      store = t.store();
    });

    it("keeps an owner index when it declares one: add, list live entries, remove", async ({ skip }) => {
      if (!store.capabilities.ownerIndex) return skip("the store does not declare capabilities.ownerIndex");
      const owners = store.owners!;
      const owner = `owner-${newId()}`;
      const [a, b, stale] = [newId(), newId(), newId()];
      const later = Date.now() + 3_600_000;
      await owners.add(owner, a, later);
      await owners.add(owner, b, later + 1000);
      await owners.add(owner, stale, Date.now() - 1000);
      expect((await owners.entries(owner)).map((e) => e.id)).toEqual([a, b]);
      await owners.remove(owner, a);
      expect(await owners.entries(owner)).toEqual([{ id: b, expiresAt: later + 1000 }]);
      await owners.remove(owner, b);
      expect(await owners.entries(owner)).toEqual([]);
      expect(await owners.entries(`owner-${newId()}`)).toEqual([]);
    }, timeout);

    it("caps an owner index atomically when it implements addCapped: parallel adds never exceed the limit", async ({ skip }) => {
      const addCapped = store.owners?.addCapped;
      if (addCapped === undefined) {
        return skip(store.owners ? "the store's owner index has no addCapped() method" : "the store does not declare capabilities.ownerIndex");
      }
      const later = Date.now() + 3_600_000;
      const refusing = `owner-${newId()}`;
      const refused = await Promise.all(Array.from({ length: 8 }, (_, i) => addCapped(refusing, newId(), later + i, 3, "refuse")));
      expect(refused.filter((r) => r.added).length).toBe(3);
      expect(refused.every((r) => r.evicted.length === 0)).toBe(true);
      expect((await store.owners!.entries(refusing)).length).toBe(3);
      const evicting = `owner-${newId()}`;
      const ids = Array.from({ length: 5 }, () => newId());
      const results = [];
      for (const [i, id] of ids.entries()) results.push(await addCapped(evicting, id, later + i, 2, "evict-least-active"));
      // Earliest deadlines go first; an id already present is re-scored, never refused or counted twice.
      expect(results.map((r) => r.evicted)).toEqual([[], [], [ids[0]], [ids[1]], [ids[2]]]);
      expect(await addCapped(evicting, ids[4]!, later + 10, 2, "refuse")).toEqual({ added: true, evicted: [] });
      expect((await store.owners!.entries(evicting)).map((e) => e.id)).toEqual([ids[3], ids[4]]);
    }, timeout);

    // The optional `owners.touch` (maxSessionsPerOwner "evict-least-active"), and addCapped evicting by the deadlines it moves.
    it("moves an owner index entry's deadline later when it implements touch: never earlier, never adds", async ({ skip }) => {
      const owners = store.owners;
      if (owners?.touch === undefined) {
        return skip(owners ? "the store's owner index has no touch() method" : "the store does not declare capabilities.ownerIndex");
      }
      const owner = `owner-${newId()}`;
      const [a, absent] = [newId(), newId()];
      const later = Date.now() + 3_600_000;
      await owners.add(owner, a, later);
      await owners.touch(owner, a, later + 5000);
      expect(await owners.entries(owner)).toEqual([{ id: a, expiresAt: later + 5000 }]);
      await owners.touch(owner, a, later); // earlier: ignored
      await owners.touch(owner, absent, later + 9000); // absent (destroyed, evicted): stays out
      expect(await owners.entries(owner)).toEqual([{ id: a, expiresAt: later + 5000 }]);
      await owners.touch(`owner-${newId()}`, a, later); // an owner with no index: nothing is made
      await owners.remove(owner, a);
      expect(await owners.entries(owner)).toEqual([]);
    }, timeout);

    it("evicts the entries with the earliest deadlines as touch left them (addCapped, evict-least-active)", async ({ skip }) => {
      const owners = store.owners;
      if (owners?.touch === undefined || owners.addCapped === undefined) {
        return skip(owners ? "the store's owner index lacks touch() or addCapped()" : "the store does not declare capabilities.ownerIndex");
      }
      const owner = `owner-${newId()}`;
      const [oldest, middle, newest] = [newId(), newId(), newId()];
      const later = Date.now() + 3_600_000;
      expect(await owners.addCapped(owner, oldest, later, 2, "evict-least-active")).toEqual({ added: true, evicted: [] });
      expect(await owners.addCapped(owner, middle, later + 1000, 2, "evict-least-active")).toEqual({ added: true, evicted: [] });
      await owners.touch(owner, oldest, later + 2000); // the oldest was used since: now the latest deadline
      expect(await owners.addCapped(owner, newest, later + 3000, 2, "evict-least-active")).toEqual({ added: true, evicted: [middle] });
      expect((await owners.entries(owner)).map((e) => e.id)).toEqual([oldest, newest]);
    }, timeout);
  });
}
