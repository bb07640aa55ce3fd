/** App processes: forked with tsx, one per variant, talked to over IPC. */
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ChildMessage, ParentMessage } from "./app.js";
import type { AppContext } from "./apps/common.js";
import type { Framework, Variant } from "./config.js";

const APP = fileURLToPath(new URL("./app.ts", import.meta.url));
export const PROFILE_DIR = fileURLToPath(new URL("./results/profiles/", import.meta.url));

export interface AppProcess {
  readonly framework: Framework;
  readonly variant: Variant;
  readonly port: number;
  readonly pid: number;
  /** Heap in use after a full GC, and the RSS, in bytes. */
  heap(): Promise<{ heapUsed: number; rss: number }>;
  /** CPU time the app process used so far (user + system), microseconds. */
  cpu(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * `BENCH_PROFILE=express:ours-redis` (comma-separated, `*` for all) starts those apps with
 * `--cpu-prof`; the profiles land in bench/results/profiles/<framework>-<variant>-<time>/ when the
 * app stops (the largest file is the main thread's).
 */
function profiled(framework: Framework, variant: Variant): boolean {
  const wanted = (process.env.BENCH_PROFILE ?? "").split(",").map((s) => s.trim());
  return wanted.includes("*") || wanted.includes(`${framework}:${variant}`) || wanted.includes(framework);
}

export async function startApp(framework: Framework, ctx: AppContext): Promise<AppProcess> {
  const execArgv = ["--import", "tsx", "--expose-gc"];
  if (profiled(framework, ctx.variant)) {
    // One directory per app: Node writes a profile per thread (tsx's loader runs in a worker).
    const dir = `${PROFILE_DIR}${framework}-${ctx.variant}-${Date.now()}`;
    mkdirSync(dir, { recursive: true });
    execArgv.push("--cpu-prof", `--cpu-prof-dir=${dir}`);
  }
  const child: ChildProcess = fork(APP, [framework, JSON.stringify(ctx)], {
    execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: { ...process.env, NODE_ENV: "production" },
  });
  const port = await new Promise<number>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`bench: the ${framework} ${ctx.variant} app exited with ${code} before listening`));
    child.once("exit", onExit);
    child.on("message", function ready(message: ChildMessage) {
      if (message.type !== "ready") return;
      child.off("message", ready);
      child.off("exit", onExit);
      resolve(message.port);
    });
  });
  const request = <T extends ChildMessage["type"]>(message: ParentMessage, answer: T): Promise<Extract<ChildMessage, { type: T }>> =>
    new Promise((resolve) => {
      child.on("message", function reply(m: ChildMessage) {
        if (m.type !== answer) return;
        child.off("message", reply);
        resolve(m as Extract<ChildMessage, { type: T }>);
      });
      child.send(message);
    });
  return {
    framework,
    variant: ctx.variant,
    port,
    pid: child.pid ?? -1,
    heap: async () => {
      const { heapUsed, rss } = await request({ type: "heap" }, "heap");
      return { heapUsed, rss };
    },
    cpu: async () => {
      const { user, system } = await request({ type: "cpu" }, "cpu");
      return user + system;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.send({ type: "stop" } satisfies ParentMessage);
      }),
  };
}
