/**
 * maxSessionsPerOwner "evict-least-active" (#19 item 3): the owner index entry of a session stays at or
 * after the latest its record can expire (else "log out everywhere" could miss a live session), also when
 * a write merges with a parallel one or lands late. Through the core and MemoryStore, with a store whose
 * writes take 5 s of the app's clock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createSessionManager, type CompareAndSetResult } from "../../src/index.js";
import { MemoryStore } from "../../src/testing/index.js";
import { SECRET, cookiePair } from "./support.js";

type Data = { userId?: string; a?: number; b?: number };

/** A store whose compare-and-set takes 5 s (the app's clock moves while it runs). */
class SlowWrites extends MemoryStore {
  override async compareAndSet(id: string, expected: string, record: string, ttl: number, version?: string): Promise<CompareAndSetResult> {
    vi.setSystemTime(Date.now() + 5_000);
    return super.compareAndSet(id, expected, record, ttl, version);
  }
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(new Date("2026-03-01T00:00:00Z"));
});
afterEach(() => vi.useRealTimers());

describe("evict-least-active: the index entry outlives the record", () => {
  it("after two parallel writes of one session merged, and after a write that landed late", async () => {
    const store = new SlowWrites({ quiet: true });
    const options = { store, secret: SECRET, owner: (d: Data) => d.userId, maxSessionsPerOwner: { limit: 2, onLimit: "evict-least-active" as const } };
    const one = createSessionManager<Data>(options);
    const two = createSessionManager<Data>(options); // another process: no in-process queue between them
    const login = await one.load(undefined, { secure: false });
    login.userId = "u";
    const cookie = cookiePair((await one.commit(login)).setCookie!);
    const [s1, s2] = await Promise.all([one.load(cookie, { secure: false }), two.load(cookie, { secure: false })]);
    s1.a = 1;
    s2.b = 2;
    await Promise.all([one.commit(s1), two.commit(s2)]);
    const key = one.storeKeyOf(s1.id);
    const meta = JSON.parse((await store.get(key))!.split("\n")[0]!) as { writtenAt: number };
    const [entry] = await store.owners.entries("u");
    // The record, read at any time before writtenAt + touchAfter, lives idleTimeout past that read.
    expect(entry!.id).toBe(key);
    expect(entry!.expiresAt).toBeGreaterThanOrEqual(meta.writtenAt + (one.idleTimeout + one.touchAfter) * 1000);
    const stored = await one.load(cookie, { secure: false });
    expect([stored.a, stored.b]).toEqual([1, 2]);
  });

  it("the re-score is sent with the record's write, not after it (one round trip), and only on a refresh", async () => {
    const log: string[] = [];
    const store = new (class extends MemoryStore {
      override async compareAndSet(id: string, expected: string, record: string, ttl: number, version?: string): Promise<CompareAndSetResult> {
        log.push("write");
        return super.compareAndSet(id, expected, record, ttl, version);
      }
    })({ quiet: true });
    const touch = store.owners.touch!;
    store.owners.touch = async (owner, id, expiresAt) => {
      log.push("touch sent");
      await new Promise((resolve) => setTimeout(resolve, 1)); // its answer comes later
      log.push("touch answered");
      return touch(owner, id, expiresAt);
    };
    const manager = createSessionManager<Data>({ store, secret: SECRET, owner: (d) => d.userId, maxSessionsPerOwner: { limit: 2, onLimit: "evict-least-active" } });
    const login = await manager.load(undefined, { secure: false });
    login.userId = "u";
    const cookie = cookiePair((await manager.commit(login)).setCookie!);
    vi.setSystemTime(Date.now() + 30_000); // within touchAfter: nothing written, nothing re-scored
    await manager.commit(await manager.load(cookie, { secure: false }));
    expect(log).toEqual([]);
    vi.setSystemTime(Date.now() + 31_000); // past touchAfter (60 s): the refresh
    await manager.commit(await manager.load(cookie, { secure: false }));
    expect(log).toEqual(["touch sent", "write", "touch answered"]);
  });
});
