/**
 * Sessions are not in memory: one app process serves 20,000 distinct sessions (each a login with
 * its own cookie, then a read with that cookie), and its live heap after 20,000 is no larger than
 * after 1,000 beyond a small allowance, and does not grow at all (beyond noise) over the last
 * 10,000. The same measurement on express-session's MemoryStore, which keeps sessions in the
 * process, breaks both bounds many times over: the test can fail.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startRedis, type RedisHandle } from "../services/index.js";
import { AppProcess, Browser, ensureBuilt, inParallel } from "../helpers/app-process.js";

const FIRST = 1_000;
const MIDDLE = 10_000;
const TOTAL = 20_000;
const CONCURRENCY = 50;

/**
 * Bytes of data each session carries, in its user name. Real sessions hold a few hundred bytes (a
 * name, roles, a cart); at 500 bytes, sessions kept in memory would add at least 9.5 MB over the
 * 19,000 sessions between the first and the last measurement, far above anything else that moves.
 */
const PAYLOAD = 500;

/**
 * Allowed heap growth from 1,000 to 20,000 sessions, in bytes.
 *
 * What may legitimately grow after a full GC is bounded, whatever the number of sessions: V8's
 * optimised code for paths still warming up, the frameworks' and clients' internal pools, the noise
 * of `heapUsed`, and the core's cache of recently verified cookie values (the last 4,096 cookies,
 * about 300 bytes each: some 1.2 MB once full, which happens between 1,000 and 5,000 sessions).
 * Measured here: +1.2 to +1.5 MB, all of it before 5,000 sessions. Sessions held in memory would
 * add 9.5 MB or more (see {@link PAYLOAD}); express-session's MemoryStore adds about 16.5 MB.
 */
const ALLOWED_GROWTH = 4 * 1024 * 1024;

/**
 * Allowed heap growth from 10,000 to 20,000 sessions, in bytes: every bounded cache is full by then,
 * so only noise remains (measured: under 0.3 MB). Anything kept per session of about 100 bytes or
 * more (what a bare id in a map already costs) reaches it over 10,000 sessions.
 */
const ALLOWED_LATE_GROWTH = 1024 * 1024;

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
    const user = `user-${i}-`.padEnd(PAYLOAD, "x");
    const login = await browser.post(app.url, "/login", { user });
    if (login.status !== 303 || browser.cookies.size !== 1) throw new Error(`login ${i} on ${app.name}: ${login.status} ${login.text}`);
    const me = await browser.whoami(app.url);
    if (me.user !== user) throw new Error(`session ${i} on ${app.name} reads ${JSON.stringify(me).slice(0, 200)}`);
  });
}

interface Heap {
  first: number;
  middle: number;
  total: number;
}

/** Heap after {@link FIRST}, {@link MIDDLE} and {@link TOTAL} sessions. */
async function measure(app: AppProcess): Promise<Heap> {
  await drive(app, 0, FIRST);
  const first = await heapUsed(app);
  await drive(app, FIRST, MIDDLE);
  const middle = await heapUsed(app);
  await drive(app, MIDDLE, TOTAL);
  const total = await heapUsed(app);
  return { first, middle, total };
}

const probe = ["--expose-gc", "--import", "./test/integration/fixtures/heap-probe.mjs"];
const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(2)} MB`;
const report = (label: string, heap: Heap): string =>
  `[memory] ${label}: heap ${mb(heap.first)} after ${FIRST} sessions, ${mb(heap.middle)} after ${MIDDLE}, ${mb(heap.total)} after ${TOTAL}`;

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
    let heap: Heap;
    try {
      heap = await measure(app);
    } finally {
      await app.kill();
    }
    console.log(report("shared-session/express", heap));
    expect(heap.total - heap.first).toBeLessThan(ALLOWED_GROWTH);
    expect(heap.total - heap.middle).toBeLessThan(ALLOWED_LATE_GROWTH);
    const client = new Redis(redis.url);
    try {
      expect(await client.dbsize()).toBe(TOTAL);
    } finally {
      client.disconnect();
    }
  });

  test("control: the same measurement catches express-session's MemoryStore, which keeps sessions in the process", { timeout: 300_000 }, async () => {
    const app = await AppProcess.start("express-session", {
      env: {},
      script: "test/integration/fixtures/express-session-memory.mjs",
      nodeArgs: probe,
      ipc: true,
    });
    let heap: Heap;
    try {
      heap = await measure(app);
    } finally {
      await app.kill();
    }
    console.log(report("express-session MemoryStore", heap));
    expect(heap.total - heap.first).toBeGreaterThan(2 * ALLOWED_GROWTH);
    expect(heap.total - heap.middle).toBeGreaterThan(2 * ALLOWED_LATE_GROWTH);
  });
});
