/**
 * The core's commit waits for the session methods the app called and did not await (koa-session's
 * `save()` is synchronous; `save(cb)` is often not awaited): one record, the cookie naming it, and
 * a failure of such a call is no unhandled rejection.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createSessionManager, type Session } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";
import { InstrumentedStore } from "../helpers/instrumented-store.js";
import { SECRET } from "../helpers/manager-support.js";

let store: InstrumentedStore;
let unhandled: unknown[];
const onUnhandled = (err: unknown): void => {
  unhandled.push(err);
};

beforeEach(() => {
  store = new InstrumentedStore(new MemoryStore({ quiet: true }));
  unhandled = [];
  process.on("unhandledRejection", onUnhandled);
});

afterEach(async () => {
  await new Promise((resolve) => setTimeout(resolve, 10));
  process.off("unhandledRejection", onUnhandled);
  expect(unhandled).toEqual([]);
});

type Data = Session & Record<string, unknown>;

async function existing(manager: ReturnType<typeof createSessionManager>): Promise<string> {
  const session = (await manager.load(undefined, { secure: false })) as Data;
  session.visits = 1;
  const { setCookie } = await manager.commit(session);
  return setCookie!.split(";")[0]!;
}

describe("commit waits for what the app did not await", () => {
  it("save() not awaited on a new session: one write, and the cookie names that record", async () => {
    const manager = createSessionManager({ store, secret: SECRET });
    const session = (await manager.load(undefined, { secure: false })) as Data;
    session.visits = 1;
    void session.save();
    const { setCookie } = await manager.commit(session);
    expect(store.writes()).toBe(1);
    expect(setCookie).toContain(session.id);
    expect(await store.inner.get(manager.storeKeyOf(session.id))).not.toBeNull();
  });

  it("save() not awaited, then more changes: the commit writes them after the save", async () => {
    const manager = createSessionManager({ store, secret: SECRET });
    const session = (await manager.load(undefined, { secure: false })) as Data;
    session.visits = 1;
    void session.save();
    session.visits = 2;
    const { setCookie } = await manager.commit(session);
    const again = (await manager.load(setCookie!.split(";")[0], { secure: false })) as Data;
    expect(again.id).toBe(session.id);
    expect(again.visits).toBe(2);
  });

  it("destroy() not awaited: the record is gone and the cookie cleared, nothing written", async () => {
    const manager = createSessionManager({ store, secret: SECRET });
    const cookie = await existing(manager);
    const session = (await manager.load(cookie, { secure: false })) as Data;
    const id = session.id;
    store.calls.length = 0;
    void session.destroy();
    const { setCookie } = await manager.commit(session);
    expect(store.count("destroy")).toBe(1);
    expect(store.writes()).toBe(0);
    expect(setCookie).toMatch(/^sid=;/);
    expect(await store.inner.get(manager.storeKeyOf(id))).toBeNull();
  });

  it("a failing save() that nobody awaited is no unhandled rejection; the commit meets the store itself", async () => {
    const manager = createSessionManager({ store, secret: SECRET, logger: () => undefined });
    const session = (await manager.load(undefined, { secure: false })) as Data;
    session.visits = 1;
    store.faults.set("create", "throw");
    void session.save();
    await expect(manager.commit(session)).rejects.toMatchObject({ name: "StoreUnavailableError", operation: "create" });
  });

  it("nothing pending: a commit with nothing to write stays synchronous", async () => {
    const manager = createSessionManager({ store, secret: SECRET });
    const session = (await manager.load(undefined, { secure: false })) as Data;
    expect(manager.commitNow(session)).not.toBeInstanceOf(Promise);
  });
});
