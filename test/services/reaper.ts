import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { sleep } from "./probe.js";

/** A server process or container that must not outlive the process that started it. */
export type Resource =
  | { type: "pid"; pid: number; startTime?: string | undefined }
  /** Every container carrying the Docker label `key=value`. */
  | { type: "label"; label: string };

/** Set by globalSetup for the whole run; reapers mark their pending work there. */
export const RUN_DIR_VARIABLE = "SHARED_SESSION_RUN_DIR";

const live = new Map<string, Resource>();
let reaper: ChildProcess | undefined;
let nextKey = 0;
let exitHookInstalled = false;

function send(message: object): void {
  const stdin = reaper?.stdin;
  if (stdin && !stdin.destroyed) stdin.write(`${JSON.stringify(message)}\n`);
}

function ensureReaper(): void {
  if (reaper) return;
  // Started on demand and ended when the last server is gone, so no reaper outlives its work.
  const script = fileURLToPath(new URL("./reaper-process.mjs", import.meta.url));
  reaper = spawn(process.execPath, [script, process.env[RUN_DIR_VARIABLE] ?? ""], {
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  reaper.on("error", () => undefined);
  reaper.stdin?.on("error", () => undefined);
  // Neither the child nor the pipe may keep this process alive: its exit is the signal.
  reaper.unref();
  if (reaper.stdin instanceof net.Socket) reaper.stdin.unref();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A vitest worker process outlives a runner that was interrupted (SIGINT/SIGTERM make it exit
  // at once) and would keep its servers until its test ends: the IPC channel closing says so.
  if (process.env.VITEST_POOL_ID !== undefined && typeof process.send === "function") {
    process.once("disconnect", () => process.exit(130));
  }
  // Synchronous last chance for local processes; containers are left to the reaper.
  process.on("exit", () => {
    for (const resource of live.values()) {
      if (resource.type !== "pid") continue;
      try {
        process.kill(resource.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  });
}

/**
 * Registers a server with this process's reaper: if this process ends in any way before the
 * returned function is called, the server is killed (pid) or removed (container).
 */
export function track(resource: Resource): () => void {
  ensureReaper();
  installExitHook();
  const key = `${process.pid}-${nextKey++}`;
  live.set(key, resource);
  send({ op: "add", key, resource });
  return () => {
    if (!live.delete(key)) return;
    send({ op: "remove", key });
    if (live.size === 0) stopReaper();
  };
}

/** Lets the reaper exit: with nothing registered, closing its stdin makes it end at once. */
function stopReaper(): void {
  const current = reaper;
  if (!current) return;
  reaper = undefined;
  exiting.add(current);
  current.once("exit", () => exiting.delete(current));
  current.stdin?.end();
}

const exiting = new Set<ChildProcess>();

/** Resolves once the reapers this process let go have exited (bounded). */
export async function reapersExited(timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (exiting.size > 0 && Date.now() < deadline) await sleep(20);
}

/**
 * Waits (bounded) until no reaper of this run still holds servers: the reapers of test files
 * that exited without closing their servers finish removing them. Resolves what is left.
 */
export async function waitForReapers(runDir: string, timeoutMs = 30_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pending = existsSync(runDir) ? readdirSync(runDir).filter((name) => name.startsWith("reaper-")) : [];
    if (pending.length === 0 || Date.now() > deadline) return pending;
    await sleep(100);
  }
}
