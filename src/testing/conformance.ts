import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionStore } from "../core/store.js";

/** How {@link runStoreConformance} gets and inspects the store under test. */
export interface ConformanceOptions<S extends SessionStore = SessionStore> {
  /** Label of the `describe` block. */
  name: string;
  /** Make the store under test. Called once for the suite. */
  createStore: () => S | Promise<S>;
  /**
   * Seconds of TTL the **server** holds for `id` (read from the server, not from the store object),
   * or `null` when the item is absent. Without it, TTL checks fall back to observing expiry.
   */
  ttlOf?: (store: S, id: string) => Promise<number | null>;
  /** Wait `seconds`. Real time by default; pass a fake-timer advance for in-memory stores. */
  sleep?: (seconds: number) => Promise<void>;
  /** Release the store after the suite. Default: `store.close()` when present. */
  dispose?: (store: S) => Promise<void>;
  /** Per-test timeout in milliseconds. @default 30000 */
  timeout?: number;
}

const realSleep = (seconds: number) => new Promise<void>((resolve) => setTimeout(resolve, seconds * 1000));

/** A record-like value; stores treat records as opaque text. */
function record(label: string): string {
  return `{"v":1,"createdAt":1,"expiresAt":2,"writtenAt":1}\n${JSON.stringify({ label, nonce: randomUUID() })}`;
}

/**
 * Register the `SessionStore` conformance tests (vitest) for a store. Every adapter of this
 * project runs it against real servers; adapter authors can run it for theirs:
 *
 * @example
 * import { runStoreConformance } from "shared-session/testing/conformance";
 * runStoreConformance({ name: "MyStore", createStore: () => new MyStore(client), ttlOf: (s, id) => readTtlFromServer(id) });
 */
export function runStoreConformance<S extends SessionStore>(options: ConformanceOptions<S>): void {
  const sleep = options.sleep ?? realSleep;
  const timeout = options.timeout ?? 30_000;

  describe(`SessionStore conformance: ${options.name}`, () => {
    let store: S;
    const newId = () => randomUUID();

    beforeAll(async () => {
      store = await options.createStore();
    });
    afterAll(async () => {
      if (!store) return;
      if (options.dispose) await options.dispose(store);
      else await store.close?.();
    });

    async function expectTtl(id: string, expected: number): Promise<void> {
      if (!options.ttlOf) return;
      const ttl = await options.ttlOf(store, id);
      expect(ttl, `server TTL of ${id}`).not.toBeNull();
      expect(ttl!).toBeGreaterThan(expected - 3);
      expect(ttl!).toBeLessThanOrEqual(expected);
    }

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

    it("reports the TTL it holds through ttl() when it implements it", async () => {
      if (typeof store.ttl !== "function") return;
      const id = newId();
      expect(await store.ttl(id)).toBeNull();
      await store.create(id, record("ttl"), 300);
      const ttl = await store.ttl(id);
      expect(ttl).toBeGreaterThan(295);
      expect(ttl).toBeLessThanOrEqual(300);
    }, timeout);

    it("keeps an owner index when it declares one: add, list live entries, remove", async () => {
      if (!store.capabilities.ownerIndex) return;
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

    it("caps an owner index atomically when it implements addCapped: parallel adds never exceed the limit", async () => {
      const addCapped = store.owners?.addCapped;
      if (addCapped === undefined) return;
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

    it("lists the ids it holds when it declares listing, and nothing it destroyed", async () => {
      if (!store.capabilities.list) {
        expect(store.list).toBeUndefined();
        return;
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

    it("compare-and-set writes on a match and reports a conflict or a missing record", async () => {
      if (!store.capabilities.compareAndSet) {
        expect(store.compareAndSet).toBeUndefined();
        return;
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

    it("versioned reads, when the store has them: getVersioned returns what get does, and its version only ever stands for that record", async () => {
      if (typeof store.getVersioned !== "function") {
        expect(store.getVersioned).toBeUndefined();
        return;
      }
      const id = newId();
      expect(await store.getVersioned(id)).toBeNull();
      const v1 = record("v1");
      await store.create(id, v1, 60);
      const read = await store.getVersioned(id, store.capabilities.refreshOnGet ? 300 : undefined);
      expect(read?.record).toBe(v1);
      if (store.capabilities.refreshOnGet) await expectTtl(id, 300);
      if (read?.version !== undefined) expect(typeof read.version).toBe("string");
      if (!store.capabilities.compareAndSet) return;

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

    it("compare-and-set under contention lets exactly one writer win each round", async () => {
      if (!store.capabilities.compareAndSet) return;
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

    ownerIndexTouchCases(() => store, newId, timeout);
  });
}

// ---- Owner index: touch (#19 item 3, maxSessionsPerOwner "evict-least-active"). A block of its own, to be moved as a unit. ----

/** Conformance of the optional `OwnerIndex.touch`, and of `addCapped` evicting by the deadlines it moves. */
function ownerIndexTouchCases(getStore: () => SessionStore, newId: () => string, timeout: number): void {
  it("moves an owner index entry's deadline later when it implements touch: never earlier, never adds", async () => {
    const owners = getStore().owners;
    if (owners?.touch === undefined) return;
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

  it("evicts the entries with the earliest deadlines as touch left them (addCapped, evict-least-active)", async () => {
    const owners = getStore().owners;
    if (owners?.touch === undefined || owners.addCapped === undefined) return;
    const owner = `owner-${newId()}`;
    const [oldest, middle, newest] = [newId(), newId(), newId()];
    const later = Date.now() + 3_600_000;
    expect(await owners.addCapped(owner, oldest, later, 2, "evict-least-active")).toEqual({ added: true, evicted: [] });
    expect(await owners.addCapped(owner, middle, later + 1000, 2, "evict-least-active")).toEqual({ added: true, evicted: [] });
    await owners.touch(owner, oldest, later + 2000); // the oldest was used since: now the latest deadline
    expect(await owners.addCapped(owner, newest, later + 3000, 2, "evict-least-active")).toEqual({ added: true, evicted: [middle] });
    expect((await owners.entries(owner)).map((e) => e.id)).toEqual([oldest, newest]);
  }, timeout);
}
