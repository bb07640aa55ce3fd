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
 * Allowed heap growth between 1,000 and 20,000 sessions, in bytes. What can legitimately grow after
 * a full GC: V8's optimised code and inline caches for paths still warming up, Node's and the
 * frameworks' small internal pools, and the sampling noise of `heapUsed` itself, all bounded and
 * independent of the session count (measured here: well under 1 MB). Sessions held in memory cost
 * at least one id string and one object each, about 150 bytes even for an empty one, so the 19,000
 * extra sessions would add close to 3 MB at the very least; the MemoryStore control below adds
 * several times this bound. 2 MB sits between the two.
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

  test(`an Express app holds none of ${TOTAL} sessions in memory: they are all in Redis`, { timeout: 180_000 }, async () => {
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

  test("control: the same measurement sees express-session's MemoryStore grow with the sessions", { timeout: 180_000 }, async () => {
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
