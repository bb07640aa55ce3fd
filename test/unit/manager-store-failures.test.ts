// A store that fails or hangs: StoreUnavailableError (503), storeTimeout, onStoreError.
import { describe, expect, it, vi } from "vitest";
import { StoreUnavailableError } from "../../src/index.js";
import { CountingStore } from "../helpers/manager-support.js";
import { setup, useFixedClock } from "../helpers/manager-setup.js";

useFixedClock();

describe("store failures", () => {
  class FailingStore extends CountingStore {
    mode: "ok" | "throw" | "hang" = "ok";
    override get(id: string, ttl?: number) {
      if (this.mode === "throw") return Promise.reject(new Error("connection refused"));
      if (this.mode === "hang") return new Promise<string | null>(() => {});
      return super.get(id, ttl);
    }
    override update(id: string, record: string, ttl: number) {
      if (this.mode === "throw") return Promise.reject(new Error("connection reset"));
      return super.update(id, record, ttl);
    }
    override create(id: string, record: string, ttl: number) {
      if (this.mode === "throw") return Promise.reject(new Error("connection reset"));
      if (this.mode === "hang") return new Promise<boolean>(() => {});
      return super.create(id, record, ttl);
    }
  }
  it("a failing store becomes StoreUnavailableError with status 503, Retry-After and the cause", async () => {
    const store = new FailingStore({ compareAndSet: false });
    const { login, manager } = setup({ retryAfter: 7 }, store);
    const { cookie } = await login();
    store.mode = "throw";
    const error = (await manager.load(cookie, { secure: false }).catch((e: unknown) => e)) as StoreUnavailableError;
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error.status).toBe(503);
    expect(error.statusCode).toBe(503);
    expect(error.retryAfter).toBe(7);
    expect(error.store).toBe("CountingStore");
    expect((error.cause as Error).message).toBe("connection refused");
    // The message is generic (frameworks show it to clients); what failed is in store, operation and cause.
    expect(error.message).toBe("[shared-session] session store unavailable");
    expect(error.operation).toBe("get");
  });
  it("a store that hangs is cut off after storeTimeout", async () => {
    vi.useRealTimers();
    const store = new FailingStore();
    const { login, manager } = setup({ storeTimeout: 0.05 }, store);
    const { cookie } = await login();
    store.mode = "hang";
    const timedOut = (await manager.load(cookie, { secure: false }).catch((e: unknown) => e)) as StoreUnavailableError;
    expect(timedOut).toBeInstanceOf(StoreUnavailableError);
    expect((timedOut.cause as Error).message).toMatch(/get did not answer within 0.05s/);
    const fresh = await manager.load(undefined, { secure: false });
    fresh.userId = 1;
    await expect(manager.commit(fresh)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
  it("a store that bounds its own calls within storeTimeout gets no second timer, and its failures still map", async () => {
    vi.useRealTimers();
    class SelfBounded extends FailingStore {
      constructor(readonly timeout: number) {
        super();
      }
    }
    const timersDuringLoad = async (storeTimeout: number, store: FailingStore) => {
      const { login, manager, logs } = setup({ storeTimeout }, store);
      const { cookie } = await login();
      const spy = vi.spyOn(globalThis, "setTimeout");
      try {
        await manager.load(cookie, { secure: false });
        const armed = spy.mock.calls.length;
        store.mode = "throw";
        const error = await manager.load(cookie, { secure: false }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect(((error as StoreUnavailableError).cause as Error).message).toMatch(/connection refused/);
        expect(logs.some((entry) => entry.event === "store.error")).toBe(true);
        return armed;
      } finally {
        spy.mockRestore();
      }
    };
    expect(await timersDuringLoad(2, new SelfBounded(1))).toBe(0);
    // Not bounded tighter than storeTimeout, or not at all: the manager keeps its own timer.
    expect(await timersDuringLoad(2, new SelfBounded(3))).toBe(1);
    expect(await timersDuringLoad(2, new FailingStore())).toBe(1);
  });
  it("a failing write at commit is a StoreUnavailableError too", async () => {
    const store = new FailingStore({ compareAndSet: false });
    const { login, manager } = setup({}, store);
    const { cookie } = await login();
    const session = await manager.load(cookie, { secure: false });
    session.userId = 8;
    store.mode = "throw";
    await expect(manager.commit(session)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
  it('onStoreError "continue" serves without a session and writes nothing', async () => {
    const store = new FailingStore();
    const { login, manager } = setup({ onStoreError: "continue" }, store);
    const { cookie } = await login();
    store.mode = "throw";
    const session = await manager.load(cookie, { secure: false });
    expect(session.userId).toBeUndefined();
    session.userId = 99;
    store.mode = "ok";
    store.reset();
    expect(await manager.commit(session)).toEqual({ setCookie: undefined });
    expect(store.count()).toBe(0);
    await expect(session.regenerate()).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(session.destroy()).rejects.toBeInstanceOf(StoreUnavailableError);
  });
  it('onStoreError "continue" also swallows a failed write, sending no cookie', async () => {
    const store = new FailingStore({ compareAndSet: false });
    const { manager } = setup({ onStoreError: "continue" }, store);
    const session = await manager.load(undefined, { secure: false });
    session.userId = 1;
    store.mode = "throw";
    expect(await manager.commit(session)).toEqual({ setCookie: undefined });
  });
  it("a timed-out store call that rejects later causes no unhandled rejection", async () => {
    vi.useRealTimers();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const store = new CountingStore();
      store.get = () => new Promise((_, reject) => setTimeout(() => reject(new Error("late")), 80));
      const { manager } = setup({ storeTimeout: 0.02 }, store);
      const { cookie } = await setup({}, store).login();
      await expect(manager.load(cookie, { secure: false })).rejects.toBeInstanceOf(StoreUnavailableError);
      await new Promise((r) => setTimeout(r, 150));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
