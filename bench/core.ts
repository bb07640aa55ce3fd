/**
 * Core micro-benchmark: session load + commit through the manager (read scenario: a valid cookie,
 * one GETEX, nothing written) against the limit, a bare ioredis `GETEX` loop on the same keys, at
 * the same concurrency, on the same client (createRedisClient: auto-pipelining). Rounds alternate;
 * the report is the median ratio.
 *
 * Around it, what the design choices save, at the same concurrency: GET + EXPIRE (two round trips,
 * what express-session + connect-redis send for a read) against one GETEX; GETEX without
 * auto-pipelining; a load + commit that changes a key (the cost every request would pay without
 * change detection). Each with the client's CPU per operation and the Redis commands and Redis CPU
 * per operation, from the server.
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
import { commandsPerRequest, type Counters } from "./services.js";

export interface CoreRound {
  /** Operations per second of the bare GETEX loop. */
  readonly bare: number;
  /** Load + commit pairs per second through the manager. */
  readonly manager: number;
}

/** One operation measured for the design table. */
export interface DesignRow {
  readonly name: string;
  /** Operations per second (median of the rounds). */
  readonly opsPerSecond: number;
  /** CPU of the client process per operation, microseconds. */
  readonly clientCpu: number;
  /** Commands Redis ran per operation (a script once) and Redis CPU per operation, microseconds. */
  readonly redisCommands: number;
  readonly redisCpu: number;
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
  /** Client CPU per operation, microseconds: bare GETEX and load + commit (medians). */
  readonly bareCpu: number;
  readonly managerCpu: number;
  readonly design: DesignRow[];
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
async function profileRun(run: () => Promise<unknown>, name: string): Promise<string> {
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

interface Driven {
  /** Operations per second. */
  readonly rate: number;
  /** Client CPU per operation, microseconds. */
  readonly cpu: number;
  readonly operations: number;
}

/** Run `concurrency` loops of `op(i)` for `seconds`. */
async function drive(concurrency: number, seconds: number, op: (i: number) => Promise<unknown>): Promise<Driven> {
  let running = true;
  let done = 0;
  const timer = setTimeout(() => (running = false), seconds * 1000);
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      while (running) {
        await op(i);
        done++;
      }
    }),
  );
  const cpu = process.cpuUsage(cpuBefore);
  clearTimeout(timer);
  return { rate: done / ((performance.now() - started) / 1000), cpu: (cpu.user + cpu.system) / done, operations: done };
}

export interface CoreOptions {
  concurrency?: number;
  seconds?: number;
  rounds?: number;
  warmup?: number;
  /** Server counters, for the commands and Redis CPU per operation of the design table. */
  counters?: () => Promise<Counters>;
}

