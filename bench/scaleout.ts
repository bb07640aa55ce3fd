/**
 * Scale-out: 1, 2 and 4 app processes of one framework on one Redis, ours and the peer, for the
 * read and write scenarios. Every process serves the same sessions (same prefix, same secret), the
 * load is split over them (one autocannon per process, the connections shared out), and the Redis
 * CPU per request says how many requests one Redis core can serve, however many processes there are.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { startApp, type AppProcess } from "./children.js";
import type { BenchConfig, Framework, Scenario, Variant } from "./config.js";
import { createSessions, load } from "./load.js";
import { median } from "./matrix.js";
import { commandsPerRequest, type BenchServers } from "./services.js";

export interface ScaleOutRow {
  readonly framework: Framework;
  readonly variant: Variant;
  readonly scenario: Scenario;
  readonly processes: number;
  /** Requests per second, all processes together (median of the rounds). */
  readonly rps: number;
  /** Redis CPU per request, microseconds (over all rounds). */
  readonly redisCpu: number;
  /** Redis commands per request (over all rounds). */
  readonly redisCommands: number;
  /** Requests one fully busy Redis core would serve at this CPU per request: 1e6 / redisCpu. */
  readonly perRedisCore: number;
  readonly failures: number;
}

export interface ScaleOutResult {
  readonly framework: Framework;
  readonly rows: ScaleOutRow[];
}

const VARIANTS: readonly Variant[] = ["ours-redis", "peer-redis"];
const SCENARIOS: readonly Scenario[] = ["read", "write"];

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Runs the scale-out scenario for `framework` with the process counts of the config. */
export async function runScaleOut(framework: Framework, config: BenchConfig, servers: BenchServers): Promise<ScaleOutResult> {
  const rows: ScaleOutRow[] = [];
  for (const variant of VARIANTS) {
    for (const processes of config.scaleProcesses) {
      const prefix = `bench:${randomBytes(3).toString("hex")}:scale:${variant}:`;
      const apps: AppProcess[] = [];
      try {
        for (let i = 0; i < processes; i++) apps.push(await startApp(framework, { variant, redisUrl: servers.redisUrl, memcached: servers.memcached, prefix }));
        // Sessions made through one process, used through all: they share the store.
        const cookies = await createSessions(apps[0]!.port, config.connections);
        const perApp = Math.max(1, Math.floor(config.connections / processes));
        const share = (i: number) => cookies.slice(i * perApp, (i + 1) * perApp);
        for (const scenario of SCENARIOS) {
          await Promise.all(apps.map((app, i) => load(app.port, scenario, { connections: perApp, seconds: config.warmup, cookies: share(i) })));
          await sleep(200);
          const rounds: { rps: number; sent: number; redisCpu: number; redisCommands: number; failures: number }[] = [];
          for (let r = 0; r < config.rounds; r++) {
            const before = await servers.counters();
            const results = await Promise.all(apps.map((app, i) => load(app.port, scenario, { connections: perApp, seconds: config.duration, cookies: share(i) })));
            await sleep(200);
            const after = await servers.counters();
            const sent = results.reduce((n, x) => n + x.sent, 0);
            rounds.push({
              rps: results.reduce((n, x) => n + x.rps, 0),
              sent,
              redisCpu: (after.redisCpu - before.redisCpu) / sent,
              redisCommands: commandsPerRequest(before, after, sent).redis,
              failures: results.reduce((n, x) => n + x.failures, 0),
            });
          }
          const sent = rounds.reduce((n, x) => n + x.sent, 0);
          const redisCpu = rounds.reduce((n, x) => n + x.redisCpu * x.sent, 0) / sent;
          const row: ScaleOutRow = {
            framework,
            variant,
            scenario,
            processes,
            rps: median(rounds.map((x) => x.rps)),
            redisCpu,
            redisCommands: rounds.reduce((n, x) => n + x.redisCommands * x.sent, 0) / sent,
            perRedisCore: 1e6 / redisCpu,
            failures: rounds.reduce((n, x) => n + x.failures, 0),
          };
          rows.push(row);
          log(
            `scale-out ${framework} ${variant.padEnd(10)} ${scenario.padEnd(5)} ${processes} process(es): ${Math.round(row.rps)} req/s, ` +
              `Redis ${row.redisCpu.toFixed(2)} µs CPU and ${row.redisCommands.toFixed(2)} commands per request (${Math.round(row.perRedisCore)} req/s per Redis core)` +
              `${row.failures ? `  FAILURES ${row.failures}` : ""}`,
          );
        }
      } finally {
        await Promise.all(apps.map((app) => app.stop()));
      }
    }
  }
  return { framework, rows };
}
