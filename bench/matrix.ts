/**
 * The HTTP matrix: for each framework, every variant in its own process, every scenario, rounds
 * alternating between the variants, the median kept.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { startApp, type AppProcess } from "./children.js";
import { peerOf, runsIn, variantsOf, VARIANT_LABEL, type BenchConfig, type Framework, type Scenario, type Variant } from "./config.js";
import { createSessions, load, type LoadResult } from "./load.js";
import { commandsPerRequest, type BenchServers, type CommandCount, type Counters } from "./services.js";

/** CPU time per request of each process, microseconds: where a 2-core machine's time goes. */
export interface CpuPerRequest {
  /** The app process. */
  readonly app: number;
  /** autocannon (this process). */
  readonly loadgen: number;
  readonly redis: number;
  readonly memcached: number;
}

export interface Round extends LoadResult {
  readonly commands: CommandCount;
  readonly cpu: CpuPerRequest;
}

export interface Cell {
  readonly framework: Framework;
  readonly scenario: Scenario;
  readonly variant: Variant;
  readonly label: string;
  readonly rounds: Round[];
  /** Median requests/s over the rounds. */
  readonly rps: number;
  /** Median p99 latency over the rounds, milliseconds. */
  readonly p99: number;
  /** Commands per request over all rounds (server counters / requests sent). */
  readonly commands: CommandCount;
  /** Requests that failed (non-2xx, errors, timeouts) over all rounds. */
  readonly failures: number;
  /** CPU per request over all rounds. */
  readonly cpu: CpuPerRequest;
  /** rps / rps of the bare framework in this run. */
  vsBare?: number;
  /** rps / rps of the peer in this run, and which peer. */
  vsPeer?: number;
  peer?: Variant;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

function sumCommands(rounds: readonly Round[]): CommandCount {
  const sent = rounds.reduce((n, r) => n + r.sent, 0);
  const weighted = (pick: (c: CommandCount) => number) => rounds.reduce((n, r) => n + pick(r.commands) * r.sent, 0) / sent;
  const breakdown: Record<string, number> = {};
  for (const r of rounds) for (const [name, value] of Object.entries(r.commands.breakdown)) breakdown[name] = (breakdown[name] ?? 0) + (value * r.sent) / sent;
  return { redis: weighted((c) => c.redis), memcached: weighted((c) => c.memcached), breakdown };
}

async function measure(app: AppProcess, scenario: Scenario, servers: BenchServers, seconds: number, connections: number, cookies: readonly string[]): Promise<Round> {
  const before: Counters = await servers.counters();
  const appBefore = await app.cpu();
  const selfBefore = process.cpuUsage();
  const result = await load(app.port, scenario, { connections, seconds, cookies });
  const self = process.cpuUsage(selfBefore);
  // Requests still in flight when the time was up finish on the server before the counters are read.
  await sleep(200);
  const after: Counters = await servers.counters();
  const appUsed = (await app.cpu()) - appBefore;
  const n = result.sent;
  const cpu: CpuPerRequest = {
    app: appUsed / n,
    loadgen: (self.user + self.system) / n,
    redis: (after.redisCpu - before.redisCpu) / n,
    memcached: (after.memcachedCpu - before.memcachedCpu) / n,
  };
  return { ...result, commands: commandsPerRequest(before, after, n), cpu };
}

function sumCpu(rounds: readonly Round[]): CpuPerRequest {
  const sent = rounds.reduce((n, r) => n + r.sent, 0);
  const weighted = (pick: (c: CpuPerRequest) => number) => rounds.reduce((n, r) => n + pick(r.cpu) * r.sent, 0) / sent;
  return { app: weighted((c) => c.app), loadgen: weighted((c) => c.loadgen), redis: weighted((c) => c.redis), memcached: weighted((c) => c.memcached) };
}

/** Runs the whole matrix for one framework. */
export async function runFramework(framework: Framework, config: BenchConfig, servers: BenchServers): Promise<Cell[]> {
  const variants = variantsOf(framework);
  const apps = new Map<Variant, AppProcess>();
  const run = randomBytes(3).toString("hex");
  try {
    for (const variant of variants) {
      apps.set(variant, await startApp(framework, { variant, redisUrl: servers.redisUrl, memcached: servers.memcached, prefix: `bench:${run}:${framework}:${variant}:` }));
    }
    // One session per connection, made through each app's own login route; read and write share them.
    const cookies = new Map<Variant, string[]>();
    const cells: Cell[] = [];
    for (const scenario of config.scenarios) {
      const inScenario = variants.filter((v) => runsIn(v, scenario));
      for (const variant of inScenario) {
        if ((scenario === "read" || scenario === "write") && !cookies.has(variant)) {
          cookies.set(variant, variant === "bare" || variant === "floor-redis" ? [`sid=${"x".repeat(80)}`] : await createSessions(apps.get(variant)!.port, config.connections));
        }
      }
      for (const variant of inScenario) {
        await load(apps.get(variant)!.port, scenario, { connections: config.connections, seconds: config.warmup, cookies: cookies.get(variant) });
        await sleep(200);
      }
      const rounds = new Map<Variant, Round[]>(inScenario.map((v) => [v, []]));
      const count = scenario === "read" ? config.readRounds : config.rounds;
      for (let r = 0; r < count; r++) {
        // Rotate the order each round: no variant always runs first, or right after the same one.
        const order = inScenario.map((_, i) => inScenario[(i + r) % inScenario.length]!);
        for (const variant of order) {
          const round = await measure(apps.get(variant)!, scenario, servers, config.duration, config.connections, cookies.get(variant) ?? []);
          rounds.get(variant)!.push(round);
          log(
            `${framework.padEnd(8)} ${scenario.padEnd(9)} ${variant.padEnd(17)} round ${r + 1}/${count}: ${Math.round(round.rps).toString().padStart(6)} req/s  p99 ${round.p99} ms  ` +
              `redis ${round.commands.redis.toFixed(2)}  memcached ${round.commands.memcached.toFixed(2)} cmd/req  ` +
              `CPU µs/req app ${round.cpu.app.toFixed(1)} loadgen ${round.cpu.loadgen.toFixed(1)} redis ${round.cpu.redis.toFixed(1)} memcached ${round.cpu.memcached.toFixed(1)}` +
              `${round.failures ? `  FAILURES ${round.failures}` : ""}`,
          );
        }
      }
      const scenarioCells: Cell[] = inScenario.map((variant) => {
        const list = rounds.get(variant)!;
        return {
          framework,
          scenario,
          variant,
          label: VARIANT_LABEL[framework][variant],
          rounds: list,
          rps: median(list.map((x) => x.rps)),
          p99: median(list.map((x) => x.p99)),
          commands: sumCommands(list),
          failures: list.reduce((n, x) => n + x.failures, 0),
          cpu: sumCpu(list),
        };
      });
      const bare = scenarioCells.find((c) => c.variant === "bare");
      for (const cell of scenarioCells) {
        if (bare && cell !== bare) cell.vsBare = cell.rps / bare.rps;
        const peer = peerOf(framework, cell.variant);
        const peerCell = scenarioCells.find((c) => c.variant === peer);
        if (peerCell) {
          cell.vsPeer = cell.rps / peerCell.rps;
          cell.peer = peerCell.variant;
        }
      }
      cells.push(...scenarioCells);
    }
    return cells;
  } finally {
    await Promise.all([...apps.values()].map((app) => app.stop()));
  }
}
