import { createRequire } from "node:module";
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from "ioredis";
import type * as IORedis from "ioredis";
import { SessionConfigError } from "../../src/core/errors.js";

/**
 * Options of {@link createRedisClient} for a Redis Cluster: the startup nodes plus any ioredis
 * `ClusterOptions` (ioredis units: milliseconds). Per-node settings (TLS, ACL user and password,
 * `commandTimeout`) go in `redisOptions`.
 */
export interface RedisClusterClientOptions extends ClusterOptions {
  /** Some nodes of the cluster (`"host:port"`, a port, or `{ host, port }`); the rest are discovered. */
  clusterNodes: ClusterNode[];
}

/**
 * Options of {@link createRedisClient} for one server or a Sentinel-managed master: any ioredis
 * `RedisOptions` (ioredis units: milliseconds), plus an optional `url`
 * (`redis://[user:password@]host:port[/db]`, `rediss://` for TLS). Give `sentinels` and `name` for Sentinel.
 */
export interface RedisServerClientOptions extends RedisOptions {
  /** Server URL; options given next to it win over what the URL says. */
  url?: string;
}

/** The settings {@link createRedisClient} applies unless the caller sets them. Milliseconds, as ioredis counts. */
const RECOMMENDED_CLIENT_SETTINGS = Object.freeze({
  /** Milliseconds a command may wait for its reply before it is rejected. */
  commandTimeout: 1000,
  /** Milliseconds a connection attempt may take. */
  connectTimeout: 5000,
  /** Reconnections a command caught by a dropped connection may wait for before it fails. */
  maxRetriesPerRequest: 1,
  /** Cap of the reconnect backoff, in milliseconds. */
  maxReconnectDelay: 2000,
});

/**
 * Reconnect delay: exponential from 50 ms, capped, with jitter so that many processes do not
 * reconnect in lockstep after an outage. Never gives up: a web app must come back by itself.
 */
function reconnectDelay(attempt: number): number {
  const base = Math.min(50 * 2 ** Math.min(attempt, 16), RECOMMENDED_CLIENT_SETTINGS.maxReconnectDelay);
  return base + Math.floor(Math.random() * 100);
}

/** A demoted master answers writes with READONLY: reconnect, so Sentinel names the new master. */
function reconnectOnReadonly(err: Error): boolean {
  return err.message.startsWith("READONLY");
}

/** Settings shared by a standalone/Sentinel client and by each node of a Cluster. */
function nodeDefaults(): RedisOptions {
  return {
    // A command without a reply (paused or overloaded server) fails after this instead of holding the request.
    commandTimeout: RECOMMENDED_CLIENT_SETTINGS.commandTimeout,
    // A host that does not answer the TCP handshake is given up quickly, then retried by the backoff.
    connectTimeout: RECOMMENDED_CLIENT_SETTINGS.connectTimeout,
    // A command in flight when the connection drops is resent if the first reconnection succeeds, and
    // fails as soon as a second one is needed: a session request must not wait through an outage.
    // Resending is safe for RedisStore: its writes are conditional (NX, XX, compare-and-set) or idempotent.
    maxRetriesPerRequest: RECOMMENDED_CLIENT_SETTINGS.maxRetriesPerRequest,
  };
}

/**
 * ioredis, loaded when a client is built rather than when `shared-session/redis` is imported: an app
 * that gives RedisStore a node-redis client need not install ioredis.
 */
function ioredis(): typeof IORedis {
  // A require() for this file, resolving from where an import would (CommonJS build: __filename; ES module: import.meta.url).
  const load = createRequire(typeof __filename === "string" ? __filename : import.meta.url);
  try {
    return load("ioredis") as typeof IORedis;
  } catch (err) {
    throw new SessionConfigError("createRedisClient builds an ioredis client: install ioredis (npm install ioredis), or pass your node-redis createClient() to RedisStore instead", { cause: err });
  }
}

/**
 * An unset `REDIS_URL` must not silently become localhost:6379: say what is missing instead.
 * (A string `url` is typed `string | undefined` so that `process.env.REDIS_URL` compiles and fails here, at boot, with this message.)
 */
