/**
 * A Redis server that answers `GETEX` as a server older than 6.2 does ("ERR unknown command"), by
 * starting one with `rename-command GETEX ""`. Uses the test-services launcher chosen for this run
 * (the public start functions take no server arguments).
 */
import { inject } from "vitest";
import { PortTakenError, type LaunchedServer } from "../services/launcher.js";
import { pickPort } from "../services/ports.js";
import { chooseLauncher, launcherFor } from "../services/resolve.js";
import type { LauncherName } from "../services/types.js";

async function launcherName(): Promise<LauncherName> {
  const chosen = inject("sharedSessionServices")?.launcher;
  if (typeof chosen === "string") return chosen;
  const choice = await chooseLauncher();
  if ("launcher" in choice) return choice.launcher;
  throw new Error(`cannot start a Redis server for this test: ${choice.problem}`);
}

/** Starts a Redis server without `GETEX`; `close()` removes it. */
export async function startRedisWithoutGetex(): Promise<{ url: string; close: () => Promise<void> }> {
  const launcher = launcherFor(await launcherName());
  for (let attempt = 1; ; attempt++) {
    const port = await pickPort();
    let server: LaunchedServer;
    try {
      server = await launcher.launch({
        kind: "redis",
        port,
        args: ["--port", String(port), "--bind", "127.0.0.1", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--rename-command", "GETEX", ""],
      });
    } catch (error) {
      if (error instanceof PortTakenError && attempt < 5) continue;
      throw error;
    }
    return { url: `redis://${server.address.host}:${server.address.port}`, close: () => server.close() };
  }
}
