/**
 * vitest globalSetup of the `integration` project: starts the servers every integration test
 * file shares, once per run, and hands their addresses to test files (`services()` in index.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { RUN_DIR_VARIABLE, reapersExited, waitForReapers } from "./reaper.js";
import { chooseLauncher, forcedProvider, launcherFor, servicesFromEnv, type EnvServices } from "./resolve.js";
import { startClusterOn, startMemcachedOn, startRedisOn, startSentinelOn } from "./topology.js";
import type { LauncherName, ProviderName, SharedServiceName, SharedServicesDescriptor, Unavailable } from "./types.js";

type Described<K extends SharedServiceName> = SharedServicesDescriptor[K];

const SERVICE_LABELS: Record<SharedServiceName, string> = {
  redis: "Redis",
  redisCluster: "Redis Cluster (3 masters)",
  redisSentinel: "Redis Sentinel",
  memcached: "Memcached (1 server)",
  memcachedMulti: "Memcached (several)",
};

const ENV_VARIABLES: Record<SharedServiceName, string> = {
  redis: "REDIS_URL",
  redisCluster: "REDIS_CLUSTER_NODES",
  redisSentinel: "REDIS_SENTINELS",
  memcached: "MEMCACHED_SERVERS",
  memcachedMulti: "MEMCACHED_SERVERS (with 2 or more servers)",
};

function describeAddress(service: Described<SharedServiceName>, reasons: string[]): string {
  if ("unavailable" in service) {
    if (!reasons.includes(service.unavailable)) reasons.push(service.unavailable);
    return `UNAVAILABLE (${reasons.indexOf(service.unavailable) + 1} below)`;
  }
  if ("url" in service) return service.url;
  if ("nodes" in service) return service.nodes.map((node) => `${node.host}:${node.port}`).join(" ");
  if ("sentinels" in service) return `${service.name} via ${service.sentinels.map((node) => `${node.host}:${node.port}`).join(" ")}`;
  return service.servers.map((server) => server.address).join(" ");
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = performance.now();
  // Shared with every worker through the environment: their reapers mark pending work here.
  const runDir = mkdtempSync(join(tmpdir(), "shared-session-run-"));
  process.env[RUN_DIR_VARIABLE] = runDir;

  const forced = forcedProvider();
  const fromEnv: EnvServices = forced === undefined || forced === "env" ? servicesFromEnv() : {};
  const choice = await chooseLauncher();
  const launcher: LauncherName | Unavailable = "launcher" in choice ? choice.launcher : { unavailable: choice.problem };

  const closers: (() => Promise<void>)[] = [];
  const servedBy: Partial<Record<SharedServiceName, ProviderName>> = {};

  async function provide<K extends SharedServiceName>(
    name: K,
    start: (launcherName: LauncherName) => Promise<{ described: Exclude<Described<K>, Unavailable>; close: () => Promise<void> }>,
  ): Promise<Described<K>> {
    const given = fromEnv[name];
    if (given) {
      servedBy[name] = "env";
      return given as Described<K>;
    }
    if (forced === "env") {
      return { unavailable: `SHARED_SESSION_TEST_PROVIDER=env, but ${ENV_VARIABLES[name]} is not set` } as Described<K>;
    }
    if (typeof launcher !== "string") return launcher as Described<K>;
    try {
      const { described, close } = await start(launcher);
      closers.push(close);
      servedBy[name] = launcher;
      return described;
    } catch (error) {
      const reason = error instanceof Error ? `${error.message}${error.cause instanceof Error ? ` (${error.cause.message})` : ""}` : String(error);
      return { unavailable: `${SERVICE_LABELS[name]} could not start with the ${launcher} provider: ${reason}` } as Described<K>;
    }
  }

  const [redis, redisCluster, redisSentinel, memcached, memcachedMulti] = await Promise.all([
    provide("redis", async (name) => {
      const handle = await startRedisOn(launcherFor(name));
      return { described: { host: handle.host, port: handle.port, url: handle.url }, close: handle.close };
    }),
    provide("redisCluster", async (name) => {
      const handle = await startClusterOn(launcherFor(name));
      return { described: { nodes: handle.nodes }, close: handle.close };
    }),
    provide("redisSentinel", async (name) => {
      const handle = await startSentinelOn(launcherFor(name), { sentinels: 3 });
      return { described: { name: handle.name, sentinels: handle.sentinels }, close: handle.close };
    }),
    provide("memcached", async (name) => {
      const handle = await startMemcachedOn(launcherFor(name), 1);
      return { described: { servers: handle.servers.map(({ host, port, address }) => ({ host, port, address })) }, close: handle.close };
    }),
    provide("memcachedMulti", async (name) => {
      const handle = await startMemcachedOn(launcherFor(name), 3);
      return { described: { servers: handle.servers.map(({ host, port, address }) => ({ host, port, address })) }, close: handle.close };
    }),
  ]);
  const descriptor: SharedServicesDescriptor = { redis, redisCluster, redisSentinel, memcached, memcachedMulti, servedBy, launcher };

  const teardown = async (): Promise<void> => {
    const results = await Promise.allSettled(closers.map((close) => close()));
    // Servers of test files that ended without close(): their reapers remove them now.
    const stuck = await waitForReapers(runDir);
    await reapersExited();
    rmSync(runDir, { recursive: true, force: true });
    const failed = results.filter((result): result is PromiseRejectedResult => result.status === "rejected");
    if (failed.length > 0) console.error("[test-services] closing shared servers failed:", ...failed.map((result) => result.reason));
    if (stuck.length > 0) console.error(`[test-services] reapers still busy after 30 s: ${stuck.join(", ")}`);
  };

  const names = Object.keys(SERVICE_LABELS) as SharedServiceName[];
  const reasons: string[] = [];
  const lines = names.map(
    (name) => `  ${SERVICE_LABELS[name].padEnd(26)} ${(servedBy[name] ?? "-").padEnd(9)} ${describeAddress(descriptor[name], reasons)}`,
  );
  const launcherLine =
    typeof launcher === "string"
      ? `${launcher}${"note" in choice && choice.note ? ` (${choice.note})` : ""}`
      : describeAddress(launcher, reasons);
  lines.push(`  ${"Dedicated (fault tests)".padEnd(26)} ${launcherLine}`);
  lines.push(...reasons.map((reason, index) => `  ${index + 1}. ${reason}`));
  console.log(
    `[test-services] shared servers after ${Math.round(performance.now() - started)} ms` +
      `${forced ? ` (SHARED_SESSION_TEST_PROVIDER=${forced})` : ""}:\n${lines.join("\n")}`,
  );

  if (names.every((name) => "unavailable" in descriptor[name])) {
    await teardown();
    // Nothing can serve: fail the run with one message rather than a failure per test.
    throw new Error(`[test-services] no Redis or Memcached server for the integration tests.\n${reasons.join("\n")}`);
  }

  project.provide("sharedSessionServices", descriptor);
  return teardown;
}
