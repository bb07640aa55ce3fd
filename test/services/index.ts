/**
 * Real Redis and Memcached servers for integration tests.
 *
 * - {@link services} gives the servers shared by the whole run (started once by
 *   `global-setup.ts`). Isolate with {@link uniquePrefix}; never stop or pause them.
 * - {@link startRedis}, {@link startRedisCluster}, {@link startRedisSentinel} and
 *   {@link startMemcached} start servers that belong to one test file, with fault controls.
 *   Close them in `afterAll`; they are also removed when the test process exits.
 *
 * Providers, in order: the environment (`REDIS_URL`, `REDIS_CLUSTER_NODES`, `REDIS_SENTINELS` +
 * `REDIS_SENTINEL_NAME`, `MEMCACHED_SERVERS`), Docker through testcontainers (images from
 * `SHARED_SESSION_REDIS_IMAGE` / `SHARED_SESSION_MEMCACHED_IMAGE`, default `redis:7.4` and
 * `memcached:1.6`), the `redis-server` / `redis-sentinel` / `memcached` binaries on PATH.
 * `SHARED_SESSION_TEST_PROVIDER=env|docker|binaries` forces one.
 *
 * @example
 * ```ts
 * import { afterAll, beforeAll, test } from "vitest";
 * import { Redis } from "ioredis";
 * import { services, startRedis, uniquePrefix, type RedisHandle } from "../services/index.js";
 *
 * const prefix = uniquePrefix("redis-store");
 * const shared = new Redis(services().redis.url);
 *
 * let own: RedisHandle;
 * beforeAll(async () => { own = await startRedis(); });
 * afterAll(async () => { shared.disconnect(); await own.close(); });
 *
 * test("survives an outage", async () => {
 *   await own.pause(); // requests now hang
 *   await own.resume();
 * });
 * ```
 */
import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import type { Launcher } from "./launcher.js";
import { chooseLauncher, launcherFor } from "./resolve.js";
import {
  startClusterOn,
  startMemcachedOn,
  startRedisOn,
  startSentinelOn,
  type ClusterOptions,
  type RedisOptions,
  type SentinelOptions,
} from "./topology.js";
import type {
  LauncherName,
  MemcachedHandle,
  ProviderName,
  RedisClusterHandle,
  RedisHandle,
  RedisSentinelHandle,
  SharedMemcached,
  SharedRedis,
  SharedRedisCluster,
  SharedRedisSentinel,
  SharedServiceName,
  SharedServicesDescriptor,
  Unavailable,
} from "./types.js";

export type {
  FaultControls,
  LauncherName,
  MemcachedHandle,
  MemcachedServer,
  ProviderName,
  RedisClusterHandle,
  RedisHandle,
  RedisSentinelHandle,
  RedisServer,
  ServerAddress,
  SharedMemcached,
  SharedRedis,
  SharedRedisCluster,
  SharedRedisSentinel,
} from "./types.js";
export type { ClusterOptions, RedisOptions, SentinelOptions } from "./topology.js";

/** The servers every integration test file shares. Reading one that could not start throws why. */
export interface SharedServices {
  /** A standalone Redis server. */
  readonly redis: SharedRedis;
  /** A Redis Cluster of 3 masters. */
  readonly redisCluster: SharedRedisCluster;
  /** A Sentinel deployment: 1 master, 1 replica, 3 sentinels (quorum 2). */
  readonly redisSentinel: SharedRedisSentinel;
  /** One Memcached server. */
  readonly memcached: SharedMemcached;
  /** Three Memcached servers (or those `MEMCACHED_SERVERS` lists, when several). */
  readonly memcachedMulti: SharedMemcached;
  /** Which provider served each service: `env`, `docker` or `binaries`. */
  readonly servedBy: Partial<Record<SharedServiceName, ProviderName>>;
}

function descriptor(): SharedServicesDescriptor {
  let provided: SharedServicesDescriptor | undefined;
  try {
    provided = inject("sharedSessionServices");
  } catch {
    provided = undefined;
  }
  if (!provided) {
    throw new Error(
      "test-services: no shared servers were provided. Run integration tests through their vitest project " +
        "(npx vitest run --project integration), whose globalSetup test/services/global-setup.ts starts them.",
    );
  }
  return provided;
}

function available<T extends object>(service: T | Unavailable, name: string): T {
  if ("unavailable" in service) throw new Error(`test-services: ${name} is not available: ${service.unavailable}`);
  return service;
}