function checkTarget(target: unknown): asserts target is string | RedisServerClientOptions | RedisClusterClientOptions {
  if (typeof target === "string") {
    if (target.trim() === "") throw new SessionConfigError("createRedisClient: the Redis URL is an empty string (is REDIS_URL set?); pass \"redis://host:6379\" or { host, port }");
    return;
  }
  if (target === undefined || target === null) {
    throw new SessionConfigError(
      `createRedisClient: no Redis URL or options given (got ${String(target)}; is REDIS_URL set?). Pass "redis://host:6379", { host, port }, { sentinels, name } or { clusterNodes }`,
    );
  }
  if (typeof target !== "object") throw new SessionConfigError(`createRedisClient: expected a Redis URL string or an options object, got ${typeof target}`);
  // { url: process.env.REDIS_URL } with the variable unset would connect to localhost just the same.
  if ("url" in target && (typeof target.url !== "string" || target.url.trim() === "")) {
    throw new SessionConfigError(`createRedisClient: url is ${JSON.stringify(target.url) ?? "undefined"} (is REDIS_URL set?); give a Redis URL or leave url out and give host and port`);
  }
  if ("clusterNodes" in target && !(Array.isArray(target.clusterNodes) && target.clusterNodes.length > 0)) {
    throw new SessionConfigError("createRedisClient: clusterNodes must be a non-empty array of cluster nodes (\"host:port\", a port or { host, port })");
  }
}

/**
 * Build an ioredis client with settings suited to session traffic (short commands on every request,
 * where failing fast beats waiting): auto-pipelining, no offline queue, a command timeout, bounded
 * retries and a capped reconnect backoff. Anything you pass wins over these defaults.
 *
 * - a URL or `RedisOptions` → a standalone `Redis` client;
 * - `RedisOptions` with `sentinels` and `name` → a `Redis` client that follows the Sentinel master;
 * - `{ clusterNodes, ...ClusterOptions }` → a `Cluster` client.
 *
 * @example
 * const client = createRedisClient(process.env.REDIS_URL); // throws at boot when REDIS_URL is unset
 * const store = new RedisStore({ client });
 */
export function createRedisClient(url: string | undefined, options?: RedisOptions): Redis;
export function createRedisClient(options: RedisServerClientOptions): Redis;
export function createRedisClient(options: RedisClusterClientOptions): Cluster;
export function createRedisClient(target: string | RedisServerClientOptions | RedisClusterClientOptions | undefined, options?: RedisOptions): Redis | Cluster {
  checkTarget(target);
  if (typeof target === "object" && "clusterNodes" in target) {
    const { clusterNodes, redisOptions, ...clusterOptions } = target;
    return new (ioredis().Cluster)(clusterNodes, {
      // Commands issued in the same tick share one write per node: concurrent requests cost fewer round trips.
      enableAutoPipelining: true,
      // While the cluster is down, commands fail at once instead of queueing until it returns.
      enableOfflineQueue: false,
      // Capped backoff for reconnecting to the cluster as a whole.
      clusterRetryStrategy: reconnectDelay,
      // A node that drops its connection is reconnected (same backoff) rather than waiting for a MOVED.
      clusterNodeRetryStrategy: reconnectDelay,
      ...clusterOptions,
      redisOptions: { ...nodeDefaults(), ...redisOptions },
    });
  }
  const { url, ...rest }: RedisServerClientOptions = typeof target === "string" ? { ...options, url: target } : { ...target };
  const settings: RedisOptions = {
    ...nodeDefaults(),
    // Commands issued in the same tick share one write: concurrent requests cost fewer round trips.
    enableAutoPipelining: true,
    // While disconnected, commands fail at once instead of piling up and running late, after the
    // request that sent them has already been answered.
    enableOfflineQueue: false,
    // Capped exponential backoff with jitter; never gives up.
    retryStrategy: reconnectDelay,
    // With Sentinel: reconnect as soon as the sentinels announce a new master, not when the old one
    // fails; and when a demoted master refuses a write, reconnect so that Sentinel names the new one.
    ...(rest.sentinels ? { failoverDetector: true, reconnectOnError: reconnectOnReadonly } : {}),
    ...rest,
  };
  const { Redis } = ioredis();
  return url === undefined ? new Redis(settings) : new Redis(url, settings);
}
