/**
 * `npm run bench`: shared-session against the bare frameworks and the peers, side by side.
 *
 * Starts its own Redis and Memcached on loopback, then for Express, Koa and Fastify runs every
 * variant (bare, ours on Redis, ours on Memcached, the peer) in its own process, under autocannon
 * in this process, for the read, write, anonymous and login scenarios; rounds alternate between the
 * variants and the median is kept. Then the scale-out scenario (1, 2, 4 app processes on one Redis),
 * the core micro-benchmark and the memory check. Every Redis variant's Redis CPU per request comes
 * from `INFO cpu`. Writes bench/results/latest.json, latest.md and chart.svg; `npx tsx
 * bench/readme-tables.ts` prints the README's tables from latest.json.
 *
 * Environment: BENCH_QUICK=1 (smoke run), BENCH_FRAMEWORKS, BENCH_SCENARIOS (comma lists),
 * BENCH_DURATION / BENCH_WARMUP (seconds), BENCH_ROUNDS / BENCH_READ_ROUNDS, BENCH_CONNECTIONS,
 * BENCH_CORE=0, BENCH_MEMORY=0, BENCH_SCALEOUT=0 (skip the scale-out scenario), BENCH_SCALE_FRAMEWORK
 * (default fastify), BENCH_SCALE_PROCESSES (default 1,2,4), BENCH_PROFILE=<framework>:<variant> (CPU profile of that app),
 * BENCH_WAIT_QUIET=<minutes> (wait for a load average below 0.7 first),
 * BENCH_OUT=<dir> (default bench/results, bench/results/quick in quick mode), BENCH_PROVIDER=binaries|docker, REDIS_URL, MEMCACHED_SERVERS.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { loadConfig } from "./config.js";
import { runCore, type CoreResult } from "./core.js";
import { runFramework, type Cell } from "./matrix.js";
import { runMemory, type MemoryResult } from "./memory.js";
import { runScaleOut, type ScaleOutResult } from "./scaleout.js";
import { buildLibrary } from "./library.js";
import { checkTargets, markdown, svg, type BenchResults } from "./report.js";
import { startServers } from "./services.js";

const config = loadConfig();
// A quick run does not overwrite the figures of the last full run (the README shows those).
const outDir = process.env.BENCH_OUT ?? fileURLToPath(new URL(config.quick ? "./results/quick/" : "./results/", import.meta.url));
// BENCH_WAIT_QUIET=<minutes>: wait (up to that long) for the 1-minute load average to fall below
// 0.7, so other work on the machine does not skew the figures.
const waitQuiet = Number(process.env.BENCH_WAIT_QUIET ?? 0);
for (const deadline = Date.now() + waitQuiet * 60_000; os.loadavg()[0]! >= 0.7 && Date.now() < deadline; ) {
  process.stderr.write(`bench: waiting for a quiet machine (load average ${os.loadavg()[0]!.toFixed(2)})\n`);
  await new Promise((resolve) => setTimeout(resolve, 15_000));
}
const started = Date.now();
const loadBefore = os.loadavg();
if (loadBefore[0]! > 1) {
  process.stderr.write(`bench: the machine is busy (1-minute load average ${loadBefore[0]!.toFixed(2)}); figures will be lower and noisier than on an idle machine\n`);
}

const build = await buildLibrary();
process.stderr.write(`bench: shared-session from ${build === "source" ? "the TypeScript sources (BENCH_SOURCE=1)" : build}\n`);
const servers = await startServers();
let cells: Cell[] = [];
let core: CoreResult | null = null;
let memory: MemoryResult | null = null;
let scaleOut: ScaleOutResult | null = null;
try {
  for (const framework of config.frameworks) cells = cells.concat(await runFramework(framework, config, servers));
  if (config.scaleOut) scaleOut = await runScaleOut(config.scaleFramework, config, servers);
  if (config.core) core = await runCore(servers.redisUrl, { counters: () => servers.counters() });
  if (config.memory) memory = await runMemory(servers, config.memorySessions);
  const versions = await servers.versions();
  const cpus = os.cpus();
  const results: BenchResults = {
    generatedAt: new Date().toISOString(),
    minutes: (Date.now() - started) / 60_000,
    machine: {
      cpus: cpus.length,
      cpuModel: cpus[0]?.model.trim() ?? "?",
      node: process.versions.node,
      os: `${os.type()} ${os.release()}`,
      redis: versions.redis,
      memcached: versions.memcached,
      loadBefore,
      loadAfter: os.loadavg(),
    },
    config,
    cells,
    core,
    memory,
    scaleOut,
    targets: checkTargets(cells, core, memory),
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(`${outDir}/latest.json`, `${JSON.stringify(results, null, 2)}\n`);
  const md = markdown(results);
  writeFileSync(`${outDir}/latest.md`, md);
  writeFileSync(`${outDir}/chart.svg`, svg(results));
  process.stdout.write(md);
  process.stderr.write(`bench: wrote ${outDir}/latest.json, latest.md and chart.svg in ${results.minutes.toFixed(1)} min\n`);
} finally {
  await servers.close();
}
