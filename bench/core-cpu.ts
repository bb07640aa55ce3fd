/**
 * The core's own cost, without any server: CPU time per session load + commit through the manager
 * (read scenario: a valid cookie, nothing changed) against a store that answers at once from memory.
 * CPU time, unlike throughput, stays comparable on a machine busy with other work, which makes it
 * the figure to compare before and after a change to src/core.
 *
 *   npx tsx bench/core-cpu.ts              # the package as tsup builds it
 *   BENCH_SOURCE=1 npx tsx bench/core-cpu.ts
 *   BENCH_CORE_PROFILE=1 npx tsx bench/core-cpu.ts   # + bench/results/profiles/core-cpu.cpuprofile
 *   BENCH_LIBRARY_DIR=/path/to/an/esm/build npx tsx bench/core-cpu.ts   # A/B against another build
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { Session as InspectorSession } from "node:inspector/promises";
import { fileURLToPath } from "node:url";
import type { SessionStore } from "../src/index.js";
import { SECRET } from "./config.js";
import { buildLibrary, library } from "./library.js";

const CONCURRENCY = 64;
const OPERATIONS = 128_000;
const RUNS = 5;

if (!process.env.BENCH_LIBRARY_DIR) await buildLibrary();
const { createSessionManager } = (await library()).core;
const records = new Map<string, string>();
const store: SessionStore = {
  name: "InstantStore",
  capabilities: { refreshOnGet: true, list: false, compareAndSet: false, ownerIndex: false },
  get: async (id) => records.get(id) ?? null,
  create: async (id, record) => {
    if (records.has(id)) return false;
    records.set(id, record);
    return true;
  },
  update: async (id, record) => records.has(id) && Boolean(records.set(id, record)),
  touch: async (id) => records.has(id),
  destroy: async (id) => void records.delete(id),
};
const manager = createSessionManager<{ userId: number }>({ store, secret: SECRET });
const cookies: string[] = [];
for (let i = 0; i < CONCURRENCY; i++) {
  const session = await manager.load(undefined, { secure: false });
  session.userId = i + 1;
  const { setCookie } = await manager.commit(session);
  cookies.push(setCookie!.split(";", 1)[0]!);
}

/** Microseconds of CPU per load + commit over `total` operations, `CONCURRENCY` in flight. */
async function run(total: number): Promise<number> {
  const perLoop = total / CONCURRENCY;
  const before = process.cpuUsage();
  await Promise.all(
    cookies.map(async (cookie) => {
      for (let k = 0; k < perLoop; k++) {
        const session = await manager.load(cookie, { secure: false });
        if (session.isNew) throw new Error("core-cpu: the session did not load");
        await manager.commit(session);
      }
    }),
  );
  const used = process.cpuUsage(before);
  return (used.user + used.system) / total;
}

await run(OPERATIONS / 2);
const results: number[] = [];
for (let r = 0; r < RUNS; r++) results.push(await run(OPERATIONS));
console.log(`load + commit, CPU per operation: ${results.map((x) => x.toFixed(2)).join(" ")} µs`);

if (process.env.BENCH_CORE_PROFILE === "1") {
  const inspector = new InspectorSession();
  inspector.connect();
  await inspector.post("Profiler.enable");
  await inspector.post("Profiler.setSamplingInterval", { interval: 50 });
  await inspector.post("Profiler.start");
  await run(OPERATIONS * 2);
  const { profile } = await inspector.post("Profiler.stop");
  inspector.disconnect();
  const dir = fileURLToPath(new URL("./results/profiles/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}core-cpu.cpuprofile`, JSON.stringify(profile));
  console.log(`profile: ${dir}core-cpu.cpuprofile`);
}
