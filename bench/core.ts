/**
 * Core micro-benchmark: session load + commit through the manager (read scenario: a valid cookie,
 * one GETEX, nothing written) against the limit, a bare ioredis `GETEX` loop on the same keys, at
 * the same concurrency, on the same client (createRedisClient: auto-pipelining). Rounds alternate;
 * the report is the median ratio.
 *
 *   npm run bench:core                 # starts its own Redis
 *   REDIS_URL=redis://… npm run bench:core
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { Session as InspectorSession } from "node:inspector/promises";
import { fileURLToPath } from "node:url";
import type { Session } from "../src/index.js";
import { IDLE_TTL, QUICK, SECRET } from "./config.js";
import { buildLibrary, library } from "./library.js";

export interface CoreRound {
  /** Operations per second of the bare GETEX loop. */
  readonly bare: number;
  /** Load + commit pairs per second through the manager. */
  readonly manager: number;
}

export interface CoreResult {
  readonly concurrency: number;
  readonly seconds: number;
  readonly rounds: CoreRound[];
  /** Medians. */
  readonly bare: number;
  readonly manager: number;
  /** Median of the per-round ratios manager / bare. */
  readonly ratio: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * `BENCH_CORE_PROFILE=1`: CPU-profile one extra run of each loop (nothing else in the profile) into
 * bench/results/profiles/core-manager.cpuprofile and core-bare.cpuprofile; read them with
 * profile-summary.ts.
 */
async function profileRun(run: () => Promise<unknown>, name = "core-manager"): Promise<string> {
  const inspector = new InspectorSession();
  inspector.connect();
  await inspector.post("Profiler.enable");
  await inspector.post("Profiler.setSamplingInterval", { interval: 100 });
  await inspector.post("Profiler.start");
  await run();
  const { profile } = await inspector.post("Profiler.stop");
  inspector.disconnect();
  const dir = fileURLToPath(new URL("./results/profiles/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}${name}.cpuprofile`;
  writeFileSync(file, JSON.stringify(profile));
  return file;
}

/** Run `concurrency` loops of `op(i)` for `seconds`; operations per second. */
async function drive(concurrency: number, seconds: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let running = true;
  let done = 0;
  const timer = setTimeout(() => (running = false), seconds * 1000);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      while (running) {
        await op(i);
        done++;
      }
    }),
  );
  clearTimeout(timer);
  return done / ((performance.now() - started) / 1000);
}

export async function runCore(redisUrl: string, options: { concurrency?: number; seconds?: number; rounds?: number; warmup?: number } = {}): Promise<CoreResult> {
  const concurrency = options.concurrency ?? 64;
  const seconds = options.seconds ?? (QUICK ? 1 : 3);
  const roundCount = options.rounds ?? (QUICK ? 1 : 5);
  const { core, redis } = await library();
  const { createRedisClient, RedisStore } = redis;
  const { createSessionManager } = core;
  const client = createRedisClient(redisUrl);
  client.on("error", () => undefined);
  const prefix = `bench:core:${randomBytes(3).toString("hex")}:`;
  const store = new RedisStore({ client, prefix });
  const manager = createSessionManager<{ userId: number }>({ store, secret: SECRET, idleTimeout: IDLE_TTL });
  try {
    // One session per loop, made through the manager as a login would.
    const cookies: string[] = [];
    const keys: string[] = [];
    for (let i = 0; i < concurrency; i++) {
      const session: Session<{ userId: number }> = await manager.load(undefined, { secure: false });
      session.userId = i + 1;
      const { setCookie } = await manager.commit(session);
      cookies.push(setCookie!.split(";", 1)[0]!);
      keys.push(prefix + session.id);
    }
    const bareOp = (i: number) => client.getex(keys[i]!, "EX", IDLE_TTL);
    const managerOp = async (i: number) => {
      const session = await manager.load(cookies[i], { secure: false });
      if (session.isNew) throw new Error("bench core: the session did not load");
      await manager.commit(session);
    };
    const warmup = options.warmup ?? (QUICK ? 0.5 : 2);
    await drive(concurrency, warmup, bareOp);
    await drive(concurrency, warmup, managerOp);
    const rounds: CoreRound[] = [];
    for (let r = 0; r < roundCount; r++) {
      // Alternate which goes first.
      let bare: number;
      let managed: number;
      if (r % 2 === 0) {
        bare = await drive(concurrency, seconds, bareOp);
        managed = await drive(concurrency, seconds, managerOp);
      } else {
        managed = await drive(concurrency, seconds, managerOp);
        bare = await drive(concurrency, seconds, bareOp);
      }
      rounds.push({ bare, manager: managed });
      process.stderr.write(`core round ${r + 1}/${roundCount}: GETEX loop ${Math.round(bare)}/s, load+commit ${Math.round(managed)}/s, ratio ${(managed / bare).toFixed(3)}\n`);
    }
    if (process.env.BENCH_CORE_PROFILE === "1") {
      const file = await profileRun(() => drive(concurrency, seconds, managerOp));
      const bareFile = await profileRun(() => drive(concurrency, seconds, bareOp), "core-bare");
      process.stderr.write(`core: profiles of the manager loop and of the bare loop in ${file}, ${bareFile}\n`);
    }
    return {
      concurrency,
      seconds,
      rounds,
      bare: median(rounds.map((r) => r.bare)),
      manager: median(rounds.map((r) => r.manager)),
      ratio: median(rounds.map((r) => r.manager / r.bare)),
    };
  } finally {
    await store.close();
    await client.quit();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { startServers } = await import("./services.js");
  await buildLibrary();
  const servers = await startServers();
  try {
    const result = await runCore(servers.redisUrl);
    console.log(JSON.stringify({ ...result, rounds: undefined }, null, 2));
  } finally {
    await servers.close();
  }
}
