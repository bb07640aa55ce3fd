// Logs and events: hashed ids only, and a throwing logger or listener breaks nothing.
import signature from "cookie-signature";
import { describe, expect, it, vi } from "vitest";
import { decodeRecord, hashId } from "../../src/index.js";
import { CountingStore, SECRET, cookiePair, storeKey } from "../helpers/manager-support.js";
import { setup, useFixedClock } from "../helpers/manager-setup.js";

useFixedClock();

describe("logs and events never carry a raw session id", () => {
  it("reports created, regenerated, destroyed, rejected, expired and store errors with hashed ids", async () => {
    const store = new CountingStore();
    const { manager, login, request, logs } = setup({ absoluteTimeout: 3600 }, store);
    const seen: [string, unknown][] = [];
    for (const event of ["created", "regenerated", "destroyed", "rejected", "expired", "storeError"] as const) {
      manager.on(event, (payload) => seen.push([event, payload]));
    }
    const { cookie, id } = await login();
    const { session } = await request(cookie, (s) => s.regenerate());
    await request(cookiePair(`sid=${signature.sign(session.id, SECRET)}`), (s) => s.destroy());
    await request("sid=forged");
    const second = await login();
    vi.advanceTimersByTime(3600 * 1000 + 1);
    store.inner.get = async () => decodeRecord("") as never;
    await request(second.cookie).catch(() => {});
    const everything = JSON.stringify([seen, logs.map((l) => ({ ...l, error: String(l.error) }))]);
    for (const raw of [id, session.id, second.id]) expect(everything).not.toContain(raw);
    expect(seen.map(([e]) => e)).toEqual(expect.arrayContaining(["created", "regenerated", "destroyed", "rejected"]));
    expect(seen).toContainEqual(["created", { session: hashId(storeKey(id)) }]);
    expect(seen).toContainEqual(["regenerated", { from: hashId(storeKey(id)) }]);
    expect(seen).toContainEqual(["destroyed", { session: hashId(storeKey(session.id)) }]);
  });
  it("a throwing logger or listener does not break requests", async () => {
    const { manager } = setup({ logger: () => { throw new Error("logger down"); } });
    manager.on("created", () => {
      throw new Error("listener down");
    });
    const session = await manager.load("sid=garbage", { secure: false });
    session.userId = 1;
    await expect(manager.commit(session)).resolves.toHaveProperty("setCookie");
  });
});