export async function runCore(redisUrl: string, options: CoreOptions = {}): Promise<CoreResult> {
  const concurrency = options.concurrency ?? 64;
  const seconds = options.seconds ?? (QUICK ? 1 : 3);
  const roundCount = options.rounds ?? (QUICK ? 1 : 5);
  const warmup = options.warmup ?? (QUICK ? 0.5 : 2);
  const { core, redis } = await library();
  const { createRedisClient, RedisStore } = redis;
  const { createSessionManager } = core;
  const client = createRedisClient(redisUrl);
  // The same settings without auto-pipelining: one write per command.
  const unpipelined = createRedisClient(redisUrl, { enableAutoPipelining: false });
  for (const c of [client, unpipelined]) c.on("error", () => undefined);
  const prefix = `bench:core:${randomBytes(3).toString("hex")}:`;
  const store = new RedisStore({ client, prefix });
  const manager = createSessionManager<{ userId: number; counter?: number }>({ store, secret: SECRET, idleTimeout: IDLE_TTL });
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
    await drive(concurrency, warmup, bareOp);
    await drive(concurrency, warmup, managerOp);
    const rounds: CoreRound[] = [];
    const cpus = { bare: [] as number[], manager: [] as number[] };
    for (let r = 0; r < roundCount; r++) {
      // Alternate which goes first.
      let bare: Driven;
      let managed: Driven;
      if (r % 2 === 0) {
        bare = await drive(concurrency, seconds, bareOp);
        managed = await drive(concurrency, seconds, managerOp);
      } else {
        managed = await drive(concurrency, seconds, managerOp);
        bare = await drive(concurrency, seconds, bareOp);
      }
      rounds.push({ bare: bare.rate, manager: managed.rate });
      cpus.bare.push(bare.cpu);
      cpus.manager.push(managed.cpu);
      process.stderr.write(
        `core round ${r + 1}/${roundCount}: GETEX loop ${Math.round(bare.rate)}/s (${bare.cpu.toFixed(2)} µs CPU/op), ` +
          `load+commit ${Math.round(managed.rate)}/s (${managed.cpu.toFixed(2)} µs CPU/op), ratio ${(managed.rate / bare.rate).toFixed(3)}\n`,
      );
    }
    if (process.env.BENCH_CORE_PROFILE === "1") {
      const file = await profileRun(() => drive(concurrency, seconds, managerOp), "core-manager");
      const bareFile = await profileRun(() => drive(concurrency, seconds, bareOp), "core-bare");
      process.stderr.write(`core: profiles of the manager loop and of the bare loop in ${file}, ${bareFile}\n`);
    }

    // What the design choices save.
    const operations: [string, (i: number) => Promise<unknown>][] = [
      ["GETEX (one round trip: read and extend the idle TTL)", bareOp],
      [
        "GET, then EXPIRE (express-session + connect-redis for a read)",
        async (i) => {
          await client.get(keys[i]!);
          await client.expire(keys[i]!, IDLE_TTL);
        },
      ],
      ["GETEX without auto-pipelining", (i) => unpipelined.getex(keys[i]!, "EX", IDLE_TTL)],
      ["load + commit, unchanged (change detection: nothing written)", managerOp],
      [
        "load + commit, one key changed (GETEX + compare-and-set)",
        async (i) => {
          const session = await manager.load(cookies[i], { secure: false });
          session.counter = (session.counter ?? 0) + 1;
          await manager.commit(session);
        },
      ],
    ];
    const designSeconds = QUICK ? 1 : 2;
    const samples = new Map<string, { rate: number[]; cpu: number[]; commands: number[]; redisCpu: number[] }>();
    for (const [name, op] of operations) {
      samples.set(name, { rate: [], cpu: [], commands: [], redisCpu: [] });
      await drive(concurrency, warmup / 2, op);
    }
    for (let r = 0; r < (QUICK ? 1 : 3); r++) {
      for (const [name, op] of operations) {
        const before = await options.counters?.();
        const driven = await drive(concurrency, designSeconds, op);
        const after = await options.counters?.();
        const s = samples.get(name)!;
        s.rate.push(driven.rate);
        s.cpu.push(driven.cpu);
        if (before && after) {
          s.commands.push(commandsPerRequest(before, after, driven.operations).redis);
          s.redisCpu.push((after.redisCpu - before.redisCpu) / driven.operations);
        }
      }
    }
    const design: DesignRow[] = operations.map(([name]) => {
      const s = samples.get(name)!;
      const row = {
        name,
        opsPerSecond: median(s.rate),
        clientCpu: median(s.cpu),
        redisCommands: s.commands.length ? median(s.commands) : NaN,
        redisCpu: s.redisCpu.length ? median(s.redisCpu) : NaN,
      };
      process.stderr.write(
        `design: ${name}: ${Math.round(row.opsPerSecond)}/s, client ${row.clientCpu.toFixed(2)} µs CPU/op, Redis ${row.redisCommands.toFixed(2)} cmd/op ${row.redisCpu.toFixed(2)} µs CPU/op\n`,
      );
      return row;
    });
    return {
      concurrency,
      seconds,
      rounds,
      bare: median(rounds.map((r) => r.bare)),
      manager: median(rounds.map((r) => r.manager)),
      ratio: median(rounds.map((r) => r.manager / r.bare)),
      bareCpu: median(cpus.bare),
      managerCpu: median(cpus.manager),
      design,
    };
  } finally {
    await store.close();
    await Promise.all([client.quit(), unpipelined.quit()]);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { startServers } = await import("./services.js");
  await buildLibrary();
  const servers = await startServers();
  try {
    const result = await runCore(servers.redisUrl, { counters: () => servers.counters() });
    console.log(JSON.stringify({ ...result, rounds: undefined }, null, 2));
  } finally {
    await servers.close();
  }
}
