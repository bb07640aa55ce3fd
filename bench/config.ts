/**
 * Settings of the benchmark, from the environment. `BENCH_QUICK=1` is a smoke run (about a
 * minute and a half): one short round per cell, good for checking that everything works, not for figures.
 */

/** The frameworks, each with its bare app, our bindings and the peer users would pick instead. */
export type Framework = "express" | "koa" | "fastify";
export const FRAMEWORKS: readonly Framework[] = ["express", "koa", "fastify"];

/**
 * What runs in one app process:
 * - `bare`: the framework alone, no session;
 * - `floor-redis`: the framework and one ioredis `GETEX` per request (createRedisClient, as ours),
 *   no session library: the cost of the Redis round trip alone, the floor of any Redis-backed
 *   session; read scenario only;
 * - `ours-redis` / `ours-memcached`: our binding on `RedisStore` / `MemcachedStore`;
 * - `peer-redis`: express-session + connect-redis, koa-session + koa-redis, @fastify/session + connect-redis;
 * - `peer-memcached`: express-session + connect-memcached (Express only);
 * - `peer-redis-fixed`: the Koa/Fastify peer without rolling (a fixed 24 h lifetime from the last
 *   write instead of an idle timeout): cheaper for it, not the same behaviour; read scenario only.
 */
export type Variant = "bare" | "floor-redis" | "ours-redis" | "ours-memcached" | "peer-redis" | "peer-memcached" | "peer-redis-fixed";

/** Human labels, as the tables and the chart print them. */
export const VARIANT_LABEL: Record<Framework, Record<Variant, string>> = {
  express: {
    bare: "express (no session)",
    "floor-redis": "express + one GETEX, no session (the floor)",
    "ours-redis": "shared-session + Redis",
    "ours-memcached": "shared-session + Memcached",
    "peer-redis": "express-session + connect-redis",
    "peer-memcached": "express-session + connect-memcached",
    "peer-redis-fixed": "express-session + connect-redis",
  },
  koa: {
    bare: "koa (no session)",
    "floor-redis": "koa + one GETEX, no session (the floor)",
    "ours-redis": "shared-session + Redis",
    "ours-memcached": "shared-session + Memcached",
    "peer-redis": "koa-session + koa-redis",
    "peer-memcached": "-",
    "peer-redis-fixed": "koa-session + koa-redis, no rolling",
  },
  fastify: {
    bare: "fastify (no session)",
    "floor-redis": "fastify + one GETEX, no session (the floor)",
    "ours-redis": "shared-session + Redis",
    "ours-memcached": "shared-session + Memcached",
    "peer-redis": "@fastify/session + connect-redis",
    "peer-memcached": "-",
    "peer-redis-fixed": "@fastify/session + connect-redis, no rolling",
  },
};

export type Scenario = "read" | "write" | "anonymous" | "login";
export const SCENARIOS: readonly Scenario[] = ["read", "write", "anonymous", "login"];

export const SCENARIO_TEXT: Record<Scenario, string> = {
  read: "valid cookie, the handler reads the session and changes nothing",
  write: "valid cookie, the handler changes one key",
  anonymous: "no cookie, the handler does not use the session",
  login: "no cookie, the handler regenerates and sets a key (creates a session)",
};

/** The variants measured for a framework, in the order a round runs them first. */
export function variantsOf(framework: Framework): Variant[] {
  const all: Variant[] = ["bare", "floor-redis", "ours-redis", "ours-memcached", "peer-redis"];
  if (framework === "express") all.push("peer-memcached");
  else all.push("peer-redis-fixed");
  return all;
}

/** Whether a variant runs in a scenario (the non-rolling peers and the floor only serve as read references). */
export function runsIn(variant: Variant, scenario: Scenario): boolean {
  return (variant !== "peer-redis-fixed" && variant !== "floor-redis") || scenario === "read";
}

/** The peer a variant of ours is compared with: the peer on the same kind of store when there is one. */
export function peerOf(framework: Framework, variant: Variant): Variant | undefined {
  if (variant === "ours-redis") return "peer-redis";
  if (variant === "ours-memcached") return framework === "express" ? "peer-memcached" : "peer-redis";
  return undefined;
}

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`bench: ${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return value;
}

function listFromEnv<T extends string>(name: string, all: readonly T[]): T[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return [...all];
  const picked = raw.split(",").map((s) => s.trim()).filter(Boolean);
  for (const item of picked) if (!all.includes(item as T)) throw new Error(`bench: ${name} lists unknown ${JSON.stringify(item)}; known: ${all.join(", ")}`);
  return picked as T[];
}

export const QUICK = process.env.BENCH_QUICK === "1" || process.env.BENCH_QUICK === "true";

export interface BenchConfig {
  readonly quick: boolean;
  /** Seconds of load per measured round. */
  readonly duration: number;
  /** Seconds of load before the first round of each cell (not measured). */
  readonly warmup: number;
  /** Rounds per cell; the report takes the median. */
  readonly rounds: number;
  /** Rounds of the read scenario, whose ratios the targets are about. */
  readonly readRounds: number;
  /** autocannon connections; each connection carries its own session cookie. */
  readonly connections: number;
  readonly frameworks: Framework[];
  readonly scenarios: Scenario[];
  /** Run the core micro-benchmark and the memory check after the HTTP matrix. */
  readonly core: boolean;
  readonly memory: boolean;
  /** Sessions created before each heap reading of the memory check. */
  readonly memorySessions: readonly [number, number];
  /** Run the scale-out scenario (1, 2, 4 app processes on one Redis), and with which framework. */
  readonly scaleOut: boolean;
  readonly scaleFramework: Framework;
  /** App process counts of the scale-out scenario. */
  readonly scaleProcesses: readonly number[];
}

export function loadConfig(): BenchConfig {
  return {
    quick: QUICK,
    duration: numberFromEnv("BENCH_DURATION", QUICK ? 1.5 : 3),
    warmup: numberFromEnv("BENCH_WARMUP", QUICK ? 0.5 : 1.5),
    rounds: Math.round(numberFromEnv("BENCH_ROUNDS", QUICK ? 1 : 3)),
    readRounds: Math.round(numberFromEnv("BENCH_READ_ROUNDS", QUICK ? 1 : 5)),
    connections: Math.round(numberFromEnv("BENCH_CONNECTIONS", 64)),
    frameworks: listFromEnv("BENCH_FRAMEWORKS", FRAMEWORKS),
    scenarios: listFromEnv("BENCH_SCENARIOS", SCENARIOS),
    core: process.env.BENCH_CORE !== "0",
    memory: process.env.BENCH_MEMORY !== "0",
    memorySessions: QUICK ? [1_000, 10_000] : [1_000, 100_000],
    scaleOut: process.env.BENCH_SCALEOUT !== "0",
    scaleFramework: process.env.BENCH_SCALE_FRAMEWORK ? listFromEnv("BENCH_SCALE_FRAMEWORK", FRAMEWORKS)[0]! : "fastify",
    scaleProcesses: (process.env.BENCH_SCALE_PROCESSES ?? "1,2,4").split(",").map((n) => {
      const value = Number(n.trim());
      if (!Number.isInteger(value) || value < 1) throw new Error(`bench: BENCH_SCALE_PROCESSES lists ${JSON.stringify(n)}, not a process count`);
      return value;
    }),
  };
}

/** The signing secret every variant uses (ours needs 32 characters; the peers accept it too). */
export const SECRET = "bench-secret-bench-secret-bench-secret-0123456789";

/** Idle timeout every variant is configured with, in seconds. */
export const IDLE_TTL = 86_400;
