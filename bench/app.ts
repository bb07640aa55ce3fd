/**
 * One app process of the benchmark (forked by run.ts with an IPC channel). Arguments: framework,
 * then the JSON of an {@link AppContext}. Messages:
 *   → parent `{ type: "ready", port }` once listening;
 *   ← parent `{ type: "heap" }` → `{ type: "heap", heapUsed, rss }` after a full GC (needs --expose-gc);
 *   ← parent `{ type: "cpu" }` → `{ type: "cpu", user, system }`: CPU time used so far, microseconds;
 *   ← parent `{ type: "stop" }` → closes the server and the store clients, then exits.
 */
import type { Framework } from "./config.js";
import type { AppContext, RunningApp } from "./apps/common.js";

export type ParentMessage = { type: "heap" } | { type: "cpu" } | { type: "stop" };
export type ChildMessage = { type: "ready"; port: number } | { type: "heap"; heapUsed: number; rss: number } | { type: "cpu"; user: number; system: number };

async function start(framework: Framework, ctx: AppContext): Promise<RunningApp> {
  if (framework === "express") return (await import("./apps/express.js")).startExpress(ctx);
  if (framework === "koa") return (await import("./apps/koa.js")).startKoa(ctx);
  return (await import("./apps/fastify.js")).startFastify(ctx);
}

function send(message: ChildMessage): void {
  process.send?.(message);
}

const framework = process.argv[2] as Framework;
const ctx = JSON.parse(process.argv[3] ?? "{}") as AppContext;
const app = await start(framework, ctx);

process.on("message", (message: ParentMessage) => {
  if (message.type === "heap") {
    const gc = (globalThis as { gc?: () => void }).gc;
    // Several passes: weak maps and finalizers release in later cycles.
    for (let i = 0; i < 4; i++) gc?.();
    const { heapUsed, rss } = process.memoryUsage();
    send({ type: "heap", heapUsed, rss });
  } else if (message.type === "cpu") {
    const { user, system } = process.cpuUsage();
    send({ type: "cpu", user, system });
  } else if (message.type === "stop") {
    const timer = setTimeout(() => process.exit(0), 3000);
    timer.unref();
    app.close().finally(() => process.exit(0));
  }
});
process.on("disconnect", () => process.exit(0));
send({ type: "ready", port: app.port });
