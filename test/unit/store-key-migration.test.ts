import { describe, expect, it } from "vitest";
import { createSessionManager, type SessionOptions } from "../../src/index.js";
import { CountingStore, SECRET, cookiePair } from "../helpers/manager-support.js";

type Data = { userId?: number; n?: number };

/**
 * The migration from express-session: step 1 (`compat: "express-session"`) keeps records under the
 * raw id, as connect-redis does; step 2 (`"express-session-read"`) moves each to its hashed key as it
 * is used, owner index entry included; step 3 (no compat) finds it there.
 */
describe("store keys across the express-session migration", () => {
  const options = (compat: SessionOptions<Data>["compat"], store: CountingStore): SessionOptions<Data> => ({
    store,
    secret: SECRET,
    compat,
    owner: (d) => d.userId,
  });

  it("moves a record from the raw id to its hashed key on first use in step 2, with its owner entry", async () => {
    const store = new CountingStore({ ownerIndex: true, compareAndSet: true });
    const step1 = createSessionManager(options("express-session", store));
    const session = await step1.load(undefined, { secure: false });
    session.userId = 7;
    const cookie = cookiePair((await step1.commit(session)).setCookie);
    const id = session.id;
    expect(step1.storeKeyOf(id)).toBe(id);
    expect(await store.inner.get(id)).not.toBeNull();
    expect((await store.inner.owners.entries("7")).map((e) => e.id)).toEqual([id]);

    const step2 = createSessionManager(options("express-session-read", store));
    const key = step2.storeKeyOf(id);
    expect(key).not.toBe(id);
    const read = await step2.load(cookie, { secure: false });
    expect(read.userId).toBe(7);
    expect(read.id).toBe(id);
    const converted = cookiePair((await step2.commit(read)).setCookie);
    expect(await store.inner.get(id)).toBeNull();
    expect((await store.inner.get(key))!.startsWith('{"v":1,')).toBe(true);
    expect((await store.inner.owners.entries("7")).map((e) => e.id)).toEqual([key]);
    expect((await step2.listSessions(7)).map((s) => s.session)).toEqual([step2.hashOf(id)]);

    // Unknown ids cost one more read in step 2 (the raw-id location), nothing else.
    store.reset();
    const unknown = await step2.load(`connect.sid=${step2.signId("00000000-0000-4000-8000-000000000000")}`, { secure: false });
    expect(unknown.isNew).toBe(true);
    expect(store.calls.map((c) => c.op)).toEqual(["get", "get"]);

    const step3 = createSessionManager({ ...options(undefined, store), name: "connect.sid", validateId: () => true });
    const after = await step3.load(converted, { secure: false });
    expect(after.userId).toBe(7);
    after.n = 1;
    await step3.commit(after);
    expect(await step3.destroyOwnerSessions(7)).toBe(1);
    expect(await store.inner.get(key)).toBeNull();
  });
});
