/**
 * Helpers of the RedisStore integration tests: raw clients that read what the server holds, and
 * command counts from `INFO commandstats`.
 */
import { Cluster, Redis, type ClusterNode, type RedisOptions } from "ioredis";

/** Clients opened by a test file; {@link closeClients} disconnects them all. */
const opened = new Set<Redis | Cluster>();

function track<C extends Redis | Cluster>(client: C): C {
  // ioredis prints unhandled "error" events; outages are expected in these tests.
  client.on("error", () => undefined);
  opened.add(client);
  return client;
}

/** A plain client for reading the server directly (not through the store). */
export function rawRedis(target: string | RedisOptions, options: RedisOptions = {}): Redis {
  return track(typeof target === "string" ? new Redis(target, options) : new Redis({ ...target, ...options }));
}

/** A plain Cluster client for reading the cluster directly. */
export function rawCluster(nodes: ClusterNode[]): Cluster {
  return track(new Cluster(nodes));
}

/** Keep a client made elsewhere (such as by `createRedisClient`) for {@link closeClients}. */
export function tracked<C extends Redis | Cluster>(client: C): C {
  return track(client);
}

export function closeClients(): void {
  for (const client of opened) client.disconnect();
  opened.clear();
}

/** `TTL key` as the server holds it: seconds, or `null` when the key is absent (-1, no expiry, is returned as is). */
export async function serverTtl(client: Redis | Cluster, key: string): Promise<number | null> {
  const ttl = await client.ttl(key);
  return ttl === -2 ? null : ttl;
}

/** Calls per command since the server started, from `INFO commandstats`. */
export async function commandCalls(client: Redis): Promise<Map<string, number>> {
  const info = await client.info("commandstats");
  const calls = new Map<string, number>();
  for (const line of info.split("\r\n")) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (match) calls.set(match[1]!, Number(match[2]));
  }
  return calls;
}

/** Failed calls per command (such as an `EVALSHA` answered `NOSCRIPT`). */
export async function failedCalls(client: Redis): Promise<Map<string, number>> {
  const info = await client.info("commandstats");
  const failed = new Map<string, number>();
  for (const line of info.split("\r\n")) {
    const match = /^cmdstat_([^:]+):.*failed_calls=(\d+)/.exec(line);
    if (match) failed.set(match[1]!, Number(match[2]));
  }
  return failed;
}

/**
 * Commands the server ran while `action` ran, by name, without the `INFO` calls of the measurement.
 * Only meaningful on a server no other test uses.
 */
export async function commandsDuring(admin: Redis, action: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await commandCalls(admin);
  await action();
  const after = await commandCalls(admin);
  const delta: Record<string, number> = {};
  for (const [name, count] of after) {
    if (name === "info") continue;
    const diff = count - (before.get(name) ?? 0);
    if (diff !== 0) delta[name] = diff;
  }
  return delta;
}

/** A stored value's version tag (see adapters/redis/version.ts): `~` and 11 base64url characters. */
export const STORED_TAG = /^~[A-Za-z0-9_-]{11}/;

/**
 * The record RedisStore holds under `key`, read raw from the server: the value must start with a
 * version tag, which is stripped. `null` when the key is absent.
 */
export async function storedRecord(client: Redis | Cluster, key: string): Promise<string | null> {
  const value = await client.get(key);
  if (value === null) return null;
  if (!STORED_TAG.test(value)) throw new Error(`the value under ${key} has no version tag: ${JSON.stringify(value.slice(0, 20))}`);
  return value.slice(12);
}
