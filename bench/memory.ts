/**
 * Memory check: one Express app on our Redis binding serves N distinct sessions (each logged in,
 * then read back once with its own cookie); its heap after a full GC is compared after 1,000 and
 * after 100,000 sessions. A process that keeps nothing per session holds the same heap.
 */
import autocannon from "autocannon";
import { setTimeout as sleep } from "node:timers/promises";
import { ROUTES } from "./apps/common.js";
import { startApp } from "./children.js";
import { cookieHeaderOf } from "./load.js";
import type { BenchServers } from "./services.js";

export interface MemoryPoint {
  /** Distinct sessions created and read so far. */
  readonly sessions: number;
  /** Bytes, after a full GC. */
  readonly heapUsed: number;
  readonly rss: number;
}

export interface MemoryResult {
  readonly app: string;
  readonly points: MemoryPoint[];
  /** Heap growth from the first to the last point, bytes. */
  readonly growth: number;
  /** Requests that did not get a 2xx. */
  readonly failures: number;
}

/** Log in and read back `sessions` new sessions: two requests each, 32 connections. */
async function serve(port: number, sessions: number): Promise<number> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: 32,
    amount: sessions * 2,
    requests: [
      {
        method: "POST",
        path: ROUTES.login,
        onResponse: (_status, _body, context, headers) => {
          (context as { cookie?: string }).cookie = cookieHeaderOf(headers?.["set-cookie"] as string | string[] | undefined);
        },
      },
      {
        method: "GET",
        path: ROUTES.read,
        setupRequest: (request, context) => ({ ...request, headers: { ...request.headers, cookie: (context as { cookie?: string }).cookie ?? "" } }),
      },
    ],
  });
  return result.non2xx + result.errors + result.timeouts;
}

export async function runMemory(servers: BenchServers, checkpoints: readonly number[]): Promise<MemoryResult> {
  const app = await startApp("express", { variant: "ours-redis", redisUrl: servers.redisUrl, memcached: servers.memcached, prefix: `bench:memory:${Date.now()}:` });
  try {
    // JIT and pools warm before the first reading, so the first point is not the cold start.
    const warm = Math.min(500, Math.floor(checkpoints[0]! / 2));
    let failures = await serve(app.port, warm);
    let served = warm;
    const points: MemoryPoint[] = [];
    for (const target of checkpoints) {
      failures += await serve(app.port, target - served);
      served = target;
      await sleep(500);
      const { heapUsed, rss } = await app.heap();
      points.push({ sessions: served, heapUsed, rss });
      process.stderr.write(`memory: after ${served} sessions heap ${(heapUsed / 1048576).toFixed(2)} MB, rss ${(rss / 1048576).toFixed(1)} MB\n`);
    }
    return { app: "express + shared-session + Redis", points, growth: points[points.length - 1]!.heapUsed - points[0]!.heapUsed, failures };
  } finally {
    await app.stop();
  }
}
