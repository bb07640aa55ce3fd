/**
 * Sessions are not in memory: one app process serves 20,000 distinct sessions (each a login with
 * its own cookie, then a read with that cookie), and its live heap after 20,000 is no larger than
 * after 1,000 beyond a small allowance. The same measurement on express-session's MemoryStore,
 * which keeps sessions in the process, shows growth far beyond that allowance: the test can fail.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startRedis, type RedisHandle } from "../services/index.js";
import { AppProcess, Browser, ensureBuilt, inParallel } from "./app-process.js";

const WARM_UP = 1_000;
const TOTAL = 20_000;
const CONCURRENCY = 50;

/**
 * Allowed heap growth between 1,000 and 20,000 sessions, in bytes.
 *
 * What may legitimately grow after a full GC does not depend on the session count: V8's optimised
 * code and inline caches for paths still warming up, Node's, ioredis's and Express's small internal
 * pools, and the sampling noise of `heapUsed`. Measured on this machine: +0.6 to +0.7 MB, all of it
 * between 1,000 and 5,000 sessions, then flat up to 40,000.
 *
 * A session kept in memory costs at least its 36-character id (about 56 bytes on the V8 heap), one
 * object and one map or table entry: some 150 bytes even with no data, so the 19,000 extra sessions
 * would add about 3 MB on top of the warm-up; express-session's MemoryStore (the control below) adds
 * about 6 MB (some 320 bytes a session). 2 MB separates the two; it would also catch a leak of a
 * single small object per session (about 80 bytes or more).
 */
const ALLOWED_GROWTH = 2 * 1024 * 1024;

/** The live heap of the app, after a full GC, reported by the preloaded probe. */
function heapUsed(app: AppProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown): void => {
      const reply = message as { type?: string; heapUsed?: number };
      if (reply.type !== "heap" || typeof reply.heapUsed !== "number") return;
      app.child.off("message", onMessage);
      resolve(reply.heapUsed);
    };
    app.child.on("message", onMessage);
    void app.exited.then((code) => reject(new Error(`${app.name} exited (code ${String(code)}) before reporting its heap:\n${app.output}`)));
    if (!app.child.send({ type: "heap" })) reject(new Error(`cannot reach the heap probe of ${app.name}`));
  });
}

/** Sessions `from`..`to`-1: each a login (no cookie: a new session) and a read with the cookie it got. */
async function drive(app: AppProcess, from: number, to: number): Promise<void> {
  const indexes = Array.from({ length: to - from }, (_, i) => from + i);
  await inParallel(indexes, CONCURRENCY, async (i) => {
    const browser = new Browser();
    const user = `user-${i}`;
    const login = await browser.post(app.url, "/login", { user });
    if (login.status !== 303 || browser.cookies.size !== 1) throw new Error(`login ${i} on ${app.name}: ${login.status} ${login.text}`);
    const me = await browser.whoami(app.url);
    if (me.user !== user) throw new Error(`session ${i} on ${app.name} reads ${JSON.stringify(me)}`);
  });
}

/** Heap after {@link WARM_UP} sessions and after {@link TOTAL}. */
async function measure(app: AppProcess): Promise<{ warm: number; full: number }> {
  await drive(app, 0, WARM_UP);
  const warm = await heapUsed(app);
  await drive(app, WARM_UP, TOTAL);
  const full = await heapUsed(app);
  return { warm, full };
}

const probe = ["--expose-gc", "--import", "./test/integration/fixtures/heap-probe.mjs"];
const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(2)} MB`;

describe("memory", () => {
  let redis: RedisHandle;

  beforeAll(async () => {
    await ensureBuilt();
    redis = await startRedis(); // our own server: every key in it is one of this test's sessions
  }, 300_000);

  afterAll(async () => {
    await redis?.close();
  });

  test(`an Express app holds none of ${TOTAL} sessions in memory: they are all in Redis`, { timeout: 300_000 }, async () => {
    const app = await AppProcess.start("express", {
      env: { REDIS_URL: redis.url, MEMCACHED_SERVERS: undefined },
      nodeArgs: probe,
      ipc: true,
    });
    try {
      const { warm, full } = await measure(app);
      console.log(`[memory] shared-session/express: heap ${mb(warm)} after ${WARM_UP} sessions, ${mb(full)} after ${TOTAL}`);
      expect(full - warm).toBeLessThan(ALLOWED_GROWTH);
    } finally {
      await app.kill();
    }
    const client = new Redis(redis.url);
    try {
      expect(await client.dbsize()).toBe(TOTAL);
    } finally {
      client.disconnect();
    }
  });

  test("control: the same measurement sees express-session's MemoryStore grow with the sessions", { timeout: 300_000 }, async () => {
    const app = await AppProcess.start("express-session", {
      env: {},
      script: "test/integration/fixtures/express-session-memory.mjs",
      nodeArgs: probe,
      ipc: true,
    });
    try {
      const { warm, full } = await measure(app);
      console.log(`[memory] express-session MemoryStore: heap ${mb(warm)} after ${WARM_UP} sessions, ${mb(full)} after ${TOTAL}`);
      expect(full - warm).toBeGreaterThan(2 * ALLOWED_GROWTH);
    } finally {
      await app.kill();
    }
  });
});
