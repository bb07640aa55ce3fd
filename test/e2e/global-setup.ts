/**
 * vitest globalSetup of the `e2e` project: one Redis for the examples, from the same providers
 * as the integration tests (`REDIS_URL`, else Docker through testcontainers, else `redis-server`
 * on PATH). Only Redis: the browser journeys need nothing else, so the rest is marked unavailable.
 * Test files read it with `services().redis` from test/services/index.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { RUN_DIR_VARIABLE, waitForReapers } from "../services/reaper.js";
import { chooseLauncher, forcedProvider, launcherFor, servicesFromEnv } from "../services/resolve.js";
import { startRedisOn } from "../services/topology.js";
import type { SharedServicesDescriptor, Unavailable } from "../services/types.js";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runDir = mkdtempSync(join(tmpdir(), "shared-session-e2e-"));
  process.env[RUN_DIR_VARIABLE] = runDir;
  const notStarted: Unavailable = { unavailable: "the e2e project starts only Redis" };
  const closers: (() => Promise<void>)[] = [];

  const forced = forcedProvider();
  const fromEnv = forced === undefined || forced === "env" ? servicesFromEnv().redis : undefined;
  let descriptor: SharedServicesDescriptor;
  if (fromEnv) {
    descriptor = { redis: fromEnv, redisCluster: notStarted, redisSentinel: notStarted, memcached: notStarted, memcachedMulti: notStarted, servedBy: { redis: "env" }, launcher: notStarted };
  } else {
    const choice = await chooseLauncher();
    if (!("launcher" in choice)) throw new Error(`[e2e] no Redis for the browser tests: ${choice.problem}`);
    const redis = await startRedisOn(launcherFor(choice.launcher));
    closers.push(redis.close);
    descriptor = {
      redis: { host: redis.host, port: redis.port, url: redis.url },
      redisCluster: notStarted,
      redisSentinel: notStarted,
      memcached: notStarted,
      memcachedMulti: notStarted,
      servedBy: { redis: choice.launcher },
      launcher: choice.launcher,
    };
  }
  console.log(`[e2e] Redis ${"url" in descriptor.redis ? descriptor.redis.url : "?"} (${descriptor.servedBy.redis})`);
  project.provide("sharedSessionServices", descriptor);

  return async () => {
    await Promise.allSettled(closers.map((close) => close()));
    await waitForReapers(runDir);
    rmSync(runDir, { recursive: true, force: true });
  };
}
