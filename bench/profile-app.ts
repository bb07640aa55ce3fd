/**
 * Profile one app of the benchmark: starts its own Redis and Memcached, runs the app process with
 * `--cpu-prof` under autocannon, then prints where the app's main thread spent its time.
 *
 *   npx tsx bench/profile-app.ts express ours-redis read [seconds=5]
 *
 * The profile stays in bench/results/profiles/ (open it in Chrome DevTools, or re-read it with
 * `npx tsx bench/profile-summary.ts <file>`).
 */
import { readdirSync, statSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startApp } from "./children.js";
import { FRAMEWORKS, SCENARIOS, variantsOf, type Framework, type Scenario, type Variant } from "./config.js";
import { buildLibrary } from "./library.js";
import { createSessions, load } from "./load.js";
import { startServers } from "./services.js";

const [framework, variant, scenario, secondsArg] = process.argv.slice(2) as [Framework, Variant, Scenario, string | undefined];
if (!FRAMEWORKS.includes(framework) || !variantsOf(framework).includes(variant) || !SCENARIOS.includes(scenario)) {
  console.error("usage: npx tsx bench/profile-app.ts <express|koa|fastify> <variant> <read|write|anonymous|login> [seconds]");
  process.exit(2);
}
const seconds = Number(secondsArg ?? 5);
process.env.BENCH_PROFILE = `${framework}:${variant}`;
await buildLibrary();
const servers = await startServers();
try {
  const app = await startApp(framework, { variant, redisUrl: servers.redisUrl, memcached: servers.memcached, prefix: `profile:${Date.now()}:` });
  const cookies = variant === "bare" || variant === "floor-redis" ? [`sid=${"x".repeat(80)}`] : scenario === "read" || scenario === "write" ? await createSessions(app.port, 64) : [];
  await load(app.port, scenario, { connections: 64, seconds: 2, cookies });
  const result = await load(app.port, scenario, { connections: 64, seconds, cookies });
  console.log(`${framework} ${variant} ${scenario}: ${Math.round(result.rps)} req/s, p99 ${result.p99} ms, ${result.failures} failures`);
  await app.stop();
} finally {
  await servers.close();
}
const root = fileURLToPath(new URL("./results/profiles/", import.meta.url));
const dir = readdirSync(root)
  .filter((name) => name.startsWith(`${framework}-${variant}-`))
  .sort()
  .at(-1);
if (dir !== undefined) {
  // The main thread's profile is the largest (tsx's loader worker writes a small one too).
  const file = readdirSync(`${root}${dir}`)
    .map((name) => `${root}${dir}/${name}`)
    .sort((a, b) => statSync(b).size - statSync(a).size)[0];
  if (file !== undefined) {
    console.log(`profile: ${file}`);
    spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./profile-summary.ts", import.meta.url)), file, "40"], { stdio: "inherit" });
  }
}
