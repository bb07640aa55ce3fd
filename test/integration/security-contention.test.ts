/**
 * One user's parallel writes must not amplify (issue #16 item 6). On a real Redis, a ~16 KB session
 * gets N requests at once, each changing one key of its own: every change must land, no request may
 * fail at 50 in parallel, and at 200 the compare-and-set calls and the Redis→app traffic per request
 * stay at a few (counted by the server: `INFO commandstats` and `total_net_output_bytes`).
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisClient, RedisStore } from "../../adapters/redis.js";
import { createSessionManager, StoreUnavailableError, type SessionManager } from "../../src/index.js";
import { startRedis, type RedisHandle } from "../services/index.js";

const SECRET = "security-contention-secret-of-32-chars-or-more";
type Data = Record<string, unknown>;

let redis: RedisHandle;
let admin: Redis;
const clients: Redis[] = [];

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
}, 60_000);
afterAll(async () => {
  for (const c of clients) c.disconnect();
  admin?.disconnect();
  await redis?.close();
});

function manager(): SessionManager<Data> {
  const client = createRedisClient(redis.url);
  clients.push(client);
  return createSessionManager<Data>({ store: new RedisStore({ client, prefix: "contention:" }), secret: SECRET, storeTimeout: 5 });
}

async function serverCounters(): Promise<{ cas: number; out: number }> {
  const stats = await admin.info("commandstats");
  const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
  const net = await admin.info("stats");
  return { cas: calls("evalsha") + calls("eval"), out: Number(/total_net_output_bytes:(\d+)/.exec(net)?.[1] ?? 0) };
}

interface Figures {
  failed: number;
  casPerRequest: number;
  recordsOutPerRequest: number;
}

/** `parallel` requests spread over `processes` managers (each its own client), each setting one key. */
async function storm(parallel: number, processes: number): Promise<Figures> {
  const apps = Array.from({ length: processes }, () => manager());
  const first = apps[0]!;
  const session = await first.load(undefined, { secure: false });
  session.blob = "x".repeat(16 * 1024);
  const { setCookie } = await first.commit(session);
  const cookie = setCookie!.split(";", 1)[0]!;
  const recordBytes = Buffer.byteLength((await admin.get(`contention:${first.storeKeyOf(session.id)}`))!);
  const before = await serverCounters();
  const results = await Promise.allSettled(
    Array.from({ length: parallel }, async (_, i) => {
      const app = apps[i % processes]!;
      const s = await app.load(cookie, { secure: false });
      s[`k${i}`] = i;
      await app.commit(s);
    }),
  );
  const after = await serverCounters();
  const failed = results.filter((r) => r.status === "rejected");
  for (const r of failed) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(StoreUnavailableError);
  // Every change that was acknowledged landed.
  const final = await first.load(cookie, { secure: false });
  results.forEach((r, i) => {
    if (r.status === "fulfilled") expect(final[`k${i}`], `k${i}`).toBe(i);
  });
  const figures = {
    failed: failed.length,
    casPerRequest: (after.cas - before.cas) / parallel,
    recordsOutPerRequest: (after.out - before.out) / recordBytes / parallel,
  };
  console.log(`[contention] ${parallel} parallel writers on one ~16 KB session in ${processes} process(es): ${JSON.stringify(figures)}`);
  return figures;
}

describe("parallel writes to one session", () => {
  it("50 in parallel: none fails", { timeout: 60_000 }, async () => {
    const figures = await storm(50, 1);
    expect(figures.failed).toBe(0);
    expect(figures.casPerRequest).toBeLessThanOrEqual(3);
  });

  it("200 in parallel: a few compare-and-set calls and a few records of traffic per request", { timeout: 60_000 }, async () => {
    const figures = await storm(200, 1);
    expect(figures.failed).toBe(0);
    expect(figures.casPerRequest).toBeLessThanOrEqual(3);
    expect(figures.recordsOutPerRequest).toBeLessThanOrEqual(4);
  });

  it("200 in parallel from 4 processes: backoff keeps it bounded", { timeout: 60_000 }, async () => {
    const figures = await storm(200, 4);
    expect(figures.failed).toBe(0);
    expect(figures.casPerRequest).toBeLessThanOrEqual(6);
    expect(figures.recordsOutPerRequest).toBeLessThanOrEqual(8);
  });
});
