import { BinariesLauncher, findOnPath } from "./binaries.js";
import { DockerLauncher, dockerImages, dockerProblem } from "./docker.js";
import type { Launcher } from "./launcher.js";
import type {
  LauncherName,
  ProviderName,
  ServerAddress,
  SharedMemcached,
  SharedRedis,
  SharedRedisCluster,
  SharedRedisSentinel,
} from "./types.js";

/** Forces one provider: `env`, `docker` or `binaries`. */
export const PROVIDER_VARIABLE = "SHARED_SESSION_TEST_PROVIDER";

/**
 * Set to `1` where Docker is provisioned (CI sets it; `CI=true` counts too, as does
 * `SHARED_SESSION_TEST_PROVIDER=docker`): the Docker provider's own tests then fail without an engine.
 * Elsewhere they are skipped, saying why, so a machine with only the binaries runs `npm test` green.
 */
export const REQUIRE_DOCKER_VARIABLE = "SHARED_SESSION_REQUIRE_DOCKER";

/** Whether a missing Docker engine fails the Docker provider's tests (see {@link REQUIRE_DOCKER_VARIABLE}). */
export function dockerRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[REQUIRE_DOCKER_VARIABLE]?.trim() === "1" || env.CI?.trim() === "true" || forcedProvider(env) === "docker";
}

/** What to install when nothing can serve. */
export const INSTALL_HINT =
  "Install Docker (the tests start containers through testcontainers), or the Debian packages " +
  "redis-server redis-sentinel memcached (apt-get install redis-server redis-sentinel memcached; " +
  "scripts/provision.sh does either), or point REDIS_URL / REDIS_CLUSTER_NODES / REDIS_SENTINELS / " +
  "MEMCACHED_SERVERS at running servers.";

/** The provider `SHARED_SESSION_TEST_PROVIDER` forces, if any. */
export function forcedProvider(env: NodeJS.ProcessEnv = process.env): ProviderName | undefined {
  const value = env[PROVIDER_VARIABLE]?.trim();
  if (value === undefined || value === "") return undefined;
  if (value === "env" || value === "docker" || value === "binaries") return value;
  throw new Error(`test-services: ${PROVIDER_VARIABLE} must be env, docker or binaries, not "${value}"`);
}

/** Parses `host:port,host:port` (IPv6 as `[::1]:6379`). */
export function parseHostPortList(value: string, variable: string): ServerAddress[] {
  const addresses = value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "")
    .map((item) => {
      const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(item);
      const port = Number(match?.[3]);
      if (!match || port < 1 || port > 65_535) {
        throw new Error(`test-services: ${variable} must list host:port pairs separated by commas; cannot read "${item}"`);
      }
      return { host: match[1] ?? match[2] ?? "", port };
    });
  if (addresses.length === 0) throw new Error(`test-services: ${variable} is set but lists no host:port`);
  return addresses;
}

/** Shared services described by the environment; absent ones are left to a launcher. */
export interface EnvServices {
  redis?: SharedRedis;
  redisCluster?: SharedRedisCluster;
  redisSentinel?: SharedRedisSentinel;
  memcached?: SharedMemcached;
  memcachedMulti?: SharedMemcached;
}

/**
 * Reads `REDIS_URL`, `REDIS_CLUSTER_NODES`, `REDIS_SENTINELS` + `REDIS_SENTINEL_NAME`
 * (default `mymaster`) and `MEMCACHED_SERVERS`. One Memcached server serves the single-server
 * tests; two or more also serve the multi-server ones.
 */
export function servicesFromEnv(env: NodeJS.ProcessEnv = process.env): EnvServices {
  const services: EnvServices = {};
  const redisUrl = env.REDIS_URL?.trim();
  if (redisUrl) {
    let url: URL;
    try {
      url = new URL(redisUrl);
    } catch {
      throw new Error(`test-services: REDIS_URL is not a URL: "${redisUrl}"`);
    }
    if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
      throw new Error(`test-services: REDIS_URL must start with redis:// or rediss://, got "${redisUrl}"`);
    }
    services.redis = { host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 6379), url: redisUrl };
  }
  const clusterNodes = env.REDIS_CLUSTER_NODES?.trim();
  if (clusterNodes) services.redisCluster = { nodes: parseHostPortList(clusterNodes, "REDIS_CLUSTER_NODES") };
  const sentinels = env.REDIS_SENTINELS?.trim();
  if (sentinels) {
    services.redisSentinel = {
      name: env.REDIS_SENTINEL_NAME?.trim() || "mymaster",
      sentinels: parseHostPortList(sentinels, "REDIS_SENTINELS"),
    };
  }
  const memcached = env.MEMCACHED_SERVERS?.trim();
  if (memcached) {
    const servers = parseHostPortList(memcached, "MEMCACHED_SERVERS").map((address) => ({
      ...address,
      address: `${address.host.includes(":") ? `[${address.host}]` : address.host}:${address.port}`,
    }));
    services.memcached = { servers: servers.slice(0, 1) };
    if (servers.length > 1) services.memcachedMulti = { servers };
  }
  return services;
}

/** A launcher that can start servers here, or why none can. */
export type LauncherChoice = { launcher: LauncherName; note?: string } | { problem: string };

/**
 * Docker first, then the binaries. `SHARED_SESSION_TEST_PROVIDER=docker|binaries` allows only
 * that one; `env` still needs a launcher for the servers that fault tests start and stop.
 */
export async function chooseLauncher(env: NodeJS.ProcessEnv = process.env): Promise<LauncherChoice> {
  const forced = forcedProvider(env);
  const binaries = ["redis-server", "redis-sentinel", "memcached"].filter((program) => findOnPath(program) !== undefined);
  const binariesProblem =
    binaries.length === 0 ? "none of redis-server, redis-sentinel, memcached is on PATH" : undefined;
  if (forced === "binaries") {
    return binariesProblem ? { problem: `${PROVIDER_VARIABLE}=binaries, but ${binariesProblem}. ${INSTALL_HINT}` } : { launcher: "binaries" };
  }
  const docker = await dockerProblem(dockerImages(env));
  if (forced === "docker") {
    return docker ? { problem: `${PROVIDER_VARIABLE}=docker, but ${docker}. ${INSTALL_HINT}` } : { launcher: "docker" };
  }
  if (!docker) return { launcher: "docker" };
  if (!binariesProblem) return { launcher: "binaries", note: `Docker not used: ${docker}` };
  return { problem: `No Redis or Memcached for the integration tests: ${docker}, and ${binariesProblem}. ${INSTALL_HINT}` };
}

const launchers = new Map<LauncherName, Launcher>();

/** One launcher instance per kind and process. */
export function launcherFor(name: LauncherName): Launcher {
  let launcher = launchers.get(name);
  if (!launcher) {
    launcher = name === "docker" ? new DockerLauncher() : new BinariesLauncher();
    launchers.set(name, launcher);
  }
  return launcher;
}