/**
 * The shared servers of this run, from globalSetup through vitest's `inject`.
 * Throws a clear error outside the `integration` project; each property throws when its service
 * could not be provided (an integration test that needs it then fails, it is never skipped).
 *
 * @example
 * ```ts
 * const redis = new Redis(services().redis.url);
 * const cluster = new Cluster(services().redisCluster.nodes);
 * const sentinel = new Redis({ sentinels: services().redisSentinel.sentinels, name: services().redisSentinel.name });
 * const memcached = memjs.Client.create(services().memcachedMulti.servers.map((s) => s.address).join(","));
 * ```
 */
export function services(): SharedServices {
  const provided = descriptor();
  return {
    get redis() {
      return available(provided.redis, "the shared Redis");
    },
    get redisCluster() {
      return available(provided.redisCluster, "the shared Redis Cluster");
    },
    get redisSentinel() {
      return available(provided.redisSentinel, "the shared Redis Sentinel");
    },
    get memcached() {
      return available(provided.memcached, "the shared Memcached server");
    },
    get memcachedMulti() {
      return available(provided.memcachedMulti, "the shared Memcached servers");
    },
    servedBy: provided.servedBy,
  };
}

let counter = 0;

/**
 * A key prefix no other test (file, worker or run) uses: `test:<label>:<random>:`.
 * The label keeps only characters that are safe in Redis and Memcached keys.
 *
 * @example
 * ```ts
 * const store = new RedisStore({ client, prefix: uniquePrefix("redis-store") });
 * ```
 */
export function uniquePrefix(label: string): string {
  const safe = label.replace(/[^A-Za-z0-9._-]+/g, "-").slice(0, 40) || "test";
  counter += 1;
  return `test:${safe}:${randomBytes(5).toString("hex")}${counter.toString(36)}:`;
}

/** Options of every `start…` function. */
export interface StartOptions {
  /**
   * Who starts the servers. Defaults to the launcher globalSetup chose for this run
   * (Docker when reachable, else the binaries).
   */
  provider?: LauncherName;
}

async function launcher(options: StartOptions): Promise<Launcher> {
  if (options.provider) return launcherFor(options.provider);
  let chosen: LauncherName | Unavailable | undefined;
  try {
    chosen = inject("sharedSessionServices")?.launcher;
  } catch {
    chosen = undefined;
  }
  if (chosen === undefined) {
    const choice = await chooseLauncher();
    chosen = "launcher" in choice ? choice.launcher : { unavailable: choice.problem };
  }
  if (typeof chosen !== "string") throw new Error(`test-services: cannot start dedicated servers: ${chosen.unavailable}`);
  return launcherFor(chosen);
}

/**
 * Starts a standalone Redis server owned by the caller, with fault controls.
 *
 * @example
 * ```ts
 * const redis = await startRedis();
 * const client = new Redis(redis.url, { commandTimeout: 500 });
 * await redis.stop(); // connection refused
 * await redis.start(); // same address, empty dataset
 * await redis.close();
 *
 * const old = await startRedis({ args: ["--rename-command", "GETEX", ""] }); // a pre-6.2 lookalike
 * ```
 */
export async function startRedis(options: RedisOptions & StartOptions = {}): Promise<RedisHandle> {
  return startRedisOn(await launcher(options), options);
}

/**
 * Starts a Redis Cluster of 3 masters (optionally with replicas) owned by the caller.
 *
 * @example
 * ```ts
 * const cluster = await startRedisCluster({ replicasPerMaster: 1 });
 * const client = new Cluster(cluster.nodes);
 * await cluster.masters[0].pause();
 * ```
 */
export async function startRedisCluster(options: ClusterOptions & StartOptions = {}): Promise<RedisClusterHandle> {
  return startClusterOn(await launcher(options), options);
}

/**
 * Starts a master, a replica and sentinels (1 by default, quorum 1; or 3, quorum 2) owned by the
 * caller. Sentinels consider the master down after 1 s, so stopping it fails over in seconds.
 *
 * @example
 * ```ts
 * const sentinel = await startRedisSentinel();
 * const client = new Redis({ sentinels: sentinel.sentinels, name: sentinel.name });
 * await sentinel.master.stop(); // the replica is promoted
 * ```
 */
export async function startRedisSentinel(options: SentinelOptions & StartOptions = {}): Promise<RedisSentinelHandle> {
  return startSentinelOn(await launcher(options), options);
}

/**
 * Starts `count` Memcached servers owned by the caller, each with fault controls.
 *
 * @example
 * ```ts
 * const memcached = await startMemcached(3);
 * const client = memjs.Client.create(memcached.servers.map((s) => s.address).join(","));
 * await memcached.servers[1].stop();
 * ```
 */
export async function startMemcached(count = 1, options: StartOptions = {}): Promise<MemcachedHandle> {
  return startMemcachedOn(await launcher(options), count);
}
