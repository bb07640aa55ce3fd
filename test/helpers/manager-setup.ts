/**
 * The manager tests' fixture: a manager on a counting MemoryStore, one request (load, handler,
 * commit), a login, and a clock that starts at 2026-01-01 with only `Date` faked.
 */
import { afterEach, beforeEach, vi } from "vitest";
import { createSessionManager, type SessionLogEntry, type SessionOptions } from "../../src/index.js";
import { CountingStore, SECRET, cookiePair } from "./manager-support.js";

export type Data = { userId?: number; cart?: string[]; prefs?: { theme: string; tags: string[] }; a?: number; b?: number; big?: string };

export const HOUR = 3600 * 1000;

export function setup(options: Partial<SessionOptions<Data>> = {}, store = new CountingStore()) {
  const logs: SessionLogEntry[] = [];
  const manager = createSessionManager<Data>({ store, secret: SECRET, logger: (e) => logs.push(e), ...options });
  /** One request: load with `cookie`, run `handler`, commit. */
  async function request(cookie: string | undefined, handler: (s: Awaited<ReturnType<typeof manager.load>>) => unknown = () => {}, secure = false) {
    const session = await manager.load(cookie, { secure });
    await handler(session);
    const result = await manager.commit(session);
    return { session, setCookie: result.setCookie };
  }
  async function login(userId = 7): Promise<{ cookie: string; id: string }> {
    const { session, setCookie } = await request(undefined, (s) => {
      s.userId = userId;
    });
    return { cookie: cookiePair(setCookie), id: session.id };
  }
  return { store, manager, logs, request, login };
}

/** Fake only `Date`, from 2026-01-01T00:00:00Z, for every test of the file that calls this. */
export function useFixedClock(): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2026-01-01T00:00:00Z"));
  });
  afterEach(() => {
    vi.useRealTimers();
  });
}
